"""`zsdist fewshot`: a new device from a measurements file or a run's rows, saved in the user's folder, named by
workflows, and flagged where it predicts networks beyond those it was fitted on."""
from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr

from hw_models.predict import PARAMS_DIR, load
from zsdist.hardware import DEVICES
from zsdist.hardware.features import space_features
from zsdist.hardware.tables import hwnb_tables
from zsdist.spaces import create_space
from zsdist.store import Store

SHOT, REST = 20, 300
SPACE = create_space("nb201")


@pytest.fixture(scope="module")
def board():
    """A board that measured 20 random NB201 cells (pixel3's table values), and 300 other cells to rank."""
    y = hwnb_tables("cifar10")["pixel3"].latency_ms
    ids = [int(i) for i in np.random.default_rng(11).permutation(SPACE.sample(SHOT + REST, 11))]
    return ids[:SHOT], ids[SHOT:], y


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh user folder: fitted devices go to $ZSDIST_HOME/devices."""
    monkeypatch.setenv("ZSDIST_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "devices"


def _csv(path, rows: list[dict]) -> str:
    columns = list(rows[0])
    path.write_text("\n".join([",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]) + "\n")
    return str(path)


def _rows(ids: list[int], y: np.ndarray) -> list[dict]:
    return [{"space": "nb201", "arch": SPACE.arch_str(i), "latency_ms": float(y[i])} for i in ids]


def test_fewshot_from_a_csv_saves_in_the_user_folder_and_ranks_the_rest(board, home, tmp_path, cli):
    shot, rest, y = board
    shipped = sorted(p.name for p in PARAMS_DIR.rglob("*"))
    code, out, err = cli("fewshot", "myboard", "--from", _csv(tmp_path / "m.csv", _rows(shot, y)))
    assert code == 0, err
    assert f"fitted on {SHOT} networks at batch 1" in out and str(home / "myboard.json") in out
    assert 'latency = ["myboard"]' in out and "(workflows look in" not in out
    predictor = load("myboard", home)
    assert f"{100 * predictor.blend:.0f} % latency adding up over operators" in out
    assert sorted(p.name for p in PARAMS_DIR.rglob("*")) == shipped  # the package's own folder stays untouched
    assert [n["arch"] for n in predictor.fit["networks"]] == [SPACE.arch_str(i) for i in shot]
    assert predictor.fit["source"]["file"].endswith("m.csv") and predictor.fit["prior"]["sha256_16"]
    rho = spearmanr(predictor.predict(space_features("nb201", rest, "cifar10")), y[rest])[0]
    assert rho > 0.9, rho
    assert DEVICES.get("myboard").source == "predicted"  # found by name in the user folder
    assert "spike" not in err


def test_fewshot_names_a_measurement_that_looks_like_a_spike(board, home, tmp_path, cli):
    shot, _, y = board
    rows = _rows(shot, y)
    rows[4]["latency_ms"] *= 8
    code, out, err = cli("fewshot", "spiky", "--from", _csv(tmp_path / "m.csv", rows))
    assert code == 0, err
    spikes = [line for line in err.splitlines() if "looks like a spike" in line]
    assert len(spikes) == 1 and rows[4]["arch"] in spikes[0], err
    assert load("spiky", home).fit["noise"]["trust"][4] < 0.25


def test_fewshot_reads_parquet_with_arch_ids_and_writes_where_told(board, home, tmp_path, cli):
    shot, _, y = board
    table = pa.table({"space": ["nb201"] * SHOT, "arch": shot, "latency_ms": y[shot],
                      "dataset": ["cifar10"] * SHOT, "batch_size": [1] * SHOT})
    pq.write_table(table, tmp_path / "m.parquet")
    code, out, err = cli("fewshot", "pboard", "--from", str(tmp_path / "m.parquet"),
                         "--out", str(tmp_path / "elsewhere"))
    assert code == 0, err
    assert (tmp_path / "elsewhere" / "pboard.json").is_file() and f"(workflows look in {home})" in out
    assert not (home / "pboard.json").exists()


BAD_FILES = [
    ("missing column", lambda rows: [{k: v for k, v in r.items() if k != "latency_ms"} for r in rows],
     r"lacks column\(s\) latency_ms \(needs space, arch, latency_ms; optional dataset, batch_size\)"),
    ("unknown arch", lambda rows: rows[:3] + [{**rows[3], "arch": "|nor_conv_3x3~0|+|x~0|"}] + rows[4:],
     r"m\.csv row 4: bad NB201 arch string"),
    ("unknown space", lambda rows: [{**rows[0], "space": "nb2O1"}] + rows[1:],
     r"m\.csv row 1: unknown space 'nb2O1'; did you mean 'nb201'\?"),
    ("too few rows", lambda rows: rows[:4], r"4 measured network\(s\) from .*m\.csv; a fitted device needs at least 5"),
    ("non-positive latency", lambda rows: rows[:6] + [{**rows[6], "latency_ms": -2.5}] + rows[7:],
     r"m\.csv row 7: latency_ms must be a positive number of milliseconds, not -2\.5"),
    ("mixed batch sizes", lambda rows: [{**r, "batch_size": 1 + (i == 2) * 7} for i, r in enumerate(rows)],
     r"mixes batch sizes 1, 8"),
]


@pytest.mark.parametrize("kind, edit, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_measurement_files_exit_2_with_one_line(board, home, tmp_path, cli, kind, edit, message):
    shot, _, y = board
    path = _csv(tmp_path / "m.csv", edit(_rows(shot[:10], y)))
    code, _, err = cli("fewshot", "myboard", "--from", path)
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert not home.exists()


@pytest.mark.parametrize("args, message", [
    (("myboard", "--from", "nowhere.csv"), "measurements file nowhere.csv does not exist"),
    (("myboard",), "give the measurements either as --from FILE or as --run RUN"),
    (("edgegpu", "--from", "x.csv"), "'edgegpu' cannot name a fitted device"),
    (("My Board", "--run", "r"), "'My Board' cannot name a fitted device"),
])
def test_bad_fewshot_arguments_exit_2(home, tmp_path, monkeypatch, cli, args, message):
    (tmp_path / "x.csv").write_text("space,arch,latency_ms\n")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("fewshot", *args)
    assert code == 2 and err.count("\n") == 1 and message in err, err


def _latency_row(arch_id: int, device: str, latency: float | None, batch_size: int = 1, status: str = "ok") -> dict:
    return {"arch_id": arch_id, "arch": SPACE.arch_str(arch_id), "dataset": "cifar10", "device": device,
            "source": "measured", "batch_size": batch_size, "latency_ms": latency, "energy_mj": None,
            "status": status, "error": None, "details": None}


def test_fewshot_from_a_runs_rows_skips_failed_other_batch_and_other_device_rows(board, home, tmp_path, cli):
    shot, rest, y = board
    rows = [_latency_row(i, "board", float(y[i])) for i in shot]
    rows += [_latency_row(rest[0], "board", None, status="error"), _latency_row(rest[1], "board", 1e3, batch_size=8),
             _latency_row(rest[2], "cpu", 1e3)]
    Store(str(tmp_path / "results")).write("latency", rows, "shard-0", run_id="board-run", space="nb201")
    code, out, err = cli("fewshot", "runboard", "--run", "board-run", "--device", "board",
                         "--results", str(tmp_path / "results"))
    assert code == 0, err
    predictor = load("runboard", home)
    assert sorted(SPACE.parse(n["arch"]) for n in predictor.fit["networks"]) == sorted(shot)
    assert predictor.fit["source"] == {"run_id": "board-run", "device": "board", "results": str(tmp_path / "results")}
    code, _, err = cli("fewshot", "runboard", "--run", "nope", "--results", str(tmp_path / "results"))
    assert code == 2 and "run 'nope' in" in err and "has no ok batch-1 latency rows of device 'cpu'" in err


WORKFLOW = """
[run]
name = "{name}"
output = "{output}"

