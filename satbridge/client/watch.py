"""`satctl watch [--json] [--since N]`: the satellite's events (System.WatchEvents), one line or
one JSON object per event, flushed as each arrives. A cut connection (or a bridge restart) is
resumed with the last seq seen, after a back-off; events missed meanwhile are announced by the
bridge (a `lost` event), and watch then says so and shows GetStatus once."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from satbridge.api.v1 import system_pb2
from satbridge.client import schema
from satbridge.client.inventory import Inventory
from satbridge.client.session import connect
from satbridge.errors import Unavailable

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
"""Seconds between reconnects after a cut: doubled each failed attempt up to BACKOFF_MAX."""


def add_parser(sub: Any) -> None:
    """Register `watch` on satctl's subcommand parsers."""
    from satbridge.client.terminal import uint

    w = sub.add_parser("watch", help="print the satellite's events as they happen (resumes after a cut)")
    w.add_argument("--json", action="store_true", help="one JSON object a line")
    w.add_argument(
        "--since",
        type=uint("--since", lo=0, hi=2**63 - 1),
        default=0,
        metavar="SEQ",
        help="start after this event seq (one the bridge's ring still holds; default: only new events)",
    )
    w.add_argument("--count", type=uint("--count", lo=1, hi=2**31), default=0, metavar="N", help="exit after N events")


def as_line(event: system_pb2.Event) -> str:
    """`SEQ TIME gen=N KIND key=value ...` (UTC, seconds): the JSON object's fields of its kind,
    the empty ones left out."""
    doc = schema.event(event)
    fields = doc.get(doc["kind"]) or {}
    shown = " ".join(f"{k}={v}" for k, v in fields.items() if v not in ("", 0, False) or k == "low")
    return f"{event.seq:>6} {doc['time'] or '-'} gen={event.state_generation} {doc['kind']} {shown}".rstrip()


def _emit(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()


async def run(inv: Inventory, opts: argparse.Namespace) -> int:
    """Watch until --count events were printed, the satellite ends the subscription
    (Unauthenticated: an exit code), or Ctrl-C."""
    sat = inv.get(opts.satellite)
    since, run_id, printed = opts.since, "", 0
    highest_generation = 0
    backoff = BACKOFF_FIRST
    while True:
        try:
            async with connect(sat, inv, timeout=opts.call_timeout) as client:
                asked_run = run_id
                async for event in client.watch_events(since, run_id):
                    backoff = BACKOFF_FIRST
                    if run_id and event.run != run_id:
                        since = 0  # the bridge restarted: the new run's seq starts at 1
                    run_id = event.run
                    if event.HasField("subscribed"):
                        if not since and not asked_run:
                            # "From now on": now is newest_seq. Resuming with since 0 and the
                            # run would mean "from the start of the run" (older events replayed).
                            since = event.subscribed.newest_seq
                        continue
                    if event.HasField("lost"):
                        reason = schema.enum_word(system_pb2.EventsLost.Reason.DESCRIPTOR, event.lost.reason).upper()
                        _emit(
                            f"satctl: warning: events were missed ({reason}); going on from seq "
                            f"{event.lost.first_available_seq} (the status below is the state now)",
                            err=True,
                        )
                        status = await client.status()
                        _emit(
                            f"satctl: warning: the status now: generation {status.state_generation}, "
                            f"xcc {status.xcc.active_state or '-'}/{status.xcc.sub_state or '-'}, "
                            f"firewall revision {status.firewall_revision}",
                            err=True,
                        )
                    else:
                        since = event.seq
                    if event.state_generation and event.state_generation < highest_generation:
                        _emit(
                            f"satctl: warning: SNAPSHOT REVERT: state generation went down ({highest_generation} -> "
                            f"{event.state_generation}): the satellite was reverted to a snapshot",
                            err=True,
                        )
                    highest_generation = max(highest_generation, event.state_generation)
                    _emit(schema.dumps(schema.event(event)) if opts.json else as_line(event))
                    if not event.HasField("lost"):
                        printed += 1
                        if opts.count and printed >= opts.count:
                            return 0
        except Unavailable as exc:
            _emit(f"satctl: warning: {exc}; reconnecting in {backoff:g} s (after seq {since})", err=True)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
