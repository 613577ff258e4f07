"""Bad input and faults thrown at the command line, as a new user or an unattended nightly run meets them, while
a foreign Ray instance runs on the machine (conftest's `foreign_ray`): each ends with its exit status, one line on
stderr, no traceback, and a results folder that is either unchanged or complete."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BASE = """
[run]
name = "faults"
output = "{out}"
seed = 0

[[jobs]]
space = "nb201"
datasets = ["cifar10"]
archs = {{ ids = [0, 9009, 10798, 15624] }}
proxies = ["params", "flops"]
batch_size = 8
shard_size = 2
"""


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time (empty when the folder is absent)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


def one_error_line(err: str, fragment: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], err


def workflow(tmp_path: Path, old: str = "", new: str = "", out: Path | None = None) -> Path:
    body = BASE.format(out=out or tmp_path / "out")
    assert old in body, f"the case edits {old!r}, which the base workflow does not contain"
    path = tmp_path / "wf.toml"
    path.write_text(body.replace(old, new, 1) if old else body)
    return path


# (what the case is, text to replace in the base workflow, its replacement, what the error line must say)
BAD_WORKFLOWS = [
    ("toml syntax", "batch_size = 8", "batch_size = [8", "malformed workflow file"),
    ("unknown table", "[run]", "[runs]", "unknown key(s) runs"),
    ("no name", 'name = "faults"', "", "run is missing 'name'"),
    ("name climbs out", '"faults"', '"../../outside"', "cannot name a file or folder"),
    ("name with slash", '"faults"', '"a/b"', "cannot name a file or folder"),
    ("name with hive =", '"faults"', '"run_id=x"', "cannot name a file or folder"),
    ("name not a string", '"faults"', "7", "run.name must be a string"),
    ("negative seed", "seed = 0", "seed = -1", "run.seed must be at least 0"),
    ("seed a string", "seed = 0", 'seed = "zero"', "run.seed must be an integer"),
    ("dated not a bool", "seed = 0", 'seed = 0\ndated = "yes"', "run.dated must be true or false"),
    ("jobs misspelt", "[[jobs]]", "[[job]]", "unknown key(s) job; did you mean 'jobs'?"),
    ("unknown job key", "shard_size = 2", "shardsize = 2", "did you mean 'shard_size'?"),
    ("unknown space", '"nb201"', '"nb2O1"', "did you mean 'nb201'?"),
    ("no datasets", '["cifar10"]', "[]", "datasets must list at least 1 item(s)"),
    ("repeated dataset", '["cifar10"]', '["cifar10", "cifar10"]', "repeats an entry"),
    ("dataset of another space", '["cifar10"]', '["imagenet"]', "has no dataset 'imagenet'"),
    ("archs some", "{ ids = [0, 9009, 10798, 15624] }", '"some"', '"all", "truth"'),
    ("empty sample", "{ ids = [0, 9009, 10798, 15624] }", "{ sample = 0 }", "sample must be at least 1"),
    ("negative archs seed", "{ ids = [0, 9009, 10798, 15624] }", "{ sample = 3, seed = -3 }",
     "archs.seed must be at least 0"),
    ("sample too large", "{ ids = [0, 9009, 10798, 15624] }", "{ sample = 20000 }", "does not fit space"),
    ("negative id", "[0, 9009", "[-1, 9009", "ids[0] must be at least 0"),
    ("id outside the space", "15624]", "15625]", "outside space 'nb201'"),
    ("bad arch string", "{ ids = [0, 9009, 10798, 15624] }", '{ archs = ["|conv~0|"] }', "bad NB201 arch string"),
    ("unknown proxy", '"flops"]', '"flps"]', "did you mean 'flops'?"),
    ("proxies a word", '["params", "flops"]', '"everything"', "proxies must be a list"),
    ("repeated proxy", '["params", "flops"]', '["params", "params"]', "repeats"),
    ("zero batch", "batch_size = 8", "batch_size = 0", "batch_size must be at least 1"),
    ("bool batch", "batch_size = 8", "batch_size = true", "batch_size must be an integer"),
    ("negative shard", "shard_size = 2", "shard_size = -5", "shard_size must be at least 1"),
    ("negative cpus", "shard_size = 2", "shard_size = 2\nnum_cpus = -1", "num_cpus must be greater than 0"),
    ("negative gpus", "shard_size = 2", "shard_size = 2\nnum_gpus = -0.5", "num_gpus must be at least 0"),
    ("fractional gpus above 1", "shard_size = 2", "shard_size = 2\nnum_gpus = 1.5\ndevice = \"cuda\"",
     "must be a whole number"),
    ("unknown device", "shard_size = 2", 'shard_size = 2\ndevice = "tpu"', 'must be "cpu", "cuda"'),
    ("cuda without a gpu share", "shard_size = 2", 'shard_size = 2\ndevice = "cuda"', "needs num_gpus > 0"),
    ("unknown latency device", "shard_size = 2", 'shard_size = 2\nlatency = ["rasp4"]',
     "did you mean 'raspi4'?"),
    ("nothing to compute", '["params", "flops"]', "[]", "asks for neither proxies nor latency"),
    ("data for another dataset", "shard_size = 2", 'shard_size = 2\ndata = { cifar100 = "x.npz" }',
     "names a dataset the job does not evaluate"),
    ("negative timeout", "shard_size = 2", "shard_size = 2\narch_timeout_s = -1", "arch_timeout_s must be at least 0"),
]


@pytest.mark.parametrize("case, old, new, message", BAD_WORKFLOWS, ids=[c[0] for c in BAD_WORKFLOWS])
def test_a_bad_workflow_is_one_line_and_writes_nothing(tmp_path, cli, case, old, new, message):
    code, out, err = cli("launch", "--workflow", workflow(tmp_path, old, new))
    assert code == 2
    one_error_line(err, message)
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "outside").exists()


def test_workflow_files_that_cannot_be_read(tmp_path, cli):
    for path, message in ((tmp_path / "none.toml", "does not exist"), (tmp_path, "is a folder")):
        code, _, err = cli("launch", "--workflow", path)
        assert code == 2
        one_error_line(err, message)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    code, _, err = cli("launch", "--workflow", binary)
    assert code == 2
    one_error_line(err, "cannot read workflow file")


@pytest.mark.parametrize("content, message", [
    (None, "missing image data"),
    (b"", "images.npz"),
    (b"PK\x03\x04 not really a zip archive", "images.npz"),
], ids=["missing", "empty", "not a zip"])
def test_a_job_whose_images_are_missing_or_broken_fails_before_dispatch(tmp_path, cli, content, message):
    images = tmp_path / "images.npz"
    if content is not None:
        images.write_bytes(content)
    path = workflow(tmp_path, "shard_size = 2", f'shard_size = 2\ndata = {{ cifar10 = "{images}" }}')
    code, _, err = cli("launch", "--workflow", path)
    assert code == 2
    one_error_line(err, message)
    assert not (tmp_path / "out").exists()


def test_an_unwritable_results_folder(tmp_path, cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = cli("launch", "--workflow", workflow(tmp_path, out=blocker / "results"))
    assert code == 2
    one_error_line(err, "is not writable")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run into a results folder, launched beside the foreign Ray (with RAY_ADDRESS pointing at it)."""
    folder = tmp_path_factory.mktemp("finished")
    path = workflow(folder)
    done = subprocess.run([sys.executable, "-m", "zsdist", "launch", "--workflow", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "started a private Ray" in done.stderr and "Traceback" not in done.stderr
    return path, folder / "out"


def _shard_files(out: Path) -> list[Path]:
    return sorted((out / "scores").rglob("*.parquet"))


def test_the_finished_run_ran_beside_the_foreign_ray_and_is_complete(finished, cli):
    _, out = finished
    assert len(_shard_files(out)) == 2
    code, text, _ = cli("query", "SELECT count(*) AS n FROM scores", "--results", out, "--format", "csv")
    assert code == 0 and text.split() == ["n", "8"]


@pytest.mark.parametrize("sql, kind", [
    ("COPY (SELECT 1) TO '{shard}' (FORMAT parquet)", "COPY"),
    ("ATTACH '{out}/new.duckdb'", "ATTACH"),
    ("EXPORT DATABASE '{out}/export'", "EXPORT"),
    ("SET threads = 1", "SET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
])
def test_queries_are_read_only_without_write(finished, cli, sql, kind):
    _, out = finished
    before = snapshot(out)
    code, _, err = cli("query", sql.format(shard=_shard_files(out)[0], out=out), "--results", out)
    assert code == 2
    one_error_line(err, f"{kind} statements can write files")
    assert snapshot(out) == before


def test_queries_keep_in_memory_views_and_macros(finished, cli):
    _, out = finished
    code, text, _ = cli("query", "CREATE MACRO twice(x) AS 2 * x; SELECT twice(21) AS v", "--results", out,
                        "--format", "csv")
    assert code == 0 and text.split() == ["v", "42"]


def test_query_of_a_folder_that_does_not_exist(tmp_path, cli):
    code, _, err = cli("query", "SELECT 1", "--results", tmp_path / "typo")
    assert code == 2
    one_error_line(err, "does not exist")
    assert not (tmp_path / "typo").exists()


def test_bad_sql_is_one_line(finished, cli):
    _, out = finished
    code, _, err = cli("query", "SELEC 1", "--results", out)
    assert code == 2
    one_error_line(err, "query failed")


def _fewer_rows(data: bytes) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(pq.read_table(pa.BufferReader(data)).slice(0, 3), sink)
    return sink.getvalue().to_pybytes()


DAMAGE = {"truncated": lambda data: data[: len(data) // 2], "empty": lambda data: b"",
          "garbage": lambda data: os.urandom(len(data)), "fewer rows": _fewer_rows}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_broken_shard_is_set_aside_and_recomputed(tmp_path, cli, damage):
    import pyarrow.parquet as pq

    path = workflow(tmp_path)
    assert cli("launch", "--workflow", path)[0] == 0
    victim, *others = _shard_files(tmp_path / "out")
    intact = {p: p.stat().st_mtime_ns for p in others}
    victim.write_bytes(DAMAGE[damage](victim.read_bytes()))
    code, _, err = cli("launch", "--workflow", path)
    assert code == 0 and "Traceback" not in err
    assert "scores shard j00-s00000 is broken" in err and "computing what it held again" in err
    assert pq.read_metadata(victim).num_rows == 4  # 2 archs × 1 dataset × 2 proxies
    assert {p: p.stat().st_mtime_ns for p in others} == intact  # the intact shard was not recomputed
    assert [p.name for p in (tmp_path / "out" / "_broken").rglob("*.parquet.*")]  # kept aside, not deleted
    code, text, _ = cli("query", "SELECT count(*) AS n FROM scores", "--results", tmp_path / "out", "--format", "csv")
    assert code == 0 and text.split() == ["n", "8"]


@pytest.mark.parametrize("extra, message", [
    ("num_gpus = 1\ndevice = \"cuda\"", "ask for 1 CPUs and 1 GPUs each, but the cluster has"),
    ("num_cpus = 64", "ask for 64 CPUs and 0 GPUs each"),
    ('latency = ["cuda"]', "ask for"),
])
def test_resources_the_cluster_cannot_give_fail_in_seconds(tmp_path, cli, extra, message):
    path = workflow(tmp_path, "shard_size = 2", f"shard_size = 2\n{extra}")
    start = time.monotonic()
    code, _, err = cli("launch", "--workflow", path)
    assert code == 2
    one_error_line(err, message)
    assert time.monotonic() - start < 120  # seconds, not a hang (generous for a loaded machine)
    assert not _shard_files(tmp_path / "out")


def _launch(path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "zsdist", "launch", "--workflow", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_files(out: Path, n: int, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while len(_shard_files(out)) < n and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_launch_cleanly_and_the_rerun_completes(tmp_path, cli, signum):
    path = workflow(tmp_path, "shard_size = 2", "shard_size = 1")
    proc = _launch(path)
    _wait_for_files(tmp_path / "out", 1, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum
    one_error_line(err, f"stopped by {signal.Signals(signum).name}")
    assert not list((tmp_path / "out" / "_leases").rglob("*.lease"))  # released on the way out
    kept = {p: p.stat().st_mtime_ns for p in _shard_files(tmp_path / "out")}
    code, _, _ = cli("launch", "--workflow", path)
    assert code == 0 and len(_shard_files(tmp_path / "out")) == 4
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())


def test_a_signal_inside_rays_wait_is_the_same_clean_stop(monkeypatch, capsys):
    """A signal handler's exception raised inside a C extension call (Ray's core_worker.wait) comes back as the
    cause of a SystemError: the stop is still one line and exit 128 + N."""
    from zsdist import cli

    def wait_interrupted() -> None:
        try:
            cli._interrupt(signal.SIGINT, None)
        except cli.Interrupted as stop:
            raise SystemError("<cyfunction CoreWorker.wait> returned a result with an exception set") from stop

    monkeypatch.setattr(cli, "app", wait_interrupted)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 128 + signal.SIGINT
    one_error_line(capsys.readouterr().err, "stopped by SIGINT")


SLOW = ('["params", "flops"]', '["params", "synflow", "naswot"]')


def test_two_launches_of_one_workflow_compute_each_shard_once(tmp_path):
    path = workflow(tmp_path, "shard_size = 2", "shard_size = 1")
    path.write_text(path.read_text().replace(*SLOW))
    first = _launch(path)
    _wait_for_files(tmp_path / "out", 1, first)  # the second starts while the first holds leases
    second = _launch(path)
    results = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == second.returncode == 0, results
    computed = [int(out.split(" shards computed")[0].rsplit(" ", 1)[1]) for out, _ in results]
    assert sum(computed) == 4 and len(_shard_files(tmp_path / "out")) == 4
    assert computed[1] < 4  # the second skipped what the first had finished or held


def test_a_dead_launchs_leases_expire_and_are_taken_over(tmp_path, local_ray):
    import json

    from zsdist.plan import plan
    from zsdist.run import launch
    from zsdist.workflow import load_workflow

    wf = load_workflow(workflow(tmp_path))
    held = tmp_path / "out" / "_leases" / wf.run_id
    held.mkdir(parents=True)
    for shard in plan(wf):  # a launch on another host claimed every shard, then died
        (held / f"{shard.table}-{shard.key}.lease").write_text(
            json.dumps({"owner": "elsewhere:1:dead", "expires": time.time() + 3}))
    summary = launch(wf, show_progress=False, lease_s=3)
    assert summary.shards_done == 2 and len(_shard_files(tmp_path / "out")) == 2
    assert not list(held.glob("*.lease"))
