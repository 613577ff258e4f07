"""Shard leases: two launches of one workflow into one results folder compute each shard once.

A launch claims a shard before dispatching it by creating `<root>/_leases/<run_id>/<table>-<key>.lease`
exclusively; the file names its owner and is renewed while the shard runs, so a lease whose owner died expires
after `ttl_s` and another launch takes the shard over. On a local or shared (POSIX) folder the claim is atomic
(exclusive create; an expired lease is taken over by an atomic rename, which only one launch can win). On object
stores (s3://, gs://), which have no exclusive create, a claim is written, read back and kept only if it still
names its owner: two launches starting the same shard within moments may both compute it, which costs time,
never results (the shard file is written atomically).
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from zsdist.store import Store

LEASES = "_leases"
TTL_S = 120.0  # a lease not renewed for this long belongs to a dead launch


@dataclass
class Leases:
    """The leases one launch holds in one results folder."""

    store: Store
    run_id: str
    ttl_s: float = TTL_S
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    held: set[str] = field(default_factory=set)

    def _path(self, name: str) -> str:
        _, root = self.store.filesystem
        return f"{root}/{LEASES}/{self.run_id}/{name}.lease"

    def _body(self) -> bytes:
        return json.dumps({"owner": self.owner, "expires": time.time() + self.ttl_s}).encode()

    def holder(self, name: str) -> dict | None:
        """The live lease on `name` ({owner, expires}), or None when there is none or it expired."""
        fs, _ = self.store.filesystem
        try:
            with fs.open_input_stream(self._path(name)) as f:
                lease = json.loads(f.read())
        except (OSError, ValueError):  # no lease, or one being replaced at this moment
            return None
        return lease if lease.get("expires", 0) > time.time() else None

    def claim(self, name: str) -> bool:
        """Take the lease on `name` unless another live launch holds it."""
        path = self._path(name)
        local = self.store.local_root is not None
        lease = self.holder(name)
        if lease is not None and lease["owner"] != self.owner:
            return False
        if local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if lease is None and os.path.exists(path):  # expired: only one launch wins the rename
                stale = f"{path}.{uuid.uuid4().hex}.expired"
                try:
                    os.rename(path, stale)
                except FileNotFoundError:
                    return False
                os.remove(stale)
            try:
                with open(path, "xb") as f:
                    f.write(self._body())
            except FileExistsError:
                return False
        else:
            fs, _ = self.store.filesystem
            with fs.open_output_stream(path) as f:
                f.write(self._body())
            if (self.holder(name) or {}).get("owner") != self.owner:
                return False
        self.held.add(name)
        return True

    def renew(self) -> None:
        """Push every held lease's expiry forward (call at least every ttl_s / 3)."""
        fs, _ = self.store.filesystem
        for name in self.held:
            path = self._path(name)
            tmp = f"{path}.{uuid.uuid4().hex}.tmp"
            with fs.open_output_stream(tmp) as f:
                f.write(self._body())
            fs.move(tmp, path)

    def release(self, name: str) -> None:
        if name in self.held:
            self.held.discard(name)
            fs, _ = self.store.filesystem
            try:
                fs.delete_file(self._path(name))
            except FileNotFoundError:  # taken over after it expired: nothing of ours to remove
                pass

    def release_all(self) -> None:
        for name in list(self.held):
            self.release(name)
