"""NB201 cells: ids, strings, and exact NB201 parameter and FLOP counts."""
from __future__ import annotations

import csv
import os

import pytest
import torch
from examples import NB201_EXAMPLE

from zsdist.errors import ZsdistError
from zsdist.proxies.cost import count_flops
from zsdist.spaces import create_space
from zsdist.spaces.nb201 import OPS, decode

SPACE = create_space("nb201")
RESOLUTION = {"cifar10": 32, "cifar100": 32, "imagenet16_120": 16}
CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16_120": 120}


def analytic_cost(arch_id: int, dataset: str) -> tuple[int, int]:
    """Params and FLOPs of an NB201 network summed layer by layer from the skeleton's definition."""
    ops = decode(arch_id)
    kernels = [{"nor_conv_1x1": 1, "nor_conv_3x3": 3}.get(op) for op in ops]
    h = RESOLUTION[dataset]
    params, flops = 3 * 16 * 9 + 2 * 16, h * h * 16 * 27  # stem conv + BN
    for stage, c in enumerate((16, 32, 64)):
        if stage:
            c_in, h = c // 2, h // 2
            params += 9 * c_in * c + 2 * c + 9 * c * c + 2 * c + c_in * c
            flops += h * h * (9 * c_in * c + 9 * c * c + c_in * c)
        for k in kernels:
            if k:
                params += 5 * (k * k * c * c + 2 * c)
                flops += 5 * h * h * k * k * c * c
    classes = CLASSES[dataset]
    return params + 2 * 64 + 65 * classes, flops + 65 * classes


def measured_cost(arch_id: int, dataset: str) -> tuple[int, float]:
    model = SPACE.build(arch_id, dataset)
    res = RESOLUTION[dataset]
    return sum(p.numel() for p in model.parameters()), count_flops(model, torch.zeros(1, 3, res, res))


@pytest.mark.parametrize("arch, dataset, params, mflops", [
    (NB201_EXAMPLE, "cifar10", 129_306, 15.64737),
    (NB201_EXAMPLE, "imagenet16_120", 136_456, 3.91948),
    ("|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
     "cifar10", 587_386, 82.49409),
])
def test_official_nb201_costs(arch, dataset, params, mflops):
    got_params, got_flops = measured_cost(SPACE.parse(arch), dataset)
    assert got_params == params
    assert got_flops / 1e6 == pytest.approx(mflops, abs=5e-6)


@pytest.mark.parametrize("arch_id", [0, 1, 624, 3124, 7812, 15624])
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet16_120"])
def test_costs_match_the_skeleton_formula(arch_id, dataset):
    assert measured_cost(arch_id, dataset) == analytic_cost(arch_id, dataset)


def test_arch_id_is_base5_of_edge_ops_in_string_order():
    arch = "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert SPACE.parse(arch) == 1 + 0 * 5 + 2 * 25 + 3 * 125 + 4 * 625 + 0 * 3125
    assert SPACE.arch_str(SPACE.parse(arch)) == arch


def test_every_cell_round_trips_and_ids_cover_the_space():
    strings = {SPACE.arch_str(i) for i in range(SPACE.size)}
    assert len(strings) == 15_625
    assert all(SPACE.parse(SPACE.arch_str(i)) == i for i in range(0, SPACE.size, 7))


@pytest.mark.fulldata
def test_official_index_order_maps_onto_arch_ids():
    path = os.path.join(os.environ["ZSDIST_DATA"], "nb201", "nb201_accuracy.csv")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["nb201_index"]) for r in rows] == list(range(15_625))
    ids = [SPACE.parse(r["arch_str"]) for r in rows]
    assert sorted(ids) == list(range(15_625))
    assert SPACE.arch_str(ids[0]) == rows[0]["arch_str"]


@pytest.mark.parametrize("bad, words", [
    ("|conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_3x3'"),
    ("|none~0|+|none~0|none~1|", "expected"),
    ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "node 2 must list inputs 0..1"),
])
def test_bad_arch_strings_are_rejected_with_the_reason(bad, words):
    with pytest.raises(ZsdistError, match=words.replace("(", r"\(").replace(".", r"\.")):
        SPACE.parse(bad)


def test_unknown_space_suggests_the_closest():
    with pytest.raises(ZsdistError, match="did you mean 'nb201'"):
        create_space("nb210")


def test_sampling_is_seeded_and_distinct():
    a, b = SPACE.sample(50, 3), SPACE.sample(50, 3)
    assert a == b and len(set(a)) == 50 and a != SPACE.sample(50, 4)
    assert set(OPS) == {op for i in range(SPACE.size) for op in decode(i)}
