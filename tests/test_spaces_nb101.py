"""NAS-Bench-101: the hash dedup against an independent isomorphism count, ids, strings, hand-derived costs."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from zsdist.errors import ZsdistError
from zsdist.networks.nb101 import Cell, NB101Network, vertex_channels
from zsdist.proxies.cost import count_flops
from zsdist.spaces import create_space
from zsdist.spaces.nb101 import enumerate_cells, from_string, graph_hash, load_table, prune, to_string
from zsdist.store import Store
from zsdist.truth import ingest

SLOW = pytest.mark.slow  # builds the full 423,624-cell table (minutes, once per cache folder)


@pytest.fixture(autouse=True)
def private_cache(request, tmp_path_factory, monkeypatch):
    """Small tables go to a per-session folder; the slow tests use the user's cache (or ZSDIST_CACHE)."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setenv("ZSDIST_CACHE", str(tmp_path_factory.getbasetemp() / "zsdist-cache"))


def isomorphism_classes(max_vertices: int) -> int:
    """Count labelled full DAGs up to relabelling of interior vertices, by brute-force canonical forms."""
    seen = set()
    for n in range(2, max_vertices + 1):
        for bits in range(2 ** (n * (n - 1) // 2)):
            m = np.zeros((n, n), np.int8)
            m[np.triu_indices(n, 1)] = [(bits >> i) & 1 for i in range(n * (n - 1) // 2)]
            if m.sum() > 9 or not (m[: n - 1].sum(1) > 0).all() or not (m[:, 1:].sum(0) > 0).all():
                continue
            for labels in itertools.product(range(3), repeat=n - 2):
                forms = []
                for perm in itertools.permutations(range(1, n - 1)):
                    order = [0, *perm, n - 1]
                    forms.append((m[np.ix_(order, order)].tobytes(), tuple(labels[p - 1] for p in perm)))
                seen.add((n, min(forms)))
    return len(seen)


def test_hash_dedup_equals_isomorphism_classes_on_five_vertices():
    assert len(enumerate_cells(5)) == isomorphism_classes(5)


def test_hash_ignores_vertex_order_but_not_ops():
    m = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]])
    assert graph_hash(m, [-1, 0, 1, -2]) == graph_hash(m, [-1, 1, 0, -2])
    assert graph_hash(m, [-1, 0, 1, -2]) != graph_hash(m, [-1, 0, 0, -2])


def test_small_table_ids_round_trip_and_are_sorted_hashes():
    table = load_table(5)
    assert list(table["hashes"]) == sorted(table["hashes"]) and len(table["hashes"]) == len(enumerate_cells(5))
    assert load_table(5) is table


def test_prune_drops_dangling_vertices_and_rejects_cut_cells():
    m = np.array([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])  # vertex 2 leads nowhere
    pruned, labels = prune(m, [-1, 0, 2, -2])
    assert pruned.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]] and labels == [-1, 0, -2]
    with pytest.raises(ZsdistError, match="no path"):
        prune(np.zeros((3, 3), np.int8), [-1, 0, -2])


@pytest.mark.parametrize("bad, words", [("11-1|conv5x5", "unknown op"), ("11-11|conv3x3", "expected"),
                                        ("12-1|conv3x3", "expected"), ("11-1|", "expected")])
def test_bad_strings_are_rejected(bad, words):
    with pytest.raises(ZsdistError, match=words):
        from_string(bad)


def test_string_round_trip():
    m, labels = from_string("1100-001-01-1|conv3x3,maxpool3x3,conv1x1")
    assert to_string(m, tuple(labels[1:-1])) == "1100-001-01-1|conv3x3,maxpool3x3,conv1x1"


def test_channel_split_of_three_feeders_by_hand():
    m = np.array([[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5])
    assert vertex_channels(128, 128, m) == [128, 43, 43, 42, 128]
    cell = Cell(m, (0, 1, 2), 128, 128)
    # projections 128→43, 128→43, 128→42 (+BN), conv3×3 43→43 (+BN), conv1×1 43→43 (+BN), max-pool: nothing
    assert sum(p.numel() for p in cell.parameters()) == (128 * 43 + 86) * 2 + 128 * 42 + 84 + 9 * 43 * 43 + 86 \
        + 43 * 43 + 86
    assert cell(torch.zeros(2, 128, 8, 8)).shape == (2, 128, 8, 8)


def test_chain_network_params_and_flops_by_hand():
    m, labels = from_string("10-1|conv3x3")  # input → conv3×3 → output
    net = NB101Network(m, tuple(labels[1:-1]), 10)
    params, flops = 9 * 3 * 128 + 256, 32 * 32 * 9 * 3 * 128
    c_in = 128
    for c, h in ((128, 32), (256, 16), (512, 8)):
        for _ in range(3):  # 1×1 projection c_in→c, 3×3 conv c→c, each + BN
            params += c_in * c + 2 * c + 9 * c * c + 2 * c
            flops += h * h * (c_in * c + 9 * c * c)
            c_in = c
    assert params + 5_130 == 10_177_674  # the summed cells and stem, plus the 512→10 classifier
    assert sum(p.numel() for p in net.parameters()) == params + 5_130
    assert count_flops(net, torch.zeros(1, 3, 32, 32)) == flops + 5_130


@SLOW
def test_full_space_has_423624_cells_and_ids_round_trip():
    space = create_space("nb101")
    assert len(load_table()["hashes"]) == 423_624 == space.size
    for arch_id in (0, 1, 4_242, 211_812, 423_623):
        assert space.parse(space.arch_str(arch_id)) == arch_id


@SLOW
@pytest.mark.fulldata
def test_nb101_ground_truth_maps_500_spellings_onto_292_cells(tmp_path):
    store = Store(str(tmp_path))
    assert ingest(store, "nb101") == 292
    rows = store.read("truth", "nb101_valid_500", space="nb101").to_pylist()
    assert len({r["arch_id"] for r in rows}) == 292 and all(70 < r["value"] < 95 for r in rows)
    # spellings that prune to the bare input→output cell share it, with the mean of their seeds' accuracies
    bare = next(r for r in rows if r["arch"] == "1|")
    assert 83.16 < bare["value"] < 83.59


@SLOW
@pytest.mark.fulldata
def test_spellings_of_one_cell_carry_at_most_three_seed_values():
    """The check that the hash mapping is right: rows the hash merges hold NB101's ≤ 3 per-seed accuracies."""
    import csv
    import json

    from zsdist.settings import data_file
    from zsdist.spaces.nb101 import OFFICIAL_OPS

    space = create_space("nb101")
    seen: dict[int, set[str]] = {}
    with open(data_file("nb101/nb101_valid_accuracy_500.csv")) as f:
        for r in csv.DictReader(f):
            names = json.loads(r["ops"])
            labels = [-1, *(list(OFFICIAL_OPS).index(op) for op in names[1:-1]), -2]
            seen.setdefault(space.id_of(json.loads(r["matrix"]), labels), set()).add(r["valid_accuracy"])
    assert len(seen) == 292 and max(len(v) for v in seen.values()) == 3
