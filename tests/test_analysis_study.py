"""ViT versus CNN and every ground-truth metric: summaries keep run and metric, each table's sign and the verdict
follow from the per-table correlations, a ViT space reports base, KD and supernet metrics as tables of their own."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from analysis_fixture import RUN, VIT_DATASETS, VIT_RUN, shared_results, vit_results
from scipy import stats

from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.spaces import SPACES

SPEC = AnalysisSpec(pool_sizes=(10,), pool_repeats=5, top_k=(1,), bootstrap_resamples=200)


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    return connect(str(shared_results(tmp_path_factory)), SPEC)


def test_families_come_from_the_space_classes(con):
    families = dict(con.execute("SELECT space, family FROM space_families").fetchall())
    assert set(families) == set(SPACES.names())
    assert all(families[n] == getattr(SPACES.get(n), "family", "cnn") for n in families)


def test_summary_averages_each_metric_apart(tmp_path_factory):
    # a space whose class says family = "vit" lands in its own group
    con = connect(str(shared_results(tmp_path_factory)), SPEC)
    con.execute("CREATE OR REPLACE VIEW space_families AS SELECT 'nb201' AS space, 'vit' AS family")
    tables = defaultdict(dict)
    for dataset, metric, region, proxy, rho in con.execute(
            "SELECT dataset, metric, region, proxy, spearman FROM correlation_regions").fetchall():
        tables[dataset, metric, region][proxy] = rho
    expected = defaultdict(list)
    for (_, metric, region), by_proxy in tables.items():
        proxies = list(by_proxy)
        ranks = stats.rankdata([-round(by_proxy[p], 12) for p in proxies], method="min")
        for proxy, rank in zip(proxies, ranks):
            expected[metric, proxy, region].append((by_proxy[proxy], rank))
    rows = con.execute("SELECT run_id, family, metric, proxy, region, tables, mean_spearman, mean_rank "
                       "FROM family_summary").fetchall()
    assert {r[:2] for r in rows} == {(RUN, "vit")} and len(rows) == len(expected)
    assert {r[2] for r in rows} == {"test_acc", "valid_acc"}  # never pooled into one row
    for _, _, metric, proxy, region, n, mean_rho, mean_rank in rows:
        got = expected[metric, proxy, region]
        assert n == len(got) == 2  # two datasets, this metric only
        assert mean_rho == pytest.approx(sum(g[0] for g in got) / n)
        assert mean_rank == pytest.approx(sum(g[1] for g in got) / n)


def test_family_selection_averages_each_metric_apart(con):
    expected = defaultdict(list)
    for metric, proxy, regret in con.execute("SELECT metric, proxy, mean_regret FROM selection").fetchall():
        expected[metric, proxy].append(regret)
    rows = con.execute("SELECT run_id, family, metric, proxy, tables, mean_regret FROM family_selection").fetchall()
    assert len(rows) == len(expected) == 2 * 3
    for run_id, family, metric, proxy, n, regret in rows:
        assert (run_id, family) == (RUN, "cnn") and n == len(expected[metric, proxy]) == 2
        assert regret == pytest.approx(sum(expected[metric, proxy]) / n)


def _sign(lo: float | None, hi: float | None, rho: float | None) -> str:
    if rho is None:
        return "undefined"
    return "positive" if lo > 0 else "negative" if hi < 0 else "unclear"


def test_each_table_has_its_interval_sign_and_one_headline(con):
    rows = con.execute("""SELECT s.dataset, s.metric, s.proxy, s.headline, s.spearman, s.spearman_lo, s.spearman_hi,
            s.sign, c.spearman, c.spearman_lo, c.spearman_hi
        FROM study_correlation s JOIN correlation_ci c USING (run_id, space, dataset, metric, proxy)
        WHERE c.region = 'all'""").fetchall()
    assert len(rows) == 2 * 2 * 3  # datasets × metrics × proxies
    for dataset, metric, _proxy, headline, rho, lo, hi, sign, view_rho, view_lo, view_hi in rows:
        assert (rho, lo, hi) == pytest.approx((view_rho, view_lo, view_hi))  # the same seeded bootstrap
        assert sign == _sign(lo, hi, rho)
        # both datasets have real images and 40 archs: the headline is the first by name, on test_acc
        assert headline == ((dataset, metric) == ("cifar10", "test_acc"))


def _expected_verdicts(con) -> dict[str, str]:
    by_proxy = defaultdict(list)
    for dataset, metric, proxy, sign in con.execute(
            "SELECT dataset, metric, proxy, sign FROM study_correlation ORDER BY dataset, metric").fetchall():
        by_proxy[proxy].append((f"{dataset}/{metric}", sign))
    verdicts = {}
    for proxy, tables in by_proxy.items():
        signs = {s for _, s in tables}
        if signs == {"positive"}:
            verdicts[proxy] = f"ranks better networks higher on all {len(tables)} tables"
        elif signs == {"negative"}:
            verdicts[proxy] = f"ranks backwards on all {len(tables)} tables"
        else:
            parts = [f"no single sign over {len(tables)} tables"]
            for word, wanted in (("higher on", {"positive"}), ("backwards on", {"negative"}),
                                 ("interval holds 0 on", {"unclear", "undefined"})):
                names = [t for t, s in tables if s in wanted]
                if names:
                    parts.append(f"{word} {', '.join(names)}")
            verdicts[proxy] = "; ".join(parts)
    return verdicts


def test_verdict_states_a_sign_only_where_every_table_agrees(tmp_path_factory, con):
    verdicts = dict(con.execute("SELECT proxy, verdict FROM study_verdict").fetchall())
    assert verdicts == _expected_verdicts(con)
    assert verdicts["params"] == "ranks better networks higher on all 4 tables"
    # a metric on which the larger networks do worse (as AutoFormer-Tiny's base fine-tuning): the same proxies
    # now rank backwards there, and the verdict names where each sign holds instead of stating one
    flipped = connect(str(shared_results(tmp_path_factory)), SPEC)
    sql = flipped.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'truth'").fetchone()[0]
    flipped.execute(sql.replace("CREATE VIEW truth AS", "CREATE VIEW truth_as_stored AS", 1))
    flipped.execute("CREATE OR REPLACE VIEW truth AS SELECT * REPLACE (CASE WHEN metric = 'valid_acc' "
                    "THEN -value ELSE value END AS value) FROM truth_as_stored")
    verdicts = dict(flipped.execute("SELECT proxy, verdict FROM study_verdict").fetchall())
    assert verdicts == _expected_verdicts(flipped)
    assert verdicts["params"] == ("no single sign over 4 tables; higher on cifar10/test_acc, "
                                  "imagenet16_120/test_acc; backwards on cifar10/valid_acc, imagenet16_120/valid_acc")
    row = flipped.execute("SELECT headline, headline_spearman, min_spearman, min_at, max_spearman, max_at "
                          "FROM study_verdict WHERE proxy = 'params'").fetchone()
    rhos = dict(flipped.execute("SELECT dataset || '/' || metric, spearman FROM study_correlation "
                                "WHERE proxy = 'params'").fetchall())
    assert row[:2] == ("cifar10/test_acc", pytest.approx(rhos["cifar10/test_acc"]))
    assert row[2:4] == (pytest.approx(min(rhos.values())), min(rhos, key=rhos.get)) and row[2] < 0
    assert row[4:] == (pytest.approx(max(rhos.values())), max(rhos, key=rhos.get))


@pytest.mark.fulldata  # AutoFormer ground truth is fetched, not embedded
def test_vit_space_reports_every_metric_as_its_own_table(tmp_path_factory):
    con = connect(str(vit_results(tmp_path_factory)), SPEC)
    truth = set(con.execute("SELECT DISTINCT dataset, metric FROM truth").fetchall())
    assert {m for _, m in truth} == {"test_acc", "test_acc_kd", "supernet_acc"}
    rows = con.execute("SELECT dataset, metric, family, stand_in, headline, n FROM study_correlation "
                       "WHERE run_id = ? AND proxy = 'params'", [VIT_RUN]).fetchall()
    # every metric of every scored dataset with truth (chaoyang's scored subnets have none)
    assert {(d, m) for d, m, *_ in rows} == {(d, m) for d, m in truth if d in VIT_DATASETS}
    assert len(rows) == 5 and all(r[2] == "vit" and r[5] == 6 for r in rows)
    assert {d for d, _, _, stand_in, *_ in rows if stand_in} == {"flowers102"}
    assert [(d, m) for d, m, _, _, headline, _ in rows if headline] == [("cifar100_224", "test_acc")]
    summary = con.execute("SELECT metric, tables FROM family_summary WHERE run_id = ? AND proxy = 'params' "
                          "AND region = 'all' ORDER BY metric", [VIT_RUN]).fetchall()
    assert summary == [("supernet_acc", 1), ("test_acc", 2), ("test_acc_kd", 2)]


def _docs_query(name: str, run: str) -> str:
    """A query behind a table of docs/results.md, pointed at `run` instead of the latest run of its workflow."""
    sql = (Path(__file__).resolve().parents[1] / "docs" / "queries" / name).read_text()
    return re.sub(r"latest\('[a-z0-9_]+'\)", f"'{run}'", sql)


@pytest.mark.fulldata  # AutoFormer ground truth is fetched, not embedded
def test_the_docs_vit_queries_give_a_row_per_dataset_and_metric(tmp_path_factory):
    con = connect(str(vit_results(tmp_path_factory)), SPEC)
    rows = con.execute(_docs_query("vit_study.sql", VIT_RUN)).fetchall()
    tables = [("cifar100_224", "test_acc"), ("cifar100_224", "test_acc_kd"), ("imagenet", "supernet_acc"),
              ("flowers102 ¹", "test_acc"), ("flowers102 ¹", "test_acc_kd")]  # real images first, stand-ins marked
    assert [(r[1], r[2]) for r in rows] == tables and all(r[3] == 6 for r in rows)
    assert all(re.fullmatch(r"[+-]\d\.\d\d \[[+-]\d\.\d\d, [+-]\d\.\d\d\]", r[4]) and r[5:] == (None,) * 6
               for r in rows)  # #params only: the other proxies' columns are empty
    verdicts = con.execute(_docs_query("vit_metrics.sql", VIT_RUN)).fetchall()
    assert [(r[1], r[2]) for r in verdicts] == tables
    for r in verdicts:
        assert sum(map(int, r[3].split(" / "))) == 1 and r[4].startswith("params (")
        assert r[5].endswith("rank 1 of 1") and r[6] == "—"


def test_the_docs_survey_query_puts_published_figures_beside_the_run(tmp_path_factory):
    con = connect(str(shared_results(tmp_path_factory)), SPEC)
    rows = con.execute(_docs_query("survey_nb201.sql", RUN)).fetchall()
    rhos = [r[2] for r in rows]
    assert len(rows) == 6 and rhos == sorted(rhos, reverse=True)  # 3 proxies × 2 datasets, best first
    published = [r for r in rows if r[4] is not None]  # the survey's figures are on CIFAR-10
    assert sorted(r[0] for r in published) == ["flops", "naswot", "params"]
    assert all(r[5] == pytest.approx(r[2] - r[4], abs=0.006) and r[6] for r in published), published
