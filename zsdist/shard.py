"""The work of one shard, independent of Ray: every arch × dataset × proxy of the shard becomes a row."""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import torch
from torch import nn

from zsdist.data import Batch, load_batch
from zsdist.limits import ArchTimeout, time_limit
from zsdist.plan import Shard
from zsdist.proxies import Proxy, resolve_proxies
from zsdist.proxies.evaluate import ProxyResult, evaluate
from zsdist.spaces import create_space

MAX_SPLITS = 3  # an out-of-memory proxy is retried on 1/2, 1/4, 1/8 of the batch


def device_label(device: str) -> str:
    """The device as recorded in rows: its type plus the model name for GPUs."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return device


def evaluate_with_splits(build: Callable[[], nn.Module], batch: Batch, proxies: Sequence[Proxy], seed: int,
                         device: str) -> list[tuple[ProxyResult, int]]:
    """Evaluate; proxies that ran out of memory are retried on a halved batch, up to MAX_SPLITS times.

    Returns each result with the split factor it was computed at (1 = the whole batch).
    """
    results = {r.proxy: (r, 1) for r in evaluate(build, batch, proxies, seed, device)}
    for halvings in range(1, MAX_SPLITS + 1):
        failed = [p for p in proxies if results[p.name][0].status == "oom"]
        size = batch.size >> halvings
        if not failed or size < 1:
            break
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        smaller = Batch(batch.inputs[:size], batch.labels[:size])
        results.update((r.proxy, (r, 1 << halvings)) for r in evaluate(build, smaller, failed, seed, device))
    return [results[p.name] for p in proxies]


def row_options(proxy: Proxy, split: int = 1) -> str:
    """The `options` column of a proxy's rows: every choice behind the number (and the batch split after an OOM);
    a search reuses an earlier row only where this text is the same."""
    return json.dumps({**proxy.options, **({"oom_split": split} if split > 1 else {})}, sort_keys=True)


def compute_latency_shard(shard: Shard, devices: dict[str, dict] | None = None) -> list[dict]:
    """Latency rows of every arch × dataset of the shard on each of the job's devices; `devices` holds the
    documents of fitted devices it names (the run hands them over: a worker may not see the user's folder)."""
    from zsdist.hardware import latency_rows
    from zsdist.hardware.fitted import use_all

    use_all(devices or {})

    job = shard.job
    space = create_space(job.space)
    rows = []
    for arch_id in shard.arch_ids:
        arch = space.arch_str(arch_id)
        for dataset in job.datasets:
            rows.extend(latency_rows(space.name, arch_id, arch, dataset, lambda: space.build(arch_id, dataset),
                                     job.latency, job.latency_batch_size))
    return rows


def compute_shard(shard: Shard, version: str) -> list[dict]:
    job = shard.job
    if job.device.startswith("cuda") and not torch.cuda.is_available():
        # a shard failure, not error rows: the file is not written, so a relaunch on a working node computes it
        raise RuntimeError(f"the job asks for device {job.device}, but this worker has no usable CUDA GPU")
    space = create_space(job.space)
    proxies = resolve_proxies(job.proxies)
    by_name = {p.name: p for p in proxies}
    sources = dict(job.data)
    device = device_label(job.device)
    rows: list[dict] = []
    batches = {d: load_batch(d, job.batch_size, shard.seed, sources.get(d)) for d in job.datasets}
    for arch_id in shard.arch_ids:
        arch = space.arch_str(arch_id)
        for dataset, batch in batches.items():
            try:
                with time_limit(job.arch_timeout_s):
                    results = evaluate_with_splits(lambda: space.build(arch_id, dataset), batch, proxies,
                                                   shard.seed, job.device)
            except ArchTimeout as exc:
                results = [(ProxyResult(p.name, None, job.arch_timeout_s, "timeout", str(exc)), 1) for p in proxies]
            rows.extend(
                {"arch_id": arch_id, "arch": arch, "dataset": dataset, "proxy": r.proxy, "value": r.value,
                 "seconds": r.seconds, "status": r.status, "error": r.error, "batch_size": batch.size // split,
                 "seed": shard.seed, "device": device,
                 "options": row_options(by_name[r.proxy], split),
                 "version": version}
                for r, split in results
            )
    return rows
