"""CONTRIBUTING.md's recipes, run as written: each code block is taken from the file and executed (its registrations
undone afterwards by Registry.temporarily), and the result is exercised with real networks, data and results."""
from __future__ import annotations

import json
import math
import re
import sys
import types
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

import zsdist.spaces
from hw_models.features import extract
from zsdist.analysis import selection
from zsdist.analysis.views import connect
from zsdist.data import load_batch
from zsdist.errors import ZsdistError
from zsdist.hardware import DEVICES, latency_rows
from zsdist.hardware.tables import hwnb_tables
from zsdist.plan import plan
from zsdist.proxies import PROXIES, get_proxy, resolve_proxies
from zsdist.proxies import catalog as proxy_catalog
from zsdist.proxies.evaluate import evaluate
from zsdist.shard import compute_latency_shard, compute_shard
from zsdist.spaces import SPACES, create_space
from zsdist.store import Store
from zsdist.truth import ingest
from zsdist.workflow import parse_workflow

GUIDE = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"
_BLOCK = re.compile(r"<!-- recipe: ([a-z-]+) -->\n```(\w+)\n(.*?)^```", re.S | re.M)
NB201 = create_space("nb201")


def recipes() -> dict[str, str]:
    """Recipe name → the text of the fenced block right after its `<!-- recipe: NAME -->` marker."""
    found = _BLOCK.findall(GUIDE.read_text())
    names = [name for name, _, _ in found]
    assert len(set(names)) == len(names), f"a recipe marker repeats: {names}"
    return {name: body for name, _, body in found}


def run_recipe(name: str, module: str) -> dict:
    """Execute a python recipe as the module `module` would be imported; returns its namespace."""
    namespace = {"__name__": module}
    exec(compile(recipes()[name], f"CONTRIBUTING.md[{name}]", "exec"), namespace)
    return namespace


def workflow(space: str, body: str) -> str:
    return f'[run]\nname = "recipe"\n\n[[jobs]]\nspace = "{space}"\ndatasets = ["cifar10"]\n{body}\n'


def test_every_recipe_is_run_here():
    assert set(recipes()) == {"proxy", "space", "space-network", "view", "device-csv", "device"}


# --- a proxy -------------------------------------------------------------------------------------------------


@pytest.fixture
def new_proxy(monkeypatch, tmp_path):
    """The recipe's proxy registered, and catalog.json read from a temporary file (the real one is never written)."""
    with PROXIES.temporarily():
        run_recipe("proxy", "zsdist.proxies.sensitivity")
        monkeypatch.setattr(proxy_catalog, "CATALOG", tmp_path / "catalog.json")
        proxy_catalog.catalog.cache_clear()
        yield get_proxy("input_sensitivity")
        proxy_catalog.catalog.cache_clear()  # before the monkeypatch restores the real catalog path


def test_the_proxy_recipe_computes_its_definition_on_an_nb201_network(new_proxy):
    batch = load_batch("cifar10", 8, 0)
    build = lambda: NB201.build(10798, "cifar10")
    (result,) = evaluate(build, batch, [new_proxy], seed=0)
    assert result.status == "ok", result.error
    torch.manual_seed(0)
    net = build().train()
    inputs = batch.inputs.clone().requires_grad_(True)
    (jacobian,) = torch.autograd.grad(net(inputs).sum(), inputs)
    assert result.value == pytest.approx(jacobian.flatten(1).norm(dim=1).mean().item(), rel=1e-4)
    assert not new_proxy.higher_is_better and new_proxy.description.startswith("Mean over the batch")


def test_the_proxy_recipe_needs_the_catalog_command_it_names(new_proxy, cli):
    """Without `python -m zsdist.proxies.catalog` the catalog test flags the proxy and workflows reject it; after
    it, workflows run it through the normal shard path and `zsdist proxies` lists it."""
    shipped = json.loads((Path(proxy_catalog.__file__).with_name("catalog.json")).read_text())
    registry = [proxy_catalog.entry(get_proxy(n)) for n in PROXIES.names()]
    assert shipped != registry and "input_sensitivity" not in {e["name"] for e in shipped}
    text = workflow("nb201", 'archs = { ids = [6, 10798] }\nproxies = ["input_sensitivity", "params"]\nbatch_size = 8')
    proxy_catalog.CATALOG.write_text(json.dumps(shipped))
    with pytest.raises(ZsdistError, match="unknown proxy 'input_sensitivity'"):
        parse_workflow(text)

    proxy_catalog.write()  # what `python -m zsdist.proxies.catalog` does, into the temporary file
    proxy_catalog.catalog.cache_clear()
    assert json.loads(proxy_catalog.CATALOG.read_text()) == registry  # the catalog test's condition holds again
    (shard,) = plan(parse_workflow(text))
    rows = compute_shard(shard, "test")
    assert {(r["arch_id"], r["proxy"]) for r in rows} == {(a, p) for a in (6, 10798)
                                                          for p in ("input_sensitivity", "params")}
    assert all(r["status"] == "ok" and math.isfinite(r["value"]) for r in rows), rows
    code, out, err = cli("proxies")
    assert code == 0, err
    assert re.search(r"^input_sensitivity\s+lower\s+needs: input_jacobian", out, re.M)


