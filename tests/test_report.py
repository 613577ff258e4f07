"""`zsdist report` opened in a real headless Chromium at a laptop's size (1366×768): the page loads, every image
decodes and fits the screen whole, the page stays short with every published NB201 device (37 cost series), and its
numbers equal the views.

Chromium is driven over the DevTools protocol (aiohttp's websocket client, installed with ray[default]).
Install it with: apt-get update && apt-get install -y chromium
"""
from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import pytest
from analysis_fixture import HW_FILES, RUN, fixture_arch_ids, shared_results

from zsdist.analysis.report import write_report
from zsdist.analysis.spec import AnalysisSpec
from zsdist.analysis.views import connect
from zsdist.cli import main
from zsdist.hardware.tables import help_tables, hwnb_tables, table_rows
from zsdist.store import Store

SPEC = AnalysisSpec(pool_sizes=(10,), pool_repeats=8, top_k=(1, 3), bootstrap_resamples=100)
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-port=0"]
LAPTOP = {"width": 1366, "height": 768}
PAGE_STATE = """(async () => {
    const images = [...document.images];
    await Promise.all(images.map(i => i.decode()));
    const box = e => { const r = e.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
    return {ready: document.readyState, title: document.title,
            viewport: [window.innerWidth, window.innerHeight],
            page: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
            images: images.map(i => [i.alt, i.naturalWidth, i.naturalHeight, ...box(i)]),
            folded: [...document.querySelectorAll('details.fold')].map(d => d.open),
            tables: Object.fromEntries([...document.querySelectorAll('table')].map(t =>
                [t.id, [...t.rows].map(r => [...r.cells].map(c => c.textContent))]))};
})()"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The fixture with every HW-NAS-Bench (both datasets) and HELP device table for its cells."""
    results = tmp_path_factory.mktemp("report-results") / "results"
    shutil.copytree(shared_results(tmp_path_factory), results)
    ids = set(fixture_arch_ids())
    for key, tables in (("hw_nas_bench", [t for d in HW_FILES for t in hwnb_tables(d).values()]),
                        ("help", list(help_tables().values()))):
        rows = [r for r in table_rows(tables) if r["arch_id"] in ids]
        Store(str(results)).write("latency", rows, key, run_id="tables", space="nb201")
    out = tmp_path_factory.mktemp("report")
    return write_report(str(results), None, str(out), SPEC), out, connect(str(results), SPEC)


