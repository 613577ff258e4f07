"""A wall-clock limit for one architecture, so a pathological network becomes a `timeout` row, not a hung shard."""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class ArchTimeout(BaseException):
    """A BaseException so that the evaluator's per-proxy `except Exception` cannot swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise ArchTimeout after `seconds` (SIGALRM; a no-op off the main thread or when seconds <= 0)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, _frame: object) -> None:
        raise ArchTimeout(f"architecture exceeded its {seconds:g} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
