"""Devices fitted by `zsdist fewshot` live in the user's folder, never in the package (which a pip install may not
let anyone write, and an upgrade replaces): $ZSDIST_HOME/devices, or the platform's user data folder. A device is
registered on first use by name; a run that names one records its document beside its results and hands it to its
workers (`use_all`), so that workers on other machines need no copy of the folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from hw_models.predict import FORMAT, from_document, save
from zsdist.errors import ZsdistError
from zsdist.hardware import DEVICES, Device, user_input
from zsdist.hardware.devices import estimate_with

HOME_ENV = "ZSDIST_HOME"
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def home() -> Path:
    """$ZSDIST_HOME, else the platform's user data folder for zsdist (on Linux ~/.local/share/zsdist)."""
    value = os.environ.get(HOME_ENV)
    if value:
        return Path(value).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("zsdist", appauthor=False))


def folder() -> Path:
    return home() / "devices"


def digest(doc: dict) -> str:
    """A short hash of a device's document: rows name the fit they came from."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def check_name(name: str) -> None:
    """A fitted device needs a plain name that no built-in (measured, table or shipped predictor) device has."""
    builtin = name in DEVICES and DEVICES.get(name).document is None
    if not NAME.match(name) or builtin:
        raise ZsdistError(f"'{name}' cannot name a fitted device: use lower-case letters, digits and '_', and none of "
                          f"the built-in devices ({', '.join(d for d in DEVICES.names() if not d.startswith('help_'))}"
                          f", help_*)")


def use(name: str, doc: dict, source: str) -> Device:
    """Register a fitted device from its document (again after a refit: the newer document replaces it)."""
    check_name(name)
    if not isinstance(doc, dict) or doc.get("device") != name:
        raise ZsdistError(f"{source} does not hold a fitted device '{name}'")
    if name in DEVICES and DEVICES.get(name).document == doc:
        return DEVICES.get(name)
    with user_input():
        predictor = from_document(doc, source)
    details = {"predictor": f"{name}.json", "kind": predictor.kind, "sha256_16": digest(doc),
               "networks": predictor.fit.get("n")}
    batch = int(predictor.fit.get("batch_size", 1))
    return DEVICES.put(Device(name, "predicted", lambda query: estimate_with(name, predictor, query, details, batch),
                              f"fitted by zsdist fewshot ({source})", doc))


def use_all(documents: dict[str, dict]) -> None:
    for name, doc in documents.items():
        use(name, doc, f"fitted device '{name}' of this run")


def read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise ZsdistError(f"{path} is not a {FORMAT} file (not JSON)") from None


def register_saved(name: str) -> None:
    """Register `<folder>/<name>.json` if there is such a file (lookups of unknown names call this)."""
    path = folder() / f"{name}.json"
    if NAME.match(name) and path.is_file():
        use(name, read(path), str(path))


def save_fitted(predictor, out: Path | None = None) -> Path:
    """Write a fitted device to `out` (default: the user's folder, where workflows find it; saved there, it also
    replaces an earlier fit registered in this process)."""
    check_name(predictor.device)
    path = save(predictor, out or folder())
    if path.parent == folder():
        use(predictor.device, read(path), str(path))
    return path
