"""systemd unit data: the state we report, and the xcc.service file we write (pure)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

XCC_UNIT = "xcc.service"


@dataclass(frozen=True)
class UnitState:
    """What systemd says of a unit (the fields of XccState)."""

    load_state: str = "not-found"
    active_state: str = "inactive"
    sub_state: str = "dead"
    since: float | None = None  # StateChangeTimestamp, seconds since the epoch
    main_pid: int = 0
    exec_main_status: int = 0
    result: str = ""
    unit_file_state: str = ""

    @property
    def loaded(self) -> bool:
        return self.load_state == "loaded"

    @property
    def enabled(self) -> bool:
        return self.unit_file_state in {"enabled", "enabled-runtime", "linked", "alias"}


@dataclass(frozen=True)
class XccStatus:
    installed: bool
    version: str
    unit: UnitState


class JobFailed(Exception):
    """A systemd job ended other than "done" (the service layer adds the unit's Result and logs)."""

    def __init__(self, unit: str, verb: str, result: str) -> None:
        super().__init__(f"{verb} {unit}: job {result}")
        self.unit = unit
        self.verb = verb
        self.result = result


UNIT_HEADER = "# Written by satbridge; replaced on every XCC install.\n"


def upgrade_xcc_unit(text: str) -> str | None:
    """A unit file an older bridge wrote with Type=simple, rewritten to Type=exec; None when it
    needs nothing (already exec, or not written by satbridge: an admin's own unit is left be)."""
    if not text.startswith(UNIT_HEADER):
        return None
    lines = text.splitlines(keepends=True)
    if "Type=simple\n" not in lines:
        return None
    return "".join("Type=exec\n" if line == "Type=simple\n" else line for line in lines)


def exec_word(arg: str) -> str:
    """One command-line argument as systemd reads it back exactly (systemd.service(5) "Command
    lines", systemd.syntax(7) "Quoting"): in double quotes, where C escapes are decoded, so `\\`
    and `"` are backslash-escaped; `%` doubled, as specifiers are expanded in every word; `$`
    doubled, as $VAR and ${VAR} are substituted. Quoting also keeps a lone `;` (a command
    separator) and a leading `-`, `@`, `+`, `!` or `:` (prefixes) literal. ValueError for an empty
    argument or one with a control character or lone surrogate, which no quoting can carry on
    one unit-file line (core.package.check_command refuses them in manifests)."""
    if not arg or any(unicodedata.category(c) in ("Cc", "Cs") for c in arg):
        raise ValueError(f"{arg!r} cannot be an ExecStart= argument")
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def render_xcc_unit(exec_start: list[str], *, working_directory: str, log_directory: str) -> str:
    """xcc.service as the bridge installs it (DESIGN §5): the command lives under /opt/xcc/current.
    Every word of `exec_start` is quoted by exec_word, so systemd runs exactly that argv.
    ValueError for an empty command or a word exec_word refuses."""
    if not exec_start:
        raise ValueError("an XCC unit needs a command")
    return (
        UNIT_HEADER + "[Unit]\n"
        "Description=XCC call controller (managed by satbridge)\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        # exec, not simple: the start job waits for execve() itself, so a missing binary or a
        # bad #! fails the job (203/EXEC) instead of "active" for an instant (systemd.service(5);
        # Type=exec exists since systemd 240, Debian 12 ships 252).
        "Type=exec\n"
        f"ExecStart={' '.join(exec_word(arg) for arg in exec_start)}\n"
        f"WorkingDirectory={working_directory}\n"
        f"LogsDirectory={log_directory}\n"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        "NoNewPrivileges=yes\n"
        "PrivateTmp=yes\n"
        "ProtectSystem=full\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )
