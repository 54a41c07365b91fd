#!/usr/bin/env python3
"""Assemble a unified kernel image (UKI): systemd's EFI stub + os-release + cmdline + kernel + initrd.

    build/appliance/uki.py STUB OS_RELEASE CMDLINE VMLINUZ INITRD OUT

Any UEFI firmware boots the result as EFI/BOOT/BOOTX64.EFI, with no boot loader and no loop
device at build time. Debian 12's systemd (252) has no `ukify`, so this is the objcopy recipe:
each section is placed after the stub's last one, aligned to the stub's SectionAlignment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _objdump(*args: str) -> str:
    return subprocess.run(["objdump", *args], check=True, capture_output=True, text=True).stdout


def _alignment(stub: Path) -> int:
    for line in _objdump("-p", str(stub)).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "SectionAlignment":
            return int(parts[1], 16)
    raise SystemExit(f"{stub}: no SectionAlignment in its PE header")


def _end_of_sections(stub: Path) -> int:
    end = 0
    for line in _objdump("-h", str(stub)).splitlines():
        parts = line.split()
        # "Idx Name Size VMA LMA File-off Algn": the section rows have 7 columns and a numeric Idx
        if len(parts) == 7 and parts[0].isdigit():
            end = max(end, int(parts[2], 16) + int(parts[3], 16))
    if not end:
        raise SystemExit(f"{stub}: objdump listed no sections")
    return end


def build(stub: Path, sections: list[tuple[str, Path]], out: Path) -> None:
    align = _alignment(stub)
    offset = _end_of_sections(stub)
    args: list[str] = []
    for name, path in sections:
        offset += -offset % align
        args += ["--add-section", f"{name}={path}", "--change-section-vma", f"{name}={offset:#x}"]
        offset += path.stat().st_size
    subprocess.run(["objcopy", *args, str(stub), str(out)], check=True)


def main(argv: list[str]) -> int:
    if len(argv) != 6:
        print(__doc__, file=sys.stderr)
        return 2
    stub, osrel, cmdline, linux, initrd, out = map(Path, argv)
    build(stub, [(".osrel", osrel), (".cmdline", cmdline), (".linux", linux), (".initrd", initrd)], out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
