"""The `zsdist` command line (Typer). User errors print one line and exit 2."""
from __future__ import annotations

import signal
import sys
from typing import Annotated, Optional

import typer

from zsdist.analysis.output import Format
from zsdist.bench import BenchName
from zsdist.errors import RunIncomplete, ZsdistError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  help="Zero-shot NAS proxies at scale: launch runs on Ray, query results with DuckDB SQL.")

# the run's stored summary (written when the launch finished): no score is read again
CORRELATION_SQL = """
SELECT space, dataset, metric, proxy, n, round(spearman, 4) AS spearman, round(kendall, 4) AS kendall,
       round(pearson, 4) AS pearson
FROM run_correlation JOIN primary_metric USING (space, dataset, metric)
WHERE run_id = $run ORDER BY space, dataset, spearman DESC"""


# Statement kinds a query may run without --write: reads, and objects of the in-memory database (views, macros,
# tables) that vanish with the process. COPY, EXPORT, ATTACH, SET, PRAGMA, LOAD, CALL and the like can write files.
_READ_ONLY = {"SELECT", "EXPLAIN", "CREATE", "DROP", "INSERT", "UPDATE", "DELETE", "MULTI"}


def _print_query(results: str, sql: str, fmt: Format, write: bool = False, params: Optional[dict] = None) -> None:
    from zsdist.analysis.output import render
    from zsdist.analysis.views import connect, user_errors

    con = connect(results)
    with user_errors(results):
        if not write:
            for statement in con.extract_statements(sql):
                if statement.type.name not in _READ_ONLY:
                    raise ZsdistError(f"{statement.type.name} statements can write files, and queries over results "
                                      f"are read-only: pass --write to allow them")
            con.execute("SET lock_configuration = true")
        render(con, con.sql(sql, params=params), fmt)


@app.command()
def launch(
    workflow: Annotated[str, typer.Option(help="Workflow TOML file.")] = "workflows/quickstart.toml",
    output: Annotated[Optional[str], typer.Option(help="Results folder or URI (default: the workflow's run.output).")
                      ] = None,
    address: Annotated[Optional[str], typer.Option(
        help="An existing Ray cluster: host:port or 'auto' to drive it from here, http://head:8265 to submit a Ray "
             "Job to it (default: a private local Ray).")] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Ray cluster-launcher YAML: `ray up` it, submit a Ray Job.")
                       ] = None,
    fresh: Annotated[bool, typer.Option(help="Start a new run (date and time in its id) instead of resuming the one "
                                             "this workflow last started (a dated run: the one of the same day).")
                     ] = False,
    resume: Annotated[Optional[str], typer.Option(help="Finish this run of the workflow (e.g. an interrupted --fresh "
                                                       "run); its id is printed when it starts.")] = None,
    compact: Annotated[bool, typer.Option(help="Once the run is finished, merge its shard files into one sorted "
                                               "file per table and space (see `zsdist compact`).")] = False,
) -> None:
    """Run a workflow: compute every proxy of every job, write Parquet, print the correlation table."""
    from zsdist.workflow import load_workflow, resumed

    if fresh and resume:
        raise ZsdistError("--fresh starts a new run and --resume finishes an old one: give one of them")
    wf = load_workflow(workflow, fresh)  # before Ray and torch are imported: a mistake is reported at once
    wf = resumed(wf, resume) if resume else wf
    from zsdist import remote
    from zsdist.run import launch as run_launch

    if cluster or (address and address.startswith(("http://", "https://"))):
        forward = None
        if cluster:
            address, forward = remote.cluster_up(cluster)
        assert address is not None  # the Jobs URL given, or the one `ray up` forwarded
        try:
            options = ["--fresh"] if fresh else ["--resume", resume] if resume else []
            code = remote.submit(address, workflow, output, options)
        finally:
            if forward:
                forward.terminate()
        raise typer.Exit(code)
    summary = run_launch(wf, output=output, address=address, compact=compact)
    typer.echo(f"run {summary.run_id}: {summary.shards_done} shards computed, {summary.shards_skipped} already "
               f"done, {summary.archs_done} architectures, {summary.evaluations} evaluations, "
               f"{summary.failed_rows} failed rows → {summary.output}")
    _print_query(summary.output, CORRELATION_SQL, Format.table, params={"run": summary.run_id})
    from zsdist.analysis.hints import missing_hints
    from zsdist.analysis.views import connect

    for line in missing_hints(connect(summary.output), summary.run_id, summary.output):
        typer.echo(f"hint: {line}")


