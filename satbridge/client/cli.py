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
from satbridge.client.inventory import Inventory, Satellite
from satbridge.client.session import (
    DEFAULT_PAIRING_PORT,
    DEFAULT_PORT,
    SatelliteClient,
    check_generation,
    connect,
    pair,
)
from satbridge.errors import EXIT_CODES, InvalidArgument, Kind, SatbridgeError

EXIT_WARNING = 10
"""--strict: the call worked, but a snapshot revert or a clone was seen."""


def _default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "satctl"


def _pair_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("host")
    p.add_argument("code", help="the pairing code the satellite's console shows")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="management port (default 50051)")
    p.add_argument("--pairing-port", type=int, default=DEFAULT_PAIRING_PORT, help="pairing port (default 50052)")
    p.add_argument("--name", help="inventory name for the satellite (default: its hostname)")
    p.add_argument(
        "--as",
        dest="server_name",
        default=socket.gethostname()[:64] or "satctl",
        help="this server's name, as the satellite will show it (default: this hostname)",
    )


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
    _pair_arguments(pr)
    st = sub.add_parser("status", help="the satellite's status")
    st.add_argument("--json", action="store_true")
    st.add_argument("--strict", action="store_true", help=f"exit {EXIT_WARNING} on a snapshot revert or a clone")
    sub.add_parser("unpair", help="disconnect this server from the satellite (it stops XCC)")
    xc = sub.add_parser("xcc", help="start, stop, restart XCC or show its state")
    xc.add_argument("action", choices=["start", "stop", "restart", "status"])
    xc.add_argument("--wait", type=float, default=0, help="seconds the satellite waits for systemd (default 90)")
    xc.add_argument("--json", action="store_true")
    sub.add_parser("list", help="the paired satellites")
    fwp = sub.add_parser("firewall", help="the satellite's firewall rules for XCC")
    fws = fwp.add_subparsers(dest="action", required=True, metavar="ACTION")
    fws.add_parser("get", help="the rules in force").add_argument("--json", action="store_true")
    fset = fws.add_parser("set", help="apply a rule set from a JSON file (see the README)")
    fset.add_argument("file", type=Path)
    fset.add_argument(
        "--confirm-timeout",
        type=int,
        default=30,
        help="seconds before the satellite rolls the change back unless confirmed (default 30)",
    )
    fset.add_argument(
        "--no-confirm", action="store_true", help="do not confirm: the change rolls back after the timeout (a dry run)"
    )
    fconf = fws.add_parser("confirm", help="confirm a pending change")
    fconf.add_argument("revision", type=int, nargs="?", help="default: the one pending")
    fws.add_parser("reset", help="back to the factory rule set")
    lg = sub.add_parser("logs", help="list and download the satellite's logs, or a support bundle")
    lgs = lg.add_subparsers(dest="action", required=True, metavar="ACTION")
    lgs.add_parser("list", help="the logs there are").add_argument("--json", action="store_true")
    get = lgs.add_parser("get", help="download one log")
    get.add_argument("name")
    get.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    get.add_argument("--follow", "-f", action="store_true", help="keep printing new lines, like tail -F")
    get.add_argument("--since", help="journal logs: from this time on (ISO 8601, e.g. 2026-11-28T10:00)")
    get.add_argument("--lines", "-n", type=int, default=0, help="journal logs: only the last N lines")
    get.add_argument("--resume", action="store_true", help="continue a partial -o FILE from its end")
    get.add_argument(
        "--compress",
        choices=["none", "gzip", "zstd"],
        default="none",
        help="compress on the wire (the file written is plain)",
    )
    up = sub.add_parser("update", help="transfer and install an XCC package (resumes, can be re-run)")
    up.add_argument("package", type=Path)
    up.add_argument("--allow-downgrade", action="store_true")
    up.add_argument("--health-gate", type=int, default=0, metavar="S", help="seconds XCC must stay healthy")
    sy = sub.add_parser("sync", help="the central server's start check: update only if the version differs")
    sy.add_argument("package", type=Path)
    cm = sub.add_parser("commission", help="pair, install XCC for the first time and start it")
    _pair_arguments(cm)
    cm.add_argument("--xcc", type=Path, required=True, metavar="PKG")
    pk = sub.add_parser("package", help="the vendor's side: keys and signed packages")
    pks = pk.add_subparsers(dest="action", required=True, metavar="ACTION")
    pks.add_parser("keygen", help="make an Ed25519 signing key").add_argument("--out", type=Path, default=Path("."))
    pb = pks.add_parser("build", help="build a signed package from DIR (package.json + payload/)")
    pb.add_argument("dir", type=Path)
    pb.add_argument("--key", type=Path, required=True)
    pb.add_argument("-o", "--output", type=Path)
    pb.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip")
    bundle = lgs.add_parser("bundle", help="a tar.gz of all logs, status and redacted config")
    bundle.add_argument("-o", "--output", type=Path, default=Path("satellite-bundle.tar.gz"))
    return p


def _port(value: int, field: str) -> int:
    if not 1 <= value <= 65535:
        raise InvalidArgument(f"must be 1..65535, got {value}", field=field)
    return value


