"""Correlation views against scipy on real proxy rows: every region, ties, status-nan rows, direction, bootstrap."""
from __future__ import annotations

import json

import numpy as np
import pytest
from analysis_fixture import RUN, in_region, shared_results
from scipy import stats

from zsdist.analysis import published
from zsdist.analysis.correlation import bootstrap_interval
from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.proxies import get_proxy

SPEC = AnalysisSpec(bootstrap_resamples=200)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    return connect(str(shared_results(tmp_path_factory)), SPEC)


def _raw(con, dataset: str, proxy: str, metric: str) -> tuple[dict[int, float | None], dict[int, float]]:
    """Raw values by arch (None for non-ok rows) and the truth of every scored arch."""
    values = dict(con.execute("SELECT arch_id, CASE WHEN status = 'ok' THEN value END FROM scores "
                              "WHERE run_id = ? AND dataset = ? AND proxy = ?", [RUN, dataset, proxy]).fetchall())
    truth = dict(con.execute("SELECT arch_id, value FROM truth WHERE space = 'nb201' AND dataset = ? AND metric = ?",
                             [dataset, metric]).fetchall())
    return values, {a: truth[a] for a in values}


def test_fixture_has_ties_and_nan_rows(con):
    values, _ = _raw(con, "cifar10", "params", "test_acc")
    assert len(set(values.values())) < len(values)  # #params ties between cells
    assert con.execute("SELECT count(*) FROM scores WHERE status = 'nan'").fetchone()[0] == 2  # NASWOT of cell 0


def test_every_region_matches_scipy(con):
    rows = con.execute("SELECT dataset, proxy, metric, region, n, spearman, kendall, pearson "
                       "FROM correlation_regions WHERE run_id = ?", [RUN]).fetchall()
    regions = dict(SPEC.regions())
    assert len(rows) == 2 * 3 * 2 * len(regions)
    for dataset, proxy, metric, region, n, rho, tau, r in rows:
        values, truth = _raw(con, dataset, proxy, metric)
        members = in_region(truth, regions[region])
        archs = sorted(a for a in members if values[a] is not None)
        x = [values[a] * get_proxy(proxy).sign for a in archs]
        y = [truth[a] for a in archs]
        assert n == len(archs)
        assert rho == pytest.approx(stats.spearmanr(x, y).statistic)
        assert tau == pytest.approx(stats.kendalltau(x, y).statistic)
        assert r == pytest.approx(stats.pearsonr(x, y).statistic)


def test_status_nan_rows_are_left_out(con):
    n = dict(con.execute("SELECT proxy, n FROM correlation WHERE run_id = ? AND dataset = 'cifar10' "
                         "AND metric = 'test_acc'", [RUN]).fetchall())
    assert n == {"params": 40, "flops": 40, "naswot": 39}


def test_direction_is_applied(tmp_path_factory, con):
    before = dict(con.execute("SELECT proxy, spearman FROM correlation WHERE dataset = 'cifar10' "
                              "AND metric = 'test_acc'").fetchall())
    flipped = connect(str(shared_results(tmp_path_factory)), SPEC)
    flipped.execute("CREATE OR REPLACE VIEW proxies AS SELECT proxy, NOT higher_is_better AS higher_is_better, "
                    "CASE WHEN proxy = 'naswot' THEN -sign ELSE sign END AS sign, description FROM proxy_registry")
    after = dict(flipped.execute("SELECT proxy, spearman FROM correlation WHERE dataset = 'cifar10' "
                                 "AND metric = 'test_acc'").fetchall())
    assert after["naswot"] == pytest.approx(-before["naswot"]) and after["params"] == pytest.approx(before["params"])


def test_bootstrap_interval_equals_direct_resampling(con):
    values, truth = _raw(con, "imagenet16_120", "flops", "valid_acc")
    archs = sorted(values)
    x = np.array([values[a] for a in archs])
    y = np.array([truth[a] for a in archs])
    idx = np.random.default_rng(SPEC.seed).integers(0, len(x), size=(SPEC.bootstrap_resamples, len(x)))
    expected = {}
    for name, fn in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau), ("pearson", stats.pearsonr)):
        with np.errstate(invalid="ignore", divide="ignore"):
            draws = np.array([fn(x[i], y[i]).statistic for i in idx])
        expected[name] = np.percentile(draws[np.isfinite(draws)], [2.5, 97.5])
    row = con.execute("""SELECT spearman, spearman_lo, spearman_hi, kendall_lo, kendall_hi, pearson_lo, pearson_hi
        FROM correlation_ci WHERE run_id = ? AND dataset = 'imagenet16_120' AND proxy = 'flops'
        AND metric = 'valid_acc' AND region = 'all'""", [RUN]).fetchone()
    rho, *bounds = row
    assert bounds == pytest.approx([*expected["spearman"], *expected["kendall"], *expected["pearson"]])
    assert bounds[0] <= rho <= bounds[1]


def test_bootstrap_is_seeded(tmp_path_factory, con):
    sql = "SELECT spearman_lo, kendall_hi FROM correlation_ci WHERE region = 'top20' ORDER BY ALL"
    again = connect(str(shared_results(tmp_path_factory)), SPEC).execute(sql).fetchall()
    other = connect(str(shared_results(tmp_path_factory)), AnalysisSpec(bootstrap_resamples=200, seed=1))
    assert con.execute(sql).fetchall() == again != other.execute(sql).fetchall()


def test_bootstrap_equals_scipy_and_leaves_out_undefined_resamples():
    rng = np.random.default_rng(7)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    ours = bootstrap_interval(x, y, "pearson", 300, 4)
    scipy_ci = stats.bootstrap((x, y), lambda a, b, axis: np.array([stats.pearsonr(i, j).statistic for i, j in
                                                                    zip(np.atleast_2d(a), np.atleast_2d(b))]),
                               paired=True, vectorized=True, n_resamples=300, method="percentile",
                               rng=np.random.default_rng(4)).confidence_interval
    assert ours == pytest.approx([scipy_ci.low, scipy_ci.high])
    # four pairs with ties: some resamples are constant, where scipy's own interval would be NaN
    low, high = bootstrap_interval([1, 1, 2, 3], [1, 2, 2, 4], "spearman", 200, 0)
    assert -1 <= low <= high <= 1
    assert bootstrap_interval([1, 1, 1], [1, 2, 3], "kendall", 50, 0) is None  # every resample undefined


def test_published_comparison_puts_each_published_rho_beside_the_runs_and_the_gap(con):
    figures = {(f["dataset"], f["proxy"]): f["rho"] for f in json.loads(published.FILE.read_text())["figures"]
               if f["space"] == "nb201" and f["metric"] == "test_acc"}
    ours = con.execute("SELECT dataset, proxy, spearman FROM correlation WHERE run_id = ? AND metric = 'test_acc' "
                       "ORDER BY ALL", [RUN]).fetchall()
    rows = con.execute("SELECT dataset, proxy, spearman, published, gap FROM published_comparison "
                       "WHERE run_id = ? AND metric = 'test_acc' ORDER BY ALL", [RUN]).fetchall()
    # every proxy of the run, with a published figure or not (ρ to the last bits: DuckDB sums in any order)
    assert [(d, p, pytest.approx(r, rel=1e-12)) for d, p, r in ours] == [r[:3] for r in rows]
    for dataset, proxy, rho, figure, gap in rows:
        assert figure == figures.get((dataset, proxy))
        assert gap == (None if figure is None else pytest.approx(rho - figure))
    assert {r[3] is None for r in rows} == {True, False}  # NB201 CIFAR-10 has figures, ImageNet16-120 none here
