"""Input batches: real images, normalised, chosen by the seed; user folders; clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zsdist.data import load_batch
from zsdist.errors import ZsdistError


def test_batches_are_seeded_normalised_real_images():
    a, b, c = load_batch("cifar10", 64, 0), load_batch("cifar10", 64, 0), load_batch("cifar10", 64, 1)
    assert a.inputs.shape == (64, 3, 32, 32) and torch.equal(a.inputs, b.inputs)
    assert not torch.equal(a.inputs, c.inputs)
    assert abs(a.inputs.mean().item()) < 0.3 and 0.7 < a.inputs.std().item() < 1.3
    assert len(set(a.labels.tolist())) > 5  # the test set is sorted by class; the pick must not be


def test_imagenet16_batch_has_its_resolution():
    assert load_batch("imagenet16_120", 64, 0).inputs.shape == (64, 3, 16, 16)


def test_too_few_images_warns_and_uses_what_there_is():
    with pytest.warns(UserWarning, match="only 20 images"):
        batch = load_batch("cifar100", 64, 0)
    assert batch.size == 20


def test_user_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    batch = load_batch("cifar10", 4, 0, source=str(tmp_path))
    assert batch.inputs.shape == (4, 3, 32, 32) and set(batch.labels.tolist()) <= {0, 1}


def test_missing_data_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ZsdistError, match="missing image data"):
        load_batch("cifar10", 4, 0, source=str(tmp_path / "nope.npz"))
    monkeypatch.setenv("ZSDIST_DATA", str(tmp_path / "absent"))
    with pytest.raises(ZsdistError, match="ZSDIST_DATA=.*is not a folder"):
        load_batch("cifar10", 4, 0)


def test_wrong_resolution_is_named(tmp_path):
    path = tmp_path / "imgs.npz"
    np.savez(path, images=np.zeros((8, 16, 16, 3), np.uint8), labels=np.zeros(8))
    with pytest.raises(ZsdistError, match=r"shape \(16, 16, 3\), expected \(32, 32, 3\)"):
        load_batch("cifar10", 4, 0, source=str(path))
