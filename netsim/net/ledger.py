"""The ledger: an append-only record of every kernel object and process netsim creates.

`cluster down` undoes exactly what is written here, in reverse order, so cleanup never
guesses from name patterns and still works after every netsim process was SIGKILLed.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator

STATE_ROOT = "/var/lib/netsim"
RUN_ROOT = "/run/netsim"


def state_dir(cluster: str) -> str:
    return os.path.join(STATE_ROOT, cluster)


def run_dir(cluster: str) -> str:
    return os.path.join(RUN_ROOT, cluster)


def private_dir(path: str) -> str:
    """Make `path` a folder only root may enter (0700, as etcd keeps its data dir): the
    store, its WAL, secrets and logs live below. Also tightens a folder made before."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


# Kinds of records whose objects a reboot removes (kernel objects, processes), and undo marks
# (undoing a removed object again is a no-op): not fsynced.
VOLATILE = frozenset({"netns", "cgroup", "process", "link", "route", "mount", "tmpfs", "qdisc",
                      "forget"})


class Ledger:
    """Records are dicts like {"kind": "netns", "name": "netsim-lan"}; appended with flock."""

    def __init__(self, cluster: str, root: str | None = None):
        self.cluster = cluster
        base = root or state_dir(cluster)
        if root is None:
            private_dir(STATE_ROOT)
        private_dir(base)
        self.path = os.path.join(base, "ledger.jsonl")

    def add(self, kind: str, **fields) -> None:
        self.add_all([{"kind": kind, **fields}])

    def add_all(self, records: list[dict]) -> None:
        """Append several records (each with its "kind") under one lock.

        A record is in the file once write() returns: `down` reads it even after its writer
        was SIGKILLed. Only records of what outlives a reboot (folders, files) are also
        fsynced, after the lock is released so that the agents' syncs overlap: an fsync is
        5-40 ms on a busy disk, and each of a node's pods recorded three objects, one after
        another on its agent's sync thread (a fifth of that thread's time at 1,000 pods)."""
        if not records:
            return
        text = "".join(json.dumps(rec, sort_keys=True) + "\n" for rec in records)
        with open(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(text)
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)
            if any(rec.get("kind") not in VOLATILE for rec in records):
                os.fsync(f.fileno())

    def forget(self, kind: str, **fields) -> None:
        """Mark a record as undone (the object was removed on purpose)."""
        self.add("forget", what={"kind": kind, **fields})

    def records(self) -> list[dict]:
        """Live records in creation order (forgotten ones dropped, duplicates merged).

        One pass keyed by each record's canonical JSON: a cluster of thousands of pods
        writes tens of thousands of lines (netns, dirs, cgroups and their forgets), and a
        list scan per line made every `down` and agent restart quadratic in them."""
        if not os.path.exists(self.path):
            return []
        live: dict[str, dict] = {}
        with open(self.path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line after a crash
                if rec["kind"] == "forget":
                    live.pop(json.dumps(rec["what"], sort_keys=True), None)
                else:
                    live.setdefault(json.dumps(rec, sort_keys=True), rec)
        return list(live.values())

    def __iter__(self) -> Iterator[dict]:
        return iter(self.records())
