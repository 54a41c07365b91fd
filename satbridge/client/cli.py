"""`satctl`: the reference management client, playing the central server's part."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
from collections.abc import Coroutine, Sequence
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
    target,
)
from satbridge.errors import EXIT_CODES, Aborted, InvalidArgument, Kind, SatbridgeError

EXIT_WARNING = 10
"""--strict: the call worked, but a snapshot revert or a clone was seen."""


def _default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "satctl"


def _pair_arguments(p: argparse.ArgumentParser) -> None:
    from satbridge.client.terminal import uint, utf8

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
    p.add_argument("--name", type=utf8("--name"), help="inventory name for the satellite (default: its hostname)")
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
    from satbridge.client.terminal import MAX_SECONDS, seconds

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
        type=seconds("--timeout"),
        default=default(None),
        metavar="S",
        help=f"seconds a call may take, more than 0 and at most {MAX_SECONDS} (default {DEFAULT_TIMEOUT:g}); for xcc "
        "start/stop/restart, how long the satellite waits for systemd (default 90)",
    )
    p.add_argument("--version", action="version", version=f"satctl {__version__}")


def _parser() -> argparse.ArgumentParser:
    from satbridge.client.terminal import MAX_SECONDS, Parser, globals_everywhere, seconds, uint, utf8

    p = Parser(prog="satctl", description="Manage XCC satellites (the central server's side).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pr = sub.add_parser("pair", help="pair with a satellite whose pairing window is open")
    _pair_arguments(pr)
    pr.add_argument("--json", action="store_true")
    st = sub.add_parser("status", help="the satellite's status")
    st.add_argument("--json", action="store_true")
    st.add_argument("--strict", action="store_true", help=f"exit {EXIT_WARNING} on a snapshot revert or a clone")
    sub.add_parser("unpair", help="disconnect this server from the satellite (it stops XCC)").add_argument(
        "--json", action="store_true"
    )
    sub.add_parser("version", help="the satellite's bridge and XCC versions (satctl's own: --version)").add_argument(
        "--json", action="store_true"
    )
    xc = sub.add_parser("xcc", help="start, stop, restart XCC or show its state")
    xc.add_argument("action", choices=["start", "stop", "restart", "status"])
    # the old spelling of --timeout, kept working
    xc.add_argument("--wait", dest="timeout", type=seconds("--wait"), default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    xc.add_argument("--json", action="store_true")
    sub.add_parser("list", help="the paired satellites").add_argument("--json", action="store_true")
    fwp = sub.add_parser("firewall", help="the satellite's firewall rules for XCC")
    fws = fwp.add_subparsers(dest="action", required=True, metavar="ACTION")
    fws.add_parser("show", aliases=["get"], help="the rules in force (get: the same)").add_argument(
        "--json", action="store_true"
    )
    fset = fws.add_parser("set", help="apply a rule set from a JSON file (see the README)")
    fset.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="a rule set, or what `firewall show --json` printed (either tool); -: standard input",
    )
    # --no-confirm excludes both others (checked in _run: argparse groups cannot overlap);
    # --leave-pending with --confirm-timeout is how long the change waits for its confirm
    fset.add_argument(
        "--confirm-timeout",
        type=seconds("--confirm-timeout"),
        default=None,
        metavar="S",
        help=f"seconds (more than 0, at most {MAX_SECONDS}, like 30 or 2.5; whole seconds on the satellite, rounded "
        "up) before the satellite rolls the change back unless confirmed (default 30); satctl confirms over a new "
        "connection at once, unless --leave-pending",
    )
    fset.add_argument(
        "--no-confirm",
        action="store_true",
        help="apply for good at once: no rollback window, nothing to confirm (as `satbridge network --no-confirm`)",
    )
    fset.add_argument(
        "--leave-pending",
        action="store_true",
        help="apply, but do not confirm: the satellite rolls the change back when the --confirm-timeout "
        "(default 30 s) runs out, unless `satctl firewall confirm` runs before",
    )
    fset.add_argument("--json", action="store_true")
    fconf = fws.add_parser("confirm", help="confirm a pending change")
    fconf.add_argument(
        "revision",
        type=uint("REVISION", lo=1, hi=2**63 - 1),
        nargs="?",
        metavar="REVISION",
        help="default: the one pending",
    )
    fconf.add_argument("--json", action="store_true")
    fws.add_parser("reset", help="back to the factory rule set").add_argument("--json", action="store_true")
    lg = sub.add_parser("logs", help="list and download the satellite's logs, or a support bundle")
    lgs = lg.add_subparsers(dest="action", required=True, metavar="ACTION")
    lgs.add_parser("list", help="the logs there are").add_argument("--json", action="store_true")
    get = lgs.add_parser("get", help="download one log")
    get.add_argument("name", type=utf8("NAME"), metavar="NAME")
    get.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="file to write; - or none: standard output; a FIFO: waits up to --timeout for its reader",
    )
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
        type=seconds("--health-gate", zero=True),
        default=0,
        metavar="S",
        help=f"seconds XCC must stay healthy, at most {MAX_SECONDS} (default 0: the satellite's setting)",
    )
    up.add_argument("--json", action="store_true", help="one object at the end instead of the phases as they come")
    sy = sub.add_parser("sync", help="the central server's start check: update only if the version differs")
    sy.add_argument("package", type=Path, metavar="PKG")
    sy.add_argument("--json", action="store_true")
    cm = sub.add_parser("commission", help="pair, install XCC for the first time and start it")
    _pair_arguments(cm)
    cm.add_argument("--xcc", type=Path, required=True, metavar="PKG")
    cm.add_argument("--json", action="store_true")
    pk = sub.add_parser("package", help="the vendor's side: keys and signed packages")
    pks = pk.add_subparsers(dest="action", required=True, metavar="ACTION")
    kg = pks.add_parser("keygen", help="make an Ed25519 signing key")
    kg.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR", help="directory (default .)")
    kg.add_argument("--out", dest="output", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    pb = pks.add_parser("build", help="build a signed package from DIR (package.json + payload/)")
    pb.add_argument("dir", type=Path, metavar="DIR")
    pb.add_argument("--key", type=Path, required=True)
    pb.add_argument("-o", "--output", type=Path, metavar="FILE", help="a file (a package is never streamed)")
    pb.add_argument("--compression", choices=["gzip", "zstd", "none"], default="gzip")
    bundle = lgs.add_parser("bundle", help="a tar.gz of all logs, status and redacted config")
    bundle.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("satellite-bundle.tar.gz"),
        metavar="FILE",
        help="default satellite-bundle.tar.gz; -: standard output; a FIFO: waits up to --timeout for its reader",
    )
    watch.add_parser(sub)
    globals_everywhere(p, _globals)
    return p


async def _run(opts: argparse.Namespace) -> int:
    from satbridge.client import schema
    from satbridge.client.terminal import warn

    opts.call_timeout = opts.timeout or DEFAULT_TIMEOUT
    as_json = getattr(opts, "json", False)
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
        if opts.no_confirm and (opts.leave_pending or opts.confirm_timeout is not None):
            other = "--leave-pending" if opts.leave_pending else "--confirm-timeout"
            raise InvalidArgument(
                f"not with {other}: --no-confirm applies for good, with no window", field="--no-confirm"
            )
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
        for twin in inv.satellites.values():
            if twin.name != sat.name and twin.fingerprint == sat.fingerprint:
                warn(
                    "satctl",
                    f"{twin.name} ({target(twin.host, twin.port)}) has this identity too: if it is this satellite "
                    "under another address, the satellite now refuses that entry (it trusts its newest pairing "
                    f"only): `satctl unpair -s {twin.name}` removes it",
                )
        if opts.command == "pair":
            if as_json:
                _print_json({"schema_version": schema.SCHEMA_VERSION, **schema.satellite(sat, inv.default)})
            else:
                print(f"paired with {sat.name} ({sat.host}); identity {sat.fingerprint}")
            return 0
        if not as_json:
            print(f"paired with {sat.name} ({sat.host}); identity {sat.fingerprint}")
        async with connect(sat, inv, timeout=opts.call_timeout) as client:
            code, result = await _update(client, opts.xcc, allow_downgrade=False, health_gate=0, silent=as_json)
        if as_json:
            _print_json(
                {
                    "schema_version": schema.SCHEMA_VERSION,
                    "satellite": schema.satellite(sat, inv.default),
                    "update": result,
                }
            )
        return _install_outcome(result, code)
    if opts.command == "list":
        return _list(inv, as_json)
    if opts.command == "watch":
        inv.get(opts.satellite)  # none paired yet: said as such, not as a name '' unknown
        watch_code = [0]

        async def watching() -> None:
            watch_code[0] = await watch.run(inv, opts)

        # `satctl watch | head -1`: exit 141 when the reader goes, not at the next event (hours
        # on a quiet satellite, holding one of the bridge's stream slots meanwhile).
        await _until_reader_gone(watching())
        return watch_code[0]
    sat = inv.get(opts.satellite)
    async with connect(sat, inv, timeout=opts.call_timeout) as client:
        if opts.command == "unpair":
            from satbridge.errors import Unauthenticated

            try:
                unpaired_at: float | None = (await client.unpair()).unpaired_at.seconds or None
            except Unauthenticated:
                # The satellite refuses this entry's certificate already (disconnected on its
                # console, paired again since, perhaps under another address): what unpair asks
                # for is done there, so the entry goes too, rather than stay stuck in the inventory.
                warn("satctl", f"{sat.name} no longer trusted this server's certificate; removed it from the inventory")
                unpaired_at = None
            del inv.satellites[sat.name]
            if inv.default == sat.name:
                inv.default = next(iter(inv.satellites), "")
            inv.save()
            if as_json:
                _print_json(
                    {
                        "schema_version": schema.SCHEMA_VERSION,
                        "name": sat.name,
                        "host": sat.host,
                        "unpaired_at": schema.when(unpaired_at),
                        "default": inv.default,
                    }
                )
            else:
                print(f"unpaired from {sat.name}")
            return 0
        if opts.command == "xcc":
            return await _xcc(client, opts)
        if opts.command == "firewall":
            return await _firewall(client, sat, inv, opts)
        if opts.command == "logs":
            return await _logs(client, opts)
        if opts.command == "update":
            code, result = await _update(
                client, opts.package, allow_downgrade=opts.allow_downgrade, health_gate=opts.health_gate, silent=as_json
            )
            if as_json:
                _print_json({"schema_version": schema.SCHEMA_VERSION, **result})
            return _install_outcome(result, code)
        if opts.command == "sync":
            code, result = await _sync(client, opts.package, silent=as_json)
            if as_json:
                _print_json({"schema_version": schema.SCHEMA_VERSION, **result})
            return _install_outcome(result, code)
        status = await client.status()
    if opts.command == "version":
        xcc_version = status.xcc.version if status.xcc.installed else ""
        if as_json:
            _print_json(schema.version(status.bridge_version, xcc_version))
        else:
            print(f"satbridge {status.bridge_version}")
            print(f"xcc {xcc_version or 'not installed'}")
        return 0
    found = check_generation(inv, sat, status.instance_id, status.state_generation)
    inv.save()
    for warning in found.warnings:
        warn("satctl", warning)
    if as_json:
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


def _install_outcome(result: dict[str, object], code: int) -> int:
    """An install that rolled back is exit 8 with one line on stderr (after the JSON, if any)."""
    if result["outcome"] == "rolled_back":
        raise Aborted(f"rolled back: {result['reason']}")
    return code


def _print_json(document: object) -> None:
    from satbridge.client.schema import dumps

    print(dumps(document))


def _list(inv: Inventory, as_json: bool) -> int:
    from satbridge.client.schema import SCHEMA_VERSION, satellite

    if as_json:
        _print_json(
            {
                "schema_version": SCHEMA_VERSION,
                "default": inv.default,
                "satellites": [satellite(sat, inv.default) for sat in inv.satellites.values()],
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
        from satbridge.client.terminal import whole_seconds

        # 0: the satellite's default (90 s); 0.5 is 1 s, never 0 (the default)
        state = await client.xcc_control(opts.action, wait=whole_seconds(opts.timeout or 0))
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
    from satbridge.client.terminal import to_stdout
    from satbridge.core.firewall import MAX_RULE_FILE, from_json, loads
    from satbridge.protocol import rule_set_msg
    from satbridge.system.files import read_regular

    if to_stdout(path):  # `-`: standard input, so `satbridge firewall show --json | satctl firewall set -`
        try:
            raw = sys.stdin.buffer.read(MAX_RULE_FILE + 1)
        except (OSError, ValueError, AttributeError) as exc:
            raise InvalidArgument(f"cannot read standard input: {exc}", field="FILE") from None
        if len(raw) > MAX_RULE_FILE:
            raise InvalidArgument(f"standard input holds more than {MAX_RULE_FILE} bytes", field="FILE")
    else:
        try:
            raw = read_regular(path, limit=MAX_RULE_FILE, field="FILE")
        except FileNotFoundError:
            raise InvalidArgument(f"no such file {path}", field="FILE") from None
    from satbridge.client.schema import rules_document

    # Errors name the field, e.g. rules[0].ports. What `firewall show --json` printed is a rule
    # set too: its state keys (revision, warnings, ...) are dropped.
    return rule_set_msg(from_json(rules_document(loads(raw, str(path), field="FILE"))))


def _print_firewall(state: firewall_pb2.FirewallState, as_json: bool) -> None:
    from satbridge.client import schema

    if as_json:
        _print_json(schema.firewall(state))
        return
    pending = f", revision {state.pending_revision} pending (rolls back in {state.rollback_in_seconds} s)"
    default = schema.enum_word(firewall_pb2.Action.DESCRIPTOR, state.rules.default_action)
    print(
        f"revision {state.revision}{pending if state.pending_revision else ''}; "
        f"{len(state.rules.rules)} rules; default {default}"
    )
    for w in state.warnings:
        print(f"warning: {w}")


async def _firewall(client: SatelliteClient, sat: Satellite, inv: Inventory, opts: argparse.Namespace) -> int:
    from satbridge.client.terminal import whole_seconds

    as_json: bool = opts.json
    say = _quiet_print if as_json else print  # with --json, the state is the one thing printed
    if opts.action == "show":
        _print_firewall(await client.firewall_call("Get", firewall_pb2.GetFirewallRequest()), as_json)
        return 0
    if opts.action == "reset":
        _print_firewall(await client.firewall_call("Reset", firewall_pb2.ResetFirewallRequest()), as_json)
        return 0
    if opts.action == "confirm":
        from satbridge.errors import FailedPrecondition

        revision = opts.revision
        if revision is None:
            revision = (await client.firewall_call("Get", firewall_pb2.GetFirewallRequest())).pending_revision
            if not revision:
                raise FailedPrecondition("nothing is pending on the satellite: there is no change to confirm")
        _print_firewall(
            await client.firewall_call("Confirm", firewall_pb2.ConfirmFirewallRequest(revision=revision)), as_json
        )
        return 0
    if opts.no_confirm:  # for good: the satellite keeps no rollback window
        before = await client.firewall_call("Get", firewall_pb2.GetFirewallRequest())
        request = firewall_pb2.SetFirewallRequest(rules=opts.rules, confirm_timeout_seconds=0)
        state = await client.firewall_call("Set", request)
        if state.revision == before.revision:
            say(f"no change: these rules are revision {state.revision}, already in force")
        else:
            say(f"applied for good as revision {state.revision} (no rollback window)")
        _firewall_end(state, as_json)
        return 0
    window = whole_seconds(opts.confirm_timeout if opts.confirm_timeout is not None else 30)
    request = firewall_pb2.SetFirewallRequest(rules=opts.rules, confirm_timeout_seconds=window)
    state = await client.firewall_call("Set", request)
    if not state.pending_revision:  # the set in force already: nothing to confirm
        say(f"no change: these rules are revision {state.revision}, already in force")
        _firewall_end(state, as_json)
        return 0
    say(f"applied as revision {state.pending_revision}; rolls back in {state.rollback_in_seconds} s unless confirmed")
    if opts.leave_pending:
        _firewall_end(state, as_json)
        return 0
    # Confirm over a NEW connection: proof that the new rules still let this server in.
    async with connect(sat, inv, timeout=opts.call_timeout) as fresh:
        done = await fresh.firewall_call(
            "Confirm", firewall_pb2.ConfirmFirewallRequest(revision=state.pending_revision)
        )
    say(f"confirmed over a new connection: revision {done.revision} is in force")
    _firewall_end(done, as_json)
    return 0


def _quiet_print(*_: object) -> None:
    """print's stand-in when --json owns standard output."""


