"""`zsdist report`: one run's answers as a self-contained HTML page (images inlined) and Markdown with PNG files.

Every table is one SQL query over the views (printed under it on the page, so a reader can rerun or change it);
tables and plots use each space × dataset's primary metric: test_acc where the truth has it, else the first metric.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from zsdist.analysis import plots
from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.errors import ZsdistError

PRIMARY_METRIC = """primary_metric AS (
    SELECT space, dataset, CASE WHEN bool_or(metric = 'test_acc') THEN 'test_acc' ELSE min(metric) END AS metric
    FROM truth GROUP BY space, dataset)"""

# Kendall's interval is left to the view (one τ per resample: minutes over a whole space; query kendall_lo/hi there)
CORRELATION_SQL = f"""WITH {PRIMARY_METRIC}
SELECT space, dataset, metric, proxy, n, spearman, spearman_lo, spearman_hi, kendall, pearson, pearson_lo, pearson_hi
FROM correlation_ci JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run AND region = 'all'
ORDER BY space, dataset, spearman DESC NULLS LAST, proxy"""

SELECTION_SQL = f"""WITH {PRIMARY_METRIC}
SELECT space, dataset, metric, proxy, pool_size, k, pools, mean_pick_acc, mean_top_k_acc, mean_pool_best,
       mean_regret, hit_rate, random_regret
FROM selection JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run
ORDER BY space, dataset, pool_size, k, mean_regret NULLS LAST, proxy"""

CONSTRAINED_SQL = f"""WITH {PRIMARY_METRIC}
SELECT space, dataset, metric, device, source, cost, label, budget, proxy, n_within, pick_id, pick_acc, best_acc,
       regret, front_gap
FROM constrained JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run AND k = (SELECT min(k) FROM top_k)
ORDER BY space, dataset, device, source, cost, kind, level, proxy"""

FAMILY_SQL = """SELECT family, proxy, tables, mean_spearman, mean_kendall, mean_rank
FROM family_summary WHERE run_id = $run AND region = 'all' ORDER BY family, mean_rank, proxy"""


def regions_sql(spec: AnalysisSpec) -> str:
    """Spearman in each region (the survey's high-accuracy regions) side by side."""
    columns = ",\n       ".join(f"max(spearman) FILTER (WHERE region = '{name}') AS {name}"
                                for name, _ in spec.regions())
    return f"""WITH {PRIMARY_METRIC}
SELECT space, dataset, metric, proxy,
       {columns}
FROM correlation_regions JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run
GROUP BY space, dataset, metric, proxy
ORDER BY space, dataset, "all" DESC NULLS LAST, proxy"""


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    sql: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    png: bytes


@dataclass(frozen=True)
class Report:
    run_id: str
    results: str
    tables: tuple[Table, ...]
    figures: tuple[Figure, ...]

    def html(self) -> str:
        parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>zsdist report: {_esc(self.run_id)}"
                 f"</title><style>{_CSS}</style></head><body>",
                 f"<h1>zsdist report</h1><p>run <code>{_esc(self.run_id)}</code>, results "
                 f"<code>{_esc(self.results)}</code>. Proxy direction applied; primary metric per space × dataset."
                 "</p>"]
        for fig in self.figures:
            data = base64.b64encode(fig.png).decode()
            parts.append(f"<figure id='fig-{fig.key}'><img alt='{_esc(fig.title)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{_esc(fig.title)}</figcaption></figure>")
        for table in self.tables:
            head = "".join(f"<th>{_esc(c)}</th>" for c in table.columns)
            body = "".join("<tr>" + "".join(f"<td>{_esc(_fmt(v))}</td>" for v in row) + "</tr>" for row in table.rows)
            parts.append(f"<h2>{_esc(table.title)}</h2><table id='{table.key}'><thead><tr>{head}</tr></thead>"
                         f"<tbody>{body}</tbody></table><details><summary>SQL</summary><pre>{_esc(table.sql)}"
                         "</pre></details>")
        return "\n".join(parts + ["</body></html>\n"])

    def markdown(self) -> str:
        lines = [f"# zsdist report: run `{self.run_id}`", "",
                 f"Results `{self.results}`. Proxy direction applied; primary metric per space × dataset.", ""]
        lines += [f"![{fig.title}]({fig.key}.png)\n" for fig in self.figures]
        for table in self.tables:
            lines += [f"## {table.title}", "", "| " + " | ".join(table.columns) + " |",
                      "|" + "---|" * len(table.columns)]
            lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.rows]
            lines.append("")
        return "\n".join(lines)


_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
        "img{max-width:100%}figure{margin:1em 0}pre{font-size:11px}")


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.6g}"
    return str(value)


def choose_run(con: duckdb.DuckDBPyConnection, run: str | None) -> str:
    """The named run, or the one started last (runs table), or the only one with scores."""
    known = [r[0] for r in con.execute("""
        SELECT s.run_id FROM (SELECT DISTINCT run_id FROM scores) s LEFT JOIN runs r USING (run_id)
        ORDER BY r.started NULLS FIRST, s.run_id""").fetchall()]
    if not known:
        raise ZsdistError("no scores in these results; run `zsdist launch` first")
    if run is None:
        return known[-1]
    if run not in known:
        raise ZsdistError(f"unknown run '{run}' (known: {', '.join(known)})")
    return run


def _query(con: duckdb.DuckDBPyConnection, key: str, title: str, sql: str, run_id: str) -> Table:
    cursor = con.execute(sql, {"run": run_id} if "$run" in sql else None)
    return Table(key, title, sql, tuple(d[0] for d in cursor.description), tuple(cursor.fetchall()))