@app.command()
def search(
    workflow: Annotated[str, typer.Option(help="Search file: TOML with [run] and [search] (see docs/search.md).")],
    output: Annotated[Optional[str], typer.Option(help="Results folder or URI (default: the file's run.output).")
                      ] = None,
    address: Annotated[Optional[str], typer.Option(
        help="An existing Ray cluster (host:port or 'auto'); default: a private local Ray, started only if "
             "something must be computed.")] = None,
) -> None:
    """Search a space for the best architecture under cost constraints; rerun the same command to resume."""
    from zsdist.search.driver import run_search
    from zsdist.search.spec import load_search

    if address and address.startswith(("http://", "https://")):
        raise ZsdistError(f"--address {address}: a search drives Ray from this process; give the cluster's "
                          "host:port (or 'auto' on a node of it), not a Ray Jobs URL")
    done = run_search(load_search(workflow), output=output, address=address)
    stages = ", ".join(f"{n} {stage}" for stage, n in sorted(done.stages.items()))
    typer.echo(f"search {done.run_id}: {done.evaluations} evaluations of {done.candidates} candidates ({stages}; "
               f"{done.reused} reused from earlier runs, {done.computed_shards} shards computed) → {done.output}")
    if done.pick is None:
        typer.echo("no feasible architecture was evaluated: loosen the constraints or raise the budget")
    else:
        typer.echo(f"pick: {done.pick['arch']} (arch_id {done.pick['arch_id']}), objective {done.pick['score']:.6g}, "
                   f"costs {done.pick['costs']}")
    typer.echo(f"history: zsdist query \"SELECT * FROM search_history WHERE run_id = '{done.run_id}'\" "
               f"--results {done.output}")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the views scores, latency, truth, runs, wide, correlation, …")],
    results: Annotated[str, typer.Option(help="Results folder or URI.")] = "results",
    fmt: Annotated[Format, typer.Option("--format", "-f", help="How to print the rows.")] = Format.table,
    write: Annotated[bool, typer.Option(help="Allow statements that can write files (COPY, EXPORT, ATTACH, SET, …).")
                     ] = False,
) -> None:
    """Run DuckDB SQL over the results (read-only unless --write)."""
    from zsdist.store import Store

    Store(results).check_exists()
    _print_query(results, sql, fmt, write)


@app.command()
def compact(
    run: Annotated[str, typer.Argument(help="The finished run to compact.")],
    results: Annotated[str, typer.Option(help="Results folder or URI.")] = "results",
) -> None:
    """Merge a finished run's shard files into one sorted file per table and space (queries then open a few files
    per run instead of hundreds); the run stays done, a relaunch recomputes nothing. Also writes the run's summary
    if it has none."""
    from zsdist.compaction import compact_run
    from zsdist.store import Store

    done = compact_run(Store(results), run)
    typer.echo(f"run {done.run_id}: {done.files} shard files merged into {done.partitions} compacted files "
               f"({done.rows} rows)" if done.files else f"run {done.run_id} is compacted already")


@app.command()
def report(
    results: Annotated[str, typer.Option(help="Results folder or URI.")] = "results",
    run: Annotated[Optional[str], typer.Option(help="Run id (default: the run started last).")] = None,
    out: Annotated[str, typer.Option(help="Folder for report.html, report.md and the PNG plots.")] = "report",
) -> None:
    """Write an HTML page and Markdown with the correlation, selection and hardware tables and plots."""
    from zsdist.analysis.report import write_report
    from zsdist.analysis.views import user_errors

    with user_errors(results):
        done = write_report(results, run, out)
    typer.echo(f"report of run {done.run_id}: {len(done.tables)} tables, {len(done.figures)} plots → "
               f"{out}/report.html, {out}/report.md")


