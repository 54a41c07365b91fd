#!/usr/bin/env python3
"""Uploading a package over mutual TLS (BeginUpload + Upload), against the same job done by a
plain Python `ssl` socket copy (receive, sha256, write, one fsync, with a writer thread), and
against scp to a private sshd on loopback when sshd is installed. Same run, same file.

    .venv/bin/python bench/upload.py [--mib 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from satbridge.api.v1 import update_pb2, update_pb2_grpc
from satbridge.client.inventory import Inventory
from satbridge.client.session import connect
from satbridge.client.update import send_stream
from tests.lab.bridge import PeakRss, dies_with_us, free_port, rss, satctl_pair, serving, unit_malloc_env

PY = sys.executable
MALLOC = unit_malloc_env()  # as build/units/satbridge.service runs it
SSL_SINK = r"""
import hashlib, os, queue, socket, ssl, sys, threading
cert, key, port, out = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
srv = socket.create_server(("127.0.0.1", int(port))); print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    with ctx.wrap_socket(conn, server_side=True) as tls:
        q = queue.Queue(4); h = hashlib.sha256()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        def writer():
            while (d := q.get()) is not None:
                h.update(d); os.write(fd, d)
            os.fsync(fd)
        t = threading.Thread(target=writer); t.start()
        while data := tls.recv(1 << 20):
            q.put(data)
        q.put(None); t.join(); os.close(fd)
