"""`satbridge`: the console menu (default on a terminal), `--serve`, and admin subcommands.

Subcommands work in-process through services/, so they work while the bridge service is
down. Heavy imports (grpc, the server) happen only in the mode that needs them.
"""

from __future__ import annotations

# Only what every mode needs: `satbridge version` must start about as fast as Python itself.
import os
import sys
from pathlib import Path

from satbridge import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (2 ms); mypy knows the idiom

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from satbridge.config import Config
    from satbridge.core.network import NetworkState
    from satbridge.core.status import Status
    from satbridge.core.units import XccStatus
    from satbridge.services.disconnect import Disconnected
    from satbridge.services.firewall import FirewallState
    from satbridge.wiring import Bridge


def _globals(p: argparse.ArgumentParser, top: bool) -> None:
    """The options every subcommand accepts too, before or after its name."""
    import argparse

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument(
        "--root",
        type=Path,
        default=default(Path(os.environ.get("SATBRIDGE_ROOT", "/"))),
        help="prefix of every path (default: / or $SATBRIDGE_ROOT)",
    )
    p.add_argument(
        "--config", type=Path, default=default(None), help="config file (default: ROOT/etc/satbridge/satbridge.toml)"
    )
    p.add_argument(
        "--sandbox", action="store_true", default=default(False), help="run without root, systemd or NetworkManager"
    )
    p.add_argument(
        "--serve", action="store_true", default=default(False), help="run the gRPC server (the satbridge.service mode)"
    )
    p.add_argument("--listen", metavar="HOST:PORT", default=default(None), help="management port (default [::]:50051)")
    p.add_argument(
        "--pairing-listen", metavar="HOST:PORT", default=default(None), help="pairing port (default [::]:50052)"
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default=default(None))
    p.add_argument("--version", action="version", version=f"satbridge {__version__}")