async def _page_state(port: int, url: str) -> dict:
    import aiohttp

    ids = itertools.count(1)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            target = next(t for t in await response.json() if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            async def until(done) -> dict:
                while True:
                    msg = json.loads((await ws.receive()).data)
                    if done(msg):
                        return msg

            async def call(method: str, **params) -> dict:
                msg_id = next(ids)
                await ws.send_json({"id": msg_id, "method": method, "params": params})
                msg = await until(lambda m: m.get("id") == msg_id)
                assert "error" not in msg, msg
                return msg["result"]

            await call("Page.enable")
            await call("Emulation.setDeviceMetricsOverride", **LAPTOP, deviceScaleFactor=1, mobile=False)
            navigate_id = next(ids)
            await ws.send_json({"id": navigate_id, "method": "Page.navigate", "params": {"url": url}})
            await until(lambda m: m.get("method") == "Page.loadEventFired")
            result = await call("Runtime.evaluate", expression=PAGE_STATE, awaitPromise=True, returnByValue=True)
            assert "exceptionDetails" not in result, result  # an image that does not decode rejects the promise
            return result["result"]["value"]


def open_in_chromium(page: Path, profile: Path) -> dict:
    """Load `page` in a fresh headless Chromium and return what the page shows."""
    proc = subprocess.Popen([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):  # Chromium writes its DevTools port here once it listens
            if port_file.exists() and port_file.read_text().strip():
                break
            if proc.poll() is not None:
                raise RuntimeError(f"chromium exited with status {proc.returncode}")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        return asyncio.run(_page_state(port, page.resolve().as_uri()))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _number(cell: str) -> float | None:
    return None if cell == "–" else float(cell)


def _close(cell: str, value: float | None) -> bool:
    shown = _number(cell)
    if value is None or shown is None:
        return shown is None and value is None
    return shown == pytest.approx(value, abs=6e-5, rel=1e-5)


@pytest.mark.fulldata  # the HELP device tables
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_page_reads_at_a_glance_with_the_view_numbers(report, tmp_path):
    built, out, con = report
    state = open_in_chromium(out / "report.html", tmp_path / "profile")
    assert state["ready"] == "complete" and RUN in state["title"]
    assert [i[0] for i in state["images"]] == [f.title for f in built.figures] and len(built.figures) == 4
    width, height = state["viewport"]
    assert (width, height) == (LAPTOP["width"], LAPTOP["height"])
    for alt, natural_w, natural_h, shown_w, shown_h in state["images"]:
        # each figure at most one row of panels, shown whole on the screen at (nearly) its own size
        assert 100 < natural_w <= 1300 and 100 < natural_h <= 750, alt
        assert shown_w <= width and shown_h <= height and shown_w >= 0.9 * min(natural_w, width - 60), alt
    # 37 cost series on cifar10 (6 HW-NAS-Bench latency + 3 energy, 27 HELP, #FLOPs): a screen-sized plot each, one
    # table row each, the full listing folded; the page is a few screens long, not one per device
    assert state["page"][0] <= width and state["page"][1] <= 6 * height, state["page"]
    assert state["folded"] == [False]
    tables = state["tables"]
    assert set(tables) == {"correlation", "regions", "study", "metrics", "selection", "hardware", "constrained",
                           "families"}
    header, *rows = tables["hardware"]
    series = con.execute("""SELECT count(DISTINCT (dataset, cost_run, device, source, batch_size, cost))
        FROM constrained WHERE run_id = ?""", [RUN]).fetchone()[0]
    assert len(rows) == series == 2 * 37 - 27  # HELP measured cifar10 only
    for row in rows:
        cell = dict(zip(header, row))
        for proxy in ("flops", "naswot", "params"):
            regret = con.execute("""SELECT avg(regret) FROM constrained WHERE run_id = ? AND dataset = ?
                AND device = ? AND cost = ? AND metric = 'test_acc' AND kind = 'percentile' AND k = 1
                AND proxy = ?""", [RUN, cell["dataset"], cell["device"], cell["cost"], proxy]).fetchone()[0]
            assert _close(cell[proxy], regret)

    header, *rows = tables["correlation"]
    assert len(rows) == 2 * 3  # two datasets × three proxies, test_acc
    for row in rows:
        cell = dict(zip(header, row))
        view = con.execute("""SELECT n, spearman, spearman_lo, spearman_hi, kendall, pearson, pearson_lo, pearson_hi
            FROM correlation_ci WHERE run_id = ? AND dataset = ? AND proxy = ? AND metric = 'test_acc'
            AND region = 'all'""", [RUN, cell["dataset"], cell["proxy"]]).fetchone()
        shown = [cell[c] for c in ("n", "spearman", "spearman_lo", "spearman_hi", "kendall", "pearson", "pearson_lo",
                                   "pearson_hi")]
        assert all(_close(s, v) for s, v in zip(shown, view)), (shown, view)

    header, *rows = tables["regions"]
    assert header[-4:] == ["all", "top20", "top10", "top5"]
    for row in rows:
        cell = dict(zip(header, row))
        for region in ("all", "top20", "top10", "top5"):
            rho = con.execute("SELECT spearman FROM correlation_regions WHERE run_id = ? AND dataset = ? AND proxy = ? "
                              "AND metric = 'test_acc' AND region = ?",
                              [RUN, cell["dataset"], cell["proxy"], region]).fetchone()[0]
            assert _close(cell[region], rho)

    header, *rows = tables["selection"]
    assert len(rows) == 2 * 3 * 2  # datasets × proxies × k
    for row in rows:
        cell = dict(zip(header, row))
        regret, hit = con.execute("SELECT mean_regret, hit_rate FROM selection WHERE run_id = ? AND dataset = ? "
                                  "AND proxy = ? AND metric = 'test_acc' AND pool_size = ? AND k = ?",
                                  [RUN, cell["dataset"], cell["proxy"], int(cell["pool_size"]),
                                   int(cell["k"])]).fetchone()
        assert _close(cell["mean_regret"], regret) and _close(cell["hit_rate"], hit)

    header, *rows = tables["constrained"]
    view = {tuple(str(v) for v in r[:5]): r[5:] for r in con.execute(
        """SELECT dataset, device, cost, label, proxy, pick_acc, best_acc, regret, front_gap FROM constrained
           WHERE run_id = ? AND metric = 'test_acc' AND k = 1""", [RUN]).fetchall()}
    assert len(rows) == len(view) > 0
    for row in rows:
        cell = dict(zip(header, row))
        expected = view[cell["dataset"], cell["device"], cell["cost"], cell["label"], cell["proxy"]]
        assert all(_close(cell[c], v) for c, v in zip(("pick_acc", "best_acc", "regret", "front_gap"), expected))


@pytest.mark.fulldata  # the HELP device tables
def test_markdown_references_png_files_that_decode(report):
    built, out, _ = report
    markdown = (out / "report.md").read_text()
    for fig in built.figures:
        assert f"]({fig.key}.png)" in markdown
        image = matplotlib.image.imread(out / f"{fig.key}.png")
        assert image.shape[0] > 100 and image.shape[1] > 100
    assert "| space | dataset | metric | proxy | n | spearman |" in markdown


def test_report_command_and_its_errors(tmp_path_factory, tmp_path, monkeypatch, capsys):
    results = str(shared_results(tmp_path_factory))

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["zsdist", "report", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    code, _, err = run("--results", results, "--run", "nope", "--out", str(tmp_path / "r"))
    assert code == 2 and err == f"error: unknown run 'nope' (known: {RUN})\n"
    code, _, err = run("--results", str(tmp_path / "empty"), "--out", str(tmp_path / "r"))
    assert code == 2 and "no scores in these results" in err
