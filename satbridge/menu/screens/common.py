"""Formatting shared by the screens (no widgets, no services)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def network_line(n: Any) -> str:
    if n is None:
        return "-"
    how = {"auto": "DHCP", "manual": "static"}.get(n.method, n.method or "not configured")
    return f"{n.interface or '-'}, {how}" + (f", gateway {n.gateway}" if n.gateway else "")


def xcc_line(x: Any) -> str:
    if x is None:
        return "state unavailable"
    if not x.installed:
        return "not installed"
    return f"{x.version}, {x.unit.active_state}/{x.unit.sub_state}"


def countdown(seconds: float) -> str:
    left = max(0, int(seconds))
    return f"{left // 60}:{left % 60:02d}"
