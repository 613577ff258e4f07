"""Hardware-constrained selection against a direct computation on HW-NAS-Bench latency rows: budgets, picks,
regret, Pareto front, empty budgets."""
from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pytest
from analysis_fixture import RUN, nb201_index_of, shared_results

from zsdist.analysis.spec import AnalysisSpec, Budget
from zsdist.analysis.views import connect
from zsdist.errors import ZsdistError
from zsdist.proxies import get_proxy
from zsdist.settings import data_file

BUDGETS = (Budget("latency_ms", percentile=10.0), Budget("latency_ms", percentile=50.0),
           Budget("latency_ms", limit=20.0), Budget("latency_ms", limit=0.001), Budget("energy_mj", percentile=25.0),
           Budget("flops", percentile=50.0))
SPEC = AnalysisSpec(top_k=(1, 3), budgets=BUDGETS)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    return connect(str(shared_results(tmp_path_factory)), SPEC)


@pytest.fixture(scope="module")
def direct(con):
    """Cost, truth and signed score of each evaluated arch, straight from the tables."""
    cost = {(d, dev, c, a): v for d, dev, c, a, v in con.execute("""
        SELECT dataset, device, 'latency_ms', arch_id, latency_ms FROM latency UNION ALL
        SELECT dataset, device, 'energy_mj', arch_id, energy_mj FROM latency WHERE energy_mj IS NOT NULL UNION ALL
        SELECT dataset, 'any', 'flops', arch_id, value FROM scores WHERE proxy = 'flops'""").fetchall()}
    truth = {(d, m, a): v for d, m, a, v in con.execute("SELECT dataset, metric, arch_id, value FROM truth").fetchall()}
    score = {(d, p, a): (v * get_proxy(p).sign if s == "ok" else None) for d, p, a, v, s in con.execute(
        "SELECT dataset, proxy, arch_id, value, status FROM scores WHERE run_id = ?", [RUN]).fetchall()}
    tie = dict(con.execute("SELECT DISTINCT arch_id, hash(concat_ws(':', 0, arch_id)) FROM scores").fetchall())
    archs = sorted(tie)
    return cost, truth, score, tie, archs


def test_costs_are_the_hw_nas_bench_values(con):
    index = nb201_index_of()
    with open(data_file("hw_nas_bench/hw_cifar10.csv")) as f:
        table = list(csv.DictReader(f))
    for arch_id, raspi4 in con.execute("SELECT arch_id, value FROM costs WHERE dataset = 'cifar10' "
                                       "AND device = 'raspi4' AND cost = 'latency_ms'").fetchall():
        assert raspi4 == float(table[index[arch_id]]["raspi4_latency"])


def test_percentile_budgets_equal_numpy(con, direct):
    cost, _, _, _, archs = direct
    rows = con.execute("SELECT dataset, device, cost, kind, level, budget, label FROM budgets "
                       "WHERE metric = 'test_acc'").fetchall()
    assert len(rows) == 2 * (2 * 4 + 1 + 1)  # per dataset: 2 latency devices × 4, edgegpu energy, flops
    for dataset, device, kind_cost, kind, level, budget, label in rows:
        if kind == "limit":
            assert budget == level and label == f"{level:g} {kind_cost}"
        else:
            values = [cost[dataset, device, kind_cost, a] for a in archs]
            assert budget == pytest.approx(np.percentile(values, level)) and label == f"p{level:g}"


def test_constrained_picks_match_direct_computation(con, direct):
    cost, truth, score, tie, archs = direct
    rows = con.execute("""SELECT dataset, metric, device, cost, budget, proxy, k, n_within, pick_id, pick_acc,
        pick_cost, top_k_acc, best_acc, regret FROM constrained WHERE run_id = ?""", [RUN]).fetchall()
    assert len(rows) == 2 * 2 * (2 * 4 + 2) * 3 * 2
    for row in rows:
        dataset, metric, device, kind, budget, proxy, k, n_within, pick_id, pick, pick_cost, top_k, best, regret = row
        within = [a for a in archs if cost[dataset, device, kind, a] <= budget]
        assert n_within == len(within)
        if not within:  # the empty budget: one row per proxy and k, nothing picked
            assert (pick_id, pick, top_k, best, regret) == (None, None, None, None, None)
            continue
        scored = [a for a in within if score[dataset, proxy, a] is not None]
        order = sorted(scored, key=lambda a: (-score[dataset, proxy, a], tie[a]))
        assert pick_id == order[0] and pick == truth[dataset, metric, order[0]]
        assert pick_cost == cost[dataset, device, kind, order[0]]
        assert top_k == max(truth[dataset, metric, a] for a in order[:k])
        assert best == max(truth[dataset, metric, a] for a in within)
        assert regret == pytest.approx(best - top_k)


def test_empty_budget_gives_a_row_per_proxy(con):
    rows = con.execute("SELECT proxy, n_within, pick_acc, regret, front_gap FROM constrained WHERE kind = 'limit' "
                       "AND level = 0.001 AND dataset = 'cifar10' AND metric = 'test_acc' AND k = 1").fetchall()
    assert sorted(rows) == sorted([(p, 0, None, None, None) for p in ("flops", "naswot", "params")] * 2)  # 2 devices


def test_pareto_front_and_gap_match_dominance(con, direct):
    cost, truth, _, _, archs = direct
    front = defaultdict(set)
    for dataset, metric, device, kind, arch_id, on_front, front_acc in con.execute(
            "SELECT dataset, metric, device, cost, arch_id, on_front, front_acc FROM pareto").fetchall():
        c, t = cost[dataset, device, kind, arch_id], truth[dataset, metric, arch_id]
        others = [(cost[dataset, device, kind, b], truth[dataset, metric, b]) for b in archs if b != arch_id]
        dominated = any(oc <= c and ot >= t and (oc < c or ot > t) for oc, ot in others)
        assert on_front == (not dominated)
        assert front_acc == max([t] + [ot for oc, ot in others if oc <= c])
        if on_front:
            front[dataset, metric, device, kind].add(arch_id)
    gaps = con.execute("""SELECT c.dataset, c.metric, c.device, c.cost, c.pick_id, c.front_gap, c.pick_acc,
        c.pick_cost FROM constrained c WHERE c.pick_id IS NOT NULL""").fetchall()
    for dataset, metric, device, kind, pick_id, gap, pick, pick_cost in gaps:
        best_cheaper = max(truth[dataset, metric, a] for a in archs if cost[dataset, device, kind, a] <= pick_cost)
        assert gap == pytest.approx(best_cheaper - pick)
        assert (gap == 0) == (pick_id in front[dataset, metric, device, kind] or best_cheaper == pick)


def test_bad_budget_names_the_input():
    with pytest.raises(ZsdistError, match="unknown budget cost 'latency'"):
        Budget("latency", percentile=10)
    with pytest.raises(ZsdistError, match="exactly one of percentile or limit"):
        Budget("flops", percentile=10, limit=5)
