"""A small launch over every new space on the local Ray: rows land per space, ViT-only proxies say why not."""
from __future__ import annotations

import pytest

from zsdist.analysis.views import connect
from zsdist.run import launch
from zsdist.workflow import load_workflow

JOBS = [("nats_sss", "cifar10", [0, 32_767]), ("transnas_micro", "class_object", [1_365]), ("mbv2", "imagenet", [0]),
        ("resnet", "imagenet", [0]), ("autoformer_tiny", "cifar100_224", [0]), ("pit", "chaoyang", [0])]
NB101_JOB = ("nb101", "cifar10", [0, 423_623])  # ids need the cached 423,624-cell table (built once, minutes)


def workflow_text(output: str, jobs: list) -> str:
    text = f'[run]\nname = "spaces"\noutput = "{output}"\nseed = 0\n'
    for space, dataset, ids in jobs:
        text += (f'\n[[jobs]]\nspace = "{space}"\ndatasets = ["{dataset}"]\narchs = {{ ids = {ids} }}\n'
                 'proxies = ["params", "flops", "tf_tas"]\nlatency = ["raspi4"]\nbatch_size = 2\nshard_size = 1\n')
    return text


@pytest.mark.fulldata  # ImageNet-224 images (mbv2, resnet, and the TransNAS / PiT stand-ins)
@pytest.mark.parametrize("jobs", [JOBS, pytest.param(JOBS + [NB101_JOB], marks=pytest.mark.slow, id="with-nb101")])
def test_small_launch_over_every_space(tmp_path, local_ray, workflow_file, jobs):
    output = tmp_path / "results"
    wf = load_workflow(workflow_file(tmp_path, workflow_text(str(output), jobs)))
    summary = launch(wf, show_progress=False)
    assert summary.shards_done == 2 * sum(len(ids) for _, _, ids in jobs)  # a proxy and a latency shard each
    con = connect(str(output))
    rows = con.execute("SELECT space, arch, proxy, status, value, error FROM scores").fetchall()
    assert len(rows) == 3 * sum(len(ids) for _, _, ids in jobs)
    assert {r[0] for r in rows} == {space for space, _, _ in jobs}
    for space, arch, proxy, status, value, error in rows:
        if proxy != "tf_tas":
            assert status == "ok" and value > 0, (space, arch, proxy, error)
        elif space in ("autoformer_tiny", "pit"):
            assert status == "ok", (space, arch, error)
        else:
            assert status == "error" and "Attention" in error
    archs = {r[1] for r in rows if r[0] == "nats_sss"}
    assert archs == {"8:8:8:8:8", "64:64:64:64:64"}
    # outside NB201 no table covers raspi4: its predictor answers from the network's operators
    latency = con.execute("SELECT space, source, status, latency_ms, error FROM latency").fetchall()
    assert {r[0] for r in latency} == {space for space, _, _ in jobs}
    assert all(r[1:3] == ("predicted", "ok") and r[3] > 0 for r in latency), latency
