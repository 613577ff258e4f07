"""`zsdist report`: one run's answers as a self-contained HTML page (images inlined) and Markdown with PNG files.

Every table is one SQL query over the views, scoped to the run (printed under it on the page, so a reader can
rerun or change it; a table pivoted for reading says on which column). Tables and plots use each space × dataset's
primary metric (the `primary_metric` view: test_acc where the truth has it, else the first metric); the study
tables show every metric. The page reads at a glance on a laptop: figures pick their panels (the hardware plots
summarise every device in one row of panels and draw two devices in full), long tables scroll in a box of their
own, and the full per-budget listing sits behind a fold. An empty table says what is missing and how to add it.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from zsdist.analysis import plots, search
from zsdist.analysis.hints import Hint, hints
from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.errors import ZsdistError

# Kendall's interval is left to the view (one τ per resample: minutes over a whole space; query kendall_lo/hi there)
CORRELATION_SQL = """SELECT space, dataset, metric, proxy, n, spearman, spearman_lo, spearman_hi, kendall, pearson,
       pearson_lo, pearson_hi
FROM correlation_ci JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run AND region = 'all'
ORDER BY space, dataset, spearman DESC NULLS LAST, proxy"""

STUDY_SQL = """SELECT space, proxy, tables, stand_in_tables, headline, headline_spearman, min_spearman, min_at,
       max_spearman, max_at, verdict
FROM study_verdict WHERE run_id = $run
ORDER BY family, space, headline_spearman DESC NULLS LAST, proxy"""

METRICS_SQL = """SELECT space, dataset, metric, stand_in, headline, proxy, spearman
FROM study_correlation WHERE run_id = $run
ORDER BY space, dataset, metric, proxy"""

SELECTION_SQL = """SELECT space, dataset, metric, proxy, pool_size, k, pools, mean_pick_acc, mean_top_k_acc,
       mean_pool_best, mean_regret, hit_rate, random_regret
FROM selection JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run
ORDER BY space, dataset, pool_size, k, mean_regret NULLS LAST, proxy"""

HARDWARE_SQL = """SELECT space, dataset, metric, cost, device, source, batch_size, cost_run, proxy,
       avg(regret) AS regret
FROM constrained JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run AND kind = 'percentile' AND k = (SELECT min(k) FROM top_k)
GROUP BY ALL
ORDER BY space, dataset, cost, device, source, batch_size, cost_run, proxy"""

CONSTRAINED_SQL = """SELECT space, dataset, metric, cost_run, device, source, cost, label, budget, proxy, n_within,
       pick_id, pick_acc, best_acc, regret, front_gap
