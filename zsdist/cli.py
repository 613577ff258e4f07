"""The `zsdist` command line (Typer). User errors print one line and exit 2."""
from __future__ import annotations

import sys
from typing import Optional

import typer

from zsdist.errors import ZsdistError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Zero-shot NAS proxies at scale: launch runs on Ray, query results with DuckDB SQL.")

CORRELATION_SQL = """
SELECT space, dataset, proxy, n, round(spearman, 4) AS spearman, round(kendall, 4) AS kendall,
       round(pearson, 4) AS pearson
FROM correlation WHERE run_id = '{run_id}' AND metric = 'test_acc' ORDER BY space, dataset, spearman DESC"""


def _print_query(results: str, sql: str, fmt: str) -> None:
    import duckdb

    from zsdist.analysis.output import FORMATS, render
    from zsdist.analysis.views import connect

    if fmt not in FORMATS:
        raise ZsdistError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")
    con = connect(results)
    try:
        cursor = con.execute(sql)
    except duckdb.Error as exc:
        raise ZsdistError(f"query failed: {str(exc).splitlines()[0]}") from None
    columns = [d[0] for d in cursor.description or []]
    typer.echo(render(columns, cursor.fetchall(), fmt))


@app.command()
def launch(
    workflow: str = typer.Option("workflows/quickstart.toml", help="Workflow TOML file."),
    output: Optional[str] = typer.Option(None, help="Results folder or URI (default: the workflow's run.output)."),
    address: Optional[str] = typer.Option(
        None, help="An existing Ray cluster: host:port or 'auto' to drive it from here, http://head:8265 to submit "
                   "a Ray Job to it (default: an embedded local Ray)."),
    cluster: Optional[str] = typer.Option(None, help="Ray cluster-launcher YAML: `ray up` it, submit a Ray Job."),
) -> None:
    """Run a workflow: compute every proxy of every job, write Parquet, print the correlation table."""
    from zsdist import remote
    from zsdist.run import launch as run_launch
    from zsdist.workflow import load_workflow

    wf = load_workflow(workflow)
    if cluster or (address and address.startswith(("http://", "https://"))):
        forward = None
        if cluster:
            address, forward = remote.cluster_up(cluster)
        try:
            code = remote.submit(address, workflow, output)
        finally:
            if forward:
                forward.terminate()
        raise typer.Exit(code)
    summary = run_launch(wf, output=output, address=address)
    typer.echo(f"run {summary.run_id}: {summary.shards_done} shards computed, {summary.shards_skipped} already "
               f"done, {summary.archs_done} architectures, {summary.failed_rows} failed rows → {summary.output}")
    _print_query(summary.output, CORRELATION_SQL.format(run_id=summary.run_id), "table")


@app.command()
def query(
    sql: str = typer.Argument(..., help="SQL over the views scores, latency, truth, runs, wide, correlation, ..."),
    results: str = typer.Option("results", help="Results folder or URI."),
    format: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
) -> None:
    """Run DuckDB SQL over the results."""
    _print_query(results, sql, format)


@app.command()
def report(
    results: str = typer.Option("results", help="Results folder or URI."),
    run: Optional[str] = typer.Option(None, help="Run id (default: the run started last)."),
    out: str = typer.Option("report", help="Folder for report.html, report.md and the PNG plots."),
) -> None:
    """Write an HTML page and Markdown with the correlation, selection and hardware tables and plots."""
    from zsdist.analysis.report import write_report

    done = write_report(results, run, out)
    typer.echo(f"report of run {done.run_id}: {len(done.tables)} tables, {len(done.figures)} plots → "
               f"{out}/report.html, {out}/report.md")


@app.command()
def ingest(
    results: str = typer.Option("results", help="Results folder or URI."),
    source: Optional[list[str]] = typer.Option(None, help="Truth source(s) to load (default: all)."),
    file: Optional[str] = typer.Option(None, help="Read this file instead of the reference data (one source)."),
    latency_tables: bool = typer.Option(True, help="Also load the HW-NAS-Bench and HELP NB201 latency tables."),
) -> None:
    """Load ground truth into `truth` and device tables into `latency` (rewrites: running it twice changes
    nothing)."""
    from hw_models.tables import ingest_tables
    from zsdist.store import Store
    from zsdist.truth import TRUTH, ingest as run_ingest

    names = source or TRUTH.names()
    if file and len(names) != 1:
        raise ZsdistError("--file needs exactly one --source")
    store = Store(results)
    store.check_writable()
    for name in names:
        typer.echo(f"truth {name}: {run_ingest(store, name, file)} rows")
    if latency_tables:
        for name, rows in ingest_tables(store).items():
            typer.echo(f"latency tables {name}: {rows} rows")


