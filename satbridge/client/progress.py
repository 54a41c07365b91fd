"""A one-line progress bar with rate and ETA, on stderr when it is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


class Progress:
    def __init__(self, total: int, *, label: str, stream: TextIO | None = None, start: int = 0) -> None:
        self.total = total
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.done = start
        self._first = start
        self._began = time.monotonic()
        self._drawn = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._drawn > 0.2 or self.done >= self.total):
            self._drawn = now
            rate = (self.done - self._first) / max(now - self._began, 1e-6)
            if self.total:
                pct = 100 * self.done / self.total
                eta = (self.total - self.done) / rate if rate > 0 else 0
                bar = "#" * int(pct / 5)
                text = (
                    f"\r{self.label} [{bar:<20}] {pct:5.1f}% {_size(self.done)}/{_size(self.total)} "
                    f"{_size(rate)}/s ETA {eta:.0f}s "
                )
            else:
                text = f"\r{self.label} {_size(self.done)} {_size(rate)}/s "
            self.stream.write(text)
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
