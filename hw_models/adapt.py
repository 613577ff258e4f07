"""A new latency device from a few measured networks of a run (`zsdist fewshot`): the run's `latency` rows of one
device are the targets, the shipped layerwise predictors the bases, and the fit is saved beside them so that
workflows can name the new device (`latency = ["<name>"]`, source predicted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zsdist.errors import ZsdistError
from hw_models import DEVICES
from hw_models.features import arch_features
from hw_models.predict import PARAMS_DIR, FewShotPredictor, LayerwisePredictor, fit_fewshot, load, save, \
    saved_devices

BATCH = 1  # predictors read batch-1 features, as the tables they were fitted on
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

ROWS_SQL = """SELECT space, dataset, arch_id, median(latency_ms) FROM latency
WHERE run_id = ? AND device = ? AND status = 'ok' AND batch_size = ? AND latency_ms > 0
GROUP BY ALL ORDER BY space, dataset, arch_id"""


@dataclass(frozen=True)
class Adapted:
    predictor: FewShotPredictor
    path: Path
    networks: int


def measured_rows(results: str, run_id: str, device: str) -> list[tuple[str, str, int, float]]:
    """(space, dataset, arch_id, latency ms) of the run's ok batch-1 rows of `device` (one per network)."""
    from zsdist.analysis.views import connect

    rows = connect(results).execute(ROWS_SQL, [run_id, device, BATCH]).fetchall()
    if not rows:
        raise ZsdistError(f"run '{run_id}' in {results} has no ok batch-{BATCH} latency rows of device '{device}' "
                          f"(run a workflow with latency = [\"{device}\"] on a few networks first)")
    return rows


def adapt(name: str, results: str, run_id: str, device: str, family: str | None = None,
          folder: Path = PARAMS_DIR) -> Adapted:
    """Fit device `name` on the measured rows and save it as `<folder>/<name>.json`, next to its bases."""
    builtin = [d for d in DEVICES.names() if DEVICES.get(d).source != "predicted"]
    if not _NAME.match(name) or name in builtin:
        raise ZsdistError(f"'{name}' cannot name a new device: use lower-case letters, digits and '_', and none of "
                          f"the measured or table devices ({', '.join(d for d in builtin if not d.startswith('help_'))}"
                          f", help_*)")
    bases = [p for p in (load(d) for d in saved_devices()) if isinstance(p, LayerwisePredictor)]
    rows = measured_rows(results, run_id, device)
    X = np.stack([arch_features(space, arch_id, dataset, BATCH) for space, dataset, arch_id, _ in rows])
    y = np.array([r[3] for r in rows])
    fit = {"run_id": run_id, "device": device, "results": results,
           "networks": [f"{space}/{dataset}/{arch_id}" for space, dataset, arch_id, _ in rows]}
    predictor = fit_fewshot(name, X, y, bases, fit, family)
    if folder != PARAMS_DIR:  # a few-shot file loads its bases from its own folder
        for base in bases:
            save(base, folder)
    return Adapted(predictor, save(predictor, folder), len(rows))
