"""What both CLIs (satbridge, satctl) share at their edge: the parser, the typed values, and the
one place an exception becomes one line on stderr and a documented exit code.

No traceback reaches an operator: a SatbridgeError is its kind's exit code; a file the command
line named that cannot be read or written is exit 2 (7 when the disk is full, 5 when access is
refused); a reader that went away (`| head -1`) is exit 141, silently; anything else is exit 1
with one line (SATBRIDGE_DEBUG=1 prints the traceback as well).
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable
from typing import BinaryIO

from satbridge.errors import EXIT_CODES, Kind, SatbridgeError

EXIT_USAGE = 2
"""A command line argparse refuses (also INVALID_ARGUMENT's code)."""
EXIT_CLOSED_PIPE = 128 + signal.SIGPIPE
"""The reader of standard output went away: what a shell reports for a tool killed by SIGPIPE."""
EXIT_INTERRUPTED = 130

_OS_EXIT = {
    errno.ENOSPC: EXIT_CODES[Kind.RESOURCE_EXHAUSTED],
    errno.EDQUOT: EXIT_CODES[Kind.RESOURCE_EXHAUSTED],
    errno.EFBIG: EXIT_CODES[Kind.RESOURCE_EXHAUSTED],
    errno.EACCES: EXIT_CODES[Kind.PERMISSION_DENIED],
    errno.EPERM: EXIT_CODES[Kind.PERMISSION_DENIED],
    errno.EROFS: EXIT_CODES[Kind.PERMISSION_DENIED],
}


class Parser(argparse.ArgumentParser):
    """argparse, but a refused command line is one line on stderr (exit 2), not the usage too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # One style for every error of both tools, `PROG: error: FIELD: message`: argparse's
        # `argument --x: ...` and a subcommand's prog (`satctl firewall set`) are rewritten to it.
        root = self.prog.split()[0]
        message = re.sub(r"^argument ([^:]+): ", lambda m: f"{_long_name(m.group(1))}: ", message)
        say(f"{root}: error: {message} (see {self.prog} --help)")
        raise SystemExit(EXIT_USAGE)


def _long_name(names: str) -> str:
    """`-o/--output` as `--output`: an option's long name, the one the README uses."""
    spelled = names.split("/")
    return next((n for n in spelled if n.startswith("--")), spelled[0])


# What would break the one line or act on the terminal (ECMA-48 controls; the characters
# str.splitlines() takes as line ends; UAX #9's bidi controls): shown escaped when quoted.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def say(line: str) -> None:
    """One line on stderr, whatever the locale and whatever bytes or controls the line quotes."""
    text = (
        _UNSAFE.sub(
            lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
            line.rstrip("\n"),
        )
        + "\n"
    )
    try:
        sys.stderr.buffer.write(text.encode("utf-8", "backslashreplace"))
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass  # no stderr to tell: the exit code still says it


def globals_everywhere(
    parser: argparse.ArgumentParser, add: Callable[[argparse.ArgumentParser, bool], None], *, top: bool = True
) -> None:
    """Global options accepted before or after any subcommand: `add(p, top)` adds them; on every
    subparser they default to SUPPRESS, so a value given before the subcommand is kept."""
    add(parser, top)
    for sub in _subparsers(parser):
        globals_everywhere(sub, add, top=False)


def _subparsers(parser: argparse.ArgumentParser) -> Iterable[argparse.ArgumentParser]:
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if id(sub) not in seen:  # an alias maps to the same parser
                    seen.add(id(sub))
                    yield sub


MAX_SECONDS = 600
"""The one range of every duration flag of both tools (`--timeout`, `--confirm-timeout`,
`--health-gate`): more than 0 and at most 600 seconds, the bridge's own limit for waiting on
systemd (services/xcc.py) and for a network change's rollback window (services/network.py)."""


def seconds(flag: str, *, zero: bool = False) -> Callable[[str], float]:
    """The one argparse type for a duration, in both tools: seconds written in ASCII like 30 or
    2.5, more than 0 (or 0 too when `zero`: "the satellite's default") and at most
    MAX_SECONDS; no sign, exponent, nan or inf. The satellite counts whole seconds: see
    `whole_seconds`."""
    from satbridge.core.grammar import parse_seconds
    from satbridge.errors import InvalidArgument

    least = "at least 0" if zero else "more than 0"

    def parse(text: str) -> float:
        try:
            value = parse_seconds(text, field=flag, lo=0.0, hi=MAX_SECONDS)
        except InvalidArgument:
            value = -1.0
        if value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(
                f"seconds must be {least} and at most {MAX_SECONDS}, written like 30 or 2.5: {text!r}"
            )
        return value

    return parse


def whole_seconds(value: float) -> int:
    """A duration as the whole seconds the protocol carries, rounded up: 2.5 s waits 3 s, and a
    rollback window is never shorter than asked (0.5 s must not become 0, "the default")."""
    import math

    return math.ceil(value)


def uint(flag: str, *, lo: int, hi: int) -> Callable[[str], int]:
    """An argparse type: an integer lo..hi in ASCII digits 0-9 (no sign, `_`, or other digits)."""
    from satbridge.core.grammar import parse_uint
    from satbridge.errors import InvalidArgument

    def parse(text: str) -> int:
        try:
            return parse_uint(text, field=flag, lo=lo, hi=hi)
        except InvalidArgument:
            raise argparse.ArgumentTypeError(f"must be {lo}..{hi} in digits 0-9: {text!r}") from None

    return parse


def utf8(flag: str) -> Callable[[str], str]:
    """An argparse type for a word that goes on the wire or into satctl's files (a log NAME, a
    --name): the text as typed, refused (exit 2, naming the flag) when the command line held bytes
    that are not UTF-8 (Python keeps them as lone surrogates, which no protobuf string or JSON file
    can carry)."""

    def parse(text: str) -> str:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise argparse.ArgumentTypeError(f"not valid UTF-8: {text!r}") from None
        return text

    return parse


def to_stdout(path: os.PathLike[str] | str) -> bool:
    """`-o -`: standard output, as every Unix tool reads a lone dash."""
    return os.fspath(path) == "-"


FIFO_POLL = 0.05
"""Seconds between two looks for a FIFO's reader."""


def open_output(path: os.PathLike[str] | str, *, append: bool = False, wait: float = 15.0) -> BinaryIO:
    """The file an `-o/--output` names, open for writing (blocking; run it off the event loop):

    * `-`: standard output (the caller does not close it);
    * a FIFO: written once a reader has it open. The reader may start before or after this
      command (`satctl logs get x -o p & cat p`): it is waited for up to `wait` seconds (the
      command's --timeout), then DeadlineExceeded (exit 9) naming the FIFO. Never an open()
      that blocks forever;
    * anything else: created or truncated (appended to with `append`); what cannot be opened
      is an OSError naming the file (exit 2, 5 or 7 through run()).
    """
    import stat
    import time

    from satbridge.errors import DeadlineExceeded

    if to_stdout(path):
        return sys.stdout.buffer
    try:
        is_fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        is_fifo = False  # missing (it is created) or unreachable (open() says why)
    if not is_fifo:
        return open(path, "ab" if append else "wb")
    deadline = time.monotonic() + wait
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(
                f"{os.fsdecode(path)} is a FIFO and nothing opened it for reading within {wait:g} s "
                "(start its reader, e.g. `cat`, or give a longer --timeout)",
                field="--output",
            )
        time.sleep(FIFO_POLL)
    os.set_blocking(fd, True)  # the reader is there: from now on, writes wait for it as in a pipe
    return os.fdopen(fd, "ab" if append else "wb")


def warn(prog: str, message: str) -> None:
    """A warning in the one style of both tools' errors: `PROG: warning: message`, one line."""
    say(f"{prog}: warning: {message}")


def run(prog: str, body: Callable[[], int]) -> int:
    """Run a CLI's body and turn whatever escapes it into one line and an exit code."""
    try:
        code = body()
        sys.stdout.flush()
        return code
    except SatbridgeError as exc:
        say(f"{prog}: error: {exc}")
        return EXIT_CODES[exc.kind]
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_CLOSED_PIPE
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _silence_stdout()
            return EXIT_CLOSED_PIPE
        where = f"{os.fsdecode(exc.filename)}: " if exc.filename is not None else ""
        say(f"{prog}: error: {where}{exc.strerror or exc}")
        return _OS_EXIT.get(exc.errno or 0, EXIT_USAGE)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - the last resort: a bug, said in one line
        if os.environ.get("SATBRIDGE_DEBUG"):
            import traceback

            traceback.print_exc()
        say(f"{prog}: internal error: {type(exc).__name__}: {exc} (SATBRIDGE_DEBUG=1 shows where)")
        return EXIT_CODES[Kind.INTERNAL]


def _silence_stdout() -> None:
    """Python flushes stdout again at exit; into a closed pipe that would print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
