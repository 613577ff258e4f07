"""Results on an object store: a launch on Ray writes through pyarrow's S3 filesystem to a real S3 server (moto,
in this process), compacts the run, and the views read it through the same filesystem, pruning by run."""
from __future__ import annotations

import logging
import re

import pytest

from zsdist.analysis.views import connect, user_errors
from zsdist.compare import compare_runs
from zsdist.errors import ZsdistError
from zsdist.run import launch
from zsdist.store import Store
from zsdist.truth import ingest
from zsdist.workflow import load_workflow

moto_server = pytest.importorskip("moto.server", reason="moto[s3] (a test dependency) is not installed")


@pytest.fixture(scope="module")
def s3_results(local_ray):
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield (f"s3://key:secret@results/nightly?endpoint_override={host}:{port}&scheme=http&region=us-east-1"
           "&allow_bucket_creation=true")
    server.stop()


@pytest.fixture(scope="module")
def remote_run(s3_results, tmp_path_factory, small_workflow, workflow_file):
    folder = tmp_path_factory.mktemp("remote")
    store = Store(s3_results)
    store.filesystem[0].create_dir("results")
    ingest(store, "nb201")
    wf = load_workflow(workflow_file(folder, small_workflow.format(output="unused")))
    summary = launch(wf, output=s3_results, show_progress=False, compact=True)
    return store, wf, summary


def test_a_launch_writes_compacts_and_summarises_on_s3(remote_run):
    store, wf, summary = remote_run
    assert summary.shards_done == 3
    assert [p.rsplit("/", 1)[1] for p in store.files("scores", run_id=wf.run_id, space="nb201")] == [
        "compacted.parquet"]
    con = connect(store.uri)
    assert con.execute("SELECT count(*) FROM scores WHERE run_id = ?", [wf.run_id]).fetchone()[0] == 48
    stored = con.execute("SELECT proxy, spearman FROM run_correlation WHERE run_id = ? AND dataset = 'cifar10' "
                         "AND metric = 'test_acc' ORDER BY proxy", [wf.run_id]).fetchall()
    live = con.execute("SELECT proxy, spearman FROM correlation WHERE run_id = ? AND dataset = 'cifar10' "
                       "AND metric = 'test_acc' ORDER BY proxy", [wf.run_id]).fetchall()
    assert [p for p, _ in stored] == ["flops", "naswot", "params", "synflow"]
    assert stored == [(p, pytest.approx(r, rel=1e-12)) for p, r in live]
    again = launch(wf, output=store.uri, show_progress=False)
    assert (again.shards_done, again.shards_skipped) == (0, 3)
    assert compare_runs(store.uri, wf.run_id, wf.run_id).rows == []


def test_a_query_naming_a_run_opens_only_its_remote_files(remote_run):
    store, wf, _ = remote_run
    store.write("scores", store.read("scores", "compacted", run_id=wf.run_id, space="nb201"), "compacted",
                run_id="other-run", space="nb201")
    con = connect(store.uri)
    plan = con.execute("EXPLAIN ANALYZE SELECT count(*) FROM scores WHERE run_id = ?", [wf.run_id]).fetchall()[0][1]
    assert re.findall(r"Scanning Files: (\d+/\d+)", plan) == ["1/2"]


def test_a_damaged_remote_file_is_named(remote_run):
    store, wf, _ = remote_run
    fs, root = store.filesystem
    with fs.open_output_stream(f"{root}/scores/run_id=zz-damaged/space=nb201/j00-s00000.parquet") as out:
        out.write(b"PAR1 not a parquet file")
    con = connect(store.uri)
    with pytest.raises(ZsdistError, match=r"results file results/nightly/scores/run_id=zz-damaged/space=nb201/"
                                          r"j00-s00000.parquet is not readable Parquet .*launch run zz-damaged again"):
        with user_errors(store.uri):
            con.execute("SELECT count(*) FROM scores WHERE run_id = 'zz-damaged'").fetchall()