# --- a search space ------------------------------------------------------------------------------------------


@pytest.fixture
def new_space(monkeypatch):
    """The recipe's space registered and its network importable as zsdist.networks.plaincnn, both temporarily."""
    network = types.ModuleType("zsdist.networks.plaincnn")
    exec(compile(recipes()["space-network"], "CONTRIBUTING.md[space-network]", "exec"), network.__dict__)
    monkeypatch.setitem(sys.modules, network.__name__, network)
    monkeypatch.setattr(zsdist.spaces, "_instances", {})
    with SPACES.temporarily():
        run_recipe("space", "zsdist.spaces.plaincnn")
        yield create_space("plaincnn")


def test_the_space_recipe_enumerates_samples_mutates_and_parses(new_space):
    ids = list(new_space.enumerate())
    assert new_space.size == len(ids) == 12**3
    assert [new_space.parse(new_space.arch_str(i)) for i in ids] == ids
    assert new_space.arch_str(new_space.parse("d1w16k3-d2w32k3-d2w64k5")) == "d1w16k3-d2w32k3-d2w64k5"
    sample = new_space.sample(5, seed=1)
    assert sample == sorted(set(sample)) == new_space.sample(5, seed=1) and len(sample) == 5
    rng = np.random.default_rng(0)
    for arch_id in sample:
        moved = new_space.mutate(arch_id, rng)
        differing = [a != b for a, b in zip(new_space.arch_str(arch_id).split("-"),
                                            new_space.arch_str(moved).split("-"))]
        assert 0 <= moved < new_space.size and sum(differing) == 1
    with pytest.raises(ZsdistError, match="w=24 is not one of 16, 32, 64"):
        new_space.parse("d1w24k3-d2w32k3-d2w64k5")


def test_the_space_recipe_builds_networks_the_proxies_and_workflows_run_on(new_space, cli):
    net = new_space.build(new_space.parse("d2w16k3-d1w32k5-d2w64k3"), "cifar100")
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 16, 16, 32, 64, 64] and convs[3].kernel_size == (5, 5)

    proxies = ["params", "flops", "naswot", "synflow", "snip", "jacob_cov", "zen", "meco"]
    text = workflow("plaincnn", f"archs = {{ sample = 2, seed = 0 }}\nproxies = {json.dumps(proxies)}\nbatch_size = 8")
    (shard,) = plan(parse_workflow(text))
    rows = compute_shard(shard, "test")
    assert sorted(r["proxy"] for r in rows) == sorted(proxies * 2)
    assert all(r["status"] == "ok" and math.isfinite(r["value"]) for r in rows), \
        [r for r in rows if r["status"] != "ok"]
    code, out, err = cli("spaces")
    assert code == 0, err
    assert re.search(r"^plaincnn\s+1,728 architectures\s+datasets: cifar10, cifar100$", out, re.M)


# --- a view --------------------------------------------------------------------------------------------------


def test_the_view_recipe_gives_each_proxys_pick_on_real_results(tmp_path, monkeypatch):
    entry = recipes()["view"]
    namespace: dict = {}
    exec(f"VIEWS = {{\n{entry}\n}}", namespace)  # the recipe is one entry of a module's VIEWS dict
    monkeypatch.setattr(selection, "VIEWS", {**selection.VIEWS, **namespace["VIEWS"]})

    store = Store(str(tmp_path))
    ingest(store, "nb201")
    ids = [0, 6, 3906, 10798, 12120, 14017]  # cell 0 (all none): NASWOT is nan there, so never its pick
    batch = load_batch("cifar10", 8, 0)
    proxies = resolve_proxies(["params", "naswot", "l2_norm"])
    rows = [{"arch_id": a, "arch": NB201.arch_str(a), "dataset": "cifar10", "proxy": r.proxy, "value": r.value,
             "seconds": r.seconds, "status": r.status, "error": r.error, "batch_size": 8, "seed": 0,
             "device": "cpu", "options": "{}", "version": "test"}
            for a in ids for r in evaluate(lambda: NB201.build(a, "cifar10"), batch, proxies, seed=0)]
    store.write("scores", rows, "shard-0", run_id="viewrun", space="nb201")

    truth = {(t["arch_id"], t["metric"]): t["value"] for f in store.files("truth", space="nb201")
             for t in pq.read_table(f).to_pylist() if t["dataset"] == "cifar10" and t["arch_id"] in ids}
    metrics = sorted({m for _, m in truth})
    expected = []
    for proxy in proxies:
        scored = [(r["value"] * proxy.sign, -r["arch_id"], r["arch_id"]) for r in rows
                  if r["proxy"] == proxy.name and r["status"] == "ok"]
        for metric in metrics:
            pick = max(s for s in scored if truth.get((s[2], metric)) is not None)[2]
            values = [truth[(a, metric)] for a in ids if truth.get((a, metric)) is not None]
            expected.append((metric, proxy.name, pick, truth[(pick, metric)],
                             1 + sum(v > truth[(pick, metric)] for v in values), len(values)))
    assert any(p == "naswot" for _, p, *_ in expected) and 0 not in {e[2] for e in expected if e[1] == "naswot"}

    got = connect(str(tmp_path)).execute(
        "SELECT metric, proxy, arch_id, truth, truth_rank, n_archs FROM best_pick WHERE run_id = ? AND space = ? "
        "ORDER BY proxy, metric", ["viewrun", "nb201"]).fetchall()
    assert [(m, p, a, pytest.approx(t), r, n) for m, p, a, t, r, n in got] == \
        sorted(expected, key=lambda e: (e[1], e[0]))


