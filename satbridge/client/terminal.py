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
        say(f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)")
        raise SystemExit(EXIT_USAGE)


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


def seconds(flag: str, *, hi: float = 86400.0) -> Callable[[str], float]:
    """An argparse type: a duration > 0 written in ASCII like 30 or 2.5 (no sign, nan, inf)."""
    from satbridge.core.grammar import parse_seconds
    from satbridge.errors import InvalidArgument

    def parse(text: str) -> float:
        try:
            value = parse_seconds(text, field=flag, lo=0.0, hi=hi)
        except InvalidArgument:
            value = 0.0
        if value <= 0:
            raise argparse.ArgumentTypeError(
                f"seconds must be more than 0 and at most {hi:g}, like 30 or 2.5: {text!r}"
            )
        return value

    return parse


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
