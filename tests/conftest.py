"""Shared fixtures: a local Ray, the CLI run in this process, small workflows written to tmp folders, the
repository's and the test fixtures' folders; the markers that skip what this machine cannot run, each with its reason.
Test modules request these as fixtures and import nothing from here.

The default run needs only the package's embedded data and the fixtures under tests/fixtures. Tests marked
`fulldata` need a data folder in ZSDIST_DATA (../shared/data in CI; `make test` sets it when that folder exists).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest


def _full_data_missing() -> str | None:
    value = os.environ.get("ZSDIST_DATA")
    if not value:
        return "needs the full reference data: set ZSDIST_DATA to a data folder such as ../shared/data"
    if not Path(value).expanduser().is_dir():
        return f"needs the full reference data: ZSDIST_DATA={value} is not a folder"
    return None


def _gpu_missing() -> str | None:
    import torch

    return None if torch.cuda.is_available() else "needs a CUDA GPU"


def _browser_missing() -> str | None:
    found = any(shutil.which(p) for p in ("chromium", "chromium-browser", "google-chrome"))
    return None if found else "needs Chromium (apt-get install -y chromium)"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests that start Ray get the `ray` marker; `fulldata`, `gpu` and `browser` tests are skipped with the reason
    when this machine lacks what they need (never silently)."""
    checks = {"fulldata": _full_data_missing, "gpu": _gpu_missing, "browser": _browser_missing}
    reasons: dict[str, str | None] = {}
    for item in items:
        if "local_ray" in item.fixturenames:
            item.add_marker(pytest.mark.ray)
        for marker, check in checks.items():
            if item.get_closest_marker(marker) is not None:
                if marker not in reasons:
                    reasons[marker] = check()
                if reasons[marker]:
                    item.add_marker(pytest.mark.skip(reason=reasons[marker]))


FOREIGN_RAY = """
import sys
from ray.cluster_utils import Cluster
for attempt in range(3):  # Ray gives a raylet a fixed 30 s to register, which a loaded machine can miss
    try:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        break
    except Exception as exc:
        print(f"foreign Ray start {attempt + 1} failed: {exc}", file=sys.stderr)
else:
    sys.exit(1)
print(c.address, flush=True)
sys.stdin.read()  # until the test session closes our stdin
c.shutdown()
"""


@pytest.fixture(scope="session", autouse=True)
def foreign_ray():
    """Someone else's Ray, running beside the whole suite as it would on a shared machine: no CPUs, and made the
    one a bare `ray.init()` joins (RAY_ADDRESS). Code that joined it instead of starting its own would hang or
    fail, so every test that starts Ray also checks that zsdist never joins a stranger's cluster."""
    proc = subprocess.Popen([sys.executable, "-c", FOREIGN_RAY], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    address = proc.stdout.readline().strip()
    if not address:  # the machine is too loaded to start even a 0-CPU head; the tests still run, with a warning
        warnings.warn("no foreign Ray could be started beside the tests", stacklevel=2)
        yield None
        return
    os.environ["RAY_ADDRESS"] = address
    yield address
    del os.environ["RAY_ADDRESS"]
    proc.stdin.close()
    proc.wait(timeout=120)


@pytest.fixture(scope="module")
def local_ray():
    """A private local Ray (2 CPUs) per test module, never one that something else on the machine started."""
    import ray

    from zsdist.raysession import ray_session

    with ray_session(num_cpus=2, announce=False):
        yield ray


@pytest.fixture
def cli(monkeypatch, capfd):
    """`zsdist ARGS…` in this process → (exit status, stdout, stderr); output captured at the file descriptors,
    so whatever Ray or a library writes there is seen too."""
    from zsdist.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["zsdist", *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            main()
        out, err = capfd.readouterr()
        return exit_info.value.code, out, err

    return run


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository's root folder."""
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """tests/fixtures: small excerpts of the reference files, in their own formats."""
    return Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def workflow_file():
    """`workflow_file(folder, body, name="wf.toml")` → the path of that workflow file, written into folder; session
    scope, so module-scoped fixtures can write workflows too."""
    def write(folder: Path, body: str, name: str = "wf.toml") -> Path:
        path = folder / name
        path.write_text(body)
        return path

    return write


@pytest.fixture(scope="session")
def small_workflow() -> str:
    """A small NB201 workflow (6 cells, 2 datasets, 4 proxies, 3 shards) as a template: `.format(output=FOLDER)`."""
    return """
[run]
name = "small"
output = "{output}"
seed = 0

[[jobs]]
space = "nb201"
datasets = ["cifar10", "imagenet16_120"]
archs = {{ ids = [0, 9009, 10798, 15624, 777, 4321] }}
proxies = ["params", "flops", "synflow", "naswot"]
batch_size = 16
shard_size = 2
"""