def _firewall_end(state: firewall_pb2.FirewallState, as_json: bool) -> None:
    """After a set: the state as JSON, or its warnings as lines."""
    if as_json:
        from satbridge.client import schema

        _print_json(schema.firewall(state))
        return
    for w in state.warnings:
        print(f"warning: {w}")


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
    from satbridge.client.terminal import open_output, to_stdout

    if opts.action == "bundle":
        progress = Progress(0, label="bundle")
        # Opened once the satellite sends the first bytes: a call that fails (unreachable, an
        # identity that changed) leaves an existing file as it was.
        bundle_file: BinaryIO | None = None
        try:
            async for chunk in client.logs_stream(None):
                if bundle_file is None:
                    bundle_file = await asyncio.to_thread(open_output, opts.output, wait=opts.call_timeout)
                _write(bundle_file, chunk.data, opts.output)
                progress.update(len(chunk.data))
            if bundle_file is None:
                bundle_file = await asyncio.to_thread(open_output, opts.output, wait=opts.call_timeout)
        finally:
            progress.close()
            if bundle_file is not None and not to_stdout(opts.output):
                _write(bundle_file, b"", opts.output, close=True)
        if not to_stdout(opts.output):
            print(f"wrote {opts.output}")
        return 0
    if opts.output is not None and to_stdout(opts.output):
        opts.output = None  # `-o -`: standard output, as with no -o
    offset, overlap = 0, b""
    if opts.resume:
        if not opts.output:
            raise InvalidArgument("resuming needs the partial file", field="--output")
        import stat

        if opts.output.exists() and not stat.S_ISREG(opts.output.stat().st_mode):
            raise InvalidArgument(f"{opts.output} is not a regular file: nothing to resume", field="--output")
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
    # -o FILE is opened when the first chunk comes: a request the satellite refuses (a name it
    # does not know, an offset past the end) or a call that fails leaves an existing file as it was.
    out: BinaryIO | None = None if opts.output else sys.stdout.buffer

    def opened() -> BinaryIO:
        nonlocal out
        if out is None:
            out = open_output(opts.output, append=opts.resume, wait=opts.call_timeout)
        return out

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
        sink = opened()
        _write(sink, shown.feed(data) if to_terminal else data, opts.output, flush=opts.follow)
        progress.update(len(data))

    # Unpacking, hashing, writing and the bar run on one thread of their own, in order, at most
    # 4 chunks behind: the event loop only receives (issue 21: they took half the time on it).
    from concurrent.futures import ThreadPoolExecutor

    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="satctl-write")
    pending: list[asyncio.Future[None]] = []
    loop = asyncio.get_running_loop()

    async def receive() -> None:
        nonlocal expected
        async for chunk in client.logs_stream(request):
            pending.append(loop.run_in_executor(writer, take, chunk.data))
            if len(pending) >= 4:
                await pending.pop(0)
            expected = chunk.sha256 or expected

    try:
        if opts.follow and not opts.output:
            await _until_reader_gone(receive())
        else:
            await receive()
        for future in pending:
            await future
        await loop.run_in_executor(writer, opened)  # an empty log is an empty file
    finally:
        writer.shutdown(wait=True)  # what was received is written before the file closes
        # after a failed write (a full disk) the chunks queued behind it failed too: collected
        # here, so the one error already on its way is the only thing said
        await asyncio.gather(*pending, return_exceptions=True)
        progress.close()
        if opts.output:
            if out is not None:
                _write(out, b"", opts.output, close=True)
        elif to_terminal:
            sys.stdout.buffer.write(shown.flush())
    if expected and expected != digest.hexdigest():
        raise Aborted("the download does not match the satellite's sha256; try again")
    return 0


