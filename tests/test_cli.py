"""Both CLIs as an operator runs them: real processes, exit codes, messages that name the field."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from satbridge.errors import EXIT_CODES, Kind
from tests.conftest import PYTHON

TOP = Path(__file__).resolve().parent.parent


def satbridge(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(TOP / "bridge.py"), "--root", str(root), *args], capture_output=True, text=True, timeout=60
    )


def satctl(config_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "satbridge.client", "--config-dir", str(config_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=TOP,
    )


def test_version(tmp_path):
    result = satbridge(tmp_path, "version")
    assert result.returncode == 0
    assert result.stdout.startswith("satbridge 0.")


def test_pair_window_open_show_close(tmp_path):
    opened = satbridge(tmp_path, "pair-window", "open", "--json")
    assert opened.returncode == 0, opened.stderr
    window = json.loads(opened.stdout)
    assert len(window["code"]) == 19
    assert window["attempts_left"] == 50  # pairing.max_failures: the ceiling for all sources
    assert len(window["fingerprint"]) == 64
    shown = satbridge(tmp_path, "pair-window", "show")
    assert shown.returncode == 0
    assert window["code"] in shown.stdout, "show prints the code every console shows (issue 19)"
    assert "Code:" in shown.stdout
    assert window["fingerprint"][:4] in shown.stdout
    state = tmp_path / "var/lib/satbridge/pairing-window.json"
    assert state.stat().st_mode & 0o077 == 0, "the kept code is private"
    assert satbridge(tmp_path, "pair-window", "close").returncode == 0
    again = satbridge(tmp_path, "pair-window", "show")
    assert again.returncode == EXIT_CODES[Kind.FAILED_PRECONDITION]
    assert "no pairing window" in again.stderr


def test_status_json(tmp_path):
    result = satbridge(tmp_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["bridge_version"]
    assert status["instance_id"] == "", "status creates no instance: the first start does"
    assert not any(tmp_path.rglob("*.json")), "a read-only command created state"
    assert satbridge(tmp_path, "disconnect").returncode == 0  # any other command starts the satellite
    status = json.loads(satbridge(tmp_path, "status", "--json").stdout)
    assert status["instance_id"]
    assert not status["pairing"]["paired"]
    assert status["state_generation"] == 0


def test_read_only_commands_on_a_mistyped_root_fail_and_create_nothing(tmp_path):
    # Issue 18, case 7: `--root /nonexistent/x --sandbox status` exited 0 after making a satellite.
    missing = tmp_path / "nonexistent" / "x"
    for command in (["status"], ["xcc", "status"], ["firewall", "show"], ["network", "show"]):
        result = satbridge(missing, *command)
        assert result.returncode == EXIT_CODES[Kind.NOT_FOUND], (command, result.stdout, result.stderr)
        assert "--root" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_typed_numbers_are_ascii_and_name_their_flag(tmp_path):
    # Issue 18, case 5, on the command line: every typed number goes through one grammar.
    for args, flag in (
        (["network", "static", "--address", "192.0.2.10/2\u00b2", "--no-confirm"], "address"),
        (["network", "dhcp", "--confirm-timeout", "\u0663\u0660"], "--confirm-timeout"),
        (["xcc", "status", "--timeout", "nan"], "--timeout"),
        (["--listen", "[::]:5005\uff11", "status"], "--listen"),
    ):
        result = satbridge(tmp_path, *args)
        assert result.returncode == EXIT_CODES[Kind.INVALID_ARGUMENT], (args, result.stderr)
        assert flag in result.stderr
        assert "Traceback" not in result.stderr


def test_disconnect_when_unpaired_is_harmless(tmp_path):
    result = satbridge(tmp_path, "disconnect")
    assert result.returncode == 0
    assert "not paired" in result.stdout


def test_bad_config_names_the_key(tmp_path):
    config = tmp_path / "etc/satbridge/satbridge.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[pairing]\nmax_attempts = 0\n")
    result = satbridge(tmp_path, "status")
    assert result.returncode == EXIT_CODES[Kind.INVALID_ARGUMENT]
    assert "pairing.max_attempts" in result.stderr


def test_bad_listen_flag_names_the_flag(tmp_path):
    result = satbridge(tmp_path, "--listen", "nowhere", "status")
    assert result.returncode == 2
    assert "--listen" in result.stderr


def test_init_config_writes_the_defaults_once(tmp_path):
    assert satbridge(tmp_path, "init-config").returncode == 0
    path = tmp_path / "etc/satbridge/satbridge.toml"
    path.write_text(path.read_text() + "# edited\n")
    assert satbridge(tmp_path, "init-config").returncode == 0
    assert path.read_text().endswith("# edited\n")


def test_serve_refuses_a_port_in_use(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = satbridge(
            tmp_path, "--sandbox", "--serve", "--listen", f"127.0.0.1:{port}", "--pairing-listen", "127.0.0.1:0"
        )
    assert result.returncode == EXIT_CODES[Kind.UNAVAILABLE]
    assert f"127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["status"], EXIT_CODES[Kind.NOT_FOUND], "satctl pair"),
        (["pair", "127.0.0.1", "short"], EXIT_CODES[Kind.INVALID_ARGUMENT], "code"),
        (["pair", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--port", "0"], EXIT_CODES[Kind.INVALID_ARGUMENT], "--port"),
        (["pair", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--pairing-port", "1"], EXIT_CODES[Kind.UNAVAILABLE], "1"),
        (["pair", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--as", "bad\nname"], EXIT_CODES[Kind.INVALID_ARGUMENT], "name"),
    ],
)
def test_satctl_errors(tmp_path, args, code, text):
    result = satctl(tmp_path / "ctl", *args)
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    assert "Traceback" not in result.stderr


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_what_make_run_prints_is_what_works(tmp_path):
    """`make run`'s three commands (Makefile): every `satctl ...` line the window prints pairs, and
    none names an address or port where nothing listens (it once printed the host's own address
    before 127.0.0.1, which failed with exit 4)."""
    from tests.lab.bridge import free_port

    flags = ["--sandbox", "--listen", f"127.0.0.1:{free_port()}", "--pairing-listen", f"127.0.0.1:{free_port()}"]
    assert satbridge(tmp_path, *flags, "init-config").returncode == 0
    from satbridge.config import load_config

    written = load_config(tmp_path, env={}).server  # what the console reads: the file alone
    assert [str(written.listen), str(written.pairing_listen)] == [flags[2], flags[4]]
    opened = satbridge(tmp_path, *flags, "pair-window", "open")
    assert opened.returncode == 0, opened.stderr
    commands = [
        line.split(":", 1)[1].split() for line in opened.stdout.splitlines() if line.startswith("On the server")
    ]
    assert commands, opened.stdout
    serving = subprocess.Popen(
        [PYTHON, str(TOP / "bridge.py"), "--root", str(tmp_path), *flags, "--serve", "--log-level", "warning"],
        stderr=subprocess.DEVNULL,
    )
    try:
        pairing_port = int(flags[-1].rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while not listening(pairing_port):
            assert serving.poll() is None, "the bridge exited"
            assert time.monotonic() < deadline, "the bridge did not listen within 30 s"
            time.sleep(0.05)
        for n, command in enumerate(commands):
            assert command[0] == "satctl"
            paired = satctl(tmp_path / f"ctl{n}", *command[1:])
            assert paired.returncode == 0, f"{' '.join(command)}: {paired.stderr}"
            # the window closes with the first pairing; any later line would be a second window's
            break
    finally:
        serving.terminate()
        serving.wait(timeout=30)
    assert len(commands) == 1, f"a loopback listen is reachable at one address only: {commands}"


def test_port_zero_prints_no_line_that_cannot_work(tmp_path):
    opened = satbridge(
        tmp_path, "--sandbox", "--listen", "127.0.0.1:0", "--pairing-listen", "127.0.0.1:0", "pair-window", "open"
    )
    assert opened.returncode == 0, opened.stderr
    assert "--port 0" not in opened.stdout
    assert "with the ports the bridge listens on" in opened.stdout


def test_a_root_that_is_a_file_is_one_line_naming_root(tmp_path):
    """Red team 18, finding 8: `--root FILE` (or a path through a file) was a NotADirectoryError
    traceback from load_config."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    for root in (afile, afile / "x"):
        for command in (["status"], ["firewall", "reset"], ["factory-reset", "--yes"]):
            result = satbridge(root, "--sandbox", *command)
            assert result.returncode == EXIT_CODES[Kind.INVALID_ARGUMENT], (root, command, result.stderr)
            assert "--root" in result.stderr
            assert "Traceback" not in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert afile.read_text() == "x"


