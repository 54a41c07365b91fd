"""A bridge as a real process (sandbox mode), for tests and benchmarks that talk to it from outside."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

PY = sys.executable
UNIT = Path(__file__).resolve().parents[2] / "build" / "units" / "satbridge.service"


def unit_malloc_env() -> dict[str, str]:
    """The MALLOC_* settings satbridge.service runs the bridge with, read from the unit itself,
    so the benchmarks measure what ships."""
    env: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            for pair in line.removeprefix("Environment=").split():
                name, _, value = pair.partition("=")
                if name.startswith("MALLOC_"):
                    env[name] = value
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bridge:
    def __init__(self, root: Path, bus: str) -> None:
        self.root, self.bus = root, bus
        self.mgmt, self.pairing = free_port(), free_port()
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, failpoint: str = "") -> None:
        env = {**os.environ, "SATBRIDGE_DBUS_ADDRESS": self.bus}
        if failpoint:
            env["SATBRIDGE_FAILPOINT"] = failpoint
        self.proc = await asyncio.create_subprocess_exec(
            PY,
            "-m",
            "satbridge",
            "--root",
            str(self.root),
            "--sandbox",
            "--serve",
            "--log-level",
            "warning",
            "--listen",
            f"127.0.0.1:{self.mgmt}",
            "--pairing-listen",
            f"127.0.0.1:{self.pairing}",
            env=env,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.pairing)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError("the bridge did not start")

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await self.proc.wait()


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Samples a process's RSS every 50 ms while the `with` block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.idle = rss(pid)
        self.peak = self.idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def grew_mib(self) -> float:
        return (self.peak - self.idle) / 2**20


def dies_with_us(argv: list[str]) -> list[str]:
    """`argv` run so that it gets SIGTERM when the thread that starts it dies, and so when its
    process dies, even by SIGKILL (util-linux setpriv sets PR_SET_PDEATHSIG, then execs: same
    PID). A bench killed mid-run left the bridge, the reference sink and a root-login sshd
    running (red team 21). Only from a thread that outlives the child (a main thread)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


@dataclass
class Serving:
    proc: subprocess.Popen[bytes]
    root: Path
    mgmt: int
    pairing: int


@contextmanager
def serving(
    root: Path,
    *,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    die_with_us: bool = False,
) -> Iterator[Serving]:
    """`satbridge --sandbox --serve` on two free loopback ports, until the `with` ends.
    `die_with_us`: SIGTERM to the bridge when the calling thread dies (see dies_with_us; only
    from a thread that outlives the `with`, such as a bench's main thread)."""
    mgmt, pairing = free_port(), free_port()
    argv = [
        PY,
        "-m",
        "satbridge",
        "--root",
        str(root),
        "--sandbox",
        "--serve",
        "--log-level",
        "error",
        "--listen",
        f"127.0.0.1:{mgmt}",
        "--pairing-listen",
        f"127.0.0.1:{pairing}",
    ]
    proc = subprocess.Popen(
        dies_with_us(argv) if die_with_us else argv,
        env=env,
        preexec_fn=preexec_fn,  # e.g. a descriptor limit for the bridge alone
        stderr=None if os.environ.get("SATBRIDGE_TEST_STDERR") else subprocess.DEVNULL,  # debugging aid
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", pairing), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("the bridge did not start") from None
                time.sleep(0.05)
        yield Serving(proc, root, mgmt, pairing)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def satctl_pair(s: Serving, config_dir: Path, *extra: str) -> None:
    """Open a window with the console CLI and pair with the satctl CLI, as an operator would."""
    window = subprocess.run(
        [PY, "-m", "satbridge", "--root", str(s.root), "pair-window", "open", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    subprocess.run(
        [
            PY,
            "-m",
            "satbridge.client",
            "--config-dir",
            str(config_dir),
            *extra,
            "pair",
            "127.0.0.1",
            json.loads(window.stdout)["code"],
            "--port",
            str(s.mgmt),
            "--pairing-port",
            str(s.pairing),
        ],
        check=True,
        capture_output=True,
    )


async def satctl(config_dir: Path, *args: str) -> tuple[int, str, str]:
    """The satctl CLI as a process: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "satbridge.client",
        "--config-dir",
        str(config_dir),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


@asynccontextmanager
async def paired_bridge(tmp_path: Path, bus: str) -> AsyncIterator[tuple[Bridge, list[str]]]:
    """A bridge process under tmp_path/root, paired with satctl (config in tmp_path/ctl) as an
    operator pairs: (the bridge, satctl's `--config-dir DIR` arguments). Stopped afterwards."""
    root, ctl = tmp_path / "root", tmp_path / "ctl"
    bridge = Bridge(root, bus)
    try:
        await bridge.start()
        window = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge", "--root", str(root), "pair-window", "open", "--json", stdout=asyncio.subprocess.PIPE
        )
        code = json.loads((await window.communicate())[0])["code"]
        ports = ["--port", str(bridge.mgmt), "--pairing-port", str(bridge.pairing)]
        rc, _, err = await satctl(ctl, "pair", "127.0.0.1", code, *ports)
        assert rc == 0, err
        yield bridge, ["--config-dir", str(ctl)]
    finally:
        await bridge.stop()
