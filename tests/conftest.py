"""Shared fixtures: the reference data setting, a local Ray, and small workflows written to tmp folders."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("ZSDIST_DATA", str(REPO.parent / "shared" / "data"))

NB201_EXAMPLE = "|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|"


FOREIGN_RAY = """
import sys
from ray.cluster_utils import Cluster
c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
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
    assert address, "the foreign Ray did not start"
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


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`zsdist *args` in this process: exit status, stdout, stderr."""
    from zsdist.cli import main

    monkeypatch.setattr(sys, "argv", ["zsdist", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def write_workflow(folder: Path, body: str, name: str = "wf.toml") -> Path:
    path = folder / name
    path.write_text(body)
    return path


SMALL_WORKFLOW = """
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
