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

from satbridge.client.inventory import Inventory
from satbridge.client.session import DEFAULT_PAIRING_PORT, DEFAULT_PORT, check_generation, connect, pair
from satbridge.errors import EXIT_CODES, SatbridgeError

EXIT_WARNING = 10
"""--strict: the call worked, but a snapshot revert or a clone was seen."""


def _default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "satctl"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="satctl", description="Manage XCC satellites (the central server's side).")
    p.add_argument(
        "--config-dir",
        type=Path,
        default=_default_config_dir(),
        help="where satctl keeps its key and inventory (default ~/.config/satctl)",
    )
    p.add_argument("-s", "--satellite", help="inventory name of the satellite (default: the first paired)")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds per call (default 15)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pr = sub.add_parser("pair", help="pair with a satellite whose pairing window is open")
    pr.add_argument("host")
    pr.add_argument("code", help="the pairing code the satellite's console shows")
    pr.add_argument("--port", type=int, default=DEFAULT_PORT, help="management port (default 50051)")
    pr.add_argument("--pairing-port", type=int, default=DEFAULT_PAIRING_PORT, help="pairing port (default 50052)")
    pr.add_argument("--name", help="inventory name for the satellite (default: its hostname)")
    pr.add_argument(
        "--as",
        dest="server_name",
        default=socket.gethostname()[:64] or "satctl",
        help="this server's name, as the satellite will show it (default: this hostname)",
    )
    st = sub.add_parser("status", help="the satellite's status")
    st.add_argument("--json", action="store_true")
    st.add_argument("--strict", action="store_true", help=f"exit {EXIT_WARNING} on a snapshot revert or a clone")
    sub.add_parser("unpair", help="disconnect this server from the satellite")
    sub.add_parser("list", help="the paired satellites")
    return p


def _port(value: int, field: str) -> int:
    if not 1 <= value <= 65535:
        from satbridge.errors import InvalidArgument

        raise InvalidArgument(f"must be 1..65535, got {value}", field=field)
    return value


async def _run(opts: argparse.Namespace) -> int:
    inv = Inventory.load(opts.config_dir)
    if opts.command == "pair":
        sat = await pair(
            opts.host,
            opts.code,
            inventory=inv,
            server_name=opts.server_name,
            name=opts.name,
            port=_port(opts.port, "--port"),
            pairing_port=_port(opts.pairing_port, "--pairing-port"),
            timeout=opts.timeout,
        )
        print(f"paired with {sat.name} ({sat.host}); identity {sat.fingerprint}")
        return 0
    if opts.command == "list":
        for sat in inv.satellites.values():
            mark = "*" if sat.name == inv.default else " "
            print(f"{mark} {sat.name}\t{sat.host}:{sat.port}\t{sat.fingerprint[:16]}…\tgeneration {sat.max_generation}")
        return 0
    sat = inv.get(opts.satellite)
    async with connect(sat, inv, timeout=opts.timeout) as client:
        if opts.command == "unpair":
            await client.unpair()
            del inv.satellites[sat.name]
            if inv.default == sat.name:
                inv.default = next(iter(inv.satellites), "")
            inv.save()
            print(f"unpaired from {sat.name}")
            return 0
        status = await client.status()
    found = check_generation(inv, sat, status.instance_id, status.state_generation)
    inv.save()
    for warning in found.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    if opts.json:
        from google.protobuf import json_format

        data = json_format.MessageToDict(status, preserving_proto_field_name=True)
        data["satctl_warnings"] = found.warnings
        print(json.dumps(data, indent=2))
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


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(opts))
    except SatbridgeError as exc:
        print(f"satctl: error: {exc}", file=sys.stderr)
        return EXIT_CODES[exc.kind]
    except KeyboardInterrupt:
        return 130
