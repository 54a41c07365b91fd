"""satctl's inventory as ssh's known_hosts, and its one-line errors, against bridge processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from tests.lab.bridge import Bridge, paired_bridge, satctl

PY = sys.executable


async def open_window(bridge: Bridge) -> str:
    window = await asyncio.create_subprocess_exec(
        PY,
        "-m",
        "satbridge",
        "--root",
        str(bridge.root),
        "pair-window",
        "open",
        "--json",
        stdout=asyncio.subprocess.PIPE,
    )
    return json.loads((await window.communicate())[0])["code"]


async def test_two_satellites_with_one_hostname_keep_two_entries(tmp_path, bus_address):
    """Both satellites are called `vm` (their hostname): the second pairing once replaced the
    first's entry silently, losing its pin and certificate. Now it gets a name of its own, and an
    explicit --name that names another address is refused before anything changes."""
    async with paired_bridge(tmp_path / "a", bus_address) as (first, ctl):
        second = Bridge(tmp_path / "b" / "root", bus_address)
        await second.start()
        try:
            code = await open_window(second)
            taken = json.loads((await satctl(tmp_path / "a" / "ctl", "list", "--json"))[1])
            name = taken["satellites"][0]["name"]
            ports = ["--port", str(second.mgmt), "--pairing-port", str(second.pairing)]
            rc, _, err = await satctl(tmp_path / "a" / "ctl", "pair", "127.0.0.1", code, "--name", name, *ports)
            assert rc == 2, err
            assert "--name" in err
            rc, _, err = await satctl(tmp_path / "a" / "ctl", "pair", "127.0.0.1", code, *ports)
            assert rc == 0, err  # the window was still open: the refused pairing changed nothing
            rc, out, err = await satctl(tmp_path / "a" / "ctl", "list", "--json")
            assert rc == 0, err
            assert out.count('"host"') == 2, out
            rc, _, err = await satctl(tmp_path / "a" / "ctl", "-s", name, "status")
            assert rc == 0, err
        finally:
            await second.stop()
        del first, ctl


async def test_a_full_disk_is_one_line_and_a_changed_identity_says_how_to_pair_again(tmp_path, bus_address):
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge.client", *ctl, "logs", "get", "satbridge/audit.log",
            stdout=open("/dev/full", "wb"),  # noqa: SIM115 - the child has its own copy
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        err = (await proc.communicate())[1].decode()
        assert proc.returncode == 7, err
        assert len(err.strip().splitlines()) == 1, err
        reset = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge", "--root", str(bridge.root), "--sandbox", "factory-reset", "--yes",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await reset.wait()
        await asyncio.sleep(2)  # the running bridge notices the new identity and listens again
        proc = await asyncio.create_subprocess_exec(
            PY, "-m", "satbridge.client", *ctl, "status",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "GRPC_VERBOSITY": ""},
        )  # fmt: skip
        err = (await proc.communicate())[1].decode()
        assert proc.returncode == 5, err
        assert len(err.strip().splitlines()) == 1, "gRPC's C core stays quiet when GRPC_VERBOSITY is empty"
        assert "REMOTE IDENTITY CHANGED" in err
        assert f"--port {bridge.mgmt} --pairing-port {bridge.pairing}" in err
        assert "--name " in err


async def test_pairing_again_under_another_address_leaves_an_entry_unpair_can_remove(tmp_path, bus_address):
    """Red team (issue 20): the same satellite paired again as `localhost` (a new DHCP address, a
    DNS name) left its old entry as the default, which the satellite refuses from then on; `satctl
    unpair -s OLD` answered UNAUTHENTICATED (exit 5) and kept it, so it could never be removed.
    Now an entry the satellite no longer trusts is removed by unpair, with a warning."""
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):
        config = tmp_path / "ctl"
        old = json.loads((await satctl(config, "list", "--json"))[1])["satellites"][0]["name"]
        code = await open_window(bridge)
        ports = ["--port", str(bridge.mgmt), "--pairing-port", str(bridge.pairing)]
        rc, out, err = await satctl(config, "pair", "localhost", code, *ports, "--json")
        assert rc == 0, err
        new = json.loads(out)["name"]
        assert new != old
        assert err.startswith(f"satctl: warning: {old} (127.0.0.1:{bridge.mgmt}) has this identity too"), err
        assert f"satctl unpair -s {old}" in err
        rc, _, err = await satctl(config, "-s", old, "status")
        assert rc == 5, err  # the satellite trusts only the newest pairing
        rc, out, err = await satctl(config, "-s", old, "unpair", "--json")
        assert rc == 0, err
        assert json.loads(out)["unpaired_at"] is None
        assert err.startswith("satctl: warning: "), err
        assert len(err.splitlines()) == 1, err
        listed = json.loads((await satctl(config, "list", "--json"))[1])
        assert [s["name"] for s in listed["satellites"]] == [new]
        assert listed["default"] == new
        rc, _, err = await satctl(config, "status")
        assert rc == 0, err
        del ctl
