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
        # issue 20's rest: --json everywhere, the one duration grammar, -o -
        ["version", "--json"],
        ["version", "--timeout", number],
        ["pair", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--json", "--timeout", number],
        ["unpair", "--json"],
        ["firewall", "set", file, "--leave-pending", "--confirm-timeout", number, "--json"],
        ["firewall", "set", file, "--no-confirm", "--confirm-timeout", number],
        ["firewall", "set", file, "--no-confirm", "--leave-pending", "--json"],
        ["firewall", "confirm", number, "--json"],
        ["firewall", "reset", "--json"],
        ["update", file, "--json", "--health-gate", number],
        ["sync", file, "--json"],
        ["commission", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--xcc", file, "--json"],
        ["logs", "get", "xcc/x.log", "-o", "-", "--timeout", number],
        ["logs", "bundle", "-o", "-"],
        ["package", "build", file, "--key", file, "-o", "-"],
        ["package", "keygen", "-o", "-"],
        # issue 22: satctl watch
        ["watch", "--since", number],
        ["watch", "--count", number, "--json"],
        ["watch", "--json", "--timeout", number],
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
            ["xcc", "start", "--timeout", number, "--json"],
            ["network", "dhcp", "--confirm-timeout", number, "--json"],
            ["network", "static", "--address", "192.0.2.10/24", "--confirm-timeout", number, "--json"],
            ["network", "dhcp", "--no-confirm", "--confirm-timeout", number],
            ["network", "hostname", number, "--json"],
        ):
            run_bridge([*root, *argv], capsys)
    for argv in (
        ["network", "confirm", "--json"],  # nothing pending: 3
        ["network", "revert", "--json"],
        ["pair-window", "close", "--json"],
        ["pair-window", "show", "--json"],
        ["disconnect", "--json"],
        ["version", "--json"],
        ["version", "--json", "--root", str(tmp_path / "missing-root")],
        ["pair-window", "open", "--json", "--config", str(odd_files["malformed"])],
        ["factory-reset", "--json"],  # no --yes: 2
        ["init-config", "--json", "--config", str(odd_files["directory"])],
        ["init-config", "--json", "--config", str(odd_files["dev-full"])],
    ):
        run_bridge([*root, *argv], capsys)
    for file in odd_files.values():
        run_bridge(["--root", str(tmp_path / "root"), "--config", str(file), "status"], capsys)
        run_bridge(["--root", str(file), "status"], capsys)


WORDS = [
    *("status", "xcc", "start", "firewall", "set", "show", "get", "confirm", "logs", "list", "pair", "-o"),
    *("version", "unpair", "sync", "update", "reset", "bundle", "-", "2.5", "watch"),
]
FLAGS = [
    *("--timeout", "--json", "--port", "-n", "--lines", "--since", "--compression", "--wait", "--count"),
    *("--confirm-timeout", "--leave-pending", "--no-confirm", "--health-gate"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(
        st.one_of(
            st.sampled_from(WORDS),
            st.sampled_from(FLAGS),
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
    said: list[str] = []
    for argv in (["menu"], []):
        done = subprocess.run(
            [PYTHON, str(TOP / "bridge.py"), "--root", str(tmp_path), "--sandbox", *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 3, done.stderr  # `satbridge` alone is the menu: the same refusal
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "terminal" in done.stderr
        said.append(done.stderr)
    assert said[0] == said[1]


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


DURATIONS_OK = ["0.5", "2.5", "1", "30", "600", "600.0", "599.99"]
DURATIONS_BAD = ["0", "0.0", "601", "600.5", "-1", "nan", "inf", "1e3", "", " 5", "٢", "2,5", "3600"]


def test_one_duration_grammar_for_every_duration_flag_of_both_tools(capsys):
    """`--timeout`, `--confirm-timeout`, `--wait`, `--health-gate`: the same parser in both
    tools (more than 0, at most 600, decimals like 2.5); satbridge once refused
    `xcc --timeout 0.5` and capped --confirm-timeout at 600 where satctl took 3600."""
    ctl, bridge = ctl_cli._parser(), bridge_cli._parser()
    places = [
        (ctl, ["--timeout", "{}", "status"], "timeout"),
        (ctl, ["xcc", "start", "--wait", "{}"], "timeout"),
        (ctl, ["firewall", "set", "f", "--confirm-timeout", "{}"], "confirm_timeout"),
        (ctl, ["update", "p", "--health-gate", "{}"], "health_gate"),
        (bridge, ["xcc", "start", "--timeout", "{}"], "timeout"),
        (bridge, ["network", "dhcp", "--confirm-timeout", "{}"], "confirm_timeout"),
        (bridge, ["network", "static", "--address", "192.0.2.1/24", "--confirm-timeout", "{}"], "confirm_timeout"),
    ]
    for parser, argv, dest in places:
        for value in DURATIONS_OK:
            opts = parser.parse_args([a.format(value) for a in argv])
            assert getattr(opts, dest) == float(value), (argv, value)
        for value in DURATIONS_BAD:
            if dest == "health_gate" and value in ("0", "0.0"):
                continue  # --health-gate 0: the satellite's own setting
            with pytest.raises(SystemExit) as refused:
                parser.parse_args([a.format(value) for a in argv])
            assert refused.value.code == 2
            err = capsys.readouterr().err
            assert "at most 600" in err, err
            assert len(err.strip().splitlines()) == 1
    from satbridge.client.terminal import whole_seconds

    assert [whole_seconds(v) for v in (0.5, 2.5, 3.0, 600.0)] == [1, 3, 3, 600]


def test_leave_pending_goes_with_confirm_timeout_and_its_help_says_so(capsys):
    opts = ctl_cli._parser().parse_args(["firewall", "set", "f", "--leave-pending", "--confirm-timeout", "60"])
    assert (opts.leave_pending, opts.confirm_timeout) == (True, 60.0)
    with pytest.raises(SystemExit):
        ctl_cli._parser().parse_args(["firewall", "set", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "rolls the change back when the --confirm-timeout (default 30 s) runs out" in text


def test_every_error_is_one_line_in_one_style(tmp_path, capsys):
    """`PROG: error: FIELD: message`, whichever tool and whichever subcommand refused it; no
    message of either CLI goes to stderr but through terminal.say (grep)."""
    code, _, err = run_ctl(["firewall", "set", "f", "--confirm-timeout", "x"], capsys)
    assert code == 2
    assert err.startswith("satctl: error: --confirm-timeout: "), err
    code, _, err = run_ctl(["logs", "get", "x", "-n", "x"], capsys)
    assert err.startswith("satctl: error: --lines: "), err
    code, _, err = run_bridge(["network", "dhcp", "--confirm-timeout", "x"], capsys)
    assert err.startswith("satbridge: error: --confirm-timeout: "), err
    code, _, err = run_bridge(["xcc", "dance"], capsys)
    assert err.startswith("satbridge: error: action: "), err
    for source in (TOP / "satbridge/cli.py", TOP / "satbridge/client/cli.py"):
        text = source.read_text()
        assert "file=sys.stderr" not in text, source
        assert "sys.stderr.write" not in text, source


def test_unpaired_status_says_nothing_is_paired_and_how_to_pair(tmp_path, capsys):
    for argv in (["status"], ["version"], ["firewall", "show"], ["unpair", "--json"]):
        code, out, err = run_ctl(["--config-dir", str(tmp_path / "ctl"), *argv], capsys)
        assert code == 6, err
        assert "no satellite is paired" in err
        assert "satctl pair ADDRESS CODE" in err
        assert "''" not in err
        assert out == ""


def test_output_dash_and_fifos(tmp_path, capsys):
    """terminal.open_output: `-` is standard output; a FIFO without a reader is DeadlineExceeded
    after `wait`, never a blocking open; with a reader it is written."""
    import sys
    import threading
    import time

    from satbridge.client.terminal import open_output
    from satbridge.errors import DeadlineExceeded

    assert open_output("-") is sys.stdout.buffer
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as late:
        open_output(fifo, wait=0.2)
    assert time.monotonic() - started < 5
    assert str(fifo) in str(late.value)
    got: list[bytes] = []

    def read() -> None:
        time.sleep(0.2)  # the reader comes second
        with open(fifo, "rb") as reader:
            got.append(reader.read())

    reader = threading.Thread(target=read)
    reader.start()
    with open_output(fifo, wait=10) as out:
        out.write(b"x" * 200000)  # more than a pipe holds: the writes wait for the reader
    reader.join(10)
    assert got == [b"x" * 200000]
    plain = tmp_path / "plain"
    with open_output(plain) as out:
        out.write(b"a")
    with open_output(plain, append=True) as out:
        out.write(b"b")
    assert plain.read_bytes() == b"ab"


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=12), st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,3})?", fullmatch=True)))
def test_the_duration_parser_takes_exactly_ascii_decimals_above_0_up_to_600(text):
    import argparse
    import re

    from satbridge.client.terminal import MAX_SECONDS, seconds, whole_seconds

    # ASCII decimal digits, no leading zero, no sign, exponent, space or other digits
    written = re.fullmatch(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,9})?", text) is not None
    wanted = written and 0 < float(text) <= MAX_SECONDS
    if not wanted:
        with pytest.raises(argparse.ArgumentTypeError, match="at most 600"):
            seconds("--timeout")(text)
        return
    value = seconds("--timeout")(text)
    assert wanted, text
    assert value == float(text)
    assert 1 <= whole_seconds(value) <= MAX_SECONDS
    assert whole_seconds(value) >= value


def test_dash_is_never_a_file_or_directory_named_dash(tmp_path, capsys, monkeypatch):
    """`-o -` means standard output; where that cannot be (keys, a package), it is refused
    naming --output, and nothing named `-` appears."""
    monkeypatch.chdir(tmp_path)
    for argv in (["package", "keygen", "-o", "-"], ["package", "build", str(tmp_path), "--key", "k", "-o", "-"]):
        code, _, err = run_ctl(["--config-dir", str(tmp_path / "ctl"), *argv], capsys)
        assert code == 2, err
        assert "--output" in err
        assert not (tmp_path / "-").exists()


def test_satctl_words_that_are_not_utf8_are_refused_naming_the_argument(tmp_path, capsys):
    """Red team (issue 20): `satctl logs get $'\\xff'` was `internal error: UnicodeEncodeError`
    (exit 1): a log NAME or a --name the command line held as bytes that are not UTF-8."""
    word = os.fsdecode(b"\xff\xfe")
    config = ["--config-dir", str(tmp_path / "ctl")]
    for argv, field in (
        (["logs", "get", word], "NAME"),
        (["logs", "get", f"xcc/{word}.log", "-o", "-"], "NAME"),
        (["pair", "127.0.0.1", "K7QM-9T2X-HF4D-PW8R", "--name", word], "--name"),
    ):
        code, _, err = run_ctl([*config, *argv], capsys)
        assert code == 2, (argv, err)
        assert err.startswith(f"satctl: error: {field}: "), err


@pytest.mark.parametrize("fifo", ["ctl/inventory.json", "ctl/client.key", "pkg/package.json"])
def test_satctl_own_files_as_fifos_are_refused_not_waited_on(tmp_path, fifo):
    """Red team (issue 20): satctl hung for ever when its inventory.json or client.key in
    --config-dir, or a `package build DIR`'s package.json, was a FIFO (a blocking read)."""
    (tmp_path / "ctl").mkdir()
    (tmp_path / "pkg" / "payload").mkdir(parents=True)
    (tmp_path / "key").write_bytes(b"")
    if fifo == "ctl/client.key":  # the key is read once a satellite is to be called
        (tmp_path / "ctl/inventory.json").write_text(
            '{"default": "s", "satellites": {"s": {"name": "s", "host": "127.0.0.1", "port": 9, "pairing_port": 9,'
            ' "fingerprint": "", "identity_pem": "", "cert_pem": ""}}}'
        )
    os.mkfifo(tmp_path / fifo)
    command = ["package", "build", str(tmp_path / "pkg"), "--key", str(tmp_path / "key")]
    if fifo.startswith("ctl/"):
        command = ["status"]
    done = subprocess.run(
        [PYTHON, "-m", "satbridge.client", "--config-dir", str(tmp_path / "ctl"), *command],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=TOP,
    )
    assert done.returncode == 2, done.stderr
    assert "not a regular file" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_a_missing_root_is_named_in_the_one_error_style(tmp_path, capsys):
    """Red team (issue 20): `satbridge --root MISSING status` said `error: --root MISSING: ...`,
    not `PROG: error: FIELD: message` as every other error does."""
    for argv in (["status"], ["version", "--json"], ["firewall", "show", "--json"]):
        code, _, err = run_bridge(["--root", str(tmp_path / "missing"), *argv], capsys)
        assert code == 6, err
        assert err.startswith(f"satbridge: error: --root: {tmp_path / 'missing'}: no such directory"), err