FROM constrained JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run AND k = (SELECT min(k) FROM top_k)
ORDER BY space, dataset, device, source, cost, kind, level, proxy"""

FAMILY_SQL = """SELECT family, metric, proxy, tables, mean_spearman, mean_kendall, mean_rank
FROM family_summary WHERE run_id = $run AND region = 'all'
ORDER BY family, metric, mean_rank, proxy"""

RUNS_SQL = "SELECT run_id, name, started, finished FROM run_index ORDER BY started NULLS FIRST, run_id"


def regions_sql(spec: AnalysisSpec) -> str:
    """Spearman in each region (the survey's high-accuracy regions) side by side."""
    columns = ",\n       ".join(f"max(spearman) FILTER (WHERE region = '{name}') AS {name}"
                                for name, _ in spec.regions())
    return f"""SELECT space, dataset, metric, proxy,
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
    note: str = ""  # how to read it, or why it is empty
    folded: bool = False  # a full listing behind a fold (the tables above condense it)


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    png: bytes


@dataclass(frozen=True)
class Report:
    run_id: str
    results: str
    runs: tuple[tuple[Any, ...], ...]  # (run_id, name, started, finished) of every run in the results
    hints: tuple[Hint, ...]
    tables: tuple[Table, ...]
    figures: tuple[Figure, ...]

    def scope(self) -> str:
        """Which run this is among the folder's runs, in one sentence."""
        state = {r[0]: "finished" if r[3] else "not finished" for r in self.runs}.get(self.run_id, "not recorded")
        others = [r[0] for r in self.runs if r[0] != self.run_id]
        text = f"Run {self.run_id} ({state}) of results {self.results}."
        if others:
            text += (f" The folder holds {len(others)} other run(s), not shown here: {', '.join(others)}"
                     " (zsdist report --run ID for one of them; the latest_run view lists the newest of each name).")
        return text

    def html(self) -> str:
        parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>zsdist report: {_esc(self.run_id)}"
                 f"</title><style>{_CSS}</style></head><body>",
                 f"<h1>zsdist report</h1><p id='scope'>{_esc(self.scope())} Proxy direction applied; primary metric "
                 "per space × dataset (every metric in the study tables).</p>"]
        if self.hints:
            parts.append("<section id='missing'><h2>What is missing</h2><ul>"
                         + "".join(f"<li>{_esc(h.text)}</li>" for h in self.hints) + "</ul></section>")
        for fig in self.figures:
            data = base64.b64encode(fig.png).decode()
            parts.append(f"<figure id='fig-{fig.key}'><img alt='{_esc(fig.title)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{_esc(fig.title)}</figcaption></figure>")
        for table in self.tables:
            head = "".join(f"<th>{_esc(c)}</th>" for c in table.columns)
            body = "".join("<tr>" + "".join(f"<td>{_esc(_fmt(v))}</td>" for v in row) + "</tr>" for row in table.rows)
            block = (f"<p class='note'>{_esc(table.note)}</p>" if table.note else "") + (
                f"<div class='scroll'><table id='{table.key}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                f"</table></div><details><summary>SQL</summary><pre>{_esc(table.sql)}</pre></details>")
            if table.folded:
                parts.append(f"<details class='fold' id='fold-{table.key}'><summary>{_esc(table.title)} "
                             f"({len(table.rows)} rows)</summary>{block}</details>")
            else:
                parts.append(f"<h2>{_esc(table.title)}</h2>{block}")
        return "\n".join(parts + ["</body></html>\n"])

    def markdown(self) -> str:
        lines = [f"# zsdist report: run `{self.run_id}`", "", self.scope(),
                 "Proxy direction applied; primary metric per space × dataset (every metric in the study tables).", ""]
        if self.hints:
            lines += ["## What is missing", "", *(f"- {h.text}" for h in self.hints), ""]
        lines += [f"![{fig.title}]({fig.key}.png)\n" for fig in self.figures]
        for table in self.tables:
            lines += [f"## {table.title}", ""] + ([table.note, ""] if table.note else [])
            lines += ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
            lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.rows]
            lines.append("")
        return "\n".join(lines)


