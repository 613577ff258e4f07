"""Every registered proxy on a small network of every new space: a value, or an error row that says why."""
from __future__ import annotations

import warnings

import pytest
import torch

from zsdist.data import load_batch
from zsdist.networks.nb101 import NB101Network
from zsdist.proxies import resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.spaces import create_space
from zsdist.spaces.nb101 import from_string

# (space, a small architecture, dataset); NB101 is built from its cell so that no id table is needed here
FULL = {"imagenet", "class_scene", "flowers102"}  # stand-in ImageNet-224 images: fetched, not embedded
CASES = [pytest.param(*case, id=case[0], marks=[pytest.mark.fulldata] if case[2] in FULL else []) for case in [
    ("nats_sss", "8:16:8:16:8", "cifar10"),
    ("transnas_micro", "64-41414-1_11_111", "class_scene"),
    ("nb101", "10-1|conv3x3", "cifar10"),
    ("mbv2", "-".join(["e3k3d2w0.75"] * 5), "imagenet"),
    ("resnet", "-".join(["d2w0.5b0.25"] * 4), "imagenet"),
    ("autoformer_tiny", "e192:" + ",".join(["r3.5h3"] * 12), "cifar100_224"),
]] + [pytest.param("pit", "b16-m2-d1,4,2-h2,2,2", "flowers102", id="pit", marks=pytest.mark.fulldata)]
VIT = {"autoformer_tiny", "pit"}


def builder(space: str, arch: str, dataset: str):
    if space == "nb101":
        matrix, labels = from_string(arch)
        return lambda: NB101Network(matrix, tuple(labels[1:-1]), 10)
    s = create_space(space)
    return lambda: s.build(s.parse(arch), dataset)


@pytest.mark.parametrize("space, arch, dataset", CASES)
def test_every_proxy_gives_a_value_or_a_reason(space, arch, dataset):
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = load_batch(dataset, 4, 0)
    results = {r.proxy: r for r in evaluate(builder(space, arch, dataset), batch, resolve_proxies("all"), 0)}
    assert all(r.status in ("ok", "nan", "error") for r in results.values())
    assert all(r.error for r in results.values() if r.status != "ok")
    for name in ("params", "flops", "synflow", "snip", "grad_norm"):
        assert results[name].status == "ok" and results[name].value > 0, (name, results[name])
    if space in VIT:
        assert results["tf_tas"].status == "ok"
        assert results["tf_tas"].value == pytest.approx(results["tf_tas_diversity"].value
                                                        + results["tf_tas_saliency"].value)
    else:
        assert results["tf_tas"].status == "error" and "Attention" in results["tf_tas"].error
        assert results["naswot"].status == "ok"


@pytest.mark.fulldata  # stand-in ImageNet-224 images
def test_tf_tas_is_deterministic_and_depends_on_the_architecture():
    s = create_space("pit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = load_batch("chaoyang", 4, 1)
    proxies = resolve_proxies(["tf_tas"])
    value = lambda arch: evaluate(lambda: s.build(s.parse(arch), "chaoyang"), batch, proxies, 3)[0].value
    small, wide = value("b16-m2-d1,4,2-h2,2,2"), value("b16-m2-d1,4,2-h2,2,4")
    assert small == value("b16-m2-d1,4,2-h2,2,2") and small != wide
