"""A real multi-node Ray cluster on this machine: placement, a dying node, a killed driver, Ray Jobs."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from zsdist.analysis.views import connect
from zsdist.errors import ZsdistError
from zsdist.remote import load_cluster_config, submit
from zsdist.run import launch
from zsdist.workflow import load_workflow

pytestmark = pytest.mark.ray  # Ray clusters of several nodes on this machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DASHBOARD_PORT = _free_port()  # not a fixed port: another Ray on the machine may hold any of them
WORKFLOW = """
[run]
name = "{name}"
output = "{output}"
[[jobs]]
space = "nb201"
datasets = ["cifar10"]
archs = {{ sample = {n}, seed = 5 }}
proxies = ["params", "synflow", "naswot"]
batch_size = 64
shard_size = {shard}
"""


@pytest.fixture(scope="module")
def cluster():
    """A head without CPUs (so every shard runs on a worker node) and two 1-CPU worker nodes."""
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": True,
                                                       "dashboard_port": DASHBOARD_PORT,
                                                       "dashboard_agent_listen_port": _free_port()})
    workers = [_add_node(c) for _ in range(2)]
    yield c, workers
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


def _add_node(c: Cluster):
    """A 1-CPU worker node. Ray gives a raylet a fixed 30 s to register, which a loaded machine can miss; a node
    that missed it may still join later, which these tests tolerate (they count shards and rows, not nodes)."""
    for attempt in range(3):
        try:
            node = c.add_node(num_cpus=1)
            c.wait_for_nodes()
            return node
        except Exception:
            if attempt == 2:
                raise


def _workflow(workflow_file, tmp_path: Path, name: str, n: int, shard: int):
    body = WORKFLOW.format(name=name, output=tmp_path / "results", n=n, shard=shard)
    return load_workflow(workflow_file(tmp_path, body))


def _score_files(output: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (output / "scores").rglob("*.parquet")}


def _rows_exactly_once(output: Path, n_archs: int) -> None:
    con = connect(str(output))
    total, distinct = con.execute("SELECT count(*), count(DISTINCT (arch_id, dataset, proxy)) FROM scores").fetchone()
    assert total == distinct == n_archs * 3


def test_shards_land_on_different_nodes(cluster, tmp_path, workflow_file):
    c, workers = cluster
    wf = _workflow(workflow_file, tmp_path, "spread", 6, 1)
    summary = launch(wf, address=c.address, show_progress=False)
    assert summary.shards_done == 6 and len(set(summary.nodes)) >= 2  # every worker node, none on the head
    _rows_exactly_once(tmp_path / "results", 6)


def test_killing_a_worker_node_mid_run_loses_and_duplicates_nothing(cluster, tmp_path, workflow_file):
    c, workers = cluster
    doomed = _add_node(c)
    wf = _workflow(workflow_file, tmp_path, "node-dies", 16, 2)
    ray.init(address=c.address)
    killed = []

    def kill_when_first_shard_lands():
        while not _score_files(tmp_path / "results"):
            time.sleep(0.05)
        c.remove_node(doomed, allow_graceful=False)
        killed.append(time.monotonic())

    import threading

    watcher = threading.Thread(target=kill_when_first_shard_lands)
    watcher.start()
    try:
        summary = launch(wf, show_progress=False)
    finally:
        watcher.join()
        ray.shutdown()
    assert killed and summary.shards_done == 8
    _rows_exactly_once(tmp_path / "results", 16)


def test_a_killed_driver_resumes_only_the_missing_shards(cluster, tmp_path, workflow_file):
    c, _ = cluster
    wf_path = workflow_file(tmp_path, WORKFLOW.format(name="resume", output=tmp_path / "results", n=16, shard=2))
    driver = subprocess.Popen([sys.executable, "-m", "zsdist", "launch", "--workflow", str(wf_path), "--address",
                               c.address], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not _score_files(tmp_path / "results") and time.monotonic() < deadline:
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = _score_files(tmp_path / "results")
    assert 1 <= len(before) < 8
    summary = launch(load_workflow(wf_path), address=c.address, show_progress=False)
    assert summary.shards_skipped >= len(before) and summary.shards_skipped + summary.shards_done == 8
    after = _score_files(tmp_path / "results")
    assert all(after[f] == mtime for f, mtime in before.items())  # finished shards are never recomputed
    _rows_exactly_once(tmp_path / "results", 16)


def test_a_workflow_submitted_as_a_ray_job_completes(cluster, tmp_path, workflow_file):
    wf_path = workflow_file(tmp_path, WORKFLOW.format(name="job", output=tmp_path / "results", n=4, shard=2))
    assert submit(f"http://127.0.0.1:{DASHBOARD_PORT}", str(wf_path), None) == 0
    _rows_exactly_once(tmp_path / "results", 4)
    assert connect(str(tmp_path / "results")).execute("SELECT count(*) FROM runs WHERE finished IS NOT NULL"
                                                      ).fetchone()[0] == 1


def test_shipped_cluster_yaml_passes_rays_schema(tmp_path, repo):
    config = load_cluster_config(str(repo / "cluster.yaml"))
    assert config["provider"]["type"] == "aws"
    assert any("GPU" in str(t) or "g5" in str(t["node_config"]) for t in config["available_node_types"].values())
    broken = tmp_path / "bad.yaml"
    text = (repo / "cluster.yaml").read_text()
    broken.write_text(text.replace("max_workers: 8\nupscaling", "max_workers: lots\nupscaling"))
    with pytest.raises(ZsdistError, match="invalid cluster file"):
        load_cluster_config(str(broken))
