"""The code version recorded with every row: package version plus the git commit when run from a checkout."""
from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from zsdist import __version__


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    repo = Path(__file__).resolve().parent.parent
    try:
        described = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=10"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+{described}" if described else __version__
