"""ViT versus CNN: family summaries equal direct averages of the per-table correlations and selections."""
from __future__ import annotations

from collections import defaultdict

import pytest
from scipy import stats

from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.spaces import SPACES

from analysis_fixture import shared_results

SPEC = AnalysisSpec(pool_sizes=(10,), pool_repeats=5, top_k=(1,))


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    return connect(str(shared_results(tmp_path_factory)), SPEC)


def test_families_come_from_the_space_classes(con):
    families = dict(con.execute("SELECT space, family FROM space_families").fetchall())
    assert set(families) == set(SPACES.names())
    assert all(families[n] == getattr(SPACES.get(n), "family", "cnn") for n in families)


def test_summary_averages_spearman_and_rank_per_family(tmp_path_factory):
    # a space whose class says family = "vit" lands in its own group
    con = connect(str(shared_results(tmp_path_factory)), SPEC)
    con.execute("CREATE OR REPLACE VIEW space_families AS SELECT 'nb201' AS space, 'vit' AS family")
    tables = defaultdict(dict)
    for dataset, metric, region, proxy, rho in con.execute(
            "SELECT dataset, metric, region, proxy, spearman FROM correlation_regions").fetchall():
        tables[dataset, metric, region][proxy] = rho
    expected = defaultdict(list)
    for (_, _, region), by_proxy in tables.items():
        proxies = list(by_proxy)
        ranks = stats.rankdata([-round(by_proxy[p], 12) for p in proxies], method="min")
        for proxy, rank in zip(proxies, ranks):
            expected[proxy, region].append((by_proxy[proxy], rank))
    rows = con.execute("SELECT family, proxy, region, tables, mean_spearman, mean_rank FROM family_summary").fetchall()
    assert {r[0] for r in rows} == {"vit"} and len(rows) == len(expected)
    for _, proxy, region, n, mean_rho, mean_rank in rows:
        got = expected[proxy, region]
        assert n == len(got) == 4  # two datasets × two metrics
        assert mean_rho == pytest.approx(sum(g[0] for g in got) / n)
        assert mean_rank == pytest.approx(sum(g[1] for g in got) / n)


def test_family_selection_averages_the_selection_table(con):
    expected = defaultdict(list)
    for proxy, regret in con.execute("SELECT proxy, mean_regret FROM selection").fetchall():
        expected[proxy].append(regret)
    for family, proxy, n, regret in con.execute(
            "SELECT family, proxy, tables, mean_regret FROM family_selection").fetchall():
        assert family == "cnn" and n == len(expected[proxy]) == 4
        assert regret == pytest.approx(sum(expected[proxy]) / n)
