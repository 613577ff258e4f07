"""`zsdist ingest`: ground truth into `truth`, published latency tables into `latency` (run_id "tables"), from the
reference data or a user's own file. Only the latency tables of the chosen sources' spaces are loaded, a file that
already holds the same input is kept as it is, and nothing is replaced by a shorter input unless forced."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from zsdist.errors import ZsdistError
from zsdist.registry import Registry

if TYPE_CHECKING:
    from zsdist.refwrite import Written
    from zsdist.store import Store

TABLES_SPACE = "nb201"  # the space the published latency tables measure


def _load_tables(store: Store, name: str, path: str | None, force: bool) -> Written:
    from zsdist.hardware.tables import TABLE_SOURCES, source_tables, table_rows
    from zsdist.refwrite import file_origin, reference_origin, replace

    origin = file_origin(Path(path)) if path else reference_origin(TABLE_SOURCES[name])
    return replace(store, "latency", name, {"run_id": "tables", "space": TABLES_SPACE}, origin,
                   lambda: table_rows(source_tables(name, path)), force)


def ingest(store: Store, names: Sequence[str] = (), file: str | None = None, force: bool = False,
           latency_tables: bool = True, say: Callable[[str], None] = print) -> list[str]:
    """Load the named sources (default: every truth source); returns the names loaded or kept. Sources named
    explicitly must be available; defaulted ones that are neither embedded nor fetched are skipped with a note.
    Each step says what it reads before it starts (some take seconds), so stderr holds only an error."""
    from zsdist.hardware.tables import TABLE_SOURCES
    from zsdist.refdata.sources import source_of
    from zsdist.settings import locate, missing_message
    from zsdist.truth import TRUTH, load

    known: Registry[str] = Registry("ingest source")
    for name in (*TRUTH.names(), *TABLE_SOURCES):
        known.add(name, name)
    for name in names:
        known.get(name)
    if file and len(names) != 1:
        raise ZsdistError("--file needs exactly one --source")
    truth = [n for n in (names or TRUTH.names()) if n in TRUTH]
    tables = [n for n in names if n in TABLE_SOURCES]
    if latency_tables and not file and any(TRUTH.get(n).space == TABLES_SPACE for n in truth):
        tables += [n for n in TABLE_SOURCES if n not in tables]
    steps: list[tuple[str, str, tuple[str, ...], Callable[..., Written]]]
    steps = [("truth", n, (TRUTH.get(n).default_file,), lambda n=n: load(store, n, file, force)) for n in truth]
    steps += [("latency tables", n, TABLE_SOURCES[n], lambda n=n: _load_tables(store, n, file, force)) for n in tables]
    done = []
    for kind, name, files, run in steps:
        missing = [f for f in files if locate(f) is None]
        if missing and not file:
            if name in names:  # asked for by name: the missing-data error, with the command that fetches it
                raise ZsdistError(missing_message(missing[0]))
            say(f"{kind} {name}: not available, skipped (run `{source_of(missing[0]).fetch_command}`)")
            continue
        start = time.monotonic()
        say(f"{kind} {name}: reading {file or ', '.join(files)} …")
        written = run()
        state = "unchanged, kept" if written.unchanged else "written"
        say(f"{kind} {name}: {written.rows} rows ({state}, {time.monotonic() - start:.1f} s)")
        done.append(name)
    return done
