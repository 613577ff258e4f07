"""ViT spaces (AutoFormer-Tiny, PiT): ids, strings, hand-derived costs, their ground truth and 224×224 inputs."""
from __future__ import annotations

import warnings

import pytest
import torch

from zsdist.data import load_batch
from zsdist.errors import ZsdistError
from zsdist.proxies.cost import count_flops
from zsdist.spaces import create_space
from zsdist.store import Store
from zsdist.truth import ingest

AUTOFORMER = create_space("autoformer_tiny")
PIT = create_space("pit")


def autoformer_cost(embed: int, layers: list[tuple[float, int]], classes: int) -> tuple[int, int]:
    """Patch conv, class token, 197 position embeddings, per block LN/qkv(64 per head)/proj/fc1/fc2/LN, head."""
    d, tokens = embed, 197
    params = 768 * d + d + d + tokens * d + 2 * d + d * classes + classes
    flops = 196 * (768 * d + d) + d * classes + classes
    for ratio, heads in layers:
        qkv, hidden = 3 * 64 * heads, int(d * ratio)
        linears = [(d, qkv), (64 * heads, d), (d, hidden), (hidden, d)]
        params += 4 * d + sum(i * o + o for i, o in linears)
        flops += tokens * sum(i * o + o for i, o in linears)
    return params, flops


@pytest.mark.parametrize("arch_id", [0, 4**12 - 1, 4**12, 123_456_789, AUTOFORMER.size - 1])
def test_autoformer_costs_match_the_hand_sum(arch_id):
    embed, layers = AUTOFORMER.decode(arch_id)
    model = AUTOFORMER.build(arch_id, "cifar100_224")
    got = sum(p.numel() for p in model.parameters()), count_flops(model, torch.zeros(1, 3, 224, 224))
    assert got == autoformer_cost(embed, layers, 100)


def test_autoformer_t_size_matches_the_paper():
    # AutoFormer-T (embed 192, 13 layers) is published at 5.7M parameters on ImageNet
    arch = "e192:" + ",".join(["r3.5h3"] * 13)
    params = sum(p.numel() for p in AUTOFORMER.build(AUTOFORMER.parse(arch), "imagenet").parameters())
    assert params == autoformer_cost(192, [(3.5, 3)] * 13, 1000)[0] and 5.6e6 < params < 5.8e6


def test_autoformer_ids_cover_every_depth_and_round_trip():
    assert AUTOFORMER.size == 3 * (4**12 + 4**13 + 4**14)
    for arch_id in (0, 1, 4**12 - 1, 4**12, 4**12 + 4**13, 4**12 + 4**13 + 4**14, AUTOFORMER.size - 1):
        assert AUTOFORMER.parse(AUTOFORMER.arch_str(arch_id)) == arch_id
    assert AUTOFORMER.arch_str(4**12).count(",") == 12  # the first 13-layer network
    assert len(AUTOFORMER.sample(100, 0)) == 100


@pytest.mark.parametrize("bad", ["e200:" + ",".join(["r4.0h4"] * 12), "e192:" + ",".join(["r4.0h4"] * 11),
                                 "e192:" + ",".join(["r4.0h5"] * 12), "192:" + ",".join(["r4.0h4"] * 12)])
def test_autoformer_bad_strings(bad):
    with pytest.raises(ZsdistError, match="bad AutoFormer-Tiny arch"):
        AUTOFORMER.parse(bad)


def pit_params(base: int, ratio: int, depth: tuple, heads: tuple, classes: int) -> int:
    """Overlapping 16×16/8 patch conv, 27×27 position embeddings, class token, blocks, pooling, LN, head."""
    dims = [base * h for h in heads]
    params = 768 * dims[0] + dims[0] + 27 * 27 * dims[0] + dims[0]
    for stage, (c, n) in enumerate(zip(dims, depth)):
        if stage:  # depthwise 3×3 stride-2 conv widening the tokens, linear for the class token
            params += 9 * c + c + dims[stage - 1] * c + c
        params += n * (4 * c + 3 * c * c + 3 * c + c * c + c + 2 * ratio * c * c + ratio * c + c)
    return params + 2 * dims[-1] + dims[-1] * classes + classes


@pytest.mark.parametrize("arch", ["b32-m4-d2,6,4-h2,4,8", "b16-m2-d1,4,2-h2,2,2", "b40-m8-d3,8,6-h8,8,8"])
def test_pit_params_match_the_hand_sum(arch):
    a = PIT.decode(PIT.parse(arch))
    model = PIT.build(PIT.parse(arch), "flowers102")
    assert sum(p.numel() for p in model.parameters()) == pit_params(a["base"], a["ratio"], a["depth"], a["heads"], 102)


def test_pit_ti_is_in_the_space_at_its_published_size():
    assert 4.8e6 < pit_params(32, 4, (2, 6, 4), (2, 4, 8), 1000) < 4.9e6  # PiT-Ti: 4.9M on ImageNet


def test_pit_enumeration_and_round_trips():
    strings = [PIT.arch_str(i) for i in PIT.enumerate()]
    assert len(set(strings)) == 4_320 == PIT.size
    assert all(PIT.parse(s) == i for i, s in enumerate(strings))


@pytest.mark.parametrize("bad, words", [("b32-m4-d2,6,4-h4,2,8", "non-decreasing"), ("b48-m4-d2,6,4-h2,4,8", "base"),
                                        ("b32-m4-d2,5,4-h2,4,8", "stage depths"), ("b32-m4-d2,6-h2,4,8", "expected")])
def test_pit_bad_strings(bad, words):
    with pytest.raises(ZsdistError, match=words):
        PIT.parse(bad)


@pytest.mark.fulldata
@pytest.mark.parametrize("name, rows", [("autoformer_tiny", 700), ("pit", 600)])
def test_vit_ground_truth_maps_100_subnets(tmp_path, name, rows):
    store = Store(str(tmp_path))
    assert ingest(store, name) == rows
    table = store.read("truth", f"{name}_gt", space=name).to_pylist()
    assert len({r["arch_id"] for r in table}) == 100
    assert {r["dataset"] for r in table} <= set(create_space(name).datasets)


@pytest.mark.fulldata
def test_pit_ground_truth_value_lands_on_its_architecture(tmp_path):
    ingest(Store(str(tmp_path)), "pit")
    table = Store(str(tmp_path)).read("truth", "pit_gt", space="pit").to_pylist()
    row = next(r for r in table if r["arch"] == "b16-m6-d2,8,4-h2,4,4" and r["dataset"] == "cifar100_224"
               and r["metric"] == "test_acc")
    assert row["value"] == pytest.approx(68.33)


def test_cifar100_is_upsampled_to_224_for_vits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small, big = load_batch("cifar100", 4, 0), load_batch("cifar100_224", 4, 0)
    assert big.inputs.shape == (4, 3, 224, 224) and torch.equal(small.labels, big.labels)
    pooled = torch.nn.functional.avg_pool2d(big.inputs, 7)
    assert (pooled - small.inputs).abs().mean() < 0.1  # the same images, blurred only by the interpolation
