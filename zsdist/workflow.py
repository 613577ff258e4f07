"""Workflow files (TOML) → plain frozen dataclasses, validated against the registries before anything runs.

The dataclass fields are the schema (zsdist.schema): each declares its key's help, default and bounds once, and
the validator, `zsdist schema` (JSON Schema for editors) and the README's key table all come from them. The
TOML is parsed and checked for shape before any registry is consulted, so a typo is reported in well under a
second; registries (spaces, datasets, proxies, devices) are consulted only for a well-formed file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomllib

from zsdist.errors import ZsdistError
from zsdist.names import check_component
from zsdist.schema import build, expect, identity, json_schema, key, unknown_keys

_ARCHS_FORMS = ('"all", "truth", { sample = N, seed = S }, { ids = [...] } or { archs = ["arch string", ...] }')


@dataclass(frozen=True)
class Archs:
    """Which architectures of a space: every one, those with ground truth, a seeded sample, or explicit ids."""

    kind: str  # all | truth | sample | ids
    n: int = 0
    seed: int = 0
    ids: tuple[int, ...] = ()
    strings: tuple[str, ...] = ()  # arch strings as written, until resolved to ids against the space


def _int(value: Any, where: str, minimum: int) -> int:
    if expect(value, int, where) < minimum:
        raise ZsdistError(f"{where} must be at least {minimum}, not {value}")
    return value


def _parse_archs(value: Any, where: str) -> Archs:
    if value in ("all", "truth"):
        return Archs(value)
    if not isinstance(value, dict):
        raise ZsdistError(f"{where} must be {_ARCHS_FORMS}, not {value!r}")
    if "sample" in value:
        unknown_keys(set(value), {"sample", "seed"}, where)
        return Archs("sample", n=_int(value["sample"], f"{where}.sample", 1),
                     seed=_int(value.get("seed", 0), f"{where}.seed", 0))
    if "ids" in value:
        unknown_keys(set(value), {"ids"}, where)
        ids = expect(value["ids"], list, f"{where}.ids")
        return Archs("ids", ids=tuple(_int(i, f"{where}.ids[{n}]", 0) for n, i in enumerate(ids)))
    if "archs" in value:
        unknown_keys(set(value), {"archs"}, where)
        strings = expect(value["archs"], list, f"{where}.archs")
        return Archs("ids", strings=tuple(expect(a, str, f"{where}.archs[{n}]") for n, a in enumerate(strings)))
    raise ZsdistError(f"{where} must be {_ARCHS_FORMS}, not {value!r}")


def _parse_proxies(value: Any, where: str) -> tuple[str, ...]:
    if value == "all":
        return ("all",)
    names = expect(value, list, where)
    return tuple(expect(n, str, f"{where}[{i}]") for i, n in enumerate(names))


def _parse_data(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, expect(v, str, f"{where}.{k}")) for k, v in expect(value, dict, where).items()))


def _parse_name(value: Any, where: str) -> str:
    return check_component(expect(value, str, where), where)


def _parse_device(value: Any, where: str) -> str:
    device = expect(value, str, where)
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ZsdistError(f"{where} must be \"cpu\", \"cuda\" or \"cuda:N\", not {device!r}")
    return device


@dataclass(frozen=True)
class Job:
    space: str = key("Search space (`zsdist spaces`).")
    datasets: tuple[str, ...] = key("Datasets to evaluate on (the space's own; `zsdist spaces`).", minimum=1)
    archs: Archs = key(f"Architectures: {_ARCHS_FORMS}.", parse=_parse_archs,
                       json={"oneOf": [{"enum": ["all", "truth"]}, {"type": "object"}]})
    proxies: tuple[str, ...] = key('Proxies (`zsdist proxies`), or "all".', default=(), parse=_parse_proxies,
                                   json={"oneOf": [{"const": "all"}, {"type": "array", "items": {"type": "string"}}]})
    batch_size: int = key("Images per proxy batch.", default=64, minimum=1)
    shard_size: int = key("Architectures per shard (one Ray task, one Parquet file).", default=32, minimum=1)
    latency: tuple[str, ...] = key("Latency devices: measured (cpu, cuda), tables and predictors (raspi4, …).",
                                   default=())
    device: str = key('Where proxies run: "cpu", "cuda" or "cuda:N".', default="cpu", parse=_parse_device,
                      json={"type": "string", "pattern": "^(cpu|cuda(:[0-9]+)?)$"})
    data: tuple[tuple[str, str], ...] = key("Your own images per dataset: { cifar10 = \"images.npz or folder\" }.",
                                            default=(), parse=_parse_data,
                                            json={"type": "object", "additionalProperties": {"type": "string"}})
    num_cpus: float = key("CPUs per shard task (also its torch threads).", default=1.0, exclusive_minimum=0)
    num_gpus: float = key("GPUs per shard task; a fraction shares a GPU.", default=0.0, minimum=0)
    arch_timeout_s: float = key("Seconds per architecture × dataset before a `timeout` row; 0 disables.",
                                default=600.0, minimum=0)
    latency_batch_size: int = key("Batch size of latency measurements and lookups.", default=1, minimum=1)

    def arch_ids(self) -> list[int]:
        from zsdist.spaces import create_space

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
    name: str = key("Run name: the run id is name[-date]-<config hash>.", parse=_parse_name, hashed=False)
    output: str = key("Results folder or URI (s3://, gs://, file://).", default="results", hashed=False)
    seed: int = key("Picks each input batch and seeds every network's init.", default=0, minimum=0)
    dated: bool = key("Put the UTC day in the run id (nightly runs): a second launch that day resumes it.",
                      default=False, hashed=False)
    jobs: tuple[Job, ...] = ()
    text: str = field(default="", compare=False)
    stamp: str = ""  # the date (or, for a fresh run, date and time) in the run id

    @property
    def config_hash(self) -> str:
        """Hash of every setting that changes a number or the shard layout (not the name or the output), so a
        rerun finds its shards and a renamed workflow is recognisably the same computation."""
        config = {**identity(self), "jobs": [identity(j) for j in self.jobs]}
        return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def run_id(self) -> str:
        return "-".join(filter(None, (self.name, self.stamp, self.config_hash)))


def _resolve(job: Job, where: str) -> Job:
    """Check a well-formed job against the registries: names exist, ids are in the space, settings agree."""
    from zsdist.data import DATASETS
    from zsdist.hardware import DEVICES
    from zsdist.proxies.catalog import proxy_names
    from zsdist.spaces import create_space

    space = create_space(job.space)
    for dataset in job.datasets:
        space.check_dataset(DATASETS.get(dataset).name)
    for dataset, _ in job.data:
        if dataset not in job.datasets:
            raise ZsdistError(f"{where}.data.{dataset} names a dataset the job does not evaluate "
                              f"(datasets: {', '.join(job.datasets)})")
    archs = job.archs
    if archs.strings:
        archs = Archs("ids", ids=tuple(space.parse(a) for a in archs.strings))
    if archs.kind == "sample" and archs.n > space.size:
        raise ZsdistError(f"{where}.archs: a sample of {archs.n} does not fit space '{space.name}' of {space.size:,} "
                          f"architectures")
    for device in job.latency:
        DEVICES.get(device)
    if not job.proxies and not job.latency:
        raise ZsdistError(f"{where} asks for neither proxies nor latency")
    if job.device.startswith("cuda") and job.num_gpus == 0:
        raise ZsdistError(f"{where}.device = \"{job.device}\" needs num_gpus > 0 (the GPU share of each shard task)")
    if job.num_gpus > 1 and not job.num_gpus.is_integer():
        raise ZsdistError(f"{where}.num_gpus above 1 must be a whole number, not {job.num_gpus:g}")
    proxies = proxy_names("all" if job.proxies == ("all",) else list(job.proxies))
    job = dataclasses.replace(job, space=space.name, archs=archs, proxies=tuple(proxies))
    job.arch_ids()  # the selection itself: ids in range, ground truth present for "truth"
    return job


def parse_workflow(text: str, source: str = "<workflow>", fresh: bool = False) -> Workflow:
    """A validated workflow; `fresh` stamps the run id with the date and time, so it starts a new run."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ZsdistError(f"malformed workflow file {source}: {exc}") from None
    unknown_keys(set(raw), {"run", "jobs"}, source)
    if "run" not in raw:
        raise ZsdistError(f"{source} has no [run] table (it needs at least name = \"...\")")
    jobs_raw = expect(raw.get("jobs", []), list, f"{source} [[jobs]]")
    if not jobs_raw:
        raise ZsdistError(f"{source} has no [[jobs]]")
    jobs = tuple(build(Job, j, f"jobs[{i}]") for i, j in enumerate(jobs_raw))  # shape first: no registry yet
    workflow = build(Workflow, raw["run"], "run", jobs=jobs, text=text)
    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S") if fresh else now.strftime("%Y%m%d") if workflow.dated else ""
    return dataclasses.replace(workflow, stamp=stamp,
                               jobs=tuple(_resolve(j, f"jobs[{i}]") for i, j in enumerate(jobs)))


