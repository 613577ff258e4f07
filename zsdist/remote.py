"""Running a workflow on a remote Ray cluster: bring it up from a cluster-launcher file, submit a Ray Job,
stream its logs, and return its exit status."""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsdist.errors import ZsdistError
from zsdist.settings import DATA_ENV

DASHBOARD_PORT = 8265
AGENT_WAIT_S = 120


def load_cluster_config(path: str) -> dict[str, Any]:
    """Read a cluster-launcher YAML and validate it against the JSON Schema Ray ships for these files (what
    `ray up` validates; Ray has no public validator function, its own lives in a private module)."""
    import jsonschema
    import ray.autoscaler
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ZsdistError(f"cluster file {path} does not exist")
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    try:
        config = yaml.safe_load(file.read_text())
        jsonschema.validate(config, schema)
    except (yaml.YAMLError, jsonschema.ValidationError) as exc:
        raise ZsdistError(f"invalid cluster file {path}: {str(exc).splitlines()[0]}") from None
    types = config.get("available_node_types", {})
    if types and config.get("head_node_type") not in types:
        raise ZsdistError(f"invalid cluster file {path}: head_node_type {config.get('head_node_type')!r} is not one "
                          f"of available_node_types ({', '.join(types)})")
    return config


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).close()
            return
        except OSError:
            time.sleep(2)
    raise ZsdistError(f"the Ray dashboard at {url} did not answer within {seconds:.0f} s")


def cluster_up(path: str) -> tuple[str, subprocess.Popen]:
    """`ray up` (idempotent), then forward the head's dashboard to localhost; returns its URL and the forwarder."""
    load_cluster_config(path)
    if subprocess.run(["ray", "up", "-y", path]).returncode != 0:
        raise ZsdistError(f"`ray up -y {path}` failed; see its output above")
    forward = subprocess.Popen(["ray", "dashboard", "--port", str(DASHBOARD_PORT), path])
    url = f"http://127.0.0.1:{DASHBOARD_PORT}"
    _wait_for(url, 120)
    return url, forward


def _client(dashboard: str) -> Any:
    """A Jobs client of exactly `dashboard`: Ray lets RAY_ADDRESS / RAY_API_SERVER_ADDRESS override the address it
    is given, which on a machine with another Ray would submit the job to that cluster instead."""
    from ray.job_submission import JobSubmissionClient

    saved = {k: os.environ.pop(k) for k in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS") if k in os.environ}
    try:
        return JobSubmissionClient(dashboard)
    finally:
        os.environ.update(saved)


def submit(dashboard: str, workflow: str, output: str | None, options: Sequence[str] = ()) -> int:
    """Submit `zsdist launch` as a Ray Job (the workflow's folder is shipped as the working dir), stream its
    logs, and return 0 when the job succeeded."""
    from ray.job_submission import JobStatus

    wf = Path(workflow).resolve()
    if output is not None and "://" not in output and not os.path.isabs(output):
        raise ZsdistError(f"--output {output} must be an absolute path or a URI that every node can write")
    entry = ["python", "-m", "zsdist", "launch", "--workflow", wf.name, "--address", "auto"]
    entry += ["--output", output] if output else []
    entry += list(options)  # --fresh / --resume RUN_ID, as given to this launch
    env = {DATA_ENV: os.environ[DATA_ENV]} if os.environ.get(DATA_ENV) else {}
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            client = _client(dashboard)
            job_id = client.submit_job(entrypoint=shlex.join(entry),
                                       runtime_env={"working_dir": str(wf.parent), "env_vars": env},
                                       metadata={"workflow": wf.name})
            break
        except (ConnectionError, RuntimeError, ValueError) as exc:
            # a freshly started head answers "No available agent" until its job agent is up
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise ZsdistError(f"could not submit to the Ray cluster at {dashboard}: {exc}") from None
            time.sleep(2)
    print(f"submitted Ray Job {job_id} to {dashboard}", flush=True)

    async def stream() -> None:
        async for lines in client.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    asyncio.run(stream())
    status = client.get_job_status(job_id)
    print(f"Ray Job {job_id}: {status}", flush=True)
    return 0 if status == JobStatus.SUCCEEDED else 1