def _figures(con: duckdb.DuckDBPyConnection, run_id: str, families: Table) -> list[Figure]:
    params = {"run": run_id}
    figures = []
    cells = con.execute(f"""WITH {PRIMARY_METRIC}
        SELECT proxy, space || '/' || dataset, spearman FROM correlation JOIN primary_metric
        USING (space, dataset, metric) WHERE run_id = $run""", params).fetchall()
    if cells:
        figures.append(Figure("heatmap", "Spearman ρ of each proxy per space × dataset (all architectures)",
                              plots.heatmap(cells, f"run {run_id}")))
    # the table with the most architectures: its best and worst proxy against accuracy
    focus = con.execute(f"""WITH {PRIMARY_METRIC}
        SELECT space, dataset, metric, arg_max(proxy, spearman), max(spearman), arg_min(proxy, spearman),
               min(spearman)
        FROM correlation JOIN primary_metric USING (space, dataset, metric)
        WHERE run_id = $run AND spearman IS NOT NULL
        GROUP BY ALL ORDER BY max(n) DESC, space, dataset LIMIT 1""", params).fetchone()
    if focus:
        space, dataset, metric, best, best_rho, worst, worst_rho = focus
        panels = []
        for label, proxy, rho in (("best", best, best_rho), ("worst", worst, worst_rho)):
            score, truth = con.execute("""SELECT list(score ORDER BY arch_id), list(truth ORDER BY arch_id)
                FROM paired WHERE run_id = $run AND space = $space AND dataset = $dataset AND metric = $metric
                AND proxy = $proxy""", {**params, "space": space, "dataset": dataset, "metric": metric,
                                        "proxy": proxy}).fetchone()
            panels.append((f"{label}: {proxy} (ρ = {rho:.3f}), {space}/{dataset}", score, truth))
        figures.append(Figure("scatter", f"Best and worst proxy against {metric}", plots.scatter(panels, metric)))
        figures += _hardware_figures(con, run_id, space, dataset, metric)
    if len({row[0] for row in families.rows}) > 1:
        figures.append(Figure("families", "ViT versus CNN: mean Spearman ρ per proxy and space family",
                              plots.family_bars([(r[0], r[1], r[3]) for r in families.rows])))
    return figures


def _hardware_figures(con: duckdb.DuckDBPyConnection, run_id: str, space: str, dataset: str,
                      metric: str) -> list[Figure]:
    params = {"run": run_id, "space": space, "dataset": dataset, "metric": metric}
    where = "run_id = $run AND space = $space AND dataset = $dataset AND metric = $metric"
    devices = con.execute(f"SELECT DISTINCT device, source, batch_size, cost FROM pareto WHERE {where} "
                          "ORDER BY cost, device, source, batch_size", params).fetchall()
    if not devices:
        return []
    fronts, regrets = [], []
    for device, source, batch, cost in devices:
        key = {**params, "device": device, "source": source, "batch": batch, "cost": cost}
        same = f"{where} AND device = $device AND source = $source AND batch_size = $batch AND cost = $cost"
        title = f"{device} ({source}, batch {batch}): {cost}"
        candidates = con.execute(f"SELECT cost_value, truth, on_front FROM pareto WHERE {same}", key).fetchall()
        picks = con.execute(f"""SELECT proxy, pick_cost, pick_acc FROM constrained WHERE {same}
            AND k = (SELECT min(k) FROM top_k) AND pick_id IS NOT NULL""", key).fetchall()
        fronts.append((title, candidates, picks))
        regrets.append((title, con.execute(f"""SELECT proxy, level, regret FROM constrained WHERE {same}
            AND kind = 'percentile' AND k = (SELECT min(k) FROM top_k)""", key).fetchall()))
    return [Figure("pareto", f"Pareto fronts ({space}/{dataset}, {metric}) with each proxy's pick per budget",
                   plots.pareto(fronts, "cost (log scale)")),
            Figure("regret", f"Regret of each proxy's pick versus budget ({space}/{dataset}, {metric})",
                   plots.regret_lines(regrets, "budget (percentile of cost)"))]


def build_report(con: duckdb.DuckDBPyConnection, run_id: str, results: str, spec: AnalysisSpec) -> Report:
    families = _query(con, "families", "ViT versus CNN: proxies by space family (all architectures)",
                      FAMILY_SQL, run_id)
    tables = (
        _query(con, "correlation", "Correlation with bootstrap 95% intervals (all architectures)",
               CORRELATION_SQL, run_id),
        _query(con, "regions", "Spearman ρ in the high-accuracy regions", regions_sql(spec), run_id),
        _query(con, "selection", "Selection in random pools: regret of each proxy's top-k", SELECTION_SQL, run_id),
        _query(con, "constrained", "Hardware-constrained picks (top-1) per device and budget", CONSTRAINED_SQL,
               run_id),
        families,
    )
    return Report(run_id, results, tables, tuple(_figures(con, run_id, families)))


def write_report(results: str, run: str | None, out: str, spec: AnalysisSpec = AnalysisSpec()) -> Report:
    """Write report.html, report.md and one PNG per figure into `out`."""
    con = connect(results, spec)
    report = build_report(con, choose_run(con, run), results, spec)
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for fig in report.figures:
            (folder / f"{fig.key}.png").write_bytes(fig.png)
        (folder / "report.md").write_text(report.markdown())
        (folder / "report.html").write_text(report.html())
    except OSError as exc:
        raise ZsdistError(f"cannot write the report to {out}: {exc}") from None
    return report