def resumed(workflow: Workflow, run_id: str) -> Workflow:
    """The workflow as run `run_id` (e.g. a --fresh run to finish): same name and settings, that run's stamp."""
    head, tail = f"{workflow.name}-", f"-{workflow.config_hash}"
    if run_id == f"{workflow.name}-{workflow.config_hash}":
        return dataclasses.replace(workflow, stamp="")
    if not (run_id.startswith(head) and run_id.endswith(tail) and len(run_id) > len(head) + len(tail)):
        raise ZsdistError(f"run {run_id} is not a run of this workflow (its runs are {head}[STAMP-]"
                          f"{workflow.config_hash}): the name or a setting differs")
    return dataclasses.replace(workflow, stamp=run_id[len(head):-len(tail)])


def workflow_schema() -> dict:
    """JSON Schema of a workflow file, for editors (`zsdist schema`)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "zsdist workflow",
            "type": "object", "additionalProperties": False, "required": ["run", "jobs"],
            "properties": {"run": json_schema(Workflow),
                           "jobs": {"type": "array", "minItems": 1, "items": json_schema(Job)}}}


def load_workflow(path: str | Path, fresh: bool = False) -> Workflow:
    path = Path(path)
    if not path.is_file():
        raise ZsdistError(f"workflow file {path} {'is a folder' if path.is_dir() else 'does not exist'}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ZsdistError(f"cannot read workflow file {path}: {exc}") from None
    return parse_workflow(text, str(path), fresh)