async def _run(opts: argparse.Namespace) -> int:
    if opts.command == "package":
        return _package(opts)
    inv = Inventory.load(opts.config_dir)
    if opts.command in ("pair", "commission"):
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
        if opts.command == "pair":
            return 0
        async with connect(sat, inv, timeout=opts.timeout) as client:
            return await _update(client, opts.xcc, allow_downgrade=False, health_gate=0)
    if opts.command == "list":
        for sat in inv.satellites.values():
            mark = "*" if sat.name == inv.default else " "
            print(f"{mark} {sat.name}\t{sat.host}:{sat.port}\t{sat.fingerprint[:16]}…\tgeneration {sat.max_generation}")
        return 0
    if opts.command == "firewall" and opts.action == "set":
        opts.rules = _rules_from_file(opts.file)  # a bad file fails here: nothing is sent
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
        if not 0 <= opts.wait <= 600:
            raise InvalidArgument(f"must be 0..600 seconds, got {opts.wait:g}", field="--wait")
        state = await client.xcc_control(opts.action, wait=opts.wait)
    if opts.json:
        from google.protobuf import json_format

        print(json.dumps(json_format.MessageToDict(state, preserving_proto_field_name=True), indent=2))
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
    from google.protobuf import json_format

    if as_json:
        print(json.dumps(json_format.MessageToDict(state, preserving_proto_field_name=True), indent=2))
        return
    pending = f", revision {state.pending_revision} pending (rolls back in {state.rollback_in_seconds} s)"
    print(
        f"revision {state.revision}{pending if state.pending_revision else ''}; "
        f"{len(state.rules.rules)} rules; default {firewall_pb2.Action.Name(state.rules.default_action)}"
    )
    for w in state.warnings:
        print(f"warning: {w}")


async def _firewall(client: SatelliteClient, sat: Satellite, inv: Inventory, opts: argparse.Namespace) -> int:
    if opts.action == "get":
        _print_firewall(await client.firewall_call("Get", firewall_pb2.GetFirewallRequest()), opts.json)
        return 0
    if opts.action == "reset":
        _print_firewall(await client.firewall_call("Reset", firewall_pb2.ResetFirewallRequest()), False)
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
    if not 0 < opts.confirm_timeout <= 3600:
        raise InvalidArgument("must be 1..3600 seconds", field="--confirm-timeout")
    request = firewall_pb2.SetFirewallRequest(rules=opts.rules, confirm_timeout_seconds=opts.confirm_timeout)
    state = await client.firewall_call("Set", request)
    if not state.pending_revision:  # the set in force already: nothing to confirm
        print(f"no change: these rules are revision {state.revision}, already in force")
        for w in state.warnings:
            print(f"warning: {w}")
        return 0
    print(f"applied as revision {state.pending_revision}; rolls back in {state.rollback_in_seconds} s unless confirmed")
    if opts.no_confirm:
        return 0
    # Confirm over a NEW connection: proof that the new rules still let this server in.
    async with connect(sat, inv, timeout=opts.timeout) as fresh:
        done = await fresh.firewall_call(
            "Confirm", firewall_pb2.ConfirmFirewallRequest(revision=state.pending_revision)
        )
    print(f"confirmed over a new connection: revision {done.revision} is in force")
    return 0


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
            print(
                json.dumps(
                    [{"name": s.name, "size": s.size, "kind": logs_pb2.LogSource.Kind.Name(s.kind)} for s in sources],
                    indent=2,
                )
            )
        for s in [] if opts.json else sources:
            kind = "journal" if s.kind == logs_pb2.LogSource.JOURNAL else f"{s.size} bytes"
            print(f"{s.name}\t{kind}")
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
    offset = 0
    if opts.resume:
        if not opts.output:
            raise InvalidArgument("resuming needs the partial file", field="--output")
        offset = opts.output.stat().st_size if opts.output.exists() else 0
    since = None
    if opts.since:
        try:
            since = dt.datetime.fromisoformat(opts.since)
        except ValueError:
            raise InvalidArgument(f"not an ISO 8601 time: {opts.since!r}", field="--since") from None
    if opts.lines < 0:
        raise InvalidArgument("must be 0 or more", field="--lines")
    kinds = {
        "none": logs_pb2.DownloadLogRequest.COMPRESSION_UNSPECIFIED,
        "gzip": logs_pb2.DownloadLogRequest.GZIP,
        "zstd": logs_pb2.DownloadLogRequest.ZSTD,
    }
    request = logs_pb2.DownloadLogRequest(
        name=opts.name, offset=offset, compression=kinds[opts.compress], follow=opts.follow, lines=opts.lines
    )
    if since is not None:
        request.since.FromDatetime(since if since.tzinfo else since.astimezone())
    size = next((s.size for s in await client.logs_list() if s.name == opts.name), 0)
    # A bar only for a download with a known end, and never onto the terminal the text goes to.
    to_terminal = not opts.output and sys.stdout.isatty()
    progress = Progress(0 if opts.follow or to_terminal else size, label=opts.name, start=offset)
    progress.enabled = progress.enabled and bool(progress.total)
    unpack = decompressor(opts.compress if opts.compress != "none" else "")
    digest = hashlib.sha256()
    out: BinaryIO = (
        open(opts.output, "ab" if opts.resume else "wb")  # noqa: SIM115, ASYNC230 - closed below; a CLI
        if opts.output
        else sys.stdout.buffer
    )
    expected = ""
    shown = TerminalFilter()

    def take(packed: bytes) -> None:
        data = unpack.decompress(packed)
        digest.update(data)
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
        made, pub = package.keygen(opts.out)
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
    opts = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(opts))
    except SatbridgeError as exc:
        print(f"satctl: error: {exc}", file=sys.stderr)
        return EXIT_CODES[exc.kind]
    except KeyboardInterrupt:
        return 130
