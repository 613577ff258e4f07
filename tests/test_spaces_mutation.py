"""Every space mutates inside itself: children parse back to their ids, lie in range and differ from the parent by
one edit of the space's own encoding; and listing spaces imports no torch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zsdist.spaces import create_space, list_spaces
from zsdist.spaces.nb101 import NB101, enumerate_cells
from zsdist.spaces.nb201 import decode as nb201_ops

REPO = Path(__file__).resolve().parent.parent
WALK = 300  # mutations per space: a random walk, each child the next parent


def walk(space, steps: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    ids = [space.sample(1, seed)[0]]
    for _ in range(steps):
        ids.append(space.mutate(ids[-1], rng))
    return ids


def check_walk(space, ids: list[int]) -> None:
    for parent, child in zip(ids, ids[1:]):
        assert child != parent and 0 <= child < space.size, (space.name, parent, child)
        assert space.parse(space.arch_str(child)) == child


@pytest.mark.parametrize("name", [n for n in list_spaces() if n != "nb101"])
def test_mutation_stays_inside_every_space(name):
    space = create_space(name)
    ids = walk(space, WALK)
    check_walk(space, ids)
    assert len(set(ids)) > WALK // 3  # a walk, not a loop between two neighbours


def test_nb101_mutation_stays_inside_a_small_nb101(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSDIST_CACHE", str(tmp_path))
    space = NB101(max_vertices=5)
    assert space.size == len(enumerate_cells(5))
    ids = walk(space, WALK)
    check_walk(space, ids)
    # edits grow and shrink cells: the walk visits several vertex counts
    assert len({len(space.cell(i)[0]) for i in ids}) >= 3


@pytest.mark.slow  # the full 423,624-cell table: minutes, once per cache folder
def test_nb101_mutation_stays_inside_the_full_space():
    space = create_space("nb101")
    check_walk(space, walk(space, WALK))


@pytest.mark.parametrize("name, digits", [
    ("nb201", lambda s, i: nb201_ops(i)),
    ("transnas_micro", lambda s, i: s.ops(i)),
    ("mbv2", lambda s, i: [v for stage in s.decode(i) for v in stage.values()]),
    ("resnet", lambda s, i: [v for stage in s.decode(i) for v in stage.values()]),
    ("pit", lambda s, i: [v for value in s.decode(i).values() for v in np.ravel(value)]),
])
def test_a_child_differs_in_exactly_one_choice(name, digits):
    space = create_space(name)
    ids = walk(space, 50, seed=3)
    for parent, child in zip(ids, ids[1:]):
        a, b = digits(space, parent), digits(space, child)
        # PiT's heads triple is one choice that can change up to three numbers
        changed = sum(x != y for x, y in zip(a, b))
        assert changed == 1 or (name == "pit" and a[:5] == b[:5])


def test_autoformer_child_changes_one_gene():
    space = create_space("autoformer_tiny")
    ids = walk(space, 100, seed=5)
    for parent, child in zip(ids, ids[1:]):
        (e1, l1), (e2, l2) = space.decode(parent), space.decode(child)
        if e1 != e2:
            assert l1 == l2
        elif len(l1) != len(l2):
            assert l1[:min(len(l1), len(l2))] == l2[:min(len(l1), len(l2))]
        else:
            assert sum(r1 != r2 for (r1, _), (r2, _) in zip(l1, l2)) + \
                   sum(h1 != h2 for (_, h1), (_, h2) in zip(l1, l2)) == 1


def test_mutation_is_deterministic_for_a_seed():
    space = create_space("nb201")
    assert walk(space, 40, seed=11) == walk(space, 40, seed=11)
    assert walk(space, 40, seed=11) != walk(space, 40, seed=12)


def test_listing_spaces_imports_no_torch():
    code = ("import sys; from zsdist.spaces import create_space, list_spaces; "
            "[create_space(n).arch_str(0) for n in list_spaces() if n != 'nb101']; "
            "print(sorted(m for m in ('torch', 'timm', 'ray', 'duckdb') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]"


def test_building_the_nb101_table_reports_progress(capsys):
    enumerate_cells(4, report_every_s=0.0)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and all(line.startswith("zsdist: building the NB101 id table") for line in lines)
    assert "100% of the labelled graphs hashed" in lines[-1]
