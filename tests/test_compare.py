"""`zsdist compare`: identical configurations agree to the bit; a changed batch is reported as drift."""
from __future__ import annotations

import sys

import pytest

from zsdist.cli import main
from zsdist.compare import compare_runs
from zsdist.errors import ZsdistError
from zsdist.run import launch
from zsdist.store import Store
from zsdist.truth import ingest
from zsdist.workflow import load_workflow

BODY = """
[run]
name = "{name}"
output = "{output}"
seed = {seed}
[[jobs]]
space = "nb201"
datasets = ["cifar10"]
archs = {{ ids = [9009, 10798, 4321, 777, 12000] }}
proxies = ["params", "synflow", "naswot"]
batch_size = 16
shard_size = 5
"""


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, local_ray, workflow_file):
    folder = tmp_path_factory.mktemp("compare")
    output = folder / "results"
    ingest(Store(str(output)), "nb201")
    ids = []
    for name, seed in (("night-1", 0), ("night-2", 0), ("night-3", 1)):
        wf = load_workflow(workflow_file(folder, BODY.format(name=name, output=output, seed=seed), f"{name}.toml"))
        ids.append(launch(wf, show_progress=False).run_id)
    return str(output), ids


def test_same_configuration_shows_no_drift(three_runs):
    output, (a, b, _) = three_runs
    drift = compare_runs(output, a, b)
    assert drift.rows == [] and drift.compared == 3


def test_changed_numbers_are_listed_per_proxy(three_runs, monkeypatch, capsys):
    output, (a, _, c) = three_runs
    drift = compare_runs(output, a, c)
    moved = {row[2]: row[4] for row in drift.rows}
    # another seed = another batch and another init: data- and weight-dependent proxies move, #params does not
    assert moved == {"naswot": 5, "synflow": 5}
    monkeypatch.setattr(sys, "argv", ["zsdist", "compare", a, c, "--results", output])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1 and "naswot" in capsys.readouterr().out


def test_latest_compares_the_two_newest_runs_of_a_prefix(three_runs, monkeypatch, capsys):
    output, (_, b, c) = three_runs
    monkeypatch.setattr(sys, "argv", ["zsdist", "compare", "--latest", "night-", "--results", output])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1 and f"drift between {b} and {c}" in capsys.readouterr().out


def test_unknown_run_is_named(three_runs):
    output, (a, _, _) = three_runs
    with pytest.raises(ZsdistError, match="no scores for run 'nope'"):
        compare_runs(output, a, "nope")
