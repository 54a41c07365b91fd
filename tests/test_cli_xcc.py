"""`satbridge xcc ...` as a process, against a fake systemd on a private bus."""

from __future__ import annotations

import asyncio
import json
import os

from satbridge.core.units import render_xcc_unit
from satbridge.errors import EXIT_CODES, Kind
from tests.conftest import PYTHON


async def satbridge(root, bus: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        "-m",
        "satbridge",
        "--root",
        str(root),
        *args,
        env={**os.environ, "SATBRIDGE_DBUS_ADDRESS": bus},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_xcc_commands(tmp_path, fake_systemd):
    code, _, err = await satbridge(tmp_path, fake_systemd.address, "xcc", "start")
    assert code == EXIT_CODES[Kind.FAILED_PRECONDITION]
    assert "not installed" in err
    unit = tmp_path / "etc/systemd/system/xcc.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(render_xcc_unit(["/bin/xcc"], working_directory="/", log_directory="xcc"))
    code, out, err = await satbridge(tmp_path, fake_systemd.address, "xcc", "start")
    assert code == 0, err
    assert "active/running" in out
    code, out, _ = await satbridge(tmp_path, fake_systemd.address, "xcc", "status", "--json")
    assert json.loads(out)["main_pid"] == 4242
    fake_systemd.behaviour.fail_jobs = True
    code, _, err = await satbridge(tmp_path, fake_systemd.address, "xcc", "restart")
    assert code == EXIT_CODES[Kind.ABORTED]
    assert "Result=exit-code" in err
    code, _, err = await satbridge(tmp_path, fake_systemd.address, "xcc", "stop", "--timeout", "9999")
    assert code == EXIT_CODES[Kind.INVALID_ARGUMENT]
    assert "timeout" in err


async def test_xcc_without_systemd_is_unavailable(tmp_path, bus_address):
    unit = tmp_path / "etc/systemd/system/xcc.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    code, _, err = await satbridge(tmp_path, bus_address, "xcc", "start")
    assert code == EXIT_CODES[Kind.UNAVAILABLE]
    assert "org.freedesktop.systemd1" in err