@app.command()
def ingest(
    results: Annotated[str, typer.Option(help="Results folder or URI.")] = "results",
    source: Annotated[Optional[list[str]], typer.Option(
        help="Truth source(s) (nb201, nb101, transnas_micro, autoformer_tiny, pit) or latency table source(s) "
             "(hw_nas_bench, help); default: every truth source that is available.")] = None,
    file: Annotated[Optional[str], typer.Option(
        help="Read this file instead of the reference data (one --source): the layout's CSV/JSON, NASLib's "
             "zero-cost JSON (nb201, nb101, transnas_micro), or HELP's latency lists (a folder of .pt).")] = None,
    latency_tables: Annotated[bool, typer.Option(help="Also load the published latency tables of the chosen "
                                                      "sources' spaces (HW-NAS-Bench and HELP for nb201).")] = True,
    force: Annotated[bool, typer.Option(help="Load a source that covers fewer architectures than the whole "
                                             "benchmark, and replace what the results hold even with fewer rows.")
                     ] = False,
) -> None:
    """Load ground truth into `truth` and device tables into `latency` (rewrites whole files; loading the same
    input again changes nothing)."""
    from zsdist.ingest import ingest as run_ingest
    from zsdist.store import Store

    store = Store(results)
    store.check_writable()
    run_ingest(store, source or (), file, force, latency_tables, say=typer.echo)


data_app = typer.Typer(no_args_is_help=True,
                       help="Reference data: what is embedded, cached or missing; fetch the rest.")
app.add_typer(data_app, name="data")


@data_app.command("status")
def data_status(
    verify: Annotated[bool, typer.Option(help="Also check each file's contents against the sources table's "
                                              "checksum.")] = False,
) -> None:
    """List each reference-data source: embedded, in the data folder (ZSDIST_DATA), cached, or missing."""
    from zsdist.analysis.output import print_table
    from zsdist.refdata.fetch import status
    from zsdist.refdata.sources import SOURCES
    from zsdist.settings import cache_root

    rows = [(s.name, s.state, f"{s.size / 1e6:.1f} MB" if s.size else "-", SOURCES.get(s.name).what, s.detail)
            for s in status(verify)]
    print_table(["source", "where", "size", "what", "note"], rows)
    typer.echo(f"cache: {cache_root()} (ZSDIST_CACHE)")


@data_app.command("fetch")
def data_fetch(
    sources: Annotated[Optional[list[str]], typer.Argument(help="Sources to fetch (default: all that are not "
                                                                "embedded).")] = None,
    from_: Annotated[Optional[str], typer.Option(
        "--from", help="Take the files from this folder instead of the internet: a data folder in our layout, or "
                       "the benchmarks' own files (e.g. a clone of their repository).")] = None,
) -> None:
    """Download what is not embedded from its public source, check it, convert it and cache it."""
    from zsdist.refdata.fetch import fetch

    fetch(sources or (), from_)


@app.command()
def fewshot(
    name: Annotated[str, typer.Argument(help="Name of the new device, as workflows will write it in `latency`.")],
    from_file: Annotated[Optional[str], typer.Option(
        "--from", help="CSV or Parquet of measurements, one row per measured network: space, arch (string or id), "
                       "latency_ms; optional dataset (default: the space's first) and batch_size (default 1, one "
                       "per file). Errors number rows from 1 after the header.")] = None,
    run: Annotated[Optional[str], typer.Option(help="Instead of --from: a run whose latency rows to fit on.")] = None,
    device: Annotated[str, typer.Option(help="With --run: the device of those rows (cpu, cuda, or any it names).")
                      ] = "cpu",
    results: Annotated[str, typer.Option(help="With --run: the results folder or URI.")] = "results",
    out: Annotated[Optional[str], typer.Option(help="Folder for NAME.json (default: the user folder where workflows "
                                                    "find devices, $ZSDIST_HOME/devices or the platform's data "
                                                    "folder).")] = None,
) -> None:
    """Fit a new latency device from a few measured networks (5 or more; 20 rank the rest well) under a prior
    meta-learned from 29 devices' tables, and save it where workflows find it."""
    from pathlib import Path

    from zsdist.fewshot import fit_device, read_measurements, run_measurements
    from zsdist.hardware.fitted import check_name, folder

    if (from_file is None) == (run is None):
        raise ZsdistError("give the measurements either as --from FILE or as --run RUN (with --device)")
    check_name(name)
    if from_file is not None:
        measurements, source = read_measurements(from_file), {"file": str(Path(from_file).resolve())}
    else:
        assert run is not None  # one of the two, checked above
        measurements, source = run_measurements(results, run, device), {"run_id": run, "device": device,
                                                                        "results": results}
    done = fit_device(name, measurements, source, Path(out) if out else None)
    where = "" if done.path.parent == folder() else f" (workflows look in {folder()})"
    typer.echo(f"device {name}: fitted on {done.networks} networks at batch {done.batch_size}; each predicted by a "
               f"fit on the others: Spearman {done.loo_spearman:.3f}, {100 * done.loo_within10:.0f} % within ±10 % "
               f"→ {done.path}{where}\nmodel: {100 * (1 - done.additive):.0f} % the device prior, "
               f"{100 * done.additive:.0f} % latency adding up over operators (the blend whose left-out "
               f"predictions err least)\n"
               f"name it in a workflow: latency = [\"{name}\"]")
    for m, predicted, weight in done.doubtful:
        typer.echo(f"measurement looks like a spike (weight {weight:.2f}; remeasure it?): {m.space} {m.arch} "
                   f"{m.dataset} {m.latency_ms:.4g} ms, predicted {predicted:.4g} ms", err=True)