_CSS = ("body{font-family:sans-serif;margin:1.5em;max-width:1400px}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee;position:sticky;top:0}"
        "img{max-width:100%;max-height:90vh}figure{margin:1em 0}pre{font-size:11px}"
        ".scroll{max-height:50vh;overflow:auto;display:inline-block;max-width:100%}"
        ".note{font-size:13px;color:#444}#missing{background:#fff4e0;padding:0.2em 1em}"
        "details.fold>summary{font-size:1.2em;font-weight:bold;margin:1em 0}")


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
        SELECT run_id FROM run_index WHERE run_id IN (SELECT DISTINCT run_id FROM scores)
        ORDER BY started NULLS FIRST, run_id""").fetchall()]
    if not known:
        raise ZsdistError("no scores in these results; run `zsdist launch` first")
    if run is None:
        return known[-1]
    if run not in known:
        raise ZsdistError(f"unknown run '{run}' (known: {', '.join(known)})")
    return run


def _pivot(columns: tuple[str, ...], rows: list[tuple], on: str, value: str) -> tuple[tuple, list[tuple]]:
    """Long rows → one row per key (the other columns) and a column per value of `on`, in order of appearance."""
    i, j = columns.index(on), columns.index(value)
    keys = tuple(c for c in columns if c not in (on, value))
    heads = tuple(dict.fromkeys(r[i] for r in rows))
    wide: dict[tuple, dict] = {}
    for r in rows:
        wide.setdefault(tuple(v for n, v in zip(columns, r) if n not in (on, value)), {})[r[i]] = r[j]
    return keys + heads, [k + tuple(cells.get(h) for h in heads) for k, cells in wide.items()]


def _query(con: duckdb.DuckDBPyConnection, key: str, title: str, sql: str, run_id: str, found: list[Hint],
           pivot: tuple[str, str] | None = None, note: str = "", folded: bool = False) -> Table:
    cursor = con.execute(sql, {"run": run_id} if "$run" in sql else None)  # a search table lists every run
    columns, rows = tuple(d[0] for d in cursor.description), cursor.fetchall()
    if pivot:
        columns, rows = _pivot(columns, rows, *pivot)
        note = f"{note} One column per {pivot[0]} (the {pivot[1]} of the query below).".strip()
    if not rows:
        why = [h.text for h in found if key in h.tables]
        note = "No rows: " + "; ".join(why) + "." if why else "No rows."
    return Table(key, title, sql, columns, tuple(rows), note, folded)


def _figures(con: duckdb.DuckDBPyConnection, run_id: str) -> list[Figure]:
    params = {"run": run_id}
    figures = []
    cells = con.execute("""SELECT proxy, space || '/' || dataset, spearman FROM correlation JOIN primary_metric
        USING (space, dataset, metric) WHERE run_id = $run""", params).fetchall()
    if cells:
        figures.append(Figure("heatmap", "Spearman ρ of each proxy per space × dataset (all architectures)",
                              plots.heatmap(cells, f"run {run_id}")))
    # the table with the most architectures: its best and worst proxy against accuracy
    focus = con.execute("""
        SELECT space, dataset, metric, arg_max(proxy, spearman), max(spearman), arg_min(proxy, spearman),
               min(spearman)
        FROM correlation JOIN primary_metric USING (space, dataset, metric)
        WHERE run_id = $run AND spearman IS NOT NULL
        GROUP BY ALL ORDER BY max(n) DESC, space, dataset LIMIT 1""", params).fetchone()
    if focus:
        space, dataset, metric, best, best_rho, worst, worst_rho = focus
        panels = []
        for label, proxy, rho in (("best", best, best_rho), ("worst", worst, worst_rho)):
            pair = con.execute("""SELECT list(score ORDER BY arch_id), list(truth ORDER BY arch_id)
                FROM paired WHERE run_id = $run AND space = $space AND dataset = $dataset AND metric = $metric
                AND proxy = $proxy""", {**params, "space": space, "dataset": dataset, "metric": metric,
                                        "proxy": proxy}).fetchone()
            assert pair is not None  # list() without GROUP BY returns one row
            score, truth = pair
            panels.append((f"{label}: {proxy} (ρ = {rho:.3f}), {space}/{dataset}", score, truth))
        figures.append(Figure("scatter", f"Best and worst proxy against {metric}", plots.scatter(panels, metric)))
        figures += _hardware_figures(con, run_id, space, dataset, metric)
    families = con.execute("""SELECT family, proxy, avg(spearman) FROM study_correlation
        WHERE run_id = $run AND headline GROUP BY ALL ORDER BY ALL""", params).fetchall()
    if len({row[0] for row in families}) > 1:
        figures.append(Figure("families", "ViT versus CNN: mean Spearman ρ per proxy and space family, on each "
                                          "space's headline table (every metric: the study tables)",
                              plots.family_bars(families)))
    return figures


_SERIES = "cost_run, device, source, batch_size, cost"


def _hardware_figures(con: duckdb.DuckDBPyConnection, run_id: str, space: str, dataset: str,
                      metric: str) -> list[Figure]:
    """Regret against budget summarised over every device (one panel per cost), and the Pareto fronts of #FLOPs
    and of the devices where the proxies' picks lose the most and the least accuracy."""
    params = {"run": run_id, "space": space, "dataset": dataset, "metric": metric}
    where = ("run_id = $run AND space = $space AND dataset = $dataset AND metric = $metric AND kind = 'percentile' "
             "AND k = (SELECT min(k) FROM top_k)")
    per_device = con.execute(f"""SELECT {_SERIES}, avg(regret) FROM constrained WHERE {where}
        GROUP BY ALL HAVING avg(regret) IS NOT NULL ORDER BY avg(regret), {_SERIES}""", params).fetchall()
    if not per_device:
        return []
    bands = []
    for cost, devices in con.execute(f"SELECT cost, count(DISTINCT ({_SERIES})) FROM constrained WHERE {where} "
                                     "GROUP BY cost ORDER BY cost", params).fetchall():
        rows = con.execute(f"""SELECT proxy, level, median(regret), min(regret), max(regret) FROM constrained
            WHERE {where} AND cost = $cost GROUP BY proxy, level""", {**params, "cost": cost}).fetchall()
        bands.append((f"{cost}: median over {devices} device(s), band min–max", rows))
    flops = [d for d in per_device if d[4] == "flops"]
    devices = [d for d in per_device if d[4] != "flops"]
    shown = [(d, "") for d in flops[:1]] + [(d, ", largest mean regret") for d in devices[-1:]]
    shown += [(d, ", smallest mean regret") for d in devices[:1] if len(devices) > 1]
    fronts = []
    for (cost_run, device, source, batch, cost, _), why in shown:
        series = {**params, "cost_run": cost_run, "device": device, "source": source, "batch": batch, "cost": cost}
        same = ("run_id = $run AND space = $space AND dataset = $dataset AND metric = $metric AND cost_run = $cost_run"
                " AND device = $device AND source = $source AND batch_size = $batch AND cost = $cost")
        fronts.append((
            f"{device} ({source}, batch {batch}): {cost}{why}",
            con.execute(f"SELECT cost_value, truth, on_front FROM pareto WHERE {same}", series).fetchall(),
            con.execute(f"""SELECT proxy, pick_cost, pick_acc FROM constrained WHERE {same}
                AND kind = 'percentile' AND k = (SELECT min(k) FROM top_k) AND pick_id IS NOT NULL""",
                        series).fetchall(),
            con.execute(f"SELECT label, budget FROM budgets WHERE {same} AND kind = 'percentile'", series).fetchall()))
    return [Figure("regret", f"Regret of each proxy's top-1 pick versus budget, every device ({space}/{dataset}, "
                             f"{metric}; per device: the hardware table)",
                   plots.regret_bands(bands, "budget (percentile of cost)")),
            Figure("pareto", f"Pareto fronts ({space}/{dataset}, {metric}) with each proxy's pick per budget (dotted)",
                   plots.pareto(fronts, "cost (log scale)"))]