# --- a latency device ----------------------------------------------------------------------------------------


def test_the_device_csv_holds_the_pixel3_table_values_it_claims():
    lines = recipes()["device-csv"].strip().splitlines()
    assert lines[0] == "space,arch,latency_ms" and len(lines) - 1 >= 5
    table = hwnb_tables("cifar10")["pixel3"].latency_ms
    for line in lines[1:]:
        space, arch, latency = line.split(",")
        assert space == "nb201" and float(latency) == pytest.approx(table[NB201.parse(arch)], abs=5e-4)


@pytest.fixture
def devices():
    """Devices registered or fitted in the test are gone after it."""
    with DEVICES.temporarily():
        yield DEVICES


def test_the_fewshot_recipe_fits_a_device_that_workflows_name(tmp_path, monkeypatch, cli, devices):
    monkeypatch.setenv("ZSDIST_HOME", str(tmp_path / "home"))
    measurements = tmp_path / "measurements.csv"
    measurements.write_text(recipes()["device-csv"])
    code, out, err = cli("fewshot", "myboard", "--from", measurements)
    assert code == 0, err
    assert (tmp_path / "home" / "devices" / "myboard.json").is_file() and 'latency = ["myboard"]' in out

    text = workflow("nb201", 'archs = { ids = [3906, 11718] }\nlatency = ["myboard"]')
    (shard,) = plan(parse_workflow(text))
    rows = {r["arch_id"]: r for r in compute_latency_shard(shard)}
    assert all(r["status"] == "ok" and r["source"] == "predicted" for r in rows.values()), rows
    assert 0 < rows[3906]["latency_ms"] < rows[11718]["latency_ms"]  # all skip edges run faster than all 3×3 convs


@pytest.fixture
def roofline(devices):
    return run_recipe("device", "zsdist.hardware.roofline")


def test_the_device_recipe_yields_latency_rows_through_the_registry(roofline):
    text = workflow("nb201", 'archs = { ids = [3906, 11718] }\nlatency = ["npu_roofline"]')
    (shard,) = plan(parse_workflow(text))
    rows = {r["arch_id"]: r for r in compute_latency_shard(shard)}
    assert all(r["status"] == "ok" and r["device"] == "npu_roofline" for r in rows.values()), rows
    assert json.loads(rows[3906]["details"]) == {"peak_gflops": 200.0, "bandwidth_gbs": 12.8, "ops": "live"}
    assert 0 < rows[3906]["latency_ms"] < rows[11718]["latency_ms"]


    def latency(peak_gflops: float, bandwidth_gbs: float) -> float:
        roofline.update(PEAK_GFLOPS=peak_gflops, BANDWIDTH_GBS=bandwidth_gbs)
        (row,) = latency_rows("nb201", 3906, NB201.arch_str(3906), "cifar10", lambda: NB201.build(3906, "cifar10"),
                              ["npu_roofline"])
        return row["latency_ms"]

    # the two roofs, each alone: the live operators' compute (2 FLOPs per MAC), then their memory traffic
    live = [op for op in extract(NB201.build(3906, "cifar10"), torch.randn(1, 3, 32, 32)) if op.state == "live"]
    compute_ms = 2 * sum(op.flops for op in live) / 200e9 * 1e3
    memory_ms = sum(op.bytes for op in live) / 12.8e9 * 1e3
    assert latency(200.0, math.inf) == pytest.approx(compute_ms, rel=1e-9)
    assert latency(math.inf, 12.8) == pytest.approx(memory_ms, rel=1e-9)
    assert max(compute_ms, memory_ms) < rows[3906]["latency_ms"] < compute_ms + memory_ms
    assert latency(400.0, 25.6) == pytest.approx(rows[3906]["latency_ms"] / 2, rel=1e-12)
