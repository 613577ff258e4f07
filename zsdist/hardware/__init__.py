"""Hardware cost sources (measured, table, predicted latency), registered by device name.

A workflow's `latency = [...]` names devices of `DEVICES`: the built-in ones, and devices fitted by `zsdist fewshot`
(zsdist.hardware.fitted), found in the user's folder on first use. `latency_rows` turns one architecture into one
`latency` row per device, and a failing device yields a row with status "error" rather than an exception.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from torch import nn

from hw_models.errors import HardwareModelError
from zsdist.errors import ZsdistError
from zsdist.registry import Registry

SOURCES = ("measured", "table", "predicted")


@dataclass(frozen=True)
class Query:
    """One architecture of one dataset; `build` returns it at PyTorch default init."""

    space: str
    arch_id: int
    arch: str
    dataset: str
    build: Callable[[], nn.Module]
    batch_size: int = 1


@dataclass(frozen=True)
class Estimate:
    latency_ms: float
    energy_mj: float | None
    source: str
    batch_size: int
    details: dict = field(default_factory=dict)  # everything that affects the number


@dataclass(frozen=True)
class Device:
    name: str
    source: str  # the primary source; a table device falls back to its predictor outside its tables
    estimate: Callable[[Query], Estimate]
    description: str
    document: dict | None = field(default=None, compare=False)  # a fitted device's saved predictor


class DeviceRegistry(Registry[Device]):
    """Registered devices; a name not registered is looked up among the fitted devices (zsdist.hardware.fitted), so a
    device fitted after import is found, and `put` replaces a fitted device by its refit."""

    def get(self, name: str) -> Device:
        if name not in self:
            fitted.register_saved(name)
        return super().get(name)

    def put(self, device: Device) -> Device:
        if device.name in self:
            self.remove(device.name)
        return self.add(device.name, device)

    def unknown_message(self, name: str) -> str:
        return f"{super().unknown_message(name)}; fitted devices are looked up in {fitted.folder()}"


DEVICES = DeviceRegistry("latency device")


def register_device(name: str, source: str, description: str) -> Callable[[Callable[[Query], Estimate]], Device]:
    if source not in SOURCES:
        raise ValueError(f"device '{name}': source must be one of {', '.join(SOURCES)}, not '{source}'")
    return lambda estimate: DEVICES.add(name, Device(name, source, estimate, description))


def latency_rows(space: str, arch_id: int, arch: str, dataset: str, build: Callable[[], nn.Module],
                 devices: Sequence[str], batch_size: int = 1) -> list[dict]:
    """Rows of the `latency` table (zsdist.store.SCHEMAS["latency"]) for one architecture on each device."""
    query = Query(space, arch_id, arch, dataset, build, batch_size)
    rows = []
    for name in devices:
        device = DEVICES.get(name)
        row = {"arch_id": arch_id, "arch": arch, "dataset": dataset, "device": name, "source": device.source,
               "batch_size": batch_size, "latency_ms": None, "energy_mj": None, "status": "ok", "error": None,
               "details": None}
        try:
            est = device.estimate(query)
        except Exception as exc:
            row.update(status="error", error=f"{type(exc).__name__}: {exc}")
        else:
            row.update(source=est.source, batch_size=est.batch_size, latency_ms=est.latency_ms,
                       energy_mj=est.energy_mj, details=json.dumps(est.details, sort_keys=True))
        rows.append(row)
    return rows


@contextmanager
def user_input() -> Iterator[None]:
    """hw_models knows nothing of zsdist: input it cannot use (a predictor file, fit data) raises its own
    HardwareModelError, which becomes here the one-line ZsdistError that the CLI prints."""
    try:
        yield
    except HardwareModelError as exc:
        raise ZsdistError(str(exc)) from None


# registers the built-in devices
from zsdist.hardware import devices as builtin_devices  # noqa: E402, F401
from zsdist.hardware import fitted, measured  # noqa: E402,F401
