"""Issue 20: no tracebacks, ever. Every subcommand of both CLIs with odd arguments (numbers,
files, no terminal, a closed pipe) ends with a documented exit code and one line on stderr.

Most calls run in-process (`main(argv)` with captured stdio), so a few hundred cost seconds;
what needs a process of its own (a closed pipe, the menu without a terminal) runs as one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from satbridge import cli as bridge_cli
from satbridge.client import cli as ctl_cli
from tests.conftest import PYTHON

TOP = Path(__file__).resolve().parent.parent
DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 130, 141}
"""README, "Exit codes"."""

ODD_NUMBERS = ["-1", "0", "nan", "inf", "-inf", "1e309", "2" * 30, "²", "٢", "１", " 5", "5 ", "", "0x10", "1_0", "-"]


@pytest.fixture
def odd_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "missing": tmp_path / "missing.json",
        "directory": tmp_path,
        "fifo": tmp_path / "fifo",
        "dev-full": Path("/dev/full"),
        "dev-null": Path("/dev/null"),
        "unreadable": tmp_path / "unreadable",
        "non-utf8": tmp_path / "latin1",
        "malformed": tmp_path / "malformed.json",
        "wrong-type": tmp_path / "list.json",
        "empty": tmp_path / "empty",
    }
    os.mkfifo(files["fifo"])
    files["unreadable"].write_text("{}")
    files["unreadable"].chmod(0)
    files["non-utf8"].write_bytes(b"\xff\xfe{\x00")
    files["malformed"].write_text('{"rules": [')
    files["wrong-type"].write_text("[1, 2]")
    files["empty"].write_bytes(b"")
    return files


def check(code: int, err: str, argv: list[str]) -> None:
    assert "Traceback" not in err, (argv, err)
    assert code in DOCUMENTED, (argv, code, err)
    assert code != 1 or "internal error" not in err, (argv, err)  # the last resort caught a bug
    lines = err.strip().splitlines()
    if code:
        assert len(lines) == 1, (argv, err)


def run_ctl(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = ctl_cli.main(argv)
    except SystemExit as exc:  # argparse: --help, --version, a refused command line
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    check(code, err, argv)
    return code, out, err


def run_bridge(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = bridge_cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    check(code, err, argv)
    return code, out, err


def ctl_commands(number: str, file: str) -> list[list[str]]:
    return [
        ["--timeout", number, "status"],
        ["status", "--timeout", number],
        ["pair", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--port", number],
        ["pair", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--pairing-port", number],
        ["pair", number or "x", "K7QM-9T2X-HF4D-PW8R"],
        ["pair", "127.0.0.1", number],
        ["xcc", "start", "--timeout", number],
        ["xcc", "start", "--wait", number],
        ["firewall", "confirm", number],
        ["firewall", "set", file, "--confirm-timeout", number],
        ["firewall", "set", file],
        ["logs", "get", "xcc/x.log", "--lines", number],
        ["logs", "get", "xcc/x.log", "-o", file],
        ["update", file, "--health-gate", number],
        ["update", file],
        ["sync", file],
        ["commission", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--xcc", file],
        ["package", "build", file, "--key", file],
        ["package", "keygen", "-o", file],
        ["unpair"],
        ["list", "--json"],
        ["logs", "bundle", "-o", file],
    ]


def test_satctl_odd_numbers_and_files(tmp_path, odd_files, capsys):
    config = ["--config-dir", str(tmp_path / "ctl")]
    for number in ODD_NUMBERS:
        for argv in ctl_commands(number, str(odd_files["malformed"])):
            run_ctl([*config, *argv], capsys)
    for file in odd_files.values():
        for argv in ctl_commands("5", str(file)):
            if argv[:2] == ["package", "keygen"] and file.is_dir():
                continue  # a directory is where keygen writes: it would succeed
            run_ctl([*config, *argv], capsys)
        run_ctl(["--config-dir", str(file), "status"], capsys)  # e.g. --config-dir /etc/passwd


def test_satbridge_odd_numbers_and_files(tmp_path, odd_files, capsys):
    root = ["--root", str(tmp_path / "root"), "--sandbox"]
    for number in ODD_NUMBERS:
        for argv in (
            ["xcc", "status", "--timeout", number],
            ["network", "dhcp", "--confirm-timeout", number],
            ["network", "static", "--address", f"192.0.2.10/{number}", "--confirm-timeout", number],
            ["--listen", f"127.0.0.1:{number}", "status"],
            ["status", "--listen", f"127.0.0.1:{number}"],
        ):
            run_bridge([*root, *argv], capsys)
    for file in odd_files.values():
        run_bridge(["--root", str(tmp_path / "root"), "--config", str(file), "status"], capsys)
        run_bridge(["--root", str(file), "status"], capsys)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(
        st.one_of(
            st.sampled_from(
                ["status", "xcc", "start", "firewall", "set", "show", "get", "confirm", "logs", "list", "pair", "-o"]
            ),
            st.sampled_from(["--timeout", "--json", "--port", "-n", "--lines", "--since", "--compression", "--wait"]),
            st.text(max_size=8),
        ),
        max_size=6,
    )
)
def test_satctl_random_command_lines(tmp_path, capsys, words):
    words = [w.replace("\0", "") for w in words]
    run_ctl(["--config-dir", str(tmp_path / "ctl"), *words], capsys)


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_a_timeout_that_is_no_duration_is_exit_2_naming_the_flag(tmp_path, capsys, value):
    code, _, err = run_ctl(["--config-dir", str(tmp_path), "--timeout", value, "status"], capsys)
    assert code == 2
    assert "--timeout" in err


def test_global_options_anywhere_and_version(tmp_path, capsys):
    missing = str(tmp_path / "no-such-ctl")
    for argv in (["--config-dir", missing, "list", "--json"], ["list", "--json", "--config-dir", missing]):
        code, out, _ = run_ctl(argv, capsys)
        assert code == 0
        assert '"satellites": []' in out
    code, out, _ = run_ctl(["--version"], capsys)
    assert code == 0
    assert out.startswith("satctl ")
    code, out, _ = run_ctl(["status", "--version"], capsys)
    assert out.startswith("satctl ")
    root = str(tmp_path / "root")
    for argv in (["--root", root, "--sandbox", "firewall", "show"], ["firewall", "show", "--root", root, "--sandbox"]):
        code, out, err = run_bridge(argv, capsys)
        assert code == 6, err  # a read-only command on a root that does not exist
        assert root in err
    code, out, _ = run_bridge(["--version"], capsys)
    assert out.startswith("satbridge ")


def test_old_spellings_still_work(tmp_path, capsys):
    """--wait, --compress, --out, `firewall get`: documented before, hidden aliases now."""
    parser = ctl_cli._parser()
    assert parser.parse_args(["xcc", "start", "--wait", "30"]).timeout == 30
    assert parser.parse_args(["logs", "get", "x", "--compress", "gzip"]).compression == "gzip"
    assert parser.parse_args(["package", "keygen", "--out", "k"]).output == Path("k")
    assert parser.parse_args(["firewall", "get"]).action == "get"


def test_the_menu_without_a_terminal_is_one_line(tmp_path):
    for argv in (["menu"], []):
        done = subprocess.run(
            [PYTHON, str(TOP / "bridge.py"), "--root", str(tmp_path), "--sandbox", *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode in (2, 3), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "terminal" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["bridge.py", "--sandbox", "firewall", "show"],
        ["bridge.py", "--sandbox", "status", "--json"],
        ["-m", "satbridge.client", "--help"],
        ["-m", "satbridge.client", "list", "--json"],
    ],
)
def test_a_closed_pipe_is_no_traceback(tmp_path, argv):
    """`satbridge firewall show | head -1`: the reader goes away before the writer writes."""
    head = [str(TOP / argv[0])] if argv[0] == "bridge.py" else argv[:2]
    rest = argv[1:] if argv[0] == "bridge.py" else argv[2:]
    where = ["--root", str(tmp_path)] if argv[0] == "bridge.py" else ["--config-dir", str(tmp_path / "ctl")]
    if argv[0] == "bridge.py":
        subprocess.run([PYTHON, str(TOP / "bridge.py"), *where, "disconnect"], capture_output=True, check=True)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    try:
        done = subprocess.run(
            [PYTHON, *head, *where, *rest], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60, cwd=TOP
        )
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
    assert done.returncode == 141, done.stderr
