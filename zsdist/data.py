"""Input batches: real images of a job's dataset, normalised, chosen by the seed.

Images come from an .npz (`images` N×H×W×3 uint8, `labels`), a folder of class sub-folders, or torchvision's
CIFAR python batches (a `cifar-10-batches-py` / `cifar-100-python` folder or one batch file); a job's `data` may
also name a reference image source (e.g. "cifar10_test", after `zsdist data fetch cifar10_test`). The default for
each dataset is a reference file (zsdist.settings: embedded, cached or in ZSDIST_DATA).

Importing this module is cheap (no torch): workflow validation reads the DATASETS registry.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zsdist.errors import ZsdistError
from zsdist.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import torch


@dataclass(frozen=True)
class Dataset:
    name: str
    num_classes: int
    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    default_file: str  # in the reference-data layout (zsdist.settings.data_file)
    # The default images stand in from another dataset (no reference images of this one): each image's label is
    # its class's rank among the file's classes, modulo num_classes, so that loss-based proxies run on balanced
    # labels; users bring real images with a job's `data`.
    stand_in: bool = False
    # Images are stored at this resolution and bilinearly upsampled to `resolution` (0: stored as used).
    stored_resolution: int = 0


DATASETS: Registry[Dataset] = Registry("dataset")
for _d in (
    # The embedded 300-image sample, the same on every machine (the full test set: data = { cifar10 = "cifar10_test" }).
    Dataset("cifar10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), "images/cifar10_sample.npz"),
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
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ZsdistError(f"image folder {folder} has no class sub-folders (nor CIFAR python batches)")
    images, labels = [], []
    for label, cls in enumerate(classes):
        for file in sorted((folder / cls).iterdir()):
            try:
                with Image.open(file) as img:
                    resized = img.convert("RGB").resize((resolution, resolution), Image.Resampling.BILINEAR)
                    images.append(np.asarray(resized))
            except (UnidentifiedImageError, OSError) as exc:
                raise ZsdistError(f"{file} is not a readable image ({exc})") from None
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


# torchvision's CIFAR python batches: the test batch of each dataset, and the key of its labels.
_CIFAR_BATCHES = (("test_batch", b"labels"), ("test", b"fine_labels"))


def _load_cifar_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch (a pickled dict of `data` N×3072 uint8 and labels), unpickled as plain data only."""
    import numpy as np

    from zsdist.refdata.formats import load_data_pickle

    batch = load_data_pickle(file)
    if isinstance(batch, dict):
        batch = {k.encode("latin1") if isinstance(k, str) else k: v for k, v in batch.items()}
    key = next((k for _, k in _CIFAR_BATCHES if isinstance(batch, dict) and k in batch), None)
    data = batch.get(b"data") if isinstance(batch, dict) else None
    if key is None or not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072:
        raise ZsdistError(f"{file} is not a CIFAR python batch (a dict of 'data' N×3072 uint8 and labels)")
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(batch[key], dtype=np.int64)


def _read_images(source: Path, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    from zsdist.refdata.formats import load_npz

    if source.is_dir():
        batch = next((source / name for name, _ in _CIFAR_BATCHES if (source / name).is_file()), None)
        return _load_cifar_batch(batch) if batch else _load_folder(source, resolution)
    if source.suffix.lower() != ".npz":
        return _load_cifar_batch(source)
    arrays = load_npz(source, ("images", "labels"))
    return arrays["images"], np.asarray(arrays["labels"]).astype(np.int64)


@functools.lru_cache(maxsize=8)
def _load(path: str, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    source = Path(path)
    if not source.exists():
        raise ZsdistError(f"missing image data {source}")
    images, labels = _read_images(source, resolution)
    if images.ndim != 4 or images.shape[1:] != (resolution, resolution, 3):
        raise ZsdistError(f"{source} holds images of shape {images.shape[1:]}, expected {(resolution, resolution, 3)}")
    if len(labels) != len(images):
        raise ZsdistError(f"{source} holds {len(images)} images but {len(labels)} labels")
    return images, labels


def image_path(dataset: str, source: str | None = None) -> str:
    """Where a dataset's images come from: the job's `data` (a path, or the name of a reference image source)
    or the dataset's default reference file."""
    from zsdist.refdata.sources import SOURCES
    from zsdist.settings import data_file

    if source is None:
        return str(data_file(DATASETS.get(dataset).default_file))
    named = SOURCES.get(source).files[0].path if source in SOURCES and not Path(source).exists() else ""
    return str(data_file(named)) if named.endswith(".npz") else source


def load_batch(dataset: str, batch_size: int, seed: int, source: str | None = None) -> Batch:
    """`batch_size` distinct images chosen by `seed` (fewer, with a warning, when the data holds fewer)."""
    import numpy as np
    import torch

    spec = DATASETS.get(dataset)
    path = image_path(dataset, source)
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
