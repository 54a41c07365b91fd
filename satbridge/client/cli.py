"""`satctl`: the reference management client, playing the central server's part."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from satbridge.api.v1 import firewall_pb2, xcc_pb2
from satbridge.client import (
    quiet,  # noqa: F401 - before grpc loads: no C-core log lines
    watch,
)
from satbridge.client.inventory import Inventory, Satellite
from satbridge.client.session import (
    DEFAULT_PAIRING_PORT,
    DEFAULT_PORT,
    SatelliteClient,
    check_generation,
    connect,
    pair,
)
from satbridge.errors import EXIT_CODES, Aborted, InvalidArgument, Kind, SatbridgeError

EXIT_WARNING = 10
"""--strict: the call worked, but a snapshot revert or a clone was seen."""


def _default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "satctl"


def _pair_arguments(p: argparse.ArgumentParser) -> None:
    from satbridge.client.terminal import uint

    p.add_argument("host", metavar="HOST", help="the satellite's address (the ports go in --port, --pairing-port)")
    p.add_argument("code", metavar="CODE", help="the pairing code the satellite's console shows")
    p.add_argument(
        "--port", type=uint("--port", lo=1, hi=65535), default=DEFAULT_PORT, help="management port (default 50051)"
    )
    p.add_argument(
        "--pairing-port",
        type=uint("--pairing-port", lo=1, hi=65535),
        default=DEFAULT_PAIRING_PORT,
        help="pairing port (default 50052)",
    )
    p.add_argument("--name", help="inventory name for the satellite (default: its hostname)")
    p.add_argument(
        "--as",
        dest="server_name",
        default=socket.gethostname()[:64] or "satctl",
        help="this server's name, as the satellite will show it (default: this hostname)",
    )


DEFAULT_TIMEOUT = 15.0
"""Seconds per call when --timeout is not given."""


def _globals(p: argparse.ArgumentParser, top: bool) -> None:
    """The options every subcommand accepts too, before or after its name."""
    from satbridge import __version__
    from satbridge.client.terminal import seconds

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--config-dir",
        type=Path,
        default=default(_default_config_dir()),
        help="where satctl keeps its key and inventory (default ~/.config/satctl)",
    )
    p.add_argument(
        "-s", "--satellite", default=default(None), help="inventory name of the satellite (default: the first paired)"
    )
    p.add_argument(
        "--timeout",
        type=seconds("--timeout", hi=3600),
        default=default(None),
        metavar="S",
        help=f"seconds a call may take (default {DEFAULT_TIMEOUT:g}); for xcc start/stop/restart, how long the "
        "satellite waits for systemd (default 90, at most 600)",
    )
    p.add_argument("--version", action="version", version=f"satctl {__version__}")


def _parser() -> argparse.ArgumentParser:
    from satbridge.client.terminal import Parser, globals_everywhere, seconds, uint

    p = Parser(prog="satctl", description="Manage XCC satellites (the central server's side).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pr = sub.add_parser("pair", help="pair with a satellite whose pairing window is open")
    _pair_arguments(pr)
    st = sub.add_parser("status", help="the satellite's status")
    st.add_argument("--json", action="store_true")
    st.add_argument("--strict", action="store_true", help=f"exit {EXIT_WARNING} on a snapshot revert or a clone")
    sub.add_parser("unpair", help="disconnect this server from the satellite (it stops XCC)")
    xc = sub.add_parser("xcc", help="start, stop, restart XCC or show its state")
    xc.add_argument("action", choices=["start", "stop", "restart", "status"])
    # the old spelling of --timeout, kept working
    xc.add_argument(
        "--wait", dest="timeout", type=seconds("--wait", hi=3600), default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )
    xc.add_argument("--json", action="store_true")
    sub.add_parser("list", help="the paired satellites").add_argument("--json", action="store_true")
    fwp = sub.add_parser("firewall", help="the satellite's firewall rules for XCC")
    fws = fwp.add_subparsers(dest="action", required=True, metavar="ACTION")
    fws.add_parser("show", aliases=["get"], help="the rules in force (get: the same)").add_argument(
        "--json", action="store_true"
    )
    fset = fws.add_parser("set", help="apply a rule set from a JSON file (see the README)")
    fset.add_argument("file", type=Path, metavar="FILE")
    how = fset.add_mutually_exclusive_group()
    how.add_argument(
        "--confirm-timeout",
        type=uint("--confirm-timeout", lo=1, hi=3600),
        default=30,
        metavar="S",
        help="seconds before the satellite rolls the change back unless confirmed (default 30); satctl confirms "
        "over a new connection at once",
    )
    how.add_argument(
        "--no-confirm",
        action="store_true",
        help="apply for good at once: no rollback window, nothing to confirm (as `satbridge network --no-confirm`)",
    )
    how.add_argument(
        "--leave-pending",
        action="store_true",
        help="do not confirm: the change rolls back after --confirm-timeout unless `firewall confirm` runs",
    )
    fconf = fws.add_parser("confirm", help="confirm a pending change")
    fconf.add_argument(
        "revision",
        type=uint("REVISION", lo=1, hi=2**63 - 1),
        nargs="?",
        metavar="REVISION",
        help="default: the one pending",
    )
    fws.add_parser("reset", help="back to the factory rule set").add_argument("--json", action="store_true")
    lg = sub.add_parser("logs", help="list and download the satellite's logs, or a support bundle")
    lgs = lg.add_subparsers(dest="action", required=True, metavar="ACTION")
    lgs.add_parser("list", help="the logs there are").add_argument("--json", action="store_true")
    get = lgs.add_parser("get", help="download one log")
    get.add_argument("name", metavar="NAME")
    get.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    get.add_argument("--follow", "-f", action="store_true", help="keep printing new lines, like tail -F")
    get.add_argument("--since", help="journal logs: from this time on (ISO 8601, e.g. 2026-11-28T10:00)")
    get.add_argument(
        "--lines", "-n", type=uint("--lines", lo=0, hi=1_000_000), default=0, help="journal logs: only the last N lines"
    )
    get.add_argument("--resume", action="store_true", help="continue a partial -o FILE from its end")
    get.add_argument(
        "--compression",
        choices=["none", "gzip", "zstd"],
        default="none",
        help="compress on the wire (the file written is plain)",
    )
    get.add_argument("--compress", dest="compression", choices=["none", "gzip", "zstd"], help=argparse.SUPPRESS)
    up = sub.add_parser("update", help="transfer and install an XCC package (resumes, can be re-run)")
    up.add_argument("package", type=Path, metavar="PKG")
    up.add_argument("--allow-downgrade", action="store_true")
    up.add_argument(
        "--health-gate",
        type=uint("--health-gate", lo=0, hi=600),
        default=0,
        metavar="S",
        help="seconds XCC must stay healthy",
    )
    sy = sub.add_parser("sync", help="the central server's start check: update only if the version differs")
    sy.add_argument("package", type=Path, metavar="PKG")
    cm = sub.add_parser("commission", help="pair, install XCC for the first time and start it")
    _pair_arguments(cm)
    cm.add_argument("--xcc", type=Path, required=True, metavar="PKG")
    pk = sub.add_parser("package", help="the vendor's side: keys and signed packages")
    pks = pk.add_subparsers(dest="action", required=True, metavar="ACTION")
    kg = pks.add_parser("keygen", help="make an Ed25519 signing key")
    kg.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR", help="directory (default .)")
    kg.add_argument("--out", dest="output", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    pb = pks.add_parser("build", help="build a signed package from DIR (package.json + payload/)")
    pb.add_argument("dir", type=Path, metavar="DIR")
    pb.add_argument("--key", type=Path, required=True)
    pb.add_argument("-o", "--output", type=Path)
    pb.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip")
    bundle = lgs.add_parser("bundle", help="a tar.gz of all logs, status and redacted config")
    bundle.add_argument("-o", "--output", type=Path, default=Path("satellite-bundle.tar.gz"))
    watch.add_parser(sub)
    globals_everywhere(p, _globals)
    return p


async def _run(opts: argparse.Namespace) -> int:
    opts.call_timeout = opts.timeout or DEFAULT_TIMEOUT
    if getattr(opts, "action", None) == "get" and opts.command == "firewall":
        opts.action = "show"  # `show` is the verb; `get` its alias
    if opts.command == "package":
        return _package(opts)
    inv = Inventory.load(opts.config_dir)
    # Preconditions first: nothing changes on a satellite for a command that cannot finish.
    if opts.command == "commission":
        await asyncio.to_thread(_check_package, opts.xcc, "--xcc")
    if opts.command in ("update", "sync"):
        await asyncio.to_thread(_check_package, opts.package, "PKG")
    if opts.command == "firewall" and opts.action == "set":
        opts.rules = _rules_from_file(opts.file)  # a bad file fails here: nothing is sent
    if opts.command in ("pair", "commission"):
        sat = await pair(
            opts.host,
            opts.code,
            inventory=inv,
            server_name=opts.server_name,
            name=opts.name,
            port=opts.port,
            pairing_port=opts.pairing_port,
            timeout=opts.call_timeout,
        )
        print(f"paired with {sat.name} ({sat.host}); identity {sat.fingerprint}")
        if opts.command == "pair":
            return 0
        async with connect(sat, inv, timeout=opts.call_timeout) as client:
            return await _update(client, opts.xcc, allow_downgrade=False, health_gate=0)
    if opts.command == "list":
        return _list(inv, opts.json)
    if opts.command == "watch":
        return await watch.run(inv, opts)
    sat = inv.get(opts.satellite)
    async with connect(sat, inv, timeout=opts.call_timeout) as client:
        if opts.command == "unpair":
            await client.unpair()
            del inv.satellites[sat.name]
            if inv.default == sat.name:
                inv.default = next(iter(inv.satellites), "")
            inv.save()
            print(f"unpaired from {sat.name}")
            return 0
        if opts.command == "xcc":
            return await _xcc(client, opts)
        if opts.command == "firewall":
            return await _firewall(client, sat, inv, opts)
        if opts.command == "logs":
            return await _logs(client, opts)
        if opts.command == "update":
            return await _update(
                client, opts.package, allow_downgrade=opts.allow_downgrade, health_gate=opts.health_gate
            )
        if opts.command == "sync":
            return await _sync(client, opts.package)
        status = await client.status()
    found = check_generation(inv, sat, status.instance_id, status.state_generation)
    inv.save()
    for warning in found.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    if opts.json:
        from satbridge.client import schema

        document = schema.status(status)
        document["warnings"] += found.warnings  # satctl's own findings, in the one schema's list
        _print_json(document)
    else:
        p = status.pairing
        print(f"{sat.name}: {status.hostname}, bridge {status.bridge_version}")
        print(f"  addresses:   {', '.join(a.address for a in status.addresses if a.interface != 'lo')}")
        print(f"  paired with: {p.peer_name} ({p.peer_fingerprint[:16]}…)")
        print(f"  uptime:      {status.uptime_seconds} s")
        print(f"  generation:  {status.state_generation} (instance {status.instance_id})")
        for w in status.warnings:
            print(f"  warning:     {w}")
    return EXIT_WARNING if opts.strict and found.warnings else 0


def _print_json(document: object) -> None:
    print(json.dumps(document, indent=2))


def _list(inv: Inventory, as_json: bool) -> int:
    from satbridge.client.schema import SCHEMA_VERSION, when

    if as_json:
        _print_json(
            {
                "schema_version": SCHEMA_VERSION,
                "default": inv.default,
                "satellites": [
                    {
                        "name": sat.name,
                        "host": sat.host,
                        "port": sat.port,
                        "pairing_port": sat.pairing_port,
                        "fingerprint": sat.fingerprint,
                        "instance_id": sat.instance_id,
                        "max_generation": sat.max_generation,
                        "paired_at": when(sat.paired_at or None),
                        "default": sat.name == inv.default,
                    }
                    for sat in inv.satellites.values()
                ],
            }
        )
        return 0
    for sat in inv.satellites.values():
        mark = "*" if sat.name == inv.default else " "
        print(f"{mark} {sat.name}\t{sat.host}:{sat.port}\t{sat.fingerprint[:16]}…\tgeneration {sat.max_generation}")
    return 0


def _check_package(path: Path, field: str) -> None:
    """A package file that can be read and carries a manifest, checked before anything is sent
    or paired: a regular file (never a FIFO that blocks, or a device), read through the one
    reader (client.update.describe)."""
    import stat

    from satbridge.client.update import describe

    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InvalidArgument(f"{path}: {exc.strerror or exc}", field=field) from None
    if not stat.S_ISREG(mode):
        raise InvalidArgument(f"{path} is not a regular file", field=field)
    try:
        describe(path)
    except OSError as exc:
        raise InvalidArgument(f"{path}: {exc.strerror or exc}", field=field) from None
    except SatbridgeError as exc:
        raise InvalidArgument(f"{path}: {exc}", field=field) from None


def _xcc_line(state: xcc_pb2.XccState) -> str:
    if not state.installed:
        return "not installed"
    since = state.since.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC") if state.HasField("since") else "-"
    return (
        f"{state.version or '?'}, {state.active_state}/{state.sub_state} since {since}, "
        f"pid {state.main_pid or '-'}, result {state.result or '-'}"
    )


async def _xcc(client: SatelliteClient, opts: argparse.Namespace) -> int:
    if opts.action == "status":
        state = await client.xcc_state()
    else:
        wait = opts.timeout or 0  # 0: the satellite's default (90 s)
        if wait > 600:
            raise InvalidArgument(f"systemd is waited for at most 600 seconds, got {wait:g}", field="--timeout")
        state = await client.xcc_control(opts.action, wait=wait)
    if opts.json:
        from satbridge.client import schema

        _print_json(schema.xcc_document(state))
    else:
        print(f"XCC: {_xcc_line(state)}")
    return 0


def _rules_from_file(path: Path) -> firewall_pb2.FirewallRuleSet:
    """A rule file through the one checked reader (a regular file, never a blocking open, at
    most MAX_RULE_FILE bytes) and the one strict JSON reading and schema (core.firewall):
    every problem is INVALID_ARGUMENT naming the file or the field (exit 2), never a traceback."""
    from satbridge.core.firewall import MAX_RULE_FILE, from_json, loads
    from satbridge.protocol import rule_set_msg
    from satbridge.system.files import read_regular

    try:
        raw = read_regular(path, limit=MAX_RULE_FILE, field="FILE")
    except FileNotFoundError:
        raise InvalidArgument(f"no such file {path}", field="FILE") from None
    # Errors name the field, e.g. rules[0].ports.
    return rule_set_msg(from_json(loads(raw, str(path), field="FILE")))


def _print_firewall(state: firewall_pb2.FirewallState, as_json: bool) -> None:
    if as_json:
        from satbridge.client import schema

        _print_json(schema.firewall(state))
        return
    pending = f", revision {state.pending_revision} pending (rolls back in {state.rollback_in_seconds} s)"
    print(
        f"revision {state.revision}{pending if state.pending_revision else ''}; "
        f"{len(state.rules.rules)} rules; default {firewall_pb2.Action.Name(state.rules.default_action).lower()}"
    )
    for w in state.warnings:
        print(f"warning: {w}")


async def _firewall(client: SatelliteClient, sat: Satellite, inv: Inventory, opts: argparse.Namespace) -> int:
    if opts.action == "show":
        _print_firewall(await client.firewall_call("Get", firewall_pb2.GetFirewallRequest()), opts.json)
        return 0
    if opts.action == "reset":
        _print_firewall(await client.firewall_call("Reset", firewall_pb2.ResetFirewallRequest()), opts.json)
        return 0
    if opts.action == "confirm":
        revision = opts.revision
        if revision is None:
            revision = (await client.firewall_call("Get", firewall_pb2.GetFirewallRequest())).pending_revision
            if not revision:
                raise InvalidArgument("nothing is pending on the satellite", field="REVISION")
        _print_firewall(
            await client.firewall_call("Confirm", firewall_pb2.ConfirmFirewallRequest(revision=revision)), False
        )
        return 0
    if opts.no_confirm:  # for good: the satellite keeps no rollback window
        before = await client.firewall_call("Get", firewall_pb2.GetFirewallRequest())
        request = firewall_pb2.SetFirewallRequest(rules=opts.rules, confirm_timeout_seconds=0)
        state = await client.firewall_call("Set", request)
        if state.revision == before.revision:
            print(f"no change: these rules are revision {state.revision}, already in force")
        else:
            print(f"applied for good as revision {state.revision} (no rollback window)")
        for w in state.warnings:
            print(f"warning: {w}")
        return 0
    request = firewall_pb2.SetFirewallRequest(rules=opts.rules, confirm_timeout_seconds=opts.confirm_timeout)
    state = await client.firewall_call("Set", request)
    if not state.pending_revision:  # the set in force already: nothing to confirm
        print(f"no change: these rules are revision {state.revision}, already in force")
        for w in state.warnings:
            print(f"warning: {w}")
        return 0
    print(f"applied as revision {state.pending_revision}; rolls back in {state.rollback_in_seconds} s unless confirmed")
    if opts.leave_pending:
        return 0
    # Confirm over a NEW connection: proof that the new rules still let this server in.
    async with connect(sat, inv, timeout=opts.call_timeout) as fresh:
        done = await fresh.firewall_call(
            "Confirm", firewall_pb2.ConfirmFirewallRequest(revision=state.pending_revision)
        )
    print(f"confirmed over a new connection: revision {done.revision} is in force")
    return 0


RESUME_OVERLAP = 64 << 10  # bytes of a partial download fetched again to prove it is the same file


def _utf8_terminal() -> bool:
    """Whether the terminal takes UTF-8 (else only ASCII is sent to it): the locale's encoding,
    and TERM for the serial consoles that know no UTF-8 (vt100, vt220)."""
    import locale

    term = os.environ.get("TERM", "")
    return locale.getpreferredencoding(False).lower().replace("-", "") == "utf8" and not term.startswith(
        ("vt1", "vt2", "dumb")
    )


async def _logs(client: SatelliteClient, opts: argparse.Namespace) -> int:
    import datetime as dt
    import hashlib

    from satbridge.api.v1 import logs_pb2
    from satbridge.client.progress import Progress
    from satbridge.core.logs import TerminalFilter
    from satbridge.system.compress import decompressor

    if opts.action == "list":
        sources = await client.logs_list()
        if opts.json:
            from satbridge.client import schema

            _print_json(schema.logs(sources))
        for s in [] if opts.json else sources:
            kind = "journal" if s.kind == logs_pb2.LogSource.JOURNAL else f"{s.size} bytes"
            name = TerminalFilter(ascii_only=not _utf8_terminal()).feed(s.name.encode()).decode()
            print(f"{name}\t{kind}")  # a name cannot retitle the terminal or forge a line
        return 0
    if opts.action == "bundle":
        progress = Progress(0, label="bundle")
        with open(opts.output, "wb") as bundle_file:  # noqa: ASYNC230 - a CLI with nothing else on its loop
            async for chunk in client.logs_stream(None):
                bundle_file.write(chunk.data)
                progress.update(len(chunk.data))
        progress.close()
        print(f"wrote {opts.output}")
        return 0
    offset, overlap = 0, b""
    if opts.resume:
        if not opts.output:
            raise InvalidArgument("resuming needs the partial file", field="--output")
        offset = opts.output.stat().st_size if opts.output.exists() else 0
        # The last bytes of the partial file are asked for again and must come back the same:
        # otherwise the log was rotated or rewritten since, and appending would splice two files.
        if offset:
            with open(opts.output, "rb") as partial:  # noqa: ASYNC230 - a CLI with nothing else on its loop
                partial.seek(max(0, offset - RESUME_OVERLAP))
                overlap = partial.read()
            offset -= len(overlap)
    since = None
    if opts.since:
        try:
            since = dt.datetime.fromisoformat(opts.since)
            if not since.tzinfo:
                since = since.astimezone()
            since.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            raise InvalidArgument(
                f"not an ISO 8601 time from year 1 to 9999: {opts.since!r}", field="--since"
            ) from None
    if not 0 <= opts.lines <= 1_000_000:
        raise InvalidArgument("must be 0..1000000", field="--lines")
    kinds = {
        "none": logs_pb2.DownloadLogRequest.COMPRESSION_UNSPECIFIED,
        "gzip": logs_pb2.DownloadLogRequest.GZIP,
        "zstd": logs_pb2.DownloadLogRequest.ZSTD,
    }
    request = logs_pb2.DownloadLogRequest(
        name=opts.name, offset=offset, compression=kinds[opts.compression], follow=opts.follow, lines=opts.lines
    )
    if since is not None:
        try:
            request.since.FromDatetime(since)
        except (ValueError, OverflowError):
            raise InvalidArgument(f"not a time the satellite can read: {opts.since!r}", field="--since") from None
    size = next((s.size for s in await client.logs_list() if s.name == opts.name), 0)
    # A bar only for a download with a known end, and never onto the terminal the text goes to.
    to_terminal = not opts.output and sys.stdout.isatty()
    progress = Progress(0 if opts.follow or to_terminal else size, label=opts.name, start=offset)
    progress.enabled = progress.enabled and bool(progress.total)
    unpack = decompressor(opts.compression if opts.compression != "none" else "")
    digest = hashlib.sha256()
    out: BinaryIO = (
        open(opts.output, "ab" if opts.resume else "wb")  # noqa: SIM115, ASYNC230 - closed below; a CLI
        if opts.output
        else sys.stdout.buffer
    )
    expected = ""
    shown = TerminalFilter(ascii_only=not _utf8_terminal())

    def take(packed: bytes) -> None:
        nonlocal overlap
        data = unpack.decompress(packed)
        digest.update(data)
        if overlap:  # resuming: the repeated bytes are checked, not written again
            seen, data = data[: len(overlap)], data[len(overlap) :]
            if not overlap.startswith(seen):
                raise Aborted(
                    f"{opts.name} changed since {opts.output} was written (rotated or rewritten): "
                    "get it again without --resume"
                )
            overlap = overlap[len(seen) :]
        # a log may hold escape sequences: a terminal gets them shown, a file or pipe the bytes
        out.write(shown.feed(data) if to_terminal else data)
        if opts.follow:
            out.flush()
        progress.update(len(data))

    # Unpacking, hashing, writing and the bar run on one thread of their own, in order, at most
    # 4 chunks behind: the event loop only receives (issue 21: they took half the time on it).
    from concurrent.futures import ThreadPoolExecutor

    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="satctl-write")
    pending: list[asyncio.Future[None]] = []
    loop = asyncio.get_running_loop()
    try:
        async for chunk in client.logs_stream(request):
            pending.append(loop.run_in_executor(writer, take, chunk.data))
            if len(pending) >= 4:
                await pending.pop(0)
            expected = chunk.sha256 or expected
        for future in pending:
            await future
    finally:
        writer.shutdown(wait=True)  # what was received is written before the file closes
        # after a failed write (a full disk) the chunks queued behind it failed too: collected
        # here, so the one error already on its way is the only thing said
        await asyncio.gather(*pending, return_exceptions=True)
        progress.close()
        if opts.output:
            out.close()
        elif to_terminal:
            out.write(shown.flush())
    if expected and expected != digest.hexdigest():
        print("satctl: error: the download does not match the satellite's sha256; try again", file=sys.stderr)
        return 1
    return 0


def _package(opts: argparse.Namespace) -> int:
    from satbridge.client import package

    if opts.action == "keygen":
        made, pub = package.keygen(opts.output)
        print(f"wrote {made} (keep it secret) and {pub} (install it in /etc/satbridge/keys/ on satellites)")
        return 0
    from satbridge.system.files import read_regular

    try:
        key = read_regular(opts.key, limit=64 << 10, field="--key")  # a PEM key is well under 1 KiB
    except FileNotFoundError:
        raise InvalidArgument(f"no such file {opts.key}", field="--key") from None
    manifest = package.manifest_for(opts.dir)
    suffix = {"gzip": ".tar.gz", "zstd": ".tar.zst", "none": ".tar"}[opts.compression]
    out = opts.output or Path(f"{manifest.name}-{manifest.version}{suffix}")
    package.build(opts.dir, key, out, compression="" if opts.compression == "none" else opts.compression)
    print(f"built {out}: {manifest.name} {manifest.version}, {len(manifest.files)} files, signed")
    return 0


async def _update(client: SatelliteClient, path: Path, *, allow_downgrade: bool, health_gate: int) -> int:
    from satbridge.api.v1 import update_pb2
    from satbridge.client.update import Updater, describe

    if not path.is_file():  # noqa: ASYNC240 - one stat on a CLI
        raise InvalidArgument(f"no package file {path}", field="PKG")
    updater = Updater(client.channel, timeout=max(client.timeout, 60))
    _, version, _, _ = await asyncio.to_thread(describe, path)
    if (await updater.versions()).running == version:
        print(f"{version} is already running; nothing to do")
        return 0
    upload_id = await updater.upload(path)

    def show(event: update_pb2.InstallEvent) -> None:
        phase = update_pb2.InstallEvent.Phase.Name(event.phase)
        print(f"{phase:<13} {event.message}")

    final = await updater.install(upload_id, allow_downgrade=allow_downgrade, health_gate=health_gate, on_event=show)
    if final.phase == update_pb2.InstallEvent.ROLLED_BACK:
        print(f"satctl: error: rolled back: {final.reason}", file=sys.stderr)
        return EXIT_CODES[Kind.ABORTED]
    return 0


async def _sync(client: SatelliteClient, path: Path) -> int:
    from satbridge.client.update import Updater, describe

    _, version, _, _ = await asyncio.to_thread(describe, path)
    running = (await Updater(client.channel).versions()).running
    if running == version:
        print(f"up to date: {version} is running")
        return 0
    print(f"running {running or 'nothing'}, package {version}: updating")
    return await _update(client, path, allow_downgrade=True, health_gate=0)


def main(argv: Sequence[str] | None = None) -> int:
    from satbridge.client.terminal import run

    def body() -> int:
        opts = _parser().parse_args(argv)
        return asyncio.run(_run(opts))

    return run("satctl", body)