def _parser() -> argparse.ArgumentParser:
    from satbridge.client.terminal import MAX_SECONDS, Parser, globals_everywhere, seconds

    p = Parser(
        prog="satbridge",
        description="Satellite Bridge: serves the central server over gRPC (--serve) and "
        "administers this satellite from its console.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    st = sub.add_parser("status", help="show the satellite's status")
    st.add_argument("--json", action="store_true")
    pw = sub.add_parser("pair-window", help="open, show or close the pairing window (commissioning)")
    pw.add_argument(
        "action",
        choices=["open", "show", "close"],
        help="show prints the open window's code (the one every console shows)",
    )
    pw.add_argument("--json", action="store_true")
    sub.add_parser("disconnect", help="remove the paired server's trust at once and stop XCC").add_argument(
        "--json", action="store_true"
    )
    fr = sub.add_parser("factory-reset", help="back to the delivered state (XCC, trust, firewall, network, identity)")
    fr.add_argument("--yes", action="store_true", help="really do it")
    fr.add_argument("--json", action="store_true", help="one object with every step at the end")
    xc = sub.add_parser("xcc", help="start, stop, restart XCC (xcc.service) or show its state")
    xc.add_argument("action", choices=["start", "stop", "restart", "status"])
    xc.add_argument(
        "--timeout",
        type=seconds("--timeout"),
        metavar="S",
        help=f"seconds to wait for systemd, more than 0 and at most {MAX_SECONDS}, like 30 or 2.5 (default 90)",
    )
    xc.add_argument("--json", action="store_true")
    fwp = sub.add_parser("firewall", help="show the firewall rules, or reset them to the factory set")
    fwp.add_argument("action", choices=["show", "reset", "get"], help="show (or its alias get), reset")
    fwp.add_argument("--json", action="store_true")
    net = sub.add_parser("network", help="show the network, or set DHCP / a static address / the hostname")
    nets = net.add_subparsers(dest="action", required=True, metavar="ACTION")
    nets.add_parser("show", aliases=["get"], help="the configuration in force").add_argument(
        "--json", action="store_true"
    )
    for name, helptext in (("dhcp", "get the address by DHCP"), ("static", "set a static IPv4 address")):
        one = nets.add_parser(name, help=helptext)
        if name == "static":
            one.add_argument("--address", required=True, metavar="ADDR/PREFIX", help="e.g. 192.0.2.10/24")
            one.add_argument("--gateway", metavar="ADDR")
            one.add_argument("--dns", action="append", default=[], metavar="ADDR", help="repeat for several")
            one.add_argument("--search", action="append", default=[], metavar="DOMAIN")
        how = one.add_mutually_exclusive_group()
        how.add_argument(
            "--confirm-timeout",
            type=seconds("--confirm-timeout"),
            default=30.0,
            metavar="S",
            help="NetworkManager undoes the change unless `network confirm` runs within S seconds (default 30; "
            f"more than 0, at most {MAX_SECONDS}, like 30 or 2.5; whole seconds, rounded up)",
        )
        how.add_argument(
            "--no-confirm", action="store_true", help="apply for good at once: no rollback window, nothing to confirm"
        )
        one.add_argument("--json", action="store_true")
    nets.add_parser("confirm", help="keep the change made last").add_argument("--json", action="store_true")
    nets.add_parser("revert", help="put the settings from before the pending change back").add_argument(
        "--json", action="store_true"
    )
    host = nets.add_parser("hostname", help="set the hostname")
    host.add_argument("name")
    host.add_argument("--json", action="store_true")
    sub.add_parser("menu", help="the console menu (the default on a terminal)")
    sub.add_parser("version", help="print the bridge version (--json: and the installed XCC's)").add_argument(
        "--json", action="store_true"
    )
    sub.add_parser("init-config", help="write the default config file if there is none").add_argument(
        "--json", action="store_true"
    )
    globals_everywhere(p, _globals)
    return p


def _print_json(document: object) -> None:
    from satbridge.client.schema import dumps

    print(dumps(document))


def _config(opts: argparse.Namespace) -> Config:
    from dataclasses import replace

    from satbridge.config import load_config
    from satbridge.core.addresses import parse_listen

    config = load_config(opts.root, config_file=opts.config, sandbox=opts.sandbox)
    server = config.server
    if opts.listen:
        server = replace(server, listen=parse_listen(opts.listen, field="--listen"))
    if opts.pairing_listen:
        server = replace(server, pairing_listen=parse_listen(opts.pairing_listen, field="--pairing-listen"))
    return replace(config, server=server, log_level=opts.log_level or config.log_level)


def _when(ts: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _group(fp: str) -> str:
    return ":".join(fp[i : i + 4] for i in range(0, len(fp), 4))


def _pair_window(bridge: Bridge, action: str, as_json: bool) -> int:
    from satbridge.client.schema import SCHEMA_VERSION, when
    from satbridge.core.addresses import reachable_addresses

    pairing = bridge.pairing
    server = bridge.config.server
    if action == "close":
        closed = pairing.close_window()
        if as_json:  # the one pair-window object: no window, so no code, time or attempts
            _print_json(
                {
                    "schema_version": SCHEMA_VERSION,
                    "open": False,
                    "code": "",
                    "expires_at": None,
                    "attempts_left": 0,
                    "fingerprint": "",
                    "addresses": [],
                    "pairing_port": server.pairing_listen.port,
                    "management_port": server.listen.port,
                }
            )
        else:
            print("pairing window closed" if closed else "no pairing window was open")
        return 0
    window = pairing.open_window() if action == "open" else pairing.show_window()
    addresses = reachable_addresses([server.pairing_listen, server.listen], bridge.status.host.addresses())
    if as_json:
        _print_json(
            {
                "schema_version": SCHEMA_VERSION,
                "open": True,
                "code": window.code,
                "expires_at": when(window.expires_at),
                "attempts_left": window.attempts_left,
                "fingerprint": window.fingerprint,
                "addresses": addresses,
                "pairing_port": server.pairing_listen.port,
                "management_port": server.listen.port,
            }
        )
        return 0
    print(f"Pairing window open until {_when(window.expires_at)} ({window.attempts_left} attempts).")
    print(f"  Code:          {window.code}")
    print(f"  Fingerprint:   {_group(window.fingerprint)}")
    print(f"  Addresses:     {', '.join(addresses) or '(none)'}")
    print(f"  Ports:         pairing {server.pairing_listen.port}, management {server.listen.port}")
    if 0 in (server.listen.port, server.pairing_listen.port):
        # port 0: the kernel picks one when the bridge starts; any line printed now would be wrong
        print(
            "On the server:  satctl pair ADDRESS CODE --port P --pairing-port Q, with the ports the bridge listens on"
        )
        return 0
    for address in addresses or ["ADDRESS"]:
        print(f"On the server:  {_pair_command(address, window.code, server.listen.port, server.pairing_listen.port)}")
    return 0


def _pair_command(address: str, code: str, port: int, pairing_port: int) -> str:
    """The satctl command line that pairs with this window: the ports only where they are not
    satctl's defaults (50051, 50052), so that what is shown is what works."""
    flags = "" if port == 50051 else f" --port {port}"
    flags += "" if pairing_port == 50052 else f" --pairing-port {pairing_port}"
    return f"satctl pair {address} {code}{flags}"


def _status(bridge: Bridge, as_json: bool) -> int:
    import asyncio

    async def get() -> Status:
        try:
            return await bridge.status.get()
        finally:
            await bridge.aclose()

    s = asyncio.run(get())
    if as_json:
        from satbridge.client import schema
        from satbridge.server import convert

        _print_json(schema.status(convert.status(s)))
        return 0
    p = s.pairing
    print(f"Hostname:          {s.hostname}")
    print(f"Bridge version:    {s.bridge_version}")
    print(f"Addresses:         {', '.join(f'{a.address}/{a.prefix_length} ({a.interface})' for a in s.addresses)}")
    print(f"Paired:            {'yes, with ' + p.peer_name + ' since ' + _when(p.paired_at) if p.paired else 'no'}")
    if p.window_open:
        print(f"Pairing window:    open until {_when(p.window_expires_at)}, {p.attempts_left} attempts left")
    elif p.closed_for_failures is not None:
        closed = p.closed_for_failures
        print(f"Pairing window:    closed at {_when(closed.closed_at)} by wrong codes from {closed.summary(_when)}")
    print(f"Uptime:            {int(s.uptime_seconds)} s")
    print(f"Disk free:         {s.disk.free_bytes // 2**20} MiB of {s.disk.total_bytes // 2**20} MiB ({s.disk.path})")
    print(f"Memory available:  {s.memory.available_bytes // 2**20} MiB of {s.memory.total_bytes // 2**20} MiB")
    print(f"State generation:  {s.state_generation} (instance {s.instance_id})")
    if s.xcc is not None:
        print(f"XCC:               {_xcc_line(s.xcc)}")
    print(f"Firewall revision: {s.firewall_revision}")
    if s.network is not None:
        n = s.network
        from satbridge.client.schema import method as method_word

        method = method_word(n.method) or "-"
        print(f"Network:           {n.interface} {method}, gateway {n.gateway or '-'}, DNS {', '.join(n.dns) or '-'}")
    for w in s.warnings:
        print(f"WARNING: {w}")
    return 0


def _xcc_line(x: XccStatus) -> str:
    if not x.installed:
        return "not installed"
    u = x.unit
    return f"{x.version or '?'}, {u.active_state}/{u.sub_state} since {_when(u.since)} (pid {u.main_pid or '-'})"


def _xcc(bridge: Bridge, action: str, timeout: float, as_json: bool) -> int:
    import asyncio

    xcc = bridge.xcc

    async def run() -> XccStatus:
        try:
            return await (xcc.status() if action == "status" else xcc.control(action, timeout=timeout))
        finally:
            await bridge.aclose()

    status = asyncio.run(run())
    if as_json:
        from satbridge.client import schema
        from satbridge.server import convert

        _print_json(schema.xcc_document(convert.xcc_state(status)))
    else:
        print(f"XCC: {_xcc_line(status)}")
    return 0


def _disconnect(bridge: Bridge, as_json: bool) -> int:
    import asyncio

    async def run() -> Disconnected:
        try:
            return await bridge.disconnect.disconnect(by="console (satbridge disconnect)")
        finally:
            await bridge.aclose()

    done = asyncio.run(run())
    if as_json:
        from satbridge.client.schema import SCHEMA_VERSION

        _print_json(
            {
                "schema_version": SCHEMA_VERSION,
                "was_paired": done.was_paired,
                "xcc_stopped": done.xcc_stopped,
                "problem": done.problem,
            }
        )
    elif done.was_paired:
        print("disconnected: the server's certificate is refused from its next call on")
    else:
        print("not paired; nothing to disconnect")
    if done.xcc_stopped and not as_json:
        print("XCC stopped (it stays installed)")
    if done.problem:
        from satbridge.client.terminal import say

        # the trust is gone (the point of the command); what else failed is one error line
        say(f"satbridge: error: disconnected, but {done.problem}")
        return 1
    return 0


def _firewall(bridge: Bridge, action: str, as_json: bool) -> int:
    import asyncio

    from satbridge.core.firewall import plan

    async def run() -> FirewallState:
        try:
            if action == "reset":
                return await bridge.firewall.reset(by="console (satbridge firewall reset)")
            return await bridge.firewall.get()
        finally:
            await bridge.aclose()

    state = asyncio.run(run())
    if as_json:
        from satbridge.client import schema
        from satbridge.server import convert

        _print_json(schema.firewall(convert.firewall_state(state)))
        return 0
    if action == "reset":
        print(
            f"the firewall already holds the factory rules (revision {state.revision}): nothing changed"
            if state.unchanged
            else f"firewall reset to the factory rule set (revision {state.revision})"
        )
    pending = f", revision {state.pending_revision} pending ({state.rollback_in:.0f} s to confirm)"
    print(
        f"Revision {state.revision}{pending if state.pending_revision else ''}; "
        f"default action {state.rules.default_action.value}"
    )
    for line in plan(state.rules, bridge.firewall.bridge_ports).save_lines("v4"):
        print(f"  v4 {line}")
    for line in plan(state.rules, bridge.firewall.bridge_ports).save_lines("v6"):
        print(f"  v6 {line}")
    for w in state.warnings:
        print(f"WARNING: {w}")
    return 0


def _network(bridge: Bridge, opts: argparse.Namespace) -> int:
    import asyncio

    from satbridge.client.terminal import whole_seconds

    net = bridge.network

    async def run() -> NetworkState:
        try:
            if opts.action == "show":
                return await net.show()
            if opts.action == "confirm":
                return await net.confirm()
            if opts.action == "revert":
                return await net.revert()
            if opts.action == "hostname":
                return await net.set_hostname(opts.name)
            timeout = 0 if opts.no_confirm else whole_seconds(opts.confirm_timeout)
            if opts.action == "dhcp":
                return await net.set_dhcp(confirm_timeout=timeout)
            return await net.set_static(opts.address, opts.gateway, opts.dns, opts.search, confirm_timeout=timeout)
        finally:
            await bridge.aclose()

    state = asyncio.run(run())
    if getattr(opts, "json", False):
        from satbridge.client import schema
        from satbridge.server import convert

        _print_json(schema.network_document(convert.network_state(state)))
        return 0
    from satbridge.client.schema import method as method_word

    method = method_word(state.method) or "not managed by satbridge"
    print(f"{state.interface}: {method}, {', '.join(state.addresses) or 'no address'}")
    print(
        f"  gateway {state.gateway or '-'}; DNS {', '.join(state.dns) or '-'}; search {', '.join(state.search) or '-'}"
    )
    print(f"  hostname {state.hostname}")
    if state.dhcp:
        print(f"  DHCP lease: {state.dhcp.get('ip_address', '?')} for {state.dhcp.get('dhcp_lease_time', '?')} s")
    if state.note:
        print(state.note[:1].upper() + state.note[1:] + ".")
    if state.settled_in >= SLOW_SETTLE:
        print(f"NOTE: the change took {state.settled_in:.0f} s to take effect; the rollback timer ran meanwhile.")
    if state.pending_rollback_in:
        print(
            f"KEEP THIS SETTING? It is reverted in {state.pending_rollback_in:.0f} s unless you run "
            "`satbridge network confirm`."
        )
    if state.pending_lost:
        print(f"WARNING: {state.pending_lost}")
    return 0


SLOW_SETTLE = 5.0
"""Seconds after which a network change is reported as slow to settle."""


def _factory_reset(bridge: Bridge, yes: bool, as_json: bool = False) -> int:
    import asyncio

    from satbridge.errors import InvalidArgument

    if not yes:
        raise InvalidArgument("a factory reset removes XCC, the pairing and every setting: add --yes", field="--yes")

    steps: list[dict[str, object]] = []

    async def run() -> int:
        failed = 0
        try:
            async for step in bridge.factory_reset.run(by="console (satbridge factory-reset)"):
                steps.append({"name": step.name, "done": step.done, "detail": step.detail})
                if not as_json:
                    mark = "done" if step.done else "FAILED"
                    print(f"[{mark:>6}] {step.name}: {step.detail}")
                failed += not step.done
        finally:
            await bridge.aclose()
        return failed

    failed = asyncio.run(run())
    if as_json:
        from satbridge.client.schema import SCHEMA_VERSION

        _print_json({"schema_version": SCHEMA_VERSION, "steps": steps, "failed": failed})
    if failed:
        from satbridge.client.terminal import say

        say(f"satbridge: error: {failed} step(s) failed; run `satbridge factory-reset --yes` again to finish")
        return 1
    if not as_json:
        print("factory reset complete; the satellite opens a pairing window at the bridge's next start")
    return 0


def _log_to(config: Config, *, menu_file: bool, command: bool = False, level: str | None = None) -> None:
    """stderr, which the journal takes for the service; the menu owns its terminal, so a log
    line there would be drawn over the screen: it logs to a file beside the audit log.

    A subcommand (`satbridge network dhcp`, ...) is a tool a person or a script runs: its
    stderr holds warnings and errors only (the audit log keeps the record; `--log-level info`
    shows it), each one line in the style of the tool's errors, `satbridge: warning: ...`."""
    import logging

    fmt = "%(levelname)s %(name)s: %(message)s"
    if command:

        class OneLine(logging.Formatter):
            """One line, no traceback (SATBRIDGE_DEBUG=1 adds it): an operator's terminal."""

            def format(self, record: logging.LogRecord) -> str:
                line = f"satbridge: {record.levelname.lower()}: {record.getMessage()}".replace("\n", " ")
                if record.exc_info and os.environ.get("SATBRIDGE_DEBUG"):
                    line += "\n" + self.formatException(record.exc_info)
                return line

        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.setFormatter(OneLine())
        logging.basicConfig(level=(level or "warning").upper(), handlers=[to_stderr])
        return
    if not menu_file:
        logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr, format=fmt)
        return
    from logging.handlers import RotatingFileHandler

    path = config.paths.bridge_log_dir / "console.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(path, maxBytes=1 << 20, backupCount=1)
    except OSError:
        handler = logging.NullHandler()  # a read-only /var/log must not keep the console from opening
    handler.setFormatter(logging.Formatter("%(asctime)s " + fmt))
    logging.basicConfig(level=config.log_level.upper(), handlers=[handler])


def _read_only(opts: argparse.Namespace) -> bool:
    """Commands that only look: they never create an identity, a state or a directory."""
    if opts.serve:
        return False
    action = getattr(opts, "action", None)
    return opts.command in ("status", "version") or (opts.command, action) in {
        ("xcc", "status"),
        ("firewall", "show"),
        ("network", "show"),
    }


def _run(opts: argparse.Namespace) -> int:
    if opts.command == "version" and not opts.json:
        print(f"satbridge {__version__}")
        return 0

    config = _config(opts)
    menu = opts.command in (None, "menu") and not opts.serve
    _log_to(config, menu_file=menu, command=not menu and not opts.serve, level=opts.log_level)
    if opts.command == "init-config":
        from satbridge.config import DEFAULT_TOML
        from satbridge.system.files import atomic_write

        written = not config.paths.config_file.exists()
        if not written:
            if not opts.json:
                print(f"{config.paths.config_file} exists; left as it is")
        else:
            # the listen addresses given now (--listen, $SATBRIDGE_LISTEN) go into the file, so
            # the console, which reads only the file, shows where this bridge really listens
            text = DEFAULT_TOML.replace('listen = "[::]:50051"', f'listen = "{config.server.listen}"').replace(
                'pairing_listen = "[::]:50052"', f'pairing_listen = "{config.server.pairing_listen}"'
            )
            atomic_write(config.paths.config_file, text.encode())
            if not opts.json:
                print(f"wrote {config.paths.config_file}")
        if opts.json:
            from satbridge.client.schema import SCHEMA_VERSION

            _print_json({"schema_version": SCHEMA_VERSION, "path": str(config.paths.config_file), "written": written})
        return 0
    from satbridge.wiring import wire

    read_only = _read_only(opts)
    if read_only and not opts.root.is_dir():
        from satbridge.errors import NotFound

        # A mistyped --root must not quietly make a new satellite there.
        raise NotFound(f"{opts.root}: no such directory (a read-only command creates nothing)", field="--root")
    bridge = wire(config, read_only=read_only)
    if opts.serve:
        import asyncio

        import satbridge
        from satbridge.server.app import serve
        from satbridge.system.zipapp import remove_old_extractions

        remove_old_extractions(Path(satbridge.__file__))

        return asyncio.run(serve(bridge))
    if opts.command == "status":
        return _status(bridge, opts.json)
    if opts.command == "pair-window":
        return _pair_window(bridge, opts.action, opts.json)
    if opts.command == "disconnect":
        return _disconnect(bridge, opts.json)
    if opts.command == "version":
        return _version(bridge)
    if opts.command == "factory-reset":
        return _factory_reset(bridge, opts.yes, opts.json)
    if opts.command == "xcc":
        from satbridge.client.terminal import whole_seconds

        # whole seconds, rounded up, as satctl sends them: one meaning for `--timeout 0.5`
        return _xcc(bridge, opts.action, whole_seconds(opts.timeout or 0.0), opts.json)
    if opts.command == "firewall":
        return _firewall(bridge, opts.action, opts.json)
    if opts.command == "network":
        return _network(bridge, opts)
    if opts.command in (None, "menu"):
        from satbridge.menu.app import run

        return run(bridge)
    _parser().print_help(sys.stderr)
    return 2


def _version(bridge: Bridge) -> int:
    """`satbridge version --json`: the one `version` object, as `satctl version --json` prints it.
    The XCC version is the release `current` names, read from the files as GetVersions reads it,
    so it answers without systemd (a sandbox, a hung systemd) as satctl's does."""
    import asyncio

    from satbridge.client import schema

    async def run() -> str:
        try:
            return (await asyncio.to_thread(bridge.update.versions)).running
        finally:
            await bridge.aclose()

    _print_json(schema.version(__version__, asyncio.run(run())))
    return 0


def _check_terminal(opts: argparse.Namespace) -> None:
    """The menu draws on a terminal: without one it is one line and an exit code, before anything
    is wired (a traceback from urwid, or a silent screen, helps nobody)."""
    from satbridge.errors import FailedPrecondition

    if opts.serve or opts.command not in (None, "menu"):
        return
    if sys.stdin.isatty() and sys.stdout.isatty():
        return
    # `satbridge` alone is `satbridge menu`: the same refusal, code and line for both
    raise FailedPrecondition(
        "the menu needs a terminal on standard input and output; for a script, see satbridge --help for the commands"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args in (["version"], ["--version"]):
        # Scripts ask this often; building the argparse tree would double its start-up time.
        print(f"satbridge {__version__}")
        return 0
    from satbridge.client.terminal import run

    def body() -> int:
        opts = _parser().parse_args(args)
        if getattr(opts, "action", None) == "get":  # `show` is the verb; `get` its alias
            opts.action = "show"
        _check_terminal(opts)
        return _run(opts)

    return run("satbridge", body)