@app.command()
def schema(
    markdown: Annotated[bool, typer.Option(help="The README's key tables instead of the JSON Schema.")] = False,
) -> None:
    """Print the workflow file's JSON Schema (for editors), or its keys as Markdown tables."""
    import json

    from zsdist.schema import markdown_table
    from zsdist.workflow import Job, Workflow, workflow_schema

    if markdown:
        typer.echo(f"{markdown_table(Workflow, '[run]')}\n\n{markdown_table(Job, '[[jobs]]')}")
    else:
        typer.echo(json.dumps(workflow_schema(), indent=2))


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
    from zsdist.proxies.catalog import catalog

    for name in catalog().names():
        p = catalog().get(name)
        direction = "higher" if p.higher_is_better else "lower"
        typer.echo(f"{name:16s} {direction:6s} needs: {', '.join(sorted(p.needs)) or '-':20s} {p.description}")


@app.command()
def compare(
    run_a: Annotated[Optional[str], typer.Argument(help="The reference run id (e.g. last night's).")] = None,
    run_b: Annotated[Optional[str], typer.Argument(help="The run id to check against it.")] = None,
    latest: Annotated[Optional[str], typer.Option(help="Instead of two ids: the two newest runs whose id starts "
                                                       "so.")] = None,
    results: Annotated[str, typer.Option(help="Results folder or URI holding both runs.")] = "results",
    value_tol: Annotated[float, typer.Option(help="Relative change of a value that counts as drift.")] = 1e-6,
    corr_tol: Annotated[float, typer.Option(help="Change of Spearman ρ against test accuracy that counts as drift.")
                        ] = 0.01,
) -> None:
    """List proxies whose values or correlations moved between two runs; exit 1 when any did."""
    from zsdist.analysis.output import print_table
    from zsdist.compare import compare_runs, latest_runs

    if latest:
        run_a, run_b = latest_runs(results, latest)
    elif not (run_a and run_b):
        raise ZsdistError("give two run ids, or --latest PREFIX")
    drift = compare_runs(results, run_a, run_b, value_tol, corr_tol)
    if drift.rows:
        typer.echo(f"drift between {run_a} and {run_b}:")
        print_table(drift.columns, drift.rows)
        raise typer.Exit(1)
    typer.echo(f"no drift between {run_a} and {run_b}: {drift.compared} space × dataset × proxy groups agree")


@app.command()
def bench(
    name: Annotated[BenchName, typer.Argument(help="Which benchmark.")],
    quick: Annotated[bool, typer.Option(help="A smaller sample, for a fast look.")] = False,
) -> None:
    """Measure speed, printed as ratios against a baseline measured in the same run."""
    from zsdist.bench import run_bench

    typer.echo(run_bench(name, quick))


class Interrupted(BaseException):
    """SIGINT or SIGTERM (Ctrl-C, cron's timeout, kill): unwinds like an exception so that leases are released and
    a private Ray is stopped; a BaseException so that no per-architecture `except Exception` can record it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


def main() -> None:
    """Exit status for scripts and cron: 0 done, 1 a run left shards to recompute (or `compare` found drift),
    2 a user mistake (nothing was run), 128 + N stopped by signal N (finished shards are kept)."""
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        app()
    except RunIncomplete as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except ZsdistError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (Interrupted, SystemError) as exc:
        # a signal that lands inside a C extension's call (Ray's wait) comes back as a SystemError's cause
        stop = exc if isinstance(exc, Interrupted) else exc.__cause__
        if not isinstance(stop, Interrupted):
            raise
        typer.echo(f"error: stopped by {stop}: finished shards are kept; run the same command again to resume",
                   err=True)
        sys.exit(128 + stop.signum)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
