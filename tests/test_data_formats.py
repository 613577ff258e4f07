"""Images for a job's `data` in the formats users hold (torchvision's CIFAR python batches, class folders, .npz,
or a reference image source by name), read safely; broken files end with one line that names them."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from zsdist.data import load_batch
from zsdist.errors import ZsdistError
from zsdist.settings import embedded_path


@pytest.fixture(autouse=True)
def fresh_install(tmp_path, monkeypatch):
    monkeypatch.delenv("ZSDIST_DATA", raising=False)
    monkeypatch.setenv("ZSDIST_CACHE", str(tmp_path / "cache"))


def cifar_batch(path: Path, images: np.ndarray, labels: list[int], label_key: bytes = b"labels") -> None:
    """A batch as torchvision's CIFAR archives hold it: a pickled dict, data N×3072 (channel planes), labels."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    path.write_bytes(pickle.dumps({b"batch_label": b"testing batch 1 of 1", b"data": planes, label_key: labels,
                                   b"filenames": [b"x.png"] * len(images)}, protocol=2))


@pytest.fixture
def images() -> np.ndarray:
    with np.load(embedded_path("images/cifar10_sample.npz")) as npz:
        return npz["images"][:40]


def test_cifar_python_batches_load_as_the_same_images(tmp_path, images):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    labels = [i % 10 for i in range(40)]
    cifar_batch(folder / "test_batch", images, labels)
    from_batches = load_batch("cifar10", 8, 3, source=str(folder))
    np.savez(tmp_path / "same.npz", images=images, labels=np.array(labels))
    from_npz = load_batch("cifar10", 8, 3, source=str(tmp_path / "same.npz"))
    assert torch.equal(from_batches.inputs, from_npz.inputs) and torch.equal(from_batches.labels, from_npz.labels)
    cifar_batch(tmp_path / "test", images, labels, b"fine_labels")  # CIFAR-100's batch file, given directly
    assert torch.equal(load_batch("cifar100", 8, 3, source=str(tmp_path / "test")).inputs,
                       load_batch("cifar100", 8, 3, source=str(tmp_path / "same.npz")).inputs)


def test_a_pickle_that_runs_code_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "was-run"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": [0]}))
    with pytest.raises(ZsdistError, match=r"test_batch: refused to unpickle \(it asks for pathlib.*not plain data"):
        load_batch("cifar10", 4, 0, source=str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "not a zip", "no images"])
def test_a_broken_npz_is_named(tmp_path, damage):
    good = embedded_path("images/cifar10_sample.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    if damage == "truncated":
        bad.write_bytes(good[: len(good) // 2])
    elif damage == "not a zip":
        bad.write_bytes(b"\x93NUMPY not an archive" * 10)
    else:
        with zipfile.ZipFile(bad, "w") as zf:
            zf.writestr("labels.npy", b"")
    with pytest.raises(ZsdistError, match=f"^{bad}"):
        load_batch("cifar10", 4, 0, source=str(bad))


def test_an_unreadable_image_in_a_folder_is_named(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "0.png").write_bytes(b"not a png")
    with pytest.raises(ZsdistError, match=r"cat/0.png is not a readable image"):
        load_batch("cifar10", 4, 0, source=str(tmp_path))


def test_a_reference_source_by_name_is_looked_up_and_missing_says_how_to_fetch_it():
    assert load_batch("cifar100", 4, 0, source="cifar100_samples").size == 4
    with pytest.raises(ZsdistError, match=r"source 'cifar10_test'.*`zsdist data fetch cifar10_test`"):
        load_batch("cifar10", 4, 0, source="cifar10_test")


def test_a_launch_on_a_truncated_npz_stops_in_one_line_before_anything_runs(tmp_path, cli, small_workflow,
                                                                            workflow_file):
    bad = tmp_path / "cut.npz"
    bad.write_bytes(embedded_path("images/cifar10_sample.npz").read_bytes()[:5_000])
    body = small_workflow.format(output=tmp_path / "out").replace(
        "shard_size = 2", f'shard_size = 2\ndata = {{ cifar10 = "{bad}" }}')
    code, _, err = cli("launch", "--workflow", str(workflow_file(tmp_path, body)))
    assert code == 2 and err.count("\n") == 1 and str(bad) in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
