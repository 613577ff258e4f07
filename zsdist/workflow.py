"""Workflow files (TOML) → plain frozen dataclasses, validated against the registries before anything runs."""
from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import datetime, timezone
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zsdist.data import DATASETS
from zsdist.errors import ZsdistError
from zsdist.proxies import resolve_proxies
from zsdist.spaces import create_space
from zsdist.spaces.base import SearchSpace

_RUN_KEYS = {"name", "output", "seed", "dated"}
_JOB_KEYS = {"space", "datasets", "archs", "proxies", "batch_size", "shard_size", "latency", "device", "data",
             "num_cpus", "num_gpus", "arch_timeout_s",
             "latency_batch_size"}


@dataclass(frozen=True)
class Archs:
    """Which architectures of a space: every one, a seeded sample, or explicit ids."""

    kind: str  # all | truth | sample | ids
    n: int = 0
    seed: int = 0
    ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Job:
    space: str
    datasets: tuple[str, ...]
    archs: Archs
    proxies: tuple[str, ...]
    batch_size: int = 64
    shard_size: int = 32
    latency: tuple[str, ...] = ()
    device: str = "cpu"
    data: tuple[tuple[str, str], ...] = ()  # dataset → user image source (.npz or class folders)
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    arch_timeout_s: float = 600.0  # per architecture × dataset; 0 disables
    latency_batch_size: int = 1

    def arch_ids(self) -> list[int]:
        space = create_space(self.space)
        if self.archs.kind == "all":
            return list(space.enumerate())
        if self.archs.kind == "truth":
            from zsdist.truth import truth_ids

            return truth_ids(space.name)
        if self.archs.kind == "sample":
            return space.sample(self.archs.n, self.archs.seed)
        return sorted({space.check_id(i) for i in self.archs.ids})


@dataclass(frozen=True)
class Workflow:
    name: str
    output: str
    seed: int
    jobs: tuple[Job, ...]
    text: str = field(default="", compare=False)
    date: str = ""  # YYYYMMDD in the run id of dated (nightly) runs

    @property
    def config_hash(self) -> str:
        """Hash of every setting that changes a number (not the output path), so a rerun finds its shards."""
        config = {"name": self.name, "seed": self.seed, "jobs": [asdict(j) for j in self.jobs]}
        return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def run_id(self) -> str:
        return "-".join(filter(None, (self.name, self.date, self.config_hash)))


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ZsdistError(f"{where} must be {' or '.join(k.__name__ for k in kinds)}, not {value!r}")
    return value


def _unknown(keys: set[str], allowed: set[str], where: str) -> None:
    extra = sorted(keys - allowed)
    if extra:
        raise ZsdistError(f"{where} has unknown key(s) {', '.join(extra)} (allowed: {', '.join(sorted(allowed))})")


def _archs(value: Any, space: SearchSpace, where: str) -> Archs:
    if value in ("all", "truth"):
        return Archs(value)
    _expect(value, dict, where)
    if "sample" in value:
        _unknown(set(value), {"sample", "seed"}, where)
        return Archs("sample", n=_expect(value["sample"], int, f"{where}.sample"),
                     seed=_expect(value.get("seed", 0), int, f"{where}.seed"))
    if "ids" in value:
        _unknown(set(value), {"ids"}, where)
        ids = _expect(value["ids"], list, f"{where}.ids")
        return Archs("ids", ids=tuple(_expect(i, int, f"{where}.ids[]") for i in ids))
    if "archs" in value:
        _unknown(set(value), {"archs"}, where)
        strings = _expect(value["archs"], list, f"{where}.archs")
        return Archs("ids", ids=tuple(space.parse(_expect(a, str, f"{where}.archs[]")) for a in strings))
    raise ZsdistError(f'{where} must be "all", "truth", {{ sample = N, seed = S }}, {{ ids = [...] }} or '
                      f'{{ archs = [...] }}')


