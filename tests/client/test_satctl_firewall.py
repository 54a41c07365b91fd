"""satctl's rule file (red team of issue 15, finding 1): one checked reader, one strict JSON
reading. Every bad file exits 2 naming the file, before anything is sent, never a hang or a
traceback. No satellite is needed: a bad file fails before satctl connects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from satbridge.client import cli
from satbridge.core import firewall as fw

GOOD = {"rules": [{"protocol": "tcp", "action": "accept", "ports": [443]}]}


def satctl_set(tmp_path: Path, target: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["--config-dir", str(tmp_path / "ctl"), "firewall", "set", str(target)])
    return code, capsys.readouterr().err


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    """A blocking open of a FIFO without a writer hung satctl; run in a child with a timeout."""
    fifo = tmp_path / "rules.json"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "satbridge.client", "--config-dir", str(tmp_path / "ctl"), "firewall", "set", str(fifo)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2, done.stderr
    assert str(fifo) in done.stderr
    assert "regular file" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "/dev/full"])
def test_devices_are_refused_without_reading_them(tmp_path, capsys, target):
    code, err = satctl_set(tmp_path, Path(target), capsys)
    assert code == 2, err
    assert target in err
    assert "regular file" in err


def test_a_directory_and_a_missing_file_name_the_file(tmp_path, capsys):
    code, err = satctl_set(tmp_path, tmp_path, capsys)
    assert (code, str(tmp_path) in err, "directory" in err) == (2, True, True), err
    code, err = satctl_set(tmp_path, tmp_path / "nope.json", capsys)
    assert (code, "nope.json" in err) == (2, True), err


def test_a_file_over_the_cap_is_refused_naming_the_limit(tmp_path, capsys):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(fw.MAX_RULE_FILE + 1)  # sparse: costs no disk
    code, err = satctl_set(tmp_path, big, capsys)
    assert code == 2, err
    assert str(big) in err
    assert str(fw.MAX_RULE_FILE) in err


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('{"rules": [{"protocol": "tcp", "action": "accept", "ports": [' + "9" * 5000 + "]}]}", "not JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"rules": [], "default_action": NaN}', "not JSON"),
        (b'{"rules": [\xff]}', "not UTF-8"),
        ("", "not JSON"),
    ],
)
def test_every_parse_failure_is_exit_2_naming_the_file(tmp_path, capsys, body, said):
    path = tmp_path / "rules.json"
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    code, err = satctl_set(tmp_path, path, capsys)
    assert code == 2, err
    assert str(path) in err, err
    assert said in err, err
    assert "Traceback" not in err


def test_a_duplicate_key_is_refused_naming_the_field(tmp_path, capsys):
    path = tmp_path / "rules.json"
    path.write_text('{"rules": [{"protocol": "tcp", "action": "accept", "action": "drop"}]}')
    code, err = satctl_set(tmp_path, path, capsys)
    assert code == 2, err
    assert "rules[0].action" in err
    assert "twice" in err


def test_the_largest_accepted_set_indented_fits_the_cap(tmp_path):
    from tests.core.test_firewall import largest_accepted_set

    text = json.dumps(fw.to_json(largest_accepted_set()), indent=4).encode()
    assert len(text) < fw.MAX_RULE_FILE // 2, len(text)
    path = tmp_path / "rules.json"
    path.write_bytes(text)
    assert len(cli._rules_from_file(path).rules) == fw.MAX_RULES


def test_a_signing_key_that_is_a_fifo_or_device_is_refused(tmp_path, capsys):
    fifo = tmp_path / "key"
    os.mkfifo(fifo)
    (tmp_path / "pkg").mkdir()
    for key in (fifo, Path("/dev/zero")):
        code = cli.main(["package", "build", str(tmp_path / "pkg"), "--key", str(key)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "--key" in err
        assert str(key) in err


async def test_show_json_piped_into_set_dash_round_trips(tmp_path, bus_address):
    """Red team (issue 20): `satbridge firewall show --json | satctl firewall set -` was "no such
    file -": `-` is standard input for FILE, as it is standard output for -o."""
    import asyncio

    from tests.lab.bridge import paired_bridge

    rule = {"family": "v4", "protocol": "tcp", "action": "accept", "ports": [[8080, 8081]], "comment": "piped"}
    rules = {"default_action": "drop", "rules": [{**rule, "sources": []}]}
    async with paired_bridge(tmp_path, bus_address) as (bridge, ctl):

        async def run(*args: str, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "satbridge.client", *ctl, *args,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await proc.communicate(stdin)
            return proc.returncode or 0, out, err

        rc, out, err = await run("firewall", "set", "-", "--no-confirm", "--json", stdin=json.dumps(rules).encode())
        assert rc == 0, err
        shown = (await run("firewall", "show", "--json"))[1]
        assert json.loads(shown)["rules"][0]["comment"] == "piped"
        rc, out, err = await run("firewall", "set", "-", "--no-confirm", "--json", stdin=shown)
        assert rc == 0, err
        assert json.loads(out)["revision"] == json.loads(shown)["revision"]  # the same rules: no change
        rc, _, err = await run("firewall", "set", "-", stdin=b'{"rules": [')
        assert rc == 2, err
        assert err.startswith(b"satctl: error: FILE: "), err
        del bridge
