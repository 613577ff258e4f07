"""Empty tables say why: missing ground truth (none, another dataset, other architectures, no source for the space),
pools larger than the evaluated set, no latency; each hint names the command or setting that adds what is missing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from analysis_fixture import RUN, VIT_RUN, shared_results, vit_results

from zsdist.analysis.hints import hints, missing_hints
from zsdist.analysis.report import build_report
from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.store import Store

SPEC = AnalysisSpec(pool_sizes=(10,), pool_repeats=4, top_k=(1,), bootstrap_resamples=50)


def _copy(tmp_path: Path, source: Path, leave_out: tuple[str, ...] = ()) -> Path:
    root = tmp_path / "results"
    shutil.copytree(source, root, ignore=shutil.ignore_patterns(*leave_out))
    return root


def test_a_complete_folder_has_nothing_missing(tmp_path_factory):
    con = connect(str(shared_results(tmp_path_factory)), SPEC)
    assert missing_hints(con, RUN) == []


def test_no_truth_names_the_ingest_command(tmp_path_factory, tmp_path):
    root = _copy(tmp_path, shared_results(tmp_path_factory), ("truth",))
    con = connect(str(root), SPEC)
    expected = (f"no ground truth for nb201 in these results, so its tables are empty: add it with "
                f"`zsdist ingest --results {root} --source nb201`")
    assert missing_hints(con, RUN, str(root)) == [expected]  # once, not once per dataset
    report = build_report(con, RUN, str(root), SPEC)
    empty = {t.key: t.note for t in report.tables if not t.rows}
    assert set(empty) == {"correlation", "regions", "study", "metrics", "selection", "hardware", "constrained",
                          "families"}
    assert all(note == f"No rows: {expected}." for note in empty.values())
    page = report.html()
    assert "<section id='missing'><h2>What is missing</h2>" in page and "zsdist ingest --results" in page


def test_truth_of_another_dataset_and_no_latency(tmp_path_factory, tmp_path):
    root = _copy(tmp_path, shared_results(tmp_path_factory), ("latency",))
    truth = next((root / "truth" / "space=nb201").iterdir())
    table = pq.read_table(truth)
    pq.write_table(table.filter(pc.equal(table["dataset"], "cifar10")), truth)
    con = connect(str(root), SPEC)
    assert missing_hints(con, RUN, str(root)) == [
        "no latency for nb201/cifar10, so the hardware table has only the #FLOPs budgets: add `latency = [\"cpu\"]` "
        f"(or another device of `zsdist.hardware`) to the job, or load the published NB201 tables with "
        f"`zsdist ingest --results {root} --source nb201`",
        "the ground truth of nb201 has no dataset 'imagenet16_120' (it has cifar10): evaluate one of those to "
        "correlate",
    ]
    hardware = next(t for t in build_report(con, RUN, str(root), SPEC).tables if t.key == "hardware")
    assert hardware.rows and {r[3] for r in hardware.rows} == {"flops"}  # cost column: the #FLOPs budgets only


def test_a_space_without_a_truth_source(tmp_path_factory, tmp_path):
    # the fixture's rows filed under a space that no truth source covers
    root = _copy(tmp_path, shared_results(tmp_path_factory), ("scores",))
    rows = pq.read_table(shared_results(tmp_path_factory) / "scores" / f"run_id={RUN}" / "space=nb201"
                         / "shard-0.parquet")
    Store(str(root)).write("scores", rows, "shard-0", run_id=RUN, space="resnet")
    con = connect(str(root), SPEC)
    assert missing_hints(con, RUN) == ["resnet has no ground-truth source (sources exist for autoformer_tiny, "
                                       "nb101, nb201, pit, transnas_micro), so no table can rank its proxies"]


@pytest.mark.fulldata  # AutoFormer ground truth is fetched, not embedded
def test_vit_run_without_truth_archs_latency_or_enough_archs(tmp_path_factory):
    con = connect(str(vit_results(tmp_path_factory)))  # the default pools: 100 and 1,000
    found = hints(con, VIT_RUN)
    assert found[0].text == ("none of the 2 autoformer_tiny architectures scored on chaoyang has ground truth; "
                             '`archs = "truth"` in the job selects those that have')
    for dataset in ("cifar100_224", "flowers102", "imagenet"):
        pool = (f"autoformer_tiny/{dataset} has 6 evaluated architectures, fewer than the smallest selection pool "
                "(100): evaluate more, or set smaller pool sizes (AnalysisSpec.pool_sizes)")
        latency = (f"no latency for autoformer_tiny/{dataset}, so the hardware table has no rows (nor #FLOPs "
                   'budgets: the flops proxy did not run): add `latency = ["cpu"]` (or another device of '
                   "`zsdist.hardware`) to the job")
        assert [h.text for h in found if dataset in h.text] == [pool, latency]
    assert len(found) == 7
    assert con.execute("SELECT count(*) FROM selection WHERE run_id = ?", [VIT_RUN]).fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM constrained WHERE run_id = ?", [VIT_RUN]).fetchone()[0] == 0


@pytest.mark.fulldata  # HELP tables are fetched, not embedded
@pytest.mark.parametrize("key", ["selection", "hardware"])
def test_report_tables_explain_their_own_emptiness(tmp_path_factory, key):
    con = connect(str(vit_results(tmp_path_factory)))
    report = build_report(con, VIT_RUN, "r", AnalysisSpec(bootstrap_resamples=50))
    table = next(t for t in report.tables if t.key == key)
    assert not table.rows and table.note.startswith("No rows: ")
    kind = "selection pool" if key == "selection" else "no latency"
    assert table.note.count(kind) == 3  # one per dataset with truth
