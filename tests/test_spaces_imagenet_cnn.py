"""MobileNetV2- and ResNet-style ImageNet spaces: published MobileNetV2-1.0 / ResNet-50 costs, ids, strings."""
from __future__ import annotations

import pytest
import torch

from zsdist.errors import ZsdistError
from zsdist.proxies.cost import count_flops
from zsdist.spaces import create_space

MBV2 = "e6k3d2w1.0-e6k3d3w1.0-e6k3d4w1.0-e6k3d3w1.0-e6k3d3w1.0"
RESNET50 = "d3w1.0b0.25-d4w1.0b0.25-d6w1.0b0.25-d3w1.0b0.25"


@pytest.mark.parametrize("space, arch, params, mflops", [
    # torchvision's MobileNetV2 (3,504,872 parameters, 300M MACs) and ResNet-50 v1.5 (25,557,032; 4.09G MACs)
    ("mbv2", MBV2, 3_504_872, 300.775),
    ("resnet", RESNET50, 25_557_032, 4_089.185),
])
def test_published_networks_are_in_the_space_with_their_costs(space, arch, params, mflops):
    s = create_space(space)
    model = s.build(s.parse(arch), "imagenet")
    assert sum(p.numel() for p in model.parameters()) == params
    # the published MAC counts (300M, 4.09G) plus the classifier's 1,000 biases, to the nearest kMAC
    assert count_flops(model, torch.zeros(1, 3, 224, 224)) / 1e6 == pytest.approx(mflops, abs=1e-3)


def test_a_small_mbv2_by_hand():
    # every stage e3, k3, d2, w0.75: widths 24, 24, 48, 72, 120 (MobileNet rounding of 18, 24, 48, 72, 120)
    s = create_space("mbv2")
    model = s.build(s.parse("-".join(["e3k3d2w0.75"] * 5)), "imagenet")
    params = 27 * 32 + 64 + (9 * 32 + 64) + (32 * 16 + 32)  # stem, dw + pw of the expansion-1 block
    c = 16
    for width in (24, 24, 48, 72, 120):
        for _ in range(2):
            mid = 3 * c
            params += c * mid + 2 * mid + 9 * mid + 2 * mid + mid * width + 2 * width
            c = width
    params += (c * 6 * c + 12 * c) + (9 * 6 * c + 12 * c) + (6 * c * 320 + 640) + 320 * 1280 + 2560 + 1_281_000
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("name, size", [("mbv2", 24**5), ("resnet", 16**4)])
def test_ids_round_trip_over_the_mixed_radix(name, size):
    s = create_space(name)
    assert s.size == size
    for arch_id in (0, 1, size // 3, size // 2 + 7, size - 1):
        assert s.parse(s.arch_str(arch_id)) == arch_id
    assert s.sample(30, 5) == s.sample(30, 5) and len(set(s.sample(30, 5))) == 30


def test_resnet_digits_are_stage_major():
    s = create_space("resnet")
    assert s.arch_str(1) == "d2w0.5b0.25-d2w0.5b0.25-d2w0.5b0.25-d2w0.5b0.5"
    assert s.parse("d2w0.5b0.5-d2w0.5b0.25-d2w0.5b0.25-d2w0.5b0.25") == 16**3


@pytest.mark.parametrize("space, bad, words", [
    ("resnet", "d3w1.0b0.25-d4w1.0b0.25-d6w1.0b0.25", "expected 4 stages"),
    ("resnet", "d5w1.0b0.25-d4w1.0b0.25-d6w1.0b0.25-d3w1.0b0.25", "d=5 is not one of 2, 3, 4, 6"),
    ("resnet", "d3w1b0.25-d4w1.0b0.25-d6w1.0b0.25-d3w1.0b0.25x", "is not like"),
    ("mbv2", "e4k3d2w1.0-e6k3d3w1.0-e6k3d4w1.0-e6k3d3w1.0-e6k3d3w1.0", "e=4 is not one of 3, 6"),
    ("mbv2", "e6k3d2.5w1.0-e6k3d3w1.0-e6k3d4w1.0-e6k3d3w1.0-e6k3d3w1.0", "d=2.5 is not one of"),
])
def test_bad_strings_name_the_knob(space, bad, words):
    with pytest.raises(ZsdistError, match=words):
        create_space(space).parse(bad)
