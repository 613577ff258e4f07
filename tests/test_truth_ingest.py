"""`zsdist ingest` never trusts a broken file: short, cut or malformed sources end with one line that names the
file (exit 2) and leave the results folder as it was; good truth is never replaced by less unless forced. Users'
own files (NASLib's zero-cost JSON, HELP's latency lists) load directly; unchanged inputs are not reloaded."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from zsdist.hardware.tables import hwnb_tables
from zsdist.settings import data_file, read_table
from zsdist.spaces import create_space
from zsdist.store import Store
from zsdist.truth import ensure_truth

NB201 = create_space("nb201")


@pytest.fixture(autouse=True)
def fresh_install(tmp_path, monkeypatch):
    monkeypatch.delenv("ZSDIST_DATA", raising=False)
    monkeypatch.setenv("ZSDIST_CACHE", str(tmp_path / "cache"))


def snapshot(results: Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes() for p in results.rglob("*") if p.is_file()}


def ingest(cli, results: Path, *args: str) -> tuple[int, str, str]:
    return cli("ingest", "--results", str(results), "--no-latency-tables", *args)


def refused(cli, results: Path, *args: str) -> str:
    """Run an ingest that must fail: exit 2, one stderr line, no traceback, results folder unchanged."""
    before = snapshot(results)
    code, _, err = ingest(cli, results, *args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert snapshot(results) == before
    return err


@pytest.fixture
def results(tmp_path, cli) -> Path:
    """A results folder that already holds the complete NB201 truth."""
    root = tmp_path / "results"
    code, out, _ = ingest(cli, root, "--source", "nb201")
    assert code == 0 and "truth nb201: 93750 rows (written" in out
    return root


@pytest.fixture
def nb201_csv() -> str:
    return data_file("nb201/nb201_accuracy.csv").read_text()


def test_a_csv_cut_at_a_row_boundary_is_refused(results, tmp_path, nb201_csv, cli):
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(nb201_csv.splitlines(keepends=True)[:7_813]))
    err = refused(cli, results, "--source", "nb201", "--file", str(cut))
    assert str(cut) in err and "covers 7,812 of the 15,625 nb201 architectures" in err and "--force" in err


@pytest.mark.parametrize("damage", ["mid-row", "random bytes", "empty"])
def test_a_damaged_csv_is_named_in_one_line(results, tmp_path, nb201_csv, cli, damage):
    bad = tmp_path / "bad.csv"
    if damage == "mid-row":
        bad.write_text(nb201_csv[: len(nb201_csv) // 2] + "\n" + nb201_csv[len(nb201_csv) // 2:][:40])
    elif damage == "random bytes":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4_000, dtype=np.uint8).tobytes())
    else:
        bad.write_text("")
    assert str(bad) in refused(cli, results, "--source", "nb201", "--file", str(bad))


@pytest.mark.parametrize("name, body", [("cut.json", '[{"arch": {"base_dim": 16, "mlp_ratio": 6, "dep'),
                                        ("list.json", '{"not": "a list"}'), ("bad-arch.json", '[{"arch": {}}]')])
def test_malformed_json_is_named_in_one_line(tmp_path, cli, name, body):
    bad = tmp_path / name
    bad.write_text(body)
    assert str(bad) in refused(cli, tmp_path / "results", "--source", "pit", "--file", str(bad))


def test_a_truncated_reference_file_in_the_data_folder_is_refused(tmp_path, nb201_csv, monkeypatch, cli):
    folder = tmp_path / "data" / "nb201"
    folder.mkdir(parents=True)
    (folder / "nb201_accuracy.csv").write_text("".join(nb201_csv.splitlines(keepends=True)[:10_001]))
    monkeypatch.setenv("ZSDIST_DATA", str(tmp_path / "data"))
    err = refused(cli, tmp_path / "results", "--source", "nb201")
    assert "gives 60,000 ground-truth rows, not the 93,750 of the reference" in err


def test_good_truth_is_never_replaced_by_less_unless_forced(results, cli, fixtures_dir):
    sample = str(fixtures_dir / "naslib" / "zc_nasbench201_head.json")  # NASLib's own file: 3 cells, a sample
    err = refused(cli, results, "--source", "nb201", "--file", sample)
    assert "holds 93,750 rows and the new input only 3" in err and "--force" in err
    code, out, _ = ingest(cli, results, "--source", "nb201", "--file", sample, "--force")
    assert code == 0 and "truth nb201: 3 rows (written" in out


def test_naslib_zero_cost_json_gives_the_reference_values(tmp_path, fixtures_dir):
    store = Store(str(tmp_path))
    from zsdist.truth import ingest as load_truth

    assert load_truth(store, "nb201", str(fixtures_dir / "naslib" / "zc_nasbench201_head.json")) == 3
    rows = store.read("truth", "nb201_accuracy", space="nb201").to_pylist()
    reference = read_table("nb201/nb201_accuracy.csv").to_pydict()
    valid = {NB201.parse(a): v for a, v in zip(reference["arch_str"], reference["valid_cifar100"])}
    assert {(r["dataset"], r["metric"]) for r in rows} == {("cifar100", "valid_acc")}
    assert all(r["value"] == valid[r["arch_id"]] for r in rows)


def test_naslib_transnas_json_loads_its_classification_tasks(tmp_path, fixtures_dir):
    from zsdist.truth import ingest as load_truth

    store = Store(str(tmp_path))
    assert load_truth(store, "transnas_micro", str(fixtures_dir / "naslib" / "zc_transbench101_micro_head.json")) == 2
    rows = store.read("truth", "transnas_micro_valid", space="transnas_micro").to_pylist()
    source = json.loads((fixtures_dir / "naslib" / "zc_transbench101_micro_head.json").read_text())["class_scene"]
    assert sorted(r["value"] for r in rows) == sorted(e["val_accuracy"] for e in source.values())


def test_unchanged_input_is_kept_and_only_the_chosen_spaces_tables_load(results, tmp_path, cli, fixtures_dir):
    before = snapshot(results)
    code, out, _ = ingest(cli, results, "--source", "nb201")
    assert code == 0 and "unchanged, kept" in out and snapshot(results) == before
    pit = str(fixtures_dir / "layout" / "pit_head.json")
    code, out, err = cli("ingest", "--results", str(results), "--source", "pit", "--file", pit)
    assert code == 0 and "truth pit: 12 rows (written" in out and "latency" not in out + err
    assert not (results / "latency").exists()
    assert out.index("truth pit: reading") < out.index("truth pit: 12 rows")  # says what it reads, then the result


def test_helps_own_latency_lists_load_directly(tmp_path, cli):
    """HELP's raspi4 list equals HW-NAS-Bench's CIFAR-10 raspi4 column; written as HELP's .pt file it must load
    onto the same architectures."""
    raspi4 = hwnb_tables("cifar10")["raspi4"].latency_ms
    order = [NB201.parse(a) for a in read_table("nb201/nb201_accuracy.csv").sort_by("nb201_index")
             .column("arch_str").to_pylist()]
    folder = tmp_path / "latency"
    folder.mkdir()
    torch.save([float(raspi4[arch_id]) for arch_id in order], folder / "raspi4.pt")
    results = tmp_path / "results"
    code, out, _ = cli("ingest", "--results", str(results), "--source", "help", "--file", str(folder))
    assert code == 0 and "latency tables help: 15625 rows (written" in out
    rows = Store(str(results)).read("latency", "help", run_id="tables", space="nb201").to_pydict()
    assert set(rows["device"]) == {"help_raspi4"}
    assert np.allclose(np.array(rows["latency_ms"])[np.argsort(rows["arch_id"])], raspi4, equal_nan=True)


def test_a_pickle_that_runs_code_is_refused_before_it_runs(tmp_path, cli):
    marker = tmp_path / "was-run"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    folder = tmp_path / "latency"
    folder.mkdir()
    (folder / "raspi4.pt").write_bytes(pickle.dumps(Exploit()))
    err = refused(cli, tmp_path / "results", "--source", "help", "--file", str(folder))
    assert "raspi4.pt" in err and "refused" in err and not marker.exists()


def test_ensure_truth_loads_what_is_available_and_names_the_commands_otherwise(tmp_path):
    store = Store(str(tmp_path))
    assert ensure_truth(store, "nb201") is None
    assert store.read("truth", "nb201_accuracy", space="nb201").num_rows == 93_750
    hint = ensure_truth(store, "nb101")
    assert "no ground truth for nb101" in hint and "`zsdist data fetch nb101`" in hint
    assert f"`zsdist ingest --results {tmp_path} --source nb101`" in hint
    assert "no ground truth for mbv2" in ensure_truth(store, "mbv2")
