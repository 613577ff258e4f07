"""The measured devices: a worker times the built network on its own CPU or GPU (hw_models.measure), on seeded
random inputs at the dataset's resolution."""
from __future__ import annotations

from dataclasses import asdict

import torch

from hw_models.measure import measure
from zsdist.hardware import Estimate, Query, register_device
from zsdist.hardware.features import input_shape


def _measured(device: str):
    def estimate(query: Query) -> Estimate:
        generator = torch.Generator().manual_seed(0)
        inputs = torch.randn(input_shape(query.dataset, query.batch_size), generator=generator)
        timing = measure(query.build(), inputs, device)
        return Estimate(timing.median_ms, None, "measured", timing.batch_size, asdict(timing))
    return estimate


register_device("cpu", "measured", "this worker's CPU, timed with PyTorch")(_measured("cpu"))
register_device("cuda", "measured", "this worker's first GPU, timed with CUDA events")(_measured("cuda"))
