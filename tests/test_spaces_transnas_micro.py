"""TransNAS-Bench-101 micro: ids, strings, costs summed by hand from the 64-41414 skeleton, ground truth."""
from __future__ import annotations

import pytest
import torch

from zsdist.errors import ZsdistError
from zsdist.proxies.cost import count_flops
from zsdist.spaces import create_space
from zsdist.spaces.transnas_micro import decode
from zsdist.store import Store
from zsdist.truth import ingest

SPACE = create_space("transnas_micro")
KERNEL = {2: 1, 3: 3}  # digit → conv kernel


def hand_cost(arch_id: int, classes: int, h: int = 256) -> tuple[int, int]:
    digits = decode(arch_id)
    sources = (0, 0, 1, 0, 1, 2)
    c = 64  # stem: 3×3/2 conv 3→32 + BN at 128², ReLU-3×3/2 conv 32→64 + BN at 64²
    params, flops = 27 * 32 + 64 + 9 * 32 * 64 + 128, (h // 2) ** 2 * 27 * 32 + (h // 4) ** 2 * 9 * 32 * 64
    h //= 4
    for code in "41414":
        for i in range(2):
            reduce = code == "4" and i == 0
            c_out, h_out = (2 * c, h // 2) if reduce else (c, h)
            for d, src in zip(digits, sources):
                c_in = c if src == 0 else c_out
                if d in KERNEL:
                    params += KERNEL[d] ** 2 * c_in * c_out + 2 * c_out
                    flops += h_out * h_out * KERNEL[d] ** 2 * c_in * c_out
                elif d == 1 and reduce and src == 0:  # factorized reduction: two 1×1 halves, BN
                    params += c_in * c_out + 2 * c_out
                    flops += h_out * h_out * c_in * c_out
            c, h = c_out, h_out
    return params + (c + 1) * classes, flops + (c + 1) * classes


@pytest.mark.parametrize("arch", ["64-41414-3_33_333", "64-41414-1_02_313", "64-41414-0_00_001", "64-41414-2_11_230"])
def test_costs_match_the_hand_sum(arch):
    arch_id = SPACE.parse(arch)
    model = SPACE.build(arch_id, "class_object")
    got = sum(p.numel() for p in model.parameters()), count_flops(model, torch.zeros(1, 3, 256, 256))
    assert got == hand_cost(arch_id, 75)


def test_all_conv3x3_parameter_count_by_hand():
    # 3×3 everywhere: per cell 6 convs (+BN); widths 64→128→256→512 over 10 cells; stem 19,488; head 513·47.
    model = SPACE.build(SPACE.parse("64-41414-3_33_333"), "class_scene")
    cells = 0
    for c_in, c_out, n in ((64, 128, 1), (128, 128, 3), (128, 256, 1), (256, 256, 3), (256, 512, 1), (512, 512, 1)):
        cells += n * (3 * (9 * c_in * c_out + 2 * c_out) + 3 * (9 * c_out * c_out + 2 * c_out))
    assert sum(p.numel() for p in model.parameters()) == 19_488 + cells + 513 * 47


def test_enumeration_and_round_trips():
    strings = [SPACE.arch_str(i) for i in SPACE.enumerate()]
    assert len(set(strings)) == 4_096 == SPACE.size
    assert all(SPACE.parse(s) == i for i, s in enumerate(strings))
    assert SPACE.parse("64-41414-1_00_000") == 1 and SPACE.parse("64-41414-0_00_003") == 3 * 4**5


@pytest.mark.parametrize("bad", ["64-41414-4_00_000", "3_33_333", "64-4141-3_33_333", "64-41414-3_3_3333"])
def test_bad_strings_are_rejected(bad):
    with pytest.raises(ZsdistError, match="bad TransNAS micro arch"):
        SPACE.parse(bad)


@pytest.mark.fulldata
def test_ground_truth_covers_both_heads(tmp_path):
    store = Store(str(tmp_path))
    assert ingest(store, "transnas_micro") == 2 * 4_096
    table = store.read("truth", "transnas_micro_valid", space="transnas_micro").to_pylist()
    best = {(r["dataset"], r["arch"]): r["value"] for r in table}
    assert best[("class_scene", "64-41414-3_33_333")] == pytest.approx(53.6723747253418)
    # cells whose input never reaches the output all score the majority-class accuracy
    cut = [r["value"] for r in table if r["dataset"] == "class_scene" and r["arch"].startswith("64-41414-0_0")
           and r["arch"][-1] == "0" and r["arch"][-3] == "0"]
    assert len(cut) == 16 and len(set(cut)) == 1


def test_a_cut_cell_keeps_a_zero_input_gradient():
    # input → output never connected: the output is constant, but input-gradient proxies get zeros, not an error
    model = SPACE.build(SPACE.parse("64-41414-0_03_022"), "class_scene")
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    (grad,) = torch.autograd.grad(model(x).sum(), x)
    assert torch.count_nonzero(grad) == 0