@app.command()
def fewshot(
    name: str = typer.Argument(..., help="Name of the new device, as workflows will write it in `latency`."),
    from_file: Optional[str] = typer.Option(
        None, "--from", help="CSV or Parquet of measurements, one row per measured network: space, arch (string or "
                             "id), latency_ms; optional dataset (default: the space's first) and batch_size (default "
                             "1, one per file). Errors number rows from 1 after the header."),
    run: Optional[str] = typer.Option(None, help="Instead of --from: a run whose latency rows to fit on."),
    device: str = typer.Option("cpu", help="With --run: the device of those rows (cpu, cuda, or any it names)."),
    results: str = typer.Option("results", help="With --run: the results folder or URI."),
    out: Optional[str] = typer.Option(None, help="Folder for NAME.json (default: the user folder where workflows "
                                                 "find devices, $ZSDIST_HOME/devices or the platform's data folder)."),
) -> None:
    """Fit a new latency device from a few measured networks (5 or more; 20 rank the rest well) under a prior
    meta-learned from 29 devices' tables, and save it where workflows find it."""
    from pathlib import Path

    from hw_models.fitted import check_name, folder
    from zsdist.fewshot import fit_device, read_measurements, run_measurements

    if (from_file is None) == (run is None):
        raise ZsdistError("give the measurements either as --from FILE or as --run RUN (with --device)")
    check_name(name)
    if from_file is not None:
        measurements, source = read_measurements(from_file), {"file": str(Path(from_file).resolve())}
    else:
        measurements, source = run_measurements(results, run, device), {"run_id": run, "device": device,
                                                                        "results": results}
    done = fit_device(name, measurements, source, Path(out) if out else None)
    where = "" if done.path.parent == folder() else f" (workflows look in {folder()})"
    typer.echo(f"device {name}: fitted on {done.networks} networks at batch {done.batch_size}; each predicted by a "
               f"fit on the others: Spearman {done.loo_spearman:.3f}, {100 * done.loo_within10:.0f} % within ±10 % "
               f"→ {done.path}{where}\nname it in a workflow: latency = [\"{name}\"]")


@app.command()
def spaces() -> None:
    """List the search spaces."""
    from zsdist.spaces import create_space, list_spaces

    for name in list_spaces():
        space = create_space(name)
        typer.echo(f"{name:16s} {space.size:>9,d} architectures  datasets: {', '.join(space.datasets)}")


@app.command()
def proxies() -> None:
    """List the proxies with their direction and needs."""
    from zsdist.proxies import PROXIES, get_proxy

    for name in PROXIES.names():
        p = get_proxy(name)
        direction = "higher" if p.higher_is_better else "lower"
        typer.echo(f"{name:16s} {direction:6s} needs: {', '.join(sorted(p.needs)) or '-':20s} {p.description}")


@app.command()
def compare(
    run_a: Optional[str] = typer.Argument(None, help="The reference run id (e.g. last night's)."),
    run_b: Optional[str] = typer.Argument(None, help="The run id to check against it."),
    latest: Optional[str] = typer.Option(None, help="Instead of two ids: the two newest runs whose id starts so."),
    results: str = typer.Option("results", help="Results folder or URI holding both runs."),
    value_tol: float = typer.Option(1e-6, help="Relative change of a value that counts as drift."),
    corr_tol: float = typer.Option(0.01, help="Change of Spearman ρ against test accuracy that counts as drift."),
) -> None:
    """List proxies whose values or correlations moved between two runs; exit 1 when any did."""
    from zsdist.analysis.output import render
    from zsdist.compare import compare_runs, latest_runs

    if latest:
        run_a, run_b = latest_runs(results, latest)
    elif not (run_a and run_b):
        raise ZsdistError("give two run ids, or --latest PREFIX")
    drift = compare_runs(results, run_a, run_b, value_tol, corr_tol)
    if drift.rows:
        typer.echo(f"drift between {run_a} and {run_b}:")
        typer.echo(render(drift.columns, drift.rows, "table"))
        raise typer.Exit(1)
    typer.echo(f"no drift between {run_a} and {run_b}: {drift.compared} space × dataset × proxy groups agree")


@app.command()
def bench(
    name: str = typer.Argument(..., help="Which benchmark (see `zsdist bench --help`): proxies, scaling, latency."),
    quick: bool = typer.Option(False, help="A smaller sample, for a fast look."),
) -> None:
    """Measure speed, printed as ratios against a baseline measured in the same run."""
    from zsdist.bench import BENCHES

    typer.echo(BENCHES.get(name)(quick))


def main() -> None:
    try:
        app()
    except ZsdistError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
