"""Progress of a launch: a live bar (rich) on a terminal, sparse complete lines in logs (Ray Jobs, cron)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Shards done, architectures per second, ETA and failed rows."""

    def __init__(self, total_shards: int, total_archs: int, stream: TextIO | None = None,
                 log_every: float = 30.0) -> None:
        self.total_shards, self.total_archs = total_shards, total_archs
        self.shards = self.archs = self.failures = 0
        self.stream = stream or sys.stderr
        self.log_every = log_every
        self.start = self._last = time.monotonic()
        self.bar = self._live_bar() if self.stream.isatty() else None

    def _live_bar(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as Bar

        bar = Bar(TextColumn("shards"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                  TextColumn("ETA"), TimeRemainingColumn(), console=Console(file=self.stream), transient=False)
        self._task = bar.add_task("launch", total=self.total_shards, status=self._status())
        bar.start()
        return bar

    def _status(self) -> str:
        return f"{self.archs}/{self.total_archs} archs  {self.rate():.2f} arch/s  failed rows {self.failures}"

    def rate(self) -> float:
        return self.archs / max(time.monotonic() - self.start, 1e-9)

    def update(self, archs: int, failures: int) -> None:
        self.shards += 1
        self.archs += archs
        self.failures += failures
        if self.bar is not None:
            self.bar.update(self._task, completed=self.shards, status=self._status())
            return
        now = time.monotonic()
        if now - self._last >= self.log_every or self.shards == self.total_shards:
            self._last = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        rate = self.rate()
        left = (self.total_archs - self.archs) / rate if rate > 0 else 0.0
        return (f"{self.shards}/{self.total_shards} shards  {self.archs}/{self.total_archs} archs  {rate:.2f} arch/s  "
                f"ETA {_duration(left)}  failed rows {self.failures}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