def test_an_empty_or_spaced_value_is_refused_naming_its_flag(tmp_path):
    """Red team 18, finding 9: `xcc start --timeout ''` was the default, `--gateway ''` no
    gateway, and `--address $'192.0.2.10/2\\n'` a /2."""
    for args, field in (
        (["xcc", "start", "--timeout", ""], "--timeout"),
        (["network", "static", "--address", "192.0.2.10/24", "--gateway", "", "--no-confirm"], "gateway"),
        (["network", "static", "--address", "192.0.2.10/2\n", "--no-confirm"], "address"),
        (["network", "static", "--address", "192.0.2.10/24", "--dns", " 192.0.2.53", "--no-confirm"], "dns[0]"),
        (["network", "dhcp", "--confirm-timeout", "030"], "--confirm-timeout"),
    ):
        result = satbridge(tmp_path, "--sandbox", *args)
        assert result.returncode == EXIT_CODES[Kind.INVALID_ARGUMENT], (args, result.stderr)
        assert field in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_dhcp_while_on_dhcp_changes_nothing(tmp_path):
    # Issue 19, finding 10: the CLI answers like the console, and asks for no confirmation.
    result = satbridge(tmp_path, "--sandbox", "network", "dhcp")
    assert result.returncode == 0, result.stderr
    assert "Already in force: nothing to change." in result.stdout
    assert "KEEP THIS SETTING" not in result.stdout
