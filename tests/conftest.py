"""Shared fixtures: a real bridge (real gRPC, real TLS on loopback) under a temporary root."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from satbridge.client.inventory import Inventory, Satellite
from satbridge.client.session import pair
from satbridge.config import Config, load_config
from satbridge.core.addresses import ListenAddress
from satbridge.server.app import Bound, BridgeServer
from satbridge.wiring import Bridge, wire
from tests.fakes import FakeClock
from tests.lab.dbus_daemon import private_bus
from tests.lab.fake_systemd import FakeSystemd

PYTHON = sys.executable
LAB_CACHE = Path(os.environ.get("SATBRIDGE_LAB_CACHE", "/var/cache/satbridge-lab"))
ENABLE_LABS = "sudo make test"


def labs_required() -> bool:
    """True once build/setup-labs.sh has set this machine up (its stamp, as root), and always in
    CI: then every test can run here, and a test that skips anyway is a failure, not a quiet
    pass (a missing package, an unbuilt rootfs or a missing interpreter must turn CI red)."""
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return True
    return os.geteuid() == 0 and (LAB_CACHE / "setup.done").exists()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and labs_required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped although the labs are set up here (CI, or build/setup-labs.sh ran): {reason}"


@pytest.hookimpl(tryfirst=True)  # before the terminal files it under "skipped"
def pytest_collectreport(report: pytest.CollectReport) -> None:
    """A whole module that skips at collection (importorskip, allow_module_level) counts too."""
    if report.skipped and labs_required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped at collection although the labs are set up here: {reason}"


@pytest.hookimpl(wrapper=True, tryfirst=True)  # around pytest's own, so after its short summary
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    yield
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    terminalreporter.section(f"{len(skipped)} tests did not run here", sep="!", yellow=True, bold=True)
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.line(f"  {report.nodeid}: {reason.removeprefix('Skipped: ')}")
    terminalreporter.line(
        f"Run them all (installs the Debian packages, builds the lab rootfs): {ENABLE_LABS}", bold=True
    )


def loopback_config(root: Path) -> Config:
    """Loopback ports chosen by the kernel; sandbox mode, so no test touches this machine's firewall."""
    config = load_config(root, env={}, sandbox=True)
    server = replace(
        config.server,
        listen=ListenAddress("127.0.0.1", 0),
        pairing_listen=ListenAddress("127.0.0.1", 0),
        grace_seconds=0.5,
    )
    return replace(config, server=server)


@dataclass
class Running:
    bridge: Bridge
    server: BridgeServer
    bound: Bound
    clock: FakeClock

    async def restart(self) -> None:
        """Stop and start again from the same root, as a service restart would."""
        await self.server.stop(0)
        await self.bridge.aclose()
        config = self.bridge.config
        fixed = replace(
            config.server,
            listen=ListenAddress("127.0.0.1", self.bound.management),
            pairing_listen=ListenAddress("127.0.0.1", self.bound.pairing),
        )
        self.bridge = wire(replace(config, server=fixed), clock=self.clock)
        self.server = BridgeServer(self.bridge, guard_memory=False)
        self.bound = await self.server.start()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@asynccontextmanager
async def serve_bridge(config: Config) -> AsyncIterator[Running]:
    """A bridge wired from `config` with a fake clock, serving until the `async with` ends."""
    clock = FakeClock(time.time())
    bridge = wire(config, clock=clock)
    # in-process, this process's RSS is the test runner's: the pairing port's memory guard is
    # tested on bridge processes (tests/server/test_continuation_flood.py)
    server = BridgeServer(bridge, guard_memory=False)
    run = Running(bridge, server, await server.start(), clock)
    try:
        yield run
    finally:
        await run.server.stop(0)
        await run.bridge.aclose()


@pytest.fixture
async def running(root: Path) -> AsyncIterator[Running]:
    async with serve_bridge(loopback_config(root)) as run:
        yield run


@pytest.fixture
def probe_port() -> Iterator[int]:
    """A TCP listener for good packages' health probe (the fake systemd runs nothing)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    return Inventory.load(tmp_path / "satctl")


async def pair_with(run: Running, inv: Inventory, *, server_name: str = "central", name: str = "sat") -> Satellite:
    """Open a window on the satellite (as its admin would) and pair with satctl's library."""
    code = run.bridge.pairing.open_window().code
    return await pair(
        "127.0.0.1",
        code,
        inventory=inv,
        server_name=server_name,
        name=name,
        port=run.bound.management,
        pairing_port=run.bound.pairing,
    )


@pytest.fixture
def bus_address() -> Iterator[str]:
    """A private dbus-daemon (never the machine's own bus)."""
    with private_bus() as address:
        yield address


@pytest.fixture
async def fake_systemd(bus_address: str) -> AsyncIterator[FakeSystemd]:
    fake = await FakeSystemd(bus_address).start()
    try:
        yield fake
    finally:
        await fake.stop()
