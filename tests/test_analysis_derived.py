"""The AZ-NAS rank aggregate in SQL equals a direct computation with scipy ranks over real score rows; it is stored
once per run (the `derived` table) and read back through `proxy_scores`."""
from __future__ import annotations

import math

import pytest
from scipy import stats

from zsdist.analysis.derived import AZ_COMPONENTS, DERIVED_SCORES_SQL, derived_params
from zsdist.analysis.summary import finalize_run
from zsdist.analysis.views import connect
from zsdist.data import load_batch
from zsdist.proxies import resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.spaces import create_space
from zsdist.store import SCHEMAS, Store

# 777 and 4321 have equal FLOPs (a tie in az_complexity); 0 and 1 (dead cells) have nan components, which rank
# lowest (a tie between the two); 15625 is no NB201 cell, so its rows are errors and it drops out
ARCHS = (10798, 15624, 777, 4321, 9009, 0, 1, 15625)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    space, dataset = create_space("nb201"), "imagenet16_120"  # 16×16 inputs keep it quick
    batch = load_batch(dataset, 8, 0)
    proxies = resolve_proxies(list(AZ_COMPONENTS))
    rows = []
    for arch_id in ARCHS:
        for r in evaluate(lambda: space.build(arch_id, dataset), batch, proxies, 0):
            arch = space.arch_str(arch_id) if arch_id < space.size else "?"
            rows.append({"arch_id": arch_id, "arch": arch, "dataset": dataset, "proxy": r.proxy,
                         "value": r.value, "seconds": r.seconds, "status": r.status, "error": r.error,
                         "batch_size": 8, "seed": 0, "device": "cpu", "options": "{}", "version": "test"})
    folder = tmp_path_factory.mktemp("derived")
    Store(str(folder)).write("scores", rows, "shard-0", run_id="r1", space="nb201")
    return str(folder), rows


def test_az_nas_aggregate_equals_scipy_ranks(results):
    folder, rows = results
    ok = {}
    for row in rows:
        if row["status"] in ("ok", "nan"):
            ok.setdefault(row["arch_id"], {})[row["proxy"]] = row["value"] if row["status"] == "ok" else -math.inf
    complete = sorted(a for a, values in ok.items() if len(values) == len(AZ_COMPONENTS))
    assert complete == sorted(ARCHS[:-1])
    assert all(ok[a]["az_expressivity"] == -math.inf for a in (0, 1))
    n = len(complete)
    expected = dict.fromkeys(complete, 0.0)
    for component in AZ_COMPONENTS:
        ranks = stats.rankdata([ok[a][component] for a in complete])  # ascending, ties averaged
        for arch_id, rank in zip(complete, ranks):
            expected[arch_id] += math.log(rank / n)

    con = connect(folder)
    got = dict(con.execute(f"SELECT arch_id, value FROM ({DERIVED_SCORES_SQL})", derived_params("r1")).fetchall())
    assert got.keys() == expected.keys()
    for arch_id in complete:
        assert got[arch_id] == pytest.approx(expected[arch_id], rel=1e-12)
    finalize_run(Store(folder), "r1")
    stored = dict(connect(folder).execute("SELECT arch_id, value FROM proxy_scores WHERE proxy = 'az_nas'").fetchall())
    assert stored == got


def test_derived_rows_have_the_columns_of_scores_and_union_with_it(results):
    folder, _ = results
    con = connect(folder)
    columns = [d[0] for d in con.execute("SELECT * FROM scores LIMIT 0").description]
    assert columns == ["run_id", "space", *SCHEMAS["scores"].names]
    derived = con.execute(DERIVED_SCORES_SQL, derived_params("r1"))
    assert [d[0] for d in derived.description] == ["space", *SCHEMAS["scores"].names]
    rows = derived.fetchall()
    assert {(r[0], r[4], r[7]) for r in rows} == {("nb201", "az_nas", "ok")}
    finalize_run(Store(folder), "r1")
    con = connect(folder)
    types = lambda sql: [r[1] for r in con.execute(f"DESCRIBE {sql}").fetchall()]
    assert types("SELECT * FROM derived") == types("SELECT * FROM scores")
    total = con.execute("SELECT count(*) FROM proxy_scores").fetchone()[0]
    assert total == len(ARCHS) * len(AZ_COMPONENTS) + len(rows)
