"""Readers of the file formats zsdist accepts. A malformed or truncated file fails with one line that names it,
never with a parser's traceback."""
from __future__ import annotations

import json
import pickle
import warnings
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zsdist.errors import ZsdistError


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_table_file(path: Path, columns: Iterable[str] = (), what: str = "") -> Any:
    """A CSV or Parquet file as a pyarrow Table that holds `columns`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parquet = path.suffix.lower() == ".parquet"
    try:
        table = pq.read_table(path) if parquet else pacsv.read_csv(path)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        kind = "Parquet" if parquet else "CSV"
        raise ZsdistError(f"{path} is not a readable {kind} file ({_first_line(exc)}); is it cut short?") from None
    missing = sorted(set(columns) - set(table.column_names))
    if missing:
        raise ZsdistError(f"{path} lacks {what + ' ' if what else ''}column(s) {', '.join(missing)}")
    return table


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise ZsdistError(f"{path} is not readable JSON ({exc.msg} at line {exc.lineno}); is it cut short?") from None
    except UnicodeDecodeError:
        raise ZsdistError(f"{path} is not a JSON text file") from None


def load_npz(path: Path, keys: Iterable[str]) -> dict[str, Any]:
    """The named arrays of an .npz (never pickled objects)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = sorted(set(keys) - set(npz.files))
            if missing:
                raise ZsdistError(f"{path} lacks array(s) {', '.join(missing)} (an .npz of 'images' N×H×W×3 uint8 "
                                  f"and 'labels' is expected)")
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise ZsdistError(f"{path} is not a readable .npz ({_first_line(exc)}); is it cut short?") from None


# What a data pickle may build: numpy arrays and scalars (CIFAR's batches, written by Python 2 or 3). Plain
# containers, numbers, strings and bytes need no global at all.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which is not plain data")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 renamed numpy.core
            return super().find_class(module, name)


def load_data_pickle(path: Path) -> Any:
    """A pickle that holds only plain containers, numbers, strings, bytes and numpy arrays; anything else (code to
    run on load) is refused before it runs."""
    try:
        with open(path, "rb") as f:
            return _DataUnpickler(f, encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise ZsdistError(f"{path}: refused to unpickle ({_first_line(exc)})") from None
    except (EOFError, ValueError, TypeError, IndexError, OSError, AttributeError) as exc:
        raise ZsdistError(f"{path} is not a readable pickle ({_first_line(exc)}); is it cut short?") from None


def load_torch_data(path: Path) -> Any:
    """A PyTorch-saved object of plain data (lists, dicts, numbers, tensors), read by torch's weights-only loader,
    which refuses to run code."""
    import numpy as np
    import torch

    multiarray = np._core.multiarray  # type: ignore[attr-defined]  # numpy 2's private module: not in its stubs
    allowed = [np.dtype, np.ndarray, multiarray.scalar, multiarray._reconstruct,
               *{type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32)}]
    try:
        with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # plain pickles are fine
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ZsdistError(f"{path}: refused to load ({_first_line(exc)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ZsdistError(f"{path} is not a readable PyTorch file ({_first_line(exc)}); is it cut short?") from None