def search_section(con: duckdb.DuckDBPyConnection, run_id: str, found: list[Hint],
                   max_plots: int = 6) -> tuple[list[Table], list[Figure]]:
    """Every search in the results (`zsdist search`): budget use, infeasible candidates and the pick, and its
    objective against the evaluations spent (the first `max_plots` searches)."""
    table = _query(con, "search", "Searches: evaluations, candidates rejected on cost, and the pick",
                   search.SUMMARY_SQL, run_id, found)
    if not table.rows:
        return [], []
    runs = con.execute(search.PROGRESS_SQL, {"runs": [r[0] for r in table.rows[:max_plots]]}).fetchall()
    return [table], [Figure("search", "Searches: objective against evaluations; infeasible candidates (right axis)",
                            search.progress_plot(runs))]


def build_report(con: duckdb.DuckDBPyConnection, run_id: str, results: str, spec: AnalysisSpec) -> Report:
    found = hints(con, run_id, results)

    def table(key: str, title: str, sql: str, **kwargs: Any) -> Table:
        return _query(con, key, title, sql, run_id, found, **kwargs)

    tables = (
        table("correlation", "Correlation with bootstrap 95% intervals (all architectures)", CORRELATION_SQL),
        table("regions", "Spearman ρ in the high-accuracy regions", regions_sql(spec)),
        table("study", "Does each proxy's ranking hold on every ground-truth metric?", STUDY_SQL,
              note="A table is one dataset × metric (base and KD fine-tuning, each dataset). The headline is the "
                   "table a one-number summary uses; the verdict states a sign only where the bootstrap interval "
                   "of every table agrees. Stand-in tables score images of another dataset."),
        table("metrics", "Spearman ρ on every ground-truth metric", METRICS_SQL, pivot=("proxy", "spearman")),
        table("selection", "Selection in random pools: regret of each proxy's top-k", SELECTION_SQL),
        table("hardware", "Hardware: mean regret of each proxy's top-1 pick over the percentile budgets, per device",
              HARDWARE_SQL, pivot=("proxy", "regret"), note="Lower is better; 0: the best network within budget."),
        table("constrained", "Every device × budget: each proxy's top-1 pick", CONSTRAINED_SQL, folded=True),
        table("families", "ViT versus CNN: proxies by space family, per metric (all architectures)", FAMILY_SQL),
    )
    search_tables, search_figures = search_section(con, run_id, found)
    runs = tuple(tuple(r) for r in con.execute(RUNS_SQL).fetchall())
    return Report(run_id, results, runs, tuple(found), tables + tuple(search_tables),
                  tuple(_figures(con, run_id)) + tuple(search_figures))


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