def _write(out: BinaryIO, data: bytes, path: Path | None, *, flush: bool = False, close: bool = False) -> None:
    """Write to an -o FILE (or standard output when `path` is None or -): a failure names the
    file (`satctl: error: FILE: No space left on device`, exit 7), as an open that failed does;
    `close`: then close it (where a buffered write fails)."""
    try:
        out.write(data)
        if flush:
            out.flush()
        if close:
            out.close()
    except OSError as exc:
        from satbridge.client.terminal import to_stdout

        if path is None or to_stdout(path) or exc.errno == errno.EPIPE or exc.filename is not None:
            raise
        raise OSError(exc.errno, exc.strerror, os.fspath(path)) from None


READER_POLL = 0.5
"""Seconds between two looks at whether standard output's reader went away (`-f | head -1`)."""


async def _until_reader_gone(work: Coroutine[object, object, None]) -> None:
    """Run `work` (a follow, which may wait hours for a line); when standard output is a pipe or
    socket whose reader went away (`satctl logs get NAME -f | head -1`), stop it and raise
    BrokenPipeError (exit 141) at once, as `tail -f` does, rather than at the next line."""
    import select
    import stat

    task = asyncio.ensure_future(work)
    try:
        fd = sys.stdout.fileno()
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError):
        mode = 0
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        await task
        return
    poller = select.poll()
    poller.register(fd, 0)  # no events asked: only POLLERR / POLLHUP, the reader closed its end
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=READER_POLL)
            if not task.done() and poller.poll(0):
                raise BrokenPipeError(errno.EPIPE, "standard output's reader went away")
        await task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _package(opts: argparse.Namespace) -> int:
    from satbridge.client import package

    if str(opts.output) == "-":  # `-o -` is standard output elsewhere: never a file or directory named -
        what = "a key pair is two files in a directory" if opts.action == "keygen" else "a package is a file"
        raise InvalidArgument(f"{what}, never standard output: name one", field="--output")
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


