"""NATS-Bench size space: ids, strings, enumeration, and params/FLOPs summed by hand from the skeleton."""
from __future__ import annotations

import pytest
import torch

from zsdist.errors import ZsdistError
from zsdist.proxies.cost import count_flops
from zsdist.spaces import create_space

SPACE = create_space("nats_sss")
RESOLUTION = {"cifar10": 32, "cifar100": 32, "imagenet16_120": 16}
CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16_120": 120}


def hand_cost(widths: list[int], dataset: str) -> tuple[int, int]:
    """Layer by layer: stem, cell (3×3, 3×3, 3×3, skip, 3×3, 3×3), reduction, cell, reduction, cell, head."""
    h = RESOLUTION[dataset]
    c0 = widths[0]
    params, flops = 27 * c0 + 2 * c0, h * h * 27 * c0
    c_prev = c0
    for layer, c in enumerate(widths):
        if layer % 2:  # residual reduction: two 3×3 convs + BNs, avg-pool + 1×1 shortcut
            h //= 2
            params += 9 * c_prev * c + 2 * c + 9 * c * c + 2 * c + c_prev * c
            flops += h * h * (9 * c_prev * c + 9 * c * c + c_prev * c)
        else:  # two 3×3 edges from node 0 widen; three more 3×3 convs at width c; skip widens with a 1×1
            widen = 2 * 9 * c_prev * c + 3 * 9 * c * c + (c_prev * c if c_prev != c else 0)
            params += widen + 2 * c * (5 + (c_prev != c))
            flops += h * h * widen
        c_prev = c
    k = CLASSES[dataset]
    return params + 2 * c_prev + (c_prev + 1) * k, flops + (c_prev + 1) * k


def measured(arch: str, dataset: str) -> tuple[int, float]:
    model = SPACE.build(SPACE.parse(arch), dataset)
    res = RESOLUTION[dataset]
    return sum(p.numel() for p in model.parameters()), count_flops(model, torch.zeros(1, 3, res, res))


@pytest.mark.parametrize("arch", ["8:8:8:8:8", "64:64:64:64:64", "8:16:32:48:64", "64:8:56:16:40", "24:40:8:64:32"])
@pytest.mark.parametrize("dataset", ["cifar10", "imagenet16_120"])
def test_costs_match_the_hand_sum(arch, dataset):
    assert measured(arch, dataset) == hand_cost([int(w) for w in arch.split(":")], dataset)


def test_smallest_network_by_hand():
    # 8:8:8:8:8 on CIFAR-10: stem 232, cells 5 × (576+16) each = 2,960, reductions 2 × (576+576+64+32) = 2,496,
    # last BN 16, classifier 90 → 11,714 parameters.
    assert measured("8:8:8:8:8", "cifar10")[0] == 232 + 3 * 2_960 + 2 * 1_248 + 16 + 90 == 11_714


def test_enumeration_covers_32768_distinct_strings_in_id_order():
    strings = [SPACE.arch_str(i) for i in SPACE.enumerate()]
    assert len(strings) == len(set(strings)) == 32_768 == SPACE.size
    assert strings[0] == "8:8:8:8:8" and strings[-1] == "64:64:64:64:64"
    assert all(SPACE.parse(s) == i for i, s in enumerate(strings))
    assert strings == sorted(strings, key=lambda s: [int(w) for w in s.split(":")])


@pytest.mark.parametrize("bad", ["8:8:8:8", "8:8:8:8:12", "8:8:8:8:72", "a:8:8:8:8", "8,8,8,8,8"])
def test_bad_strings_are_rejected(bad):
    with pytest.raises(ZsdistError, match="bad NATS size arch"):
        SPACE.parse(bad)


def test_sampling_is_seeded():
    assert SPACE.sample(20, 1) == SPACE.sample(20, 1) != SPACE.sample(20, 2)
