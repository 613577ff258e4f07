"""The work of one shard, independent of Ray: every arch × dataset × proxy of the shard becomes a row."""
from __future__ import annotations

import json
from typing import Callable

import torch

from zsdist.data import load_batch
from zsdist.plan import Shard
from zsdist.proxies import resolve_proxies
from zsdist.proxies.evaluate import evaluate
from zsdist.spaces import create_space


def device_label(device: str) -> str:
    """The device as recorded in rows: its type plus the model name for GPUs."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def compute_shard(shard: Shard, version: str, on_arch: Callable[[], None] | None = None) -> list[dict]:
    job = shard.job
    space = create_space(job.space)
    proxies = resolve_proxies(job.proxies)
    options = {p.name: json.dumps(dict(p.options), sort_keys=True) for p in proxies}
    sources = dict(job.data)
    device = device_label(job.device)
    rows = []
    batches = {d: load_batch(d, job.batch_size, shard.seed, sources.get(d)) for d in job.datasets}
    for arch_id in shard.arch_ids:
        arch = space.arch_str(arch_id)
        for dataset, batch in batches.items():
            results = evaluate(lambda: space.build(arch_id, dataset), batch, proxies, shard.seed, job.device)
            rows.extend(
                {"arch_id": arch_id, "arch": arch, "dataset": dataset, "proxy": r.proxy, "value": r.value,
                 "seconds": r.seconds, "status": r.status, "error": r.error, "batch_size": batch.size,
                 "seed": shard.seed, "device": device, "options": options[r.proxy], "version": version}
                for r in results
            )
        if on_arch:
            on_arch()
    return rows