[[jobs]]
space = "{space}"
datasets = ["{dataset}"]
archs = {{ ids = {ids} }}
latency = ["wfboard"]
shard_size = 2
"""


def _launch(tmp_path, cli, workflow_file, name: str, space: str, dataset: str, ids: list[int]):
    path = workflow_file(tmp_path, WORKFLOW.format(name=name, output=tmp_path / "results", space=space,
                                                   dataset=dataset, ids=ids), f"{name}.toml")
    code, out, err = cli("launch", "--workflow", str(path))
    rows = pads.dataset(tmp_path / "results" / "latency", partitioning="hive").to_table().to_pylist()
    return code, err, [r for r in rows if r["run_id"].startswith(name)]


def test_workflows_name_a_fitted_device_and_runs_keep_its_document(board, home, tmp_path, cli, workflow_file,
                                                                   local_ray):
    shot, rest, y = board
    cli("fewshot", "wfboard", "--from", _csv(tmp_path / "m.csv", _rows(shot, y)))
    saved = json.loads((home / "wfboard.json").read_text())
    code, err, rows = _launch(tmp_path, cli, workflow_file, "nb", "nb201", "cifar10", rest[:4])
    assert code == 0, err
    assert len(rows) == 4 and {r["source"] for r in rows} == {"predicted"} and {r["status"] for r in rows} == {"ok"}
    details = json.loads(rows[0]["details"])
    assert details["kind"] == "meta" and "extrapolated" not in details
    run_id = rows[0]["run_id"]
    assert json.loads((tmp_path / "results" / "devices" / run_id / "wfboard.json").read_text()) == saved
    predicted = {r["arch_id"]: r["latency_ms"] for r in rows}
    expected = load("wfboard", home).predict(space_features("nb201", rest[:4], "cifar10"))
    assert np.allclose([predicted[i] for i in rest[:4]], expected, rtol=1e-9)

    # NATS-SSS networks (other channel counts) lie beyond the NB201 cells it was fitted on: flagged, warned once
    code, err, rows = _launch(tmp_path, cli, workflow_file, "sss", "nats_sss", "cifar10", [0, 1, 32767])
    assert code == 0, err
    assert all(json.loads(r["details"])["extrapolated"] for r in rows)
    assert err.count("warning:") == 1 and "device 'wfboard' predicts nats_sss networks (cifar10) beyond" in err

    # a refit under the same name must not mix into the run that used the first fit
    cli("fewshot", "wfboard", "--from", _csv(tmp_path / "m.csv", _rows(rest[-20:], y)))
    code, err, _ = _launch(tmp_path, cli, workflow_file, "nb", "nb201", "cifar10", rest[:4])
    assert code == 2 and "device 'wfboard' was refitted after run" in err


@pytest.mark.parametrize("edit, message", [
    (lambda doc: {**doc, "features_version": -1},
     r"oldboard\.json was fitted on features v-1, this code extracts v\d+; refit it"),
    (lambda doc: {**doc, "kind": "lookup"}, r"oldboard\.json holds an unknown kind of predictor 'lookup'"),
])
def test_a_workflow_naming_an_unusable_fitted_device_exits_2_with_one_line(home, tmp_path, cli, workflow_file, edit,
                                                                            message):
    """hw_models rejects the file (HardwareModelError); the launch ends in one line, before Ray starts."""
    home.mkdir(parents=True)
    doc = json.loads((PARAMS_DIR / "raspi4.json").read_text())
    (home / "oldboard.json").write_text(json.dumps(edit({**doc, "device": "oldboard"})))
    path = workflow_file(tmp_path, WORKFLOW.format(name="old", output=tmp_path / "results", space="nb201",
                                                   dataset="cifar10", ids=[1, 2]).replace("wfboard", "oldboard"))
    code, _, err = cli("launch", "--workflow", str(path))
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert not (tmp_path / "results").exists()
