"""A progress line that updates in place on a terminal and prints sparse, complete lines in logs (Ray Jobs)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Shards done, architectures per second, ETA and failed rows."""

    def __init__(self, total_shards: int, total_archs: int, stream: TextIO | None = None,
                 log_every: float = 30.0) -> None:
        self.total_shards, self.total_archs = total_shards, total_archs
        self.shards = self.archs = self.failures = 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.log_every = log_every
        self.start = self._last = time.monotonic()

    def update(self, archs: int, failures: int) -> None:
        self.shards += 1
        self.archs += archs
        self.failures += failures
        now = time.monotonic()
        if self.tty or now - self._last >= self.log_every or self.shards == self.total_shards:
            self._last = now
            self.stream.write(("\r" if self.tty else "") + self.line() + ("" if self.tty else "\n"))
            self.stream.flush()

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.archs / elapsed
        left = (self.total_archs - self.archs) / rate if rate > 0 else 0.0
        width = 24
        filled = width * self.shards // max(self.total_shards, 1)
        return (f"[{'#' * filled}{'.' * (width - filled)}] {self.shards}/{self.total_shards} shards  "
                f"{self.archs}/{self.total_archs} archs  {rate:.2f} arch/s  ETA {_duration(left)}  "
                f"failed rows {self.failures}")

    def close(self) -> None:
        if self.tty and self.shards:
            self.stream.write("\n")
            self.stream.flush()
