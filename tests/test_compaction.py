"""Compaction: a finished run's shard files become one sorted file per table and space; the run stays done (a
relaunch recomputes nothing), a damaged compacted file is set aside and its shards recomputed, and a compaction
stopped half way is finished by running it again."""
from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zsdist.analysis.views import connect
from zsdist.compaction import compact_run
from zsdist.plan import plan
from zsdist.run import launch
from zsdist.store import SHARDS_KEY, Store
from zsdist.truth import ingest
from zsdist.workflow import load_workflow

ROWS_SQL = "SELECT * EXCLUDE (seconds) FROM scores ORDER BY ALL"  # seconds are timings: they differ on recompute


@pytest.fixture(scope="module")
def runs(tmp_path_factory, local_ray, small_workflow, workflow_file):
    """The small workflow launched twice into two folders: as shard files, and compacted at the end."""
    folder = tmp_path_factory.mktemp("compaction")
    out = {}
    for name, compact in (("shards", False), ("compacted", True)):
        output = folder / name
        ingest(Store(str(output)), "nb201")
        wf = load_workflow(workflow_file(folder, small_workflow.format(output=output), f"{name}.toml"))
        launch(wf, show_progress=False, compact=compact)
        out[name] = (wf, output)
    return out


def _partition(output, wf):
    return output / "scores" / f"run_id={wf.run_id}" / "space=nb201"


def test_a_compacted_run_holds_one_sorted_file_listing_its_shards(runs):
    wf, output = runs["compacted"]
    files = sorted(p.name for p in _partition(output, wf).iterdir())
    assert files == ["compacted.parquet"]
    meta = pq.read_metadata(_partition(output, wf) / "compacted.parquet")
    assert json.loads(meta.metadata[SHARDS_KEY]) == {s.key: s.rows for s in plan(wf)} == {
        "j00-s00000": 16, "j00-s00001": 16, "j00-s00002": 16}
    table = pq.read_table(_partition(output, wf) / "compacted.parquet")
    keys = list(zip(*(table.column(c).to_pylist() for c in ("dataset", "proxy", "arch_id"))))
    assert keys == sorted(keys)
    shards_wf, shards_out = runs["shards"]
    assert (connect(str(output)).execute(ROWS_SQL).fetchall()
            == connect(str(shards_out)).execute(ROWS_SQL).fetchall())


def test_a_compacted_run_is_still_done(runs):
    wf, output = runs["compacted"]
    path = _partition(output, wf) / "compacted.parquet"
    before = path.stat().st_mtime_ns
    again = launch(wf, show_progress=False, compact=True)
    assert (again.shards_done, again.shards_skipped) == (0, 3) and path.stat().st_mtime_ns == before


def test_compact_command_merges_shard_files_and_keeps_the_rows(runs, tmp_path, cli):
    wf, source = runs["shards"]
    output = tmp_path / "results"
    shutil.copytree(source, output)
    before = connect(str(output)).execute(ROWS_SQL).fetchall()
    code, out, _ = cli("compact", wf.run_id, "--results", str(output))
    assert code == 0 and "3 shard files merged into 1 compacted files (48 rows)" in out
    assert connect(str(output)).execute(ROWS_SQL).fetchall() == before
    code, out, _ = cli("compact", wf.run_id, "--results", str(output))
    assert code == 0 and "compacted already" in out


def test_a_compaction_stopped_before_removing_shard_files_is_finished_by_running_it_again(runs, tmp_path):
    wf, source = runs["shards"]
    output = tmp_path / "results"
    shutil.copytree(source, output)
    shard = _partition(output, wf) / "j00-s00001.parquet"
    kept = shard.read_bytes()
    compact_run(Store(str(output)), wf.run_id)
    shard.write_bytes(kept)  # as if the compaction had stopped before deleting this file
    con = connect(str(output))
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == 48 + 16  # seen twice until finished
    done = compact_run(Store(str(output)), wf.run_id)
    assert (done.files, done.rows) == (1, 48) and not shard.exists()
    assert connect(str(output)).execute("SELECT count(*) FROM scores").fetchone()[0] == 48


def test_a_damaged_compacted_file_is_set_aside_and_recomputed(runs, tmp_path, capfd):
    wf, source = runs["compacted"]
    output = tmp_path / "results"
    shutil.copytree(source, output)
    before = connect(str(output)).execute(ROWS_SQL).fetchall()
    compacted = _partition(output, wf) / "compacted.parquet"
    compacted.write_bytes(compacted.read_bytes()[:-200])  # truncated: the footer is gone
    capfd.readouterr()
    again = launch(wf, output=str(output), show_progress=False, compact=True)
    err = capfd.readouterr().err
    assert again.shards_done == 3 and err.count("is broken") == 1 and "compacted.parquet" in err
    assert list((output / "_broken" / "scores").rglob("compacted.parquet.*"))
    assert connect(str(output)).execute(ROWS_SQL).fetchall() == before


def test_compacting_an_unknown_unfinished_or_damaged_run_is_refused_in_one_line(runs, tmp_path, cli):
    wf, source = runs["shards"]
    output = tmp_path / "results"
    shutil.copytree(source, output)
    compact = lambda: cli("compact", wf.run_id, "--results", str(output))
    code, _, err = cli("compact", "nope", "--results", str(output))
    assert code == 2 and err.count("\n") == 1 and "no run 'nope'" in err
    shard = _partition(output, wf) / "j00-s00002.parquet"
    shard.write_bytes(b"PAR1")
    code, _, err = compact()
    assert code == 2 and err.count("\n") == 1 and f"shard file {shard} is not readable Parquet" in err
    assert "launch the run again" in err
    assert len(list(_partition(output, wf).iterdir())) == 3  # nothing merged, nothing removed
    runs_file = output / "runs" / f"run_id={wf.run_id}" / "run.parquet"
    row = pq.read_table(runs_file)
    index = row.schema.get_field_index("finished")
    pq.write_table(row.set_column(index, row.schema.field(index), pa.nulls(1, row.schema.field(index).type)),
                   runs_file)
    code, _, err = compact()
    assert code == 2 and err.count("\n") == 1 and f"run {wf.run_id} is not finished" in err
