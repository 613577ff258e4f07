"""Names that become path components (run ids, partition values, file keys, device names): checked in one place
so that no user-given string can leave the results folder or break hive partition parsing."""
from __future__ import annotations

import re

from zsdist.errors import ZsdistError

_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def check_component(value: str, what: str) -> str:
    """`value` if it is a safe single path component: no separators, no `..`, no hive `=`, not hidden."""
    if not isinstance(value, str) or not _COMPONENT.fullmatch(value) or ".." in value:
        raise ZsdistError(f"{what} {value!r} cannot name a file or folder: use letters, digits and . _ + - "
                          f"(starting with a letter or digit, no '..')")
    return value
