"""Operator features: FLOPs agree with the project's counter, and live / idle / dead follow the data flow."""
from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import nn

from hw_models.features import FEATURE_NAMES, aggregate, extract, network_features
from zsdist.proxies.cost import count_flops
from zsdist.spaces import create_space

SPACE = create_space("nb201")
X = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
CONVS = ("conv1x1", "convkxk")


def _records(arch: str):
    torch.manual_seed(0)
    return extract(SPACE.build(SPACE.parse(arch), "cifar10"), X)


def test_conv_and_matmul_flops_add_up_to_the_nb201_count():
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    model = SPACE.build(SPACE.parse(arch), "cifar10")
    records = extract(model, X)
    macs = sum(r.flops for r in records if r.kind in CONVS + ("matmul",))
    assert macs + 10 == count_flops(model, X)  # count_flops adds one per output for the classifier bias
    assert sum(r.params for r in records if r.kind in CONVS + ("matmul",)) == sum(
        p.numel() for name, p in model.named_parameters() if "weight" in name and p.dim() > 1) + 10


def test_connected_cell_is_all_live():
    states = Counter(r.state for r in _records(
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"))
    assert set(states) == {"live"}


def test_branch_behind_a_none_edge_is_dead_and_work_on_zeros_is_idle():
    # node 2 reaches the output only through `none` (x·0): its 1×1 conv is dead in every cell.
    records = _records("|skip_connect~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|skip_connect~1|none~2|")
    convs = Counter(r.state for r in records if r.kind in CONVS)
    assert convs["dead"] == 15 and convs["live"] == 1 + 2 * 3  # stem + the two reductions' convs
    # node 1 is all zero; the 3×3 conv reads it and feeds the output: idle, not dead
    records = _records("|none~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")
    convs = Counter(r.state for r in records if r.kind in CONVS)
    assert convs["idle"] == 15 and convs["dead"] == 0


def test_disconnected_network_leaves_only_the_classifier_live():
    records = _records("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert [r.kind for r in records if r.state == "live"] == ["matmul"]


def test_critical_path_is_the_longest_chain():
    chain = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
    v = dict(zip(FEATURE_NAMES, aggregate(extract(chain, X))))
    assert v["critical.convkxk.count"] == 2 and v["critical.act.count"] == 2
    assert v["convkxk.live.count"] == 2 and v["act.live.count"] == 2


def test_features_are_deterministic_and_work_for_any_module():
    a = network_features(nn.Sequential(nn.Conv2d(3, 8, 3, groups=1), nn.Conv2d(8, 8, 3, groups=8)), (1, 3, 16, 16))
    b = network_features(nn.Sequential(nn.Conv2d(3, 8, 3, groups=1), nn.Conv2d(8, 8, 3, groups=8)), (1, 3, 16, 16))
    assert np.array_equal(a, b) and a.shape == (len(FEATURE_NAMES),)
    v = dict(zip(FEATURE_NAMES, a))
    assert v["convkxk.live.count"] == 1 and v["dwconv.live.count"] == 1
    assert v["dwconv.live.mflops"] == 12 * 12 * 8 * 9 / 1e6


def test_convolutions_are_split_by_kernel_size():
    net = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, (1, 5), padding=(0, 2)),
                        nn.Conv2d(8, 8, 3, padding=1, groups=8))
    v = dict(zip(FEATURE_NAMES, network_features(net, (1, 3, 16, 16))))
    assert v["conv1x1.live.count"] == 1 and v["conv1x1.live.mflops"] == 16 * 16 * 8 * 3 / 1e6
    assert v["convkxk.live.count"] == 2 and np.isclose(v["convkxk.live.mflops"], 16 * 16 * 8 * (8 * 9 + 8 * 5) / 1e6)
    assert v["dwconv.live.count"] == 1


class _Branches(nn.Module):
    """x feeds a ReLU on each of two branches that a sum joins: both ReLUs read a shared tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.a(torch.relu(x)) + self.b(torch.relu(x))


def test_operators_reading_a_shared_tensor_and_joins_are_counted():
    v = dict(zip(FEATURE_NAMES, network_features(_Branches(), (1, 3, 8, 8))))
    assert v["shared.act.count"] == 2 and v["shared.act.readers"] == 2  # each ReLU has one other reader
    assert v["shared.convkxk.count"] == 0 and v["shared.conv1x1.count"] == 0
    assert v["join.count"] == 1 and v["join.inputs"] == 2
    chain = dict(zip(FEATURE_NAMES, network_features(nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU()), (1, 3, 8, 8))))
    assert not any(value for name, value in chain.items() if name.startswith(("shared.", "join.")))


def test_nb201_fast_path_equals_building_the_whole_network():
    from zsdist.hardware.features import input_shape, nb201_features

    archs = ["|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
             "|none~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
             "|none~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"]  # the last is disconnected
    for arch, dataset in zip(archs, ["cifar10", "imagenet16_120", "cifar10"]):
        arch_id = SPACE.parse(arch)
        torch.manual_seed(0)
        whole = network_features(SPACE.build(arch_id, dataset), input_shape(dataset))
        assert np.allclose(nb201_features(arch_id, dataset), whole, rtol=1e-12, atol=1e-12)
