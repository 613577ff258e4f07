"""Results on an object store: a launch on Ray writes through pyarrow's S3 filesystem to a real S3 server (moto,
in a process of its own), compacts the run, and the views read it through the same filesystem, pruning by run."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import time

import pytest

from zsdist.analysis.views import connect, user_errors
from zsdist.compare import compare_runs
from zsdist.errors import ZsdistError
from zsdist.run import launch
from zsdist.store import Store
from zsdist.truth import ingest
from zsdist.workflow import load_workflow

pytest.importorskip("moto.server", reason="moto[s3] (a test dependency) is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_results(local_ray):
    # Its own process, as a real object store is: served from this one, the server would share the GIL with the
    # DuckDB threads that read through it, and a slow request under load would hit the S3 client's timeout.
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"the moto S3 server did not start on port {port}")
            time.sleep(0.2)
    yield (f"s3://key:secret@results/nightly?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
           "&allow_bucket_creation=true")
    server.terminate()
    server.wait(timeout=30)


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