def _job(raw: Any, index: int) -> Job:
    where = f"jobs[{index}]"
    _expect(raw, dict, where)
    _unknown(set(raw), _JOB_KEYS, where)
    for key in ("space", "datasets", "archs"):
        if key not in raw:
            raise ZsdistError(f"{where} is missing '{key}'")
    space = create_space(_expect(raw["space"], str, f"{where}.space"))
    datasets = tuple(_expect(d, str, f"{where}.datasets[]") for d in _expect(raw["datasets"], list, f"{where}.datasets"))
    for d in datasets:
        space.check_dataset(DATASETS.get(d).name)
    archs = _archs(raw["archs"], space, f"{where}.archs")
    proxies = raw.get("proxies", [])
    proxies = proxies if proxies == "all" else _expect(proxies, list, f"{where}.proxies")
    data = _expect(raw.get("data", {}), dict, f"{where}.data")
    job = Job(
        space=space.name,
        datasets=datasets,
        archs=archs,
        proxies=tuple(p.name for p in resolve_proxies(proxies)),
        batch_size=_expect(raw.get("batch_size", 64), int, f"{where}.batch_size"),
        shard_size=_expect(raw.get("shard_size", 32), int, f"{where}.shard_size"),
        latency=tuple(_expect(d, str, f"{where}.latency[]") for d in _expect(raw.get("latency", []), list, f"{where}.latency")),
        device=_expect(raw.get("device", "cpu"), str, f"{where}.device"),
        data=tuple(sorted((DATASETS.get(k).name, _expect(v, str, f"{where}.data.{k}")) for k, v in data.items())),
        num_cpus=float(_expect(raw.get("num_cpus", 1), (int, float), f"{where}.num_cpus")),
        num_gpus=float(_expect(raw.get("num_gpus", 0), (int, float), f"{where}.num_gpus")),
        arch_timeout_s=float(_expect(raw.get("arch_timeout_s", 600), (int, float), f"{where}.arch_timeout_s")),
        latency_batch_size=_expect(raw.get("latency_batch_size", 1), int, f"{where}.latency_batch_size"),
    )
    if min(job.batch_size, job.shard_size, job.latency_batch_size) < 1:
        raise ZsdistError(f"{where}: batch_size, shard_size and latency_batch_size must be positive")
    if not job.proxies and not job.latency:
        raise ZsdistError(f"{where} asks for neither proxies nor latency")
    if job.latency:
        from hw_models import DEVICES

        for device in job.latency:
            DEVICES.get(device)
    job.arch_ids()  # validates the selection now rather than on a worker
    return job


def parse_workflow(text: str, source: str = "<workflow>") -> Workflow:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ZsdistError(f"malformed workflow file {source}: {exc}") from None
    _unknown(set(raw), {"run", "jobs"}, source)
    run = _expect(raw.get("run", {}), dict, f"{source} [run]")
    _unknown(set(run), _RUN_KEYS, f"{source} [run]")
    if "name" not in run:
        raise ZsdistError(f"{source} [run] is missing 'name'")
    jobs = _expect(raw.get("jobs", []), list, f"{source} [[jobs]]")
    if not jobs:
        raise ZsdistError(f"{source} has no [[jobs]]")
    return Workflow(
        name=_expect(run["name"], str, "run.name"),
        output=_expect(run.get("output", "results"), str, "run.output"),
        seed=_expect(run.get("seed", 0), int, "run.seed"),
        jobs=tuple(_job(j, i) for i, j in enumerate(jobs)),
        text=text,
        date=datetime.now(timezone.utc).strftime("%Y%m%d") if _expect(run.get("dated", False), bool, "run.dated") else "",
    )


def load_workflow(path: str | Path) -> Workflow:
    path = Path(path)
    if not path.is_file():
        raise ZsdistError(f"workflow file {path} does not exist")
    return parse_workflow(path.read_text(), str(path))