"""


def start_ssl_sink(state: Path, port: int, out: Path) -> subprocess.Popen[str]:
    """The reference receiver, with the bridge's own identity as its TLS certificate."""
    sink = subprocess.Popen(
        dies_with_us(
            [PY, "-c", SSL_SINK, str(state / "identity.crt"), str(state / "identity.key"), str(port), str(out)]
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None
    assert sink.stdout.readline().startswith("ready")
    return sink


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ssl_send(port: int, path: Path) -> float:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw) as tls, open(path, "rb") as f:
        while data := f.read(1 << 20):
            tls.sendall(data)
        tls.shutdown(socket.SHUT_WR)
        tls.recv(1)  # until the sink closed: it has fsynced
    return time.perf_counter() - start


UPLOADS_FOR_RSS = 6  # the memory measure: RSS over six uploads in all (--uploads)


def scp_setup(work: Path) -> tuple[subprocess.Popen[bytes], int] | None:
    """A private sshd for the scp reference: on 127.0.0.1 at a free port, its own host and user
    keys in `work`, no system configuration (`-f /dev/null`), in the foreground so the caller
    stops it by its PID. None without sshd (build/setup-labs.sh installs it) or without root."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd) or os.geteuid() != 0:
        return None
    port = free_port()
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "user")], check=True)
    (work / "authorized").write_bytes((work / "user.pub").read_bytes())
    os.chmod(work / "authorized", 0o600)
    options = {
        "ListenAddress": "127.0.0.1",
        "AuthorizedKeysFile": str(work / "authorized"),
        "PidFile": "none",
        "StrictModes": "no",
        "PermitRootLogin": "prohibit-password",
        "UsePAM": "yes",  # without PAM, sshd refuses root's locked password entry even for a key
        "Subsystem": "sftp internal-sftp",  # scp speaks SFTP since OpenSSH 9
    }
    argv = [sshd, "-D", "-e", "-f", "/dev/null", "-p", str(port), "-h", str(work / "host")]
    for key, value in options.items():
        argv += ["-o", f"{key}={value}"]
    proc = subprocess.Popen(dies_with_us(argv), stderr=subprocess.DEVNULL)  # gone even if we are killed
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # listening?
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.terminate()
    proc.wait()
    return None


def scp_send(port: int, work: Path, path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            "scp",
            "-q",
            "-P",
            str(port),
            "-i",
            str(work / "user"),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            str(path),
            f"root@127.0.0.1:{work / 'scp.out'}",
        ],
        check=True,
    )
    return time.perf_counter() - start


async def grpc_upload(stub, path: Path, version: str) -> float:
    data_size = path.stat().st_size
    digest = hashlib.sha256()  # the client's own pass over the file is not the transfer: untimed
    with open(path, "rb") as f:
        while data := f.read(1 << 20):
            digest.update(data)
    start = time.perf_counter()
    begun = await stub.BeginUpload(
        update_pb2.BeginUploadRequest(name="xcc", version=version, size=data_size, sha256=digest.hexdigest())
    )

    async def chunks():
        offset = 0
        with open(path, "rb") as f:
            while data := f.read(1 << 20):
                yield update_pb2.UploadChunk(upload_id=begun.upload_id, offset=offset, data=data)
                offset += len(data)

    done = await send_stream(stub.Upload(), chunks())
    assert done.complete
    return time.perf_counter() - start


WORK_PREFIX = "satbridge-bench-up-"


def _started(pid: int) -> str:
    """A process's start time in clock ticks since boot (/proc/PID/stat field 22), "" if gone:
    with the PID it names one process, never a later one that reuses the number."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _naming(directory: Path) -> list[int]:
    """The PIDs of processes with an argument in `directory` (a run's own temporary tree)."""
    inside, found = f"{directory}/", []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(arg == str(directory) or arg.startswith(inside) or f"={inside}" in arg for arg in args):
            found.append(int(entry.name))
    return found


def _stop(processes: list[tuple[int, str]], grace: float = 5.0) -> None:
    """SIGTERM to each (PID, start time), then SIGKILL to any that still runs after `grace`
    seconds (one that inherited SIGTERM ignored); a PID that now names another process is
    left alone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        running = [(pid, started) for pid, started in processes if started and _started(pid) == started]
        for pid, _ in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while running and time.monotonic() < deadline:
            time.sleep(0.05)
            running = [(pid, started) for pid, started in running if _started(pid) == started and not _zombie(pid)]
        processes = running


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def claim_work(tmp: Path | None = None) -> Path:
    """A new work directory, owned by this process (`owner`: PID and start time). What a run
    that was killed left (its directory with a 256 MiB payload, a bridge, a sink or an sshd
    still running from it) is removed first: processes by PID, then the directory. A directory
    without an owner file, or whose owner still runs, is left alone (red team 21)."""
    tmp = Path(tempfile.gettempdir()) if tmp is None else tmp
    for old in sorted(tmp.glob(f"{WORK_PREFIX}*")):
        try:
            pid, started = (old / "owner").read_text().split()
        except (OSError, ValueError):
            continue
        if _started(int(pid)) == started:
            continue
        _stop([(pid, _started(pid)) for pid in _naming(old)])
        shutil.rmtree(old, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=tmp))
    (work / "owner").write_text(f"{os.getpid()} {_started(os.getpid())}\n")
    return work


async def main(mib: int, rounds: int, uploads: int) -> None:
    work = claim_work()
    root = work / "root"
    payload = work / "payload.bin"
    with open(payload, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    sink = free_port()
    cfg = root / "etc/satbridge/satbridge.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(f"[update]\nmax_package_mib = {mib * 2}\n")
    try:
        with serving(root, env={**os.environ, **MALLOC}, die_with_us=True) as served:
            ref = start_ssl_sink(root / "var/lib/satbridge", sink, work / "ssl.out")
            ssh = scp_setup(work)
            try:
                satctl_pair(served, work / "ctl")
                await measure(
                    served.proc, ref, ssh, Inventory.load(work / "ctl"), work, payload, sink, mib, rounds, uploads
                )
            finally:
                for proc in (ref, *(ssh[:1] if ssh else ())):  # by PID: this sshd and sink only
                    proc.terminate()
                    proc.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def measure(bridge, ref, ssh, inv, work, payload, sink, mib, rounds, uploads) -> None:
    state = work / "root/var/lib/satbridge"
    sat = inv.get(None)
    with PeakRss(bridge.pid) as memory:
        ours, refs, scps = [], [], []
        cpu_ours = cpu_ref = 0.0
        async with connect(sat, inv, timeout=600) as client:
            stub = update_pb2_grpc.UpdateStub(client.channel)
            for r in range(rounds):
                before = cpu_seconds(bridge.pid)
                ours.append(await grpc_upload(stub, payload, f"1.{r}.0"))
                cpu_ours += cpu_seconds(bridge.pid) - before
                before = cpu_seconds(ref.pid)
                refs.append(await asyncio.to_thread(ssl_send, sink, payload))
                cpu_ref += cpu_seconds(ref.pid) - before
                if ssh:
                    scps.append(await asyncio.to_thread(scp_send, ssh[1], work, payload))
                for pkg in (state / "uploads").glob("*"):
                    pkg.unlink()  # a fresh upload each round
            for r in range(rounds, max(rounds, uploads)):
                await grpc_upload(stub, payload, f"1.{r}.0")
                for pkg in (state / "uploads").glob("*"):
                    pkg.unlink()
        await asyncio.sleep(1)
        after = rss(bridge.pid)
    o, r = statistics.median(ours), statistics.median(refs)
    print(f"| {mib} MiB upload ({rounds} rounds) | MiB/s | ratio |")
    print("|---|---|---|")
    print(f"| BeginUpload + Upload, mutual TLS (sha256, fsync) | {mib / o:.0f} | {r / o:.2f}x of the ssl copy |")
    print(f"| plain ssl socket copy (recv, sha256, write, fsync, writer thread) | {mib / r:.0f} | 1.00x |")
    if scps:
        s = statistics.median(scps)
        verdict = "met" if s / o >= 1.5 else "NOT met"
        print(
            f"| scp to a private sshd on loopback | {mib / s:.0f} "
            f"| ours is {s / o:.2f}x scp (goal >= 1.5x: {verdict}) |"
        )
    else:
        print("| scp | - | no sshd, or not root (build/setup-labs.sh installs openssh-server) |")
    per_ours, per_ref = 1e3 * cpu_ours / (mib * rounds), 1e3 * cpu_ref / (mib * rounds)
    print(f"server CPU per MiB: bridge {per_ours:.2f} ms, ssl copy {per_ref:.2f} ms ({per_ours / per_ref:.2f}x)")
    n = max(rounds, uploads)
    verdict = "met" if memory.grew_mib <= 32 else "NOT met"
    print(
        f"bridge RSS over {n} uploads of {mib} MiB: idle {memory.idle / 2**20:.0f} MiB, peak "
        f"{memory.peak / 2**20:.0f} MiB (+{memory.grew_mib:.0f}; goal <= idle + 32 MiB at any time: {verdict}), "
        f"1 s after the last +{(after - memory.idle) / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=UPLOADS_FOR_RSS, help="uploads in all, for the RSS row")
    opts = parser.parse_args()
    asyncio.run(main(opts.mib, opts.rounds, opts.uploads))
