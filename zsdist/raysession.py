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
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from zsdist.errors import ZsdistError
from zsdist.settings import CACHE_ENV, DATA_ENV

STARTS = 2

# Ray warns on every start that token authentication is on; on a shared machine that is what we want, silently.
_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


def _start_private(num_cpus: int | None, runtime_env: dict | None, options: dict) -> None:
    """Start a new local Ray. Its raylet must register within Ray's fixed 30 s, which a heavily loaded machine
    can miss: one more try, then one line instead of Ray's traceback."""
    import ray

    for attempt in range(STARTS):
        try:
            ray.init(address="local", num_cpus=num_cpus, runtime_env=runtime_env, **options)
            return
        except Exception as exc:
            ray.shutdown()
            if attempt == STARTS - 1:
                first = str(exc).splitlines()[0]
                raise ZsdistError(f"could not start a private Ray on this machine: {first}") from None


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
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    options: dict[str, Any] = dict(include_dashboard=False, log_to_driver=True, logging_level="WARNING")
    if address:
        ray.init(address=address, **options)
    else:
        env = {k: os.path.abspath(os.path.expanduser(os.environ[k]))
               for k in (DATA_ENV, CACHE_ENV) if os.environ.get(k)}
        _start_private(num_cpus, {"env_vars": env} if env else None, options)
        if announce:
            resources = ray.cluster_resources()
            print(f"zsdist: started a private Ray for this launch ({resources.get('CPU', 0):g} CPUs, "
                  f"{resources.get('GPU', 0):g} GPUs); pass --address to use an existing cluster", file=sys.stderr)
    if threading.current_thread() is threading.main_thread():
        for signum, handler in handlers.items():  # Ray's core replaced them with one that aborts the process
            if handler is not None:
                signal.signal(signum, handler)
    try:
        yield
    finally:
        ray.shutdown()
