"""Input batches: real images of a job's dataset, normalised, chosen by the seed.

Images come from an .npz (`images` N×H×W×3 uint8, `labels`) or from a folder of class sub-folders; the default
for each dataset is the reference file under ZSDIST_DATA.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zsdist.errors import ZsdistError
from zsdist.registry import Registry
from zsdist.settings import data_file


@dataclass(frozen=True)
class Dataset:
    name: str
    num_classes: int
    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    default_file: str  # relative to ZSDIST_DATA
    # The default images stand in from another dataset (no reference images of this one): each image's label is
    # its class's rank among the file's classes, modulo num_classes, so that loss-based proxies run on balanced
    # labels; users bring real images with a job's `data`.
    stand_in: bool = False
    # Images are stored at this resolution and bilinearly upsampled to `resolution` (0: stored as used).
    stored_resolution: int = 0


DATASETS: Registry[Dataset] = Registry("dataset")
for _d in (
    Dataset("cifar10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "images/cifar10_test.npz"),
    Dataset("cifar100", 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), "images/cifar100_samples.npz"),
    Dataset("imagenet16_120", 120, 16, (0.4811, 0.4575, 0.4079), (0.2479, 0.2402, 0.2552),
            "images/imagenet16_120_sample.npz"),
    Dataset("imagenet", 1000, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "images/imagenet_val_sample_224.npz"),
    # TransNAS-Bench-101 classification tasks on Taskonomy (47 scene / 75 object classes, 256×256, Taskonomy's
    # normalisation); stand-in images: the ImageNet sample upsampled from 224.
    Dataset("class_scene", 47, 256, (0.5224, 0.5222, 0.5221), (0.2234, 0.2235, 0.2236),
            "images/imagenet_val_sample_224.npz", stand_in=True, stored_resolution=224),
    Dataset("class_object", 75, 256, (0.5224, 0.5222, 0.5221), (0.2234, 0.2235, 0.2236),
            "images/imagenet_val_sample_224.npz", stand_in=True, stored_resolution=224),
    # ViT ground truth (AutoFormer / PiT subnets fine-tuned at 224×224): CIFAR-100 upsampled from 32×32, and
    # Oxford Flowers-102 / Chaoyang (4 pathology classes), which have no reference images here (stand-ins).
    Dataset("cifar100_224", 100, 224, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
            "images/cifar100_samples.npz", stored_resolution=32),
    Dataset("flowers102", 102, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
            "images/imagenet_val_sample_224.npz", stand_in=True),
    Dataset("chaoyang", 4, 224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
            "images/imagenet_val_sample_224.npz", stand_in=True),
):
    DATASETS.add(_d.name, _d)


@dataclass(frozen=True)
class Batch:
    inputs: torch.Tensor  # N×3×H×W float32, normalised
    labels: torch.Tensor  # N int64

    @property
    def size(self) -> int:
        return int(self.inputs.shape[0])


def _load_folder(folder: Path, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ZsdistError(f"image folder {folder} has no class sub-folders")
    images, labels = [], []
    for label, cls in enumerate(classes):
        for file in sorted((folder / cls).iterdir()):
            with Image.open(file) as img:
                images.append(np.asarray(img.convert("RGB").resize((resolution, resolution), Image.BILINEAR)))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


@functools.lru_cache(maxsize=8)
def _load(path: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    source = Path(path)
    if not source.exists():
        raise ZsdistError(f"missing image data {source}")
    if source.is_dir():
        return _load_folder(source, resolution)
    with np.load(source) as npz:
        if "images" not in npz or "labels" not in npz:
            raise ZsdistError(f"{source} must hold arrays 'images' (N×H×W×3 uint8) and 'labels'")
        images, labels = npz["images"], npz["labels"].astype(np.int64)
    if images.ndim != 4 or images.shape[1:] != (resolution, resolution, 3):
        raise ZsdistError(f"{source} holds images of shape {images.shape[1:]}, expected ({resolution}, {resolution}, 3)")
    return images, labels


def load_batch(dataset: str, batch_size: int, seed: int, source: str | None = None) -> Batch:
    """`batch_size` distinct images chosen by `seed` (fewer, with a warning, when the data holds fewer)."""
    spec = DATASETS.get(dataset)
    path = source or str(data_file(spec.default_file))
    images, labels = _load(path, spec.stored_resolution or spec.resolution)
    n = min(batch_size, len(images))
    if n < batch_size:
        warnings.warn(f"{path} holds only {len(images)} images; the {dataset} batch has {n}, not {batch_size}",
                      stacklevel=2)
    pick = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
    x = torch.from_numpy(images[pick]).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != spec.resolution:
        x = torch.nn.functional.interpolate(x, size=spec.resolution, mode="bilinear", align_corners=False)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    picked = (np.unique(labels, return_inverse=True)[1][pick] % spec.num_classes) if spec.stand_in else labels[pick]
    return Batch(inputs=((x - mean) / std).contiguous(), labels=torch.from_numpy(picked))
