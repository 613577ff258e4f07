"""[search] files: what they accept, and one clear line for each mistake (unknown keys with the closest one)."""
from __future__ import annotations

import pytest

from zsdist.errors import ZsdistError
from zsdist.search.spec import parse_search

BASE = {
    "space": '"nb201"', "dataset": '"cifar10"', "objective": '"synflow"', "budget": "50",
    "strategy": '{ name = "evolution", population = 16, tournament = 4 }',
    "constraints": '[{ cost = "latency", device = "edgegpu", max = 5.0 }, { cost = "params", max = 1e6 }]',
}


def text(**changes: str) -> str:
    settings = {**BASE, **changes}
    body = "\n".join(f"{k} = {v}" for k, v in settings.items() if v is not None)
    return f'[run]\nname = "s"\noutput = "out"\nseed = 1\n\n[search]\n{body}\n'


def test_a_full_file_becomes_a_spec():
    spec = parse_search(text(seed="7", shard_size="4", parallel="3"))
    assert (spec.space, spec.dataset, spec.budget, spec.seed, spec.search_seed) == ("nb201", "cifar10", 50, 1, 7)
    assert spec.objective.label == "synflow" and spec.strategy.population == 16
    assert [c.name for c in spec.constraints] == ["latency_ms@edgegpu", "params"]
    assert spec.devices == ("edgegpu",) and spec.cost_proxies == ("params",)
    assert spec.candidates_cap == 1000 and spec.run_id.startswith("s-")


def test_the_run_id_changes_with_every_setting_but_the_output():
    base = parse_search(text())
    assert parse_search(text().replace('output = "out"', 'output = "elsewhere"')).run_id == base.run_id
    for change in ({"budget": "51"}, {"seed": "1"}, {"parallel": "5"}, {"objective": '"naswot"'}):
        assert parse_search(text(**change)).run_id != base.run_id, change


@pytest.mark.parametrize("objective, kind, label", [
    ('"az_nas"', "log_ranks", "az_nas"),
    ('{ ranks = { synflow = 2, naswot = 1 } }', "ranks", "Σ rank/N of synflow × 2, naswot × 1"),
])
def test_label_free_combinations(objective, kind, label):
    spec = parse_search(text(objective=objective))
    assert (spec.objective.kind, spec.objective.label) == (kind, label)


def test_halving_screens_before_the_objective():
    spec = parse_search(text(strategy='{ name = "halving", screen = ["flops"], eta = 3 }'))
    assert [o.label for o in spec.ladder] == ["flops", "synflow"] and spec.strategy.eta == 3


@pytest.mark.parametrize("changes, words", [
    ({"budgett": "5"}, "unknown key 'budgett'; did you mean 'budget'?"),
    ({"budget": None}, "missing 'budget'"),
    ({"space": '"nb202"'}, "did you mean 'nb201'"),
    ({"dataset": '"imagenet"'}, "space 'nb201' has no dataset 'imagenet'"),
    ({"objective": '"synflw"'}, "did you mean 'synflow'"),
    ({"objective": "{ rank = { synflow = 1 } }"}, "did you mean 'ranks'"),
    ({"objective": "{ ranks = { synflow = -1 } }"}, "must be positive"),
    ({"constraints": '[{ cost = "latncy", max = 1 }]'}, "did you mean 'latency'"),
    ({"constraints": '[{ cost = "latency", device = "raspi5", max = 1 }]'}, "did you mean 'raspi4'"),
    ({"constraints": '[{ cost = "params", device = "raspi4", max = 1 }]'}, "unknown key 'device'"),
    ({"constraints": '[{ cost = "flops" }]'}, "missing 'max'"),
    ({"strategy": '"evolutoin"'}, "did you mean 'evolution'"),
    ({"strategy": '{ name = "random", population = 4 }'}, "unknown key 'population'"),
    ({"strategy": '{ name = "evolution", population = 4, tournament = 8 }'}, "cannot exceed population"),
    ({"strategy": '"halving"'}, "halving needs screen"),
    ({"budget": "20000"}, "exceeds the 15,625 architectures"),
    ({"budget": "0"}, "must be positive"),
    ({"shard_size": '"8"'}, "must be int"),
    ({"max_candidates": "10"}, "below the budget"),
])
def test_mistakes_are_one_clear_line(changes, words):
    with pytest.raises(ZsdistError, match=words.replace("?", r"\?").replace("(", r"\(")) as info:
        parse_search(text(**changes))
    assert "\n" not in str(info.value)


def test_malformed_toml_and_unknown_tables():
    with pytest.raises(ZsdistError, match="malformed search file"):
        parse_search("[search\n")
    with pytest.raises(ZsdistError, match="unknown key 'jobs'"):
        parse_search(text() + "\n[[jobs]]\nspace = 'nb201'\n")
