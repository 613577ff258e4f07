"""The progress line: complete lines in logs (Ray Jobs), in-place updates on a terminal."""
from __future__ import annotations

import io
import re

from zsdist.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_logs_get_sparse_complete_lines_with_rate_eta_and_failures():
    log = io.StringIO()
    progress = Progress(total_shards=4, total_archs=40, stream=log, log_every=3600)
    for failures in (0, 2, 0, 1):
        progress.update(10, failures)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in log.getvalue()  # only the final line within the hour
    assert "4/4 shards" in lines[0] and "40/40 archs" in lines[0] and "failed rows 3" in lines[0]
    assert "arch/s" in lines[0] and "ETA 0m00s" in lines[0]


def test_terminals_get_a_live_bar():
    tty = Terminal()
    progress = Progress(total_shards=2, total_archs=4, stream=tty)
    progress.update(2, 1)
    progress.update(2, 0)
    progress.close()
    final = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", tty.getvalue()).rsplit("\r", 1)[-1]
    assert "2/2" in final and "4/4 archs" in final and "failed rows 1" in final and "arch/s" in final
    assert "\x1b[" in tty.getvalue()  # drawn in place with terminal control codes, not appended lines
