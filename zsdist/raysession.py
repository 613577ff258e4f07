"""Which Ray a launch runs on: the cluster the user named, or a private one started for this launch alone.

A bare `ray.init()` joins whatever Ray already runs on the machine (RAY_ADDRESS, or the latest cluster started
there). On a shared machine that is someone else's cluster, whose raylets die or whose resources are not ours, so
zsdist never calls it: without an address it starts a new local instance (`address="local"`) and stops it at
the end; with one it connects to exactly that address.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

from zsdist.settings import CACHE_ENV, DATA_ENV

# Ray warns on every start that token authentication is on; on a shared machine that is what we want, silently.
_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, announce: bool = True) -> Iterator[None]:
    """Ray for the duration of the block: connect to `address`, or start a private local instance.

    A process that has already initialised Ray itself (a library user, a test) keeps its own connection.
    Only a private Ray gets this process's data and cache settings; a cluster's nodes bring their own.
    """
    import ray

    if ray.is_initialized():
        yield
        return
    logging.getLogger(_TOKEN_LOGGER).setLevel(logging.ERROR)
    options = dict(include_dashboard=False, log_to_driver=True, logging_level="WARNING")
    if address:
        ray.init(address=address, **options)
    else:
        env = {k: os.path.abspath(os.path.expanduser(os.environ[k]))
               for k in (DATA_ENV, CACHE_ENV) if os.environ.get(k)}
        ray.init(address="local", num_cpus=num_cpus, runtime_env={"env_vars": env} if env else None, **options)
        if announce:
            resources = ray.cluster_resources()
            print(f"zsdist: started a private Ray for this launch ({resources.get('CPU', 0):g} CPUs, "
                  f"{resources.get('GPU', 0):g} GPUs); pass --address to use an existing cluster", file=sys.stderr)
    try:
        yield
    finally:
        ray.shutdown()
