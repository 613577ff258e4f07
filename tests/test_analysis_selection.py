"""Random-pool selection against a direct computation: seeded pools, first pick, top-k, regret, nan scores."""
from __future__ import annotations

from collections import defaultdict

import pytest
from analysis_fixture import RUN, shared_results

from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.proxies import get_proxy

SPEC = AnalysisSpec(pool_sizes=(8, 25, 1000), pool_repeats=12, top_k=(1, 3))


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    return connect(str(shared_results(tmp_path_factory)), SPEC)


def test_pools_are_seeded_subsets_of_the_evaluated_archs(tmp_path_factory, con):
    pools = con.execute("SELECT dataset, pool_size, pool, list(arch_id ORDER BY arch_id) FROM pools "
                        "GROUP BY ALL ORDER BY ALL").fetchall()
    evaluated = {a for (a,) in con.execute("SELECT DISTINCT arch_id FROM scores").fetchall()}
    assert {(p[0], p[1]) for p in pools} == {(d, n) for d in ("cifar10", "imagenet16_120") for n in (8, 25)}
    assert all(len(set(p[3])) == p[1] and set(p[3]) <= evaluated for p in pools)  # 1000 > 40 archs: skipped
    assert len({tuple(p[3]) for p in pools if p[1] == 8}) > 6  # repeats draw different pools
    again = connect(str(shared_results(tmp_path_factory)), SPEC)
    other = connect(str(shared_results(tmp_path_factory)), AnalysisSpec(pool_sizes=(8, 25), pool_repeats=12, seed=5))
    sql = "SELECT pool_size, pool, list(arch_id ORDER BY arch_id) FROM pools GROUP BY ALL ORDER BY ALL"
    assert con.execute(sql).fetchall() == again.execute(sql).fetchall() != other.execute(sql).fetchall()


def test_selection_pool_matches_direct_computation(con):
    truth = dict(((d, m, a), v) for d, m, a, v in con.execute(
        "SELECT dataset, metric, arch_id, value FROM truth WHERE space = 'nb201'").fetchall())
    scores = {(d, p, a): (v * get_proxy(p).sign if s == "ok" else None) for d, p, a, v, s in con.execute(
        "SELECT dataset, proxy, arch_id, value, status FROM scores WHERE run_id = ?", [RUN]).fetchall()}
    members = defaultdict(list)
    for dataset, size, pool, arch_id, draw in con.execute(
            "SELECT dataset, pool_size, pool, arch_id, draw FROM pools").fetchall():
        members[dataset, size, pool].append((arch_id, draw))
    rows = con.execute("SELECT dataset, metric, proxy, pool_size, pool, k, pick_acc, top_k_acc, pool_best, "
                       "pool_mean, regret FROM selection_pool WHERE run_id = ?", [RUN]).fetchall()
    assert len(rows) == 2 * 2 * 3 * (2 * 12) * 2
    for dataset, metric, proxy, size, pool, k, pick, top_k, best, mean, regret in rows:
        archs = members[dataset, size, pool]
        scored = [(scores[dataset, proxy, a], -draw, a) for a, draw in archs if scores[dataset, proxy, a] is not None]
        order = [a for _, _, a in sorted(scored, reverse=True)]  # higher score first, ties by the smaller draw
        accs = [truth[dataset, metric, a] for a, _ in archs]
        assert pick == truth[dataset, metric, order[0]]
        assert top_k == max(truth[dataset, metric, a] for a in order[:k])
        assert best == max(accs) and mean == pytest.approx(sum(accs) / len(accs))
        assert regret == pytest.approx(best - top_k)


def test_nan_scored_arch_is_never_picked(con):
    picked_zero = con.execute("""SELECT count(*) FROM pools p JOIN selection_pool s USING (run_id, space, dataset,
        pool_size, pool) WHERE p.arch_id = 0 AND s.proxy = 'naswot' AND s.pick_acc = s.pool_best
        AND s.pool_best = (SELECT value FROM truth WHERE arch_id = 0 AND dataset = s.dataset
                           AND metric = s.metric)""").fetchone()[0]
    assert picked_zero == 0
    n_scored = con.execute("SELECT DISTINCT pool_size - n_scored FROM selection_pool s JOIN pools p USING "
                           "(run_id, space, dataset, pool_size, pool) WHERE p.arch_id = 0 AND s.proxy = 'naswot'")
    assert n_scored.fetchall() == [(1,)]


def test_summary_averages_the_pools(con):
    per_pool = defaultdict(list)
    for key, regret, pick, best, mean in con.execute(
            "SELECT [dataset, metric, proxy, pool_size::VARCHAR, k::VARCHAR], regret, pick_acc, pool_best, pool_mean "
            "FROM selection_pool").fetchall():
        per_pool[tuple(key)].append((regret, pick, best - mean))
    for key, pools, regret, pick, hit, random_regret in con.execute(
            "SELECT [dataset, metric, proxy, pool_size::VARCHAR, k::VARCHAR], pools, mean_regret, mean_pick_acc, "
            "hit_rate, random_regret FROM selection").fetchall():
        got = per_pool[tuple(key)]
        assert pools == len(got) == 12
        assert regret == pytest.approx(sum(g[0] for g in got) / 12)
        assert pick == pytest.approx(sum(g[1] for g in got) / 12)
        assert hit == pytest.approx(sum(g[0] == 0 for g in got) / 12)
        assert random_regret == pytest.approx(sum(g[2] for g in got) / 12)
