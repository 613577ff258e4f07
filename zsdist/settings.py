"""Where reference data lives, looked up at call time (so tests and workers see changes) in this order: a data
folder the user names (ZSDIST_DATA, e.g. ../shared/data), the files embedded in the package, the download cache
(ZSDIST_CACHE, default the user cache dir) that `zsdist data fetch` fills. Every file is named by its path in the
data-folder layout; zsdist.refdata.sources says which source provides it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from zsdist.errors import ZsdistError
from zsdist.refdata.sources import ref_file, source_of

DATA_ENV = "ZSDIST_DATA"
CACHE_ENV = "ZSDIST_CACHE"
EMBEDDED = Path(__file__).resolve().parent / "refdata" / "embedded"


def data_root() -> Path | None:
    """The user's data folder, or None when ZSDIST_DATA is unset."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    root = Path(value).expanduser()
    if not root.is_dir():
        raise ZsdistError(f"{DATA_ENV}={value} is not a folder; point it at a reference data folder or unset it "
                          f"(the embedded data and `zsdist data fetch` need no folder)")
    return root


def cache_root() -> Path:
    """Where fetched data (and derived tables such as NB101's id table) are kept."""
    value = os.environ.get(CACHE_ENV)
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("zsdist"))


def embedded_path(relative: str) -> Path:
    """Where the package keeps a layout file: tables as Parquet (zstd), arrays as they are."""
    stored = relative[: -len(".csv")] + ".parquet" if relative.endswith(".csv") else relative
    return EMBEDDED / stored


def locate(relative: str) -> tuple[str, Path] | None:
    """(where, path) of the first copy of a layout file: 'data folder', 'embedded' or 'cache'; None if absent."""
    source_of(relative)  # an unknown name is a bug or a typo, not missing data
    root = data_root()
    for where, path in (("data folder", root / relative if root else None), ("embedded", embedded_path(relative)),
                        ("cache", cache_root() / relative)):
        if path is not None and path.is_file():
            return where, path
    return None


def missing_message(relative: str) -> str:
    source = source_of(relative)
    return (f"missing reference data {relative} (source '{source.name}': {source.what}); run "
            f"`{source.fetch_command}`, or set {DATA_ENV} to a folder that holds it")


def _found(relative: str) -> tuple[str, Path]:
    found = locate(relative)
    if found is None:
        raise ZsdistError(missing_message(relative))
    return found


def data_file(relative: str) -> Path:
    """A reference file in the data-folder layout's own format (an embedded table is written out once as CSV
    under the cache, for readers that want the file itself)."""
    where, path = _found(relative)
    if path.suffix == Path(relative).suffix:
        return path
    target = cache_root() / ".embedded" / ref_file(relative).digest[:16] / relative
    if not target.is_file():
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".partial", delete=False) as tmp:
            pacsv.write_csv(pq.read_table(path), tmp.name)
        os.replace(tmp.name, target)
    return target


def read_table(relative: str) -> Any:
    """A reference table (pyarrow) from wherever it is, checked against the reference file's row count."""
    from zsdist.refdata.formats import read_table_file

    where, path = _found(relative)
    table = read_table_file(path)
    expected = ref_file(relative)
    if table.num_rows != expected.rows:
        raise ZsdistError(f"{path} holds {table.num_rows:,} rows, not the {expected.rows:,} of {relative}: it is cut "
                          f"short or not that file (`{source_of(relative).fetch_command}` gets a verified copy)")
    return table
