"""xcc.service as rendered: every allowed argv comes back exactly as systemd reads ExecStart=."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satbridge.core.package import check_command
from satbridge.core.units import exec_word, render_xcc_unit
from satbridge.errors import InvalidArgument

_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "s": " "}
_C_ESCAPES.update({c: c for c in "\\\"'"})


def systemd_argv(line: str) -> list[str]:
    """A model of how systemd reads an ExecStart= value into argv (systemd.service(5) "Command
    lines", systemd.syntax(7) "Quoting"; extract_first_word(EXTRACT_UNQUOTE | EXTRACT_CUNESCAPE),
    then specifiers per word, then environment substitution at exec). A lone `;` separates
    commands, `%x` other than `%%` and `$NAME`/`${NAME}` expand: each is returned as a marker that
    no argv holds, so the property below fails on them. Raises ValueError on what systemd refuses."""
    if "\n" in line:
        raise ValueError("a second line")
    words: list[str] = []
    at = 0
    while at < len(line):
        if line[at] in " \t":
            at += 1
            continue
        if line[at] == ";" and (at + 1 == len(line) or line[at + 1] in " \t"):
            words.append("<SEPARATOR>")
            at += 1
            continue
        word, quote = "", ""
        while at < len(line) and (quote or line[at] not in " \t"):
            char = line[at]
            if char == quote:
                quote, at = "", at + 1
            elif not quote and char in "\"'":
                quote, at = char, at + 1
            elif char == "\\":
                escape = line[at + 1]
                if escape == "x":
                    word, at = word + chr(int(line[at + 2 : at + 4], 16)), at + 4
                elif escape in _C_ESCAPES:
                    word, at = word + _C_ESCAPES[escape], at + 2
                else:
                    raise ValueError(f"unknown escape \\{escape}")
            else:
                word, at = word + char, at + 1
        if quote:
            raise ValueError("unbalanced quotes")
        words.append(word)
    specified = [re.sub(r"%(.)", lambda m: "%" if m.group(1) == "%" else "<SPECIFIER>", w) for w in words]
    return [
        re.sub(r"\$(\$|\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*)", lambda m: "$" if m.group(1) == "$" else "<ENV>", w)
        for w in specified
    ]


def _exec_start(unit: str) -> str:
    (line,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=")


# Any text but control characters and surrogates, weighted towards what systemd treats specially.
_special = st.sampled_from([*"\"'\\%$;{} -@+!:=#[]", "%n", "$HOME", "${X}", "\\x41", "\\n", "$$", "%%", "é", "€"])
_char = st.characters(blacklist_categories=("Cc", "Cs"))
_arg = st.lists(st.one_of(_special, _char), min_size=1, max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(argv=st.lists(_arg, min_size=1, max_size=6))
def test_any_allowed_argv_comes_back_exactly(argv):
    """For any argv the manifest grammar allows, systemd's reading of the rendered ExecStart=
    gives back that argv, word for word: no specifier, variable, escape or separator acts."""
    try:
        check_command(argv)
    except InvalidArgument:
        return
    command = ["/opt/xcc/current/bin/xcc", *argv]
    unit = render_xcc_unit(command, working_directory="/opt/xcc/current", log_directory="xcc")
    assert systemd_argv(_exec_start(unit)) == command


@pytest.mark.parametrize(
    "injection", ["1\nExecStartPre=+/bin/sh -c 'touch /tmp/PWNED'\nProtectSystem=no", "a\rb", "\x85", "\x7f"]
)
def test_arguments_that_would_end_the_line_are_refused(injection):
    """Red team, issue 14: a newline in a signed argument wrote directives into xcc.service."""
    with pytest.raises(InvalidArgument) as refused:
        check_command(["bin/xcc", injection])
    assert refused.value.field == "manifest.command[1]"
    with pytest.raises(ValueError, match="ExecStart"):
        exec_word(injection)


@pytest.mark.parametrize("inert", ["%n-$HOME-\\x41", ";", "-", "+/bin/sh", "${HOME}", "'", '"', "\\"])
def test_specifiers_variables_escapes_and_separators_stay_literal(inert):
    unit = render_xcc_unit(["/x", inert], working_directory="/", log_directory="xcc")
    assert systemd_argv(_exec_start(unit)) == ["/x", inert]


def test_the_line_is_quoted_for_systemd_not_for_a_shell():
    unit = render_xcc_unit(["/opt/x", "a b", "%n", "$HOME", "\\x41"], working_directory="/", log_directory="x")
    assert _exec_start(unit) == '"/opt/x" "a b" "%%n" "$$HOME" "\\\\x41"'
