"""A workflow becomes a deterministic list of shards: the same workflow always yields the same shard keys."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from zsdist.workflow import Job, Workflow


@dataclass(frozen=True)
class Shard:
    run_id: str
    key: str  # unique within the run and table, e.g. j00-s00012
    job: Job
    arch_ids: tuple[int, ...]
    seed: int
    table: str = "scores"  # scores (proxies) or latency (hardware cost, timed apart from proxy work)
    job_index: int = 0  # position of the job in the workflow, for messages (`jobs[0]`)

    @property
    def rows(self) -> int:
        """The rows a finished shard file holds: one per arch × dataset × proxy (or latency device)."""
        per_arch = self.job.proxies if self.table == "scores" else self.job.latency
        return len(self.arch_ids) * len(self.job.datasets) * len(per_arch)

    @property
    def counted_archs(self) -> int:
        """Architectures this shard counts for: each architecture of a job once, in its scores shard (or its
        latency shard when the job has no proxies), though it has rows in both tables."""
        return len(self.arch_ids) if self.table == "scores" or not self.job.proxies else 0


def plan(workflow: Workflow) -> Iterator[Shard]:
    for j, job in enumerate(workflow.jobs):
        ids = job.arch_ids()
        tables = [t for t, wanted in (("scores", job.proxies), ("latency", job.latency)) if wanted]
        for s, start in enumerate(range(0, len(ids), job.shard_size)):
            for table in tables:
                yield Shard(workflow.run_id, f"j{j:02d}-s{s:05d}", job, tuple(ids[start:start + job.shard_size]),
                            workflow.seed, table, j)