async def _update(
    client: SatelliteClient, path: Path, *, allow_downgrade: bool, health_gate: float, silent: bool = False
) -> tuple[int, dict[str, object]]:
    """Upload and install `path`; returns the exit code and the `update` object (schema.py).
    The phases are printed as they come unless `silent` (--json: the object says them)."""
    from satbridge.api.v1 import update_pb2
    from satbridge.client import schema
    from satbridge.client.terminal import whole_seconds
    from satbridge.client.update import Updater, describe

    if not path.is_file():  # noqa: ASYNC240 - one stat on a CLI
        raise InvalidArgument(f"no package file {path}", field="PKG")
    updater = Updater(client.channel, timeout=max(client.timeout, 60))
    name, version, _, _ = await asyncio.to_thread(describe, path)
    before = (await updater.versions()).running

    def result(
        running: str, outcome: str, reason: str = "", events: list[tuple[str, str]] | None = None
    ) -> dict[str, object]:
        return schema.update_result(
            package=str(path),
            name=name,
            version=version,
            before=before,
            running=running,
            outcome=outcome,
            reason=reason,
            events=events,
        )

    if before == version:
        if not silent:
            print(f"{version} is already running; nothing to do")
        return 0, result(before, "unchanged")
    upload_id = await updater.upload(path, progress=not silent)
    events: list[tuple[str, str]] = []

    def show(event: update_pb2.InstallEvent) -> None:
        phase = schema.enum_word(update_pb2.InstallEvent.Phase.DESCRIPTOR, event.phase).upper() or "UNSPECIFIED"
        events.append((phase.lower(), event.message))
        if not silent:
            print(f"{phase:<13} {event.message}")

    final = await updater.install(
        upload_id, allow_downgrade=allow_downgrade, health_gate=whole_seconds(health_gate), on_event=show
    )
    running = (await updater.versions()).running
    if final.phase == update_pb2.InstallEvent.ROLLED_BACK:
        return EXIT_CODES[Kind.ABORTED], result(running, "rolled_back", final.reason, events)
    return 0, result(running, "installed", events=events)


async def _sync(client: SatelliteClient, path: Path, *, silent: bool = False) -> tuple[int, dict[str, object]]:
    from satbridge.client import schema
    from satbridge.client.update import Updater, describe

    name, version, _, _ = await asyncio.to_thread(describe, path)
    running = (await Updater(client.channel).versions()).running
    if running == version:
        if not silent:
            print(f"up to date: {version} is running")
        return 0, schema.update_result(
            package=str(path), name=name, version=version, before=running, running=running, outcome="unchanged"
        )
    if not silent:
        print(f"running {running or 'nothing'}, package {version}: updating")
    return await _update(client, path, allow_downgrade=True, health_gate=0, silent=silent)


def main(argv: Sequence[str] | None = None) -> int:
    from satbridge.client.terminal import run

    def body() -> int:
        opts = _parser().parse_args(argv)
        return asyncio.run(_run(opts))

    return run("satctl", body)
