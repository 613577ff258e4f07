"""`zsdist fewshot`: a new device fitted from a run's measured latency rows, saved where workflows find devices."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy.stats import spearmanr

from hw_models.features import space_features
from hw_models.predict import load
from hw_models.tables import hwnb_tables
from zsdist.spaces import create_space
from zsdist.store import Store

from conftest import run_cli

SHOT, REST = 20, 200


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Run "board" measured 20 NB201 cells on a board (pixel3's table values), plus rows the fit must skip: a
    failed measurement, one at batch 8 and one of another device."""
    root = tmp_path_factory.mktemp("results")
    space = create_space("nb201")
    y = hwnb_tables("cifar10")["pixel3"].latency_ms
    ids = [int(i) for i in np.random.default_rng(11).permutation(space.sample(SHOT + REST + 3, 11))
           if not np.isnan(y[i])]
    shot, skipped, rest = ids[:SHOT], ids[SHOT:SHOT + 3], ids[SHOT + 3:]

    def row(arch_id: int, device: str, latency: float | None, batch_size: int = 1, status: str = "ok") -> dict:
        return {"arch_id": arch_id, "arch": space.arch_str(arch_id), "dataset": "cifar10", "device": device,
                "source": "measured", "batch_size": batch_size, "latency_ms": latency, "energy_mj": None,
                "status": status, "error": None, "details": None}

    rows = [row(i, "board", float(y[i])) for i in shot]
    rows += [row(skipped[0], "board", None, status="error"), row(skipped[1], "board", 1e3, batch_size=8),
             row(skipped[2], "cpu", 1e3)]
    Store(str(root)).write("latency", rows, "shard-0", run_id="board-run", space="nb201")
    return root, shot, rest, y


def test_fewshot_fits_a_new_device_from_a_runs_rows(measured, tmp_path, monkeypatch, capsys):
    root, shot, rest, y = measured
    code, out, err = run_cli(monkeypatch, capsys, "fewshot", "myboard", "--run", "board-run", "--device", "board",
                             "--results", str(root), "--out", str(tmp_path))
    assert code == 0, err
    assert "fitted on 20 networks" in out and 'latency = ["myboard"]' in out
    predictor = load("myboard", tmp_path)  # its bases were saved beside it
    assert predictor.fit["networks"] == [f"nb201/cifar10/{i}" for i in sorted(shot)]
    assert predictor.fit["run_id"] == "board-run" and predictor.fit["device"] == "board"
    rho = spearmanr(predictor.predict(space_features("nb201", rest, "cifar10")), y[rest])[0]
    assert rho > 0.85, rho
    doc = json.loads((tmp_path / "myboard.json").read_text())
    assert doc["kind"] == "fewshot" and all((tmp_path / f"{b}.json").is_file() for b in doc["params"]["bases"])


@pytest.mark.parametrize("args, message", [
    (("myboard", "--run", "nope"), "run 'nope' in .* has no ok batch-1 latency rows of device 'cpu'"),
    (("edgegpu", "--run", "board-run", "--device", "board"), "'edgegpu' cannot name a new device"),
    (("My Board", "--run", "board-run", "--device", "board"), "'My Board' cannot name a new device"),
    (("myboard", "--run", "board-run", "--device", "board", "--family", "gpu"), "unknown few-shot family 'gpu'"),
])
def test_fewshot_bad_input_exits_2(measured, tmp_path, monkeypatch, capsys, args, message):
    code, _, err = run_cli(monkeypatch, capsys, "fewshot", *args, "--results", str(measured[0]),
                           "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "myboard.json").exists()
