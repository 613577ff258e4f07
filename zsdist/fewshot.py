"""`zsdist fewshot`: a new latency device from a few measured networks, read from a CSV or Parquet file or from a
run's `latency` rows; their features are extracted from the built networks, the device prior (hw_models.meta) is
adapted to them, and the device is saved where workflows find it (zsdist.hardware.fitted)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from zsdist.errors import ZsdistError

REQUIRED = ("space", "arch", "latency_ms")
OPTIONAL = ("dataset", "batch_size")
MIN_NETWORKS = 5  # the fewest the bench evaluates; below it the fit is mostly the prior
DOUBTFUL = 0.25  # a measurement the Student-t fit weighs below this (4 σ off its fit) is reported as a spike
RUN_BATCH = 1  # a run's measured rows are taken at batch 1, as its measured devices time them by default

ROWS_SQL = """SELECT space, dataset, arch_id, median(latency_ms) FROM latency
WHERE run_id = ? AND device = ? AND status = 'ok' AND batch_size = ? AND latency_ms > 0
GROUP BY ALL ORDER BY space, dataset, arch_id"""


@dataclass(frozen=True)
class Measurement:
    space: str
    arch: str
    arch_id: int
    dataset: str
    batch_size: int
    latency_ms: float


@dataclass(frozen=True)
class Fitted:
    path: Path
    networks: int
    batch_size: int
    loo_spearman: float  # of the measured networks, each predicted by a fit on the others
    loo_within10: float
    doubtful: list[tuple[Measurement, float, float]]  # measurements the fit weighed as spikes: predicted ms, weight
    additive: float  # the share of latency-adds-up-over-operators in the device's log-space blend


def _table(path: Path):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ZsdistError(f"measurements file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise ZsdistError(f"measurements file {path} must be .csv or .parquet")
    try:
        if suffix == ".csv":
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
                column_types={"space": pa.string(), "arch": pa.string(), "dataset": pa.string()}))
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ZsdistError(f"cannot read measurements file {path}: {str(exc).splitlines()[0]}") from None


def _measurement(values: dict, where: str) -> Measurement:
    """One row, checked: every mistake names the row."""
    from zsdist.data import DATASETS
    from zsdist.spaces import create_space

    try:
        space = create_space(str(values["space"]))
        arch = values["arch"]
        is_id = isinstance(arch, int) or (isinstance(arch, str) and arch.isdigit())
        arch_id = space.check_id(int(arch)) if is_id else space.parse(str(arch))
        dataset = space.check_dataset(DATASETS.get(str(values.get("dataset") or space.datasets[0])).name)
    except ZsdistError as exc:
        raise ZsdistError(f"{where}: {exc}") from None
    batch = values.get("batch_size")
    batch = 1 if batch is None else batch
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ZsdistError(f"{where}: batch_size must be a whole number ≥ 1, not {batch!r}")
    latency = values["latency_ms"]
    if isinstance(latency, bool) or not isinstance(latency, (int, float)) or not math.isfinite(latency) \
            or latency <= 0:
        raise ZsdistError(f"{where}: latency_ms must be a positive number of milliseconds, not {latency!r}")
    return Measurement(space.name, space.arch_str(arch_id), arch_id, dataset, batch, float(latency))


def read_measurements(file: str) -> list[Measurement]:
    """The rows of a CSV or Parquet file of measurements (REQUIRED columns, OPTIONAL ones defaulting to the
    space's first dataset and batch 1); rows are numbered from 1 after the header."""
    path = Path(file)
    table = _table(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ZsdistError(f"{path} lacks column(s) {', '.join(missing)} (needs {', '.join(REQUIRED)}; optional "
                          f"{', '.join(OPTIONAL)})")
    rows = table.select([c for c in REQUIRED + OPTIONAL if c in table.column_names]).to_pylist()
    measurements = [_measurement(values, f"{path} row {i}") for i, values in enumerate(rows, start=1)]
    batches = sorted({m.batch_size for m in measurements})
    if len(batches) > 1:
        raise ZsdistError(f"{path} mixes batch sizes {', '.join(map(str, batches))}: a device is fitted at one batch "
                          f"size (fit one device per batch size)")
    return measurements


def run_measurements(results: str, run_id: str, device: str) -> list[Measurement]:
    """A run's ok batch-1 latency rows of `device`, one per network (the median of repeated rows)."""
    from zsdist.analysis.views import connect
    from zsdist.spaces import create_space

    rows = connect(results).execute(ROWS_SQL, [run_id, device, RUN_BATCH]).fetchall()
    if not rows:
        raise ZsdistError(f"run '{run_id}' in {results} has no ok batch-{RUN_BATCH} latency rows of device "
                          f"'{device}' (run a workflow with latency = [\"{device}\"] on a few networks first)")
    return [Measurement(space, create_space(space).arch_str(arch_id), arch_id, dataset, RUN_BATCH, latency)
            for space, dataset, arch_id, latency in rows]


def _per_network(measurements: list[Measurement]) -> list[Measurement]:
    """One measurement per network: the median of repeated ones."""
    groups: dict[tuple, list[Measurement]] = {}
    for m in measurements:
        groups.setdefault((m.space, m.arch_id, m.dataset, m.batch_size), []).append(m)
    return [replace(group[0], latency_ms=float(np.median([m.latency_ms for m in group]))) for group in groups.values()]


def fit_device(name: str, measurements: list[Measurement], source: dict, out: Path | None = None) -> Fitted:
    """Adapt the shipped device prior to the measured networks and save device `name`."""
    from scipy.stats import spearmanr

    from hw_models.meta import adapt, load_prior, loo_predictions
    from hw_models.predict import within10
    from zsdist.hardware import user_input
    from zsdist.hardware.features import arch_features
    from zsdist.hardware.fitted import save_fitted

    networks = _per_network(measurements)
    if len(networks) < MIN_NETWORKS:
        raise ZsdistError(f"{len(networks)} measured network(s) from {source.get('file') or 'the run'}; a fitted "
                          f"device needs at least {MIN_NETWORKS}")
    batch = networks[0].batch_size  # the device's: features describe the network at one input
    X = np.stack([arch_features(m.space, m.arch_id, m.dataset) for m in networks])
    y = np.array([m.latency_ms for m in networks])
    record = {"source": source, "batch_size": batch, "networks": [
        {"space": m.space, "arch": m.arch, "dataset": m.dataset, "latency_ms": m.latency_ms} for m in networks]}
    with user_input():
        prior = load_prior()
        loo = loo_predictions(prior, X, y)
        predictor = adapt(name, prior, X, y, record)
    path = save_fitted(predictor, out)
    trust = predictor.fit["noise"]["trust"]
    doubtful = [(m, float(p), w) for m, p, w in zip(networks, predictor.predict(X), trust) if w < DOUBTFUL]
    return Fitted(path, len(networks), batch, float(spearmanr(loo, y)[0]), within10(loo, y), doubtful,
                  predictor.blend)
