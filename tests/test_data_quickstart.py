"""A fresh install (no data folder, empty cache) runs a launch to the correlation table: the images and the NB201
ground truth come embedded, and the launch loads the truth itself when the results folder lacks it."""
from __future__ import annotations

from boxtable import box_rows


def test_a_fresh_install_launches_to_the_correlation_table(tmp_path, monkeypatch, cli, small_workflow, workflow_file,
                                                           local_ray):
    monkeypatch.delenv("ZSDIST_DATA", raising=False)
    monkeypatch.setenv("ZSDIST_CACHE", str(tmp_path / "cache"))
    workflow = workflow_file(tmp_path, small_workflow.format(output=tmp_path / "results"))
    code, out, err = cli("launch", "--workflow", str(workflow))
    assert code == 0, err
    assert "loaded the nb201 ground truth" in err
    # space, dataset, metric, proxy, n, …: the primary metric (test accuracy) of each dataset
    table = [row for row in box_rows(out) if row[0] == "nb201"]
    assert {(row[1], row[2], row[3]) for row in table} == {
        (d, "test_acc", p) for d in ("cifar10", "imagenet16_120") for p in ("params", "flops", "synflow", "naswot")}
    # every architecture has its ground truth (NASWOT is nan on the all-`none` cell 0)
    assert all(int(row[4]) == (5 if row[3] == "naswot" else 6) for row in table), out
