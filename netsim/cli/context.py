"""What every verb needs: the cluster's API client, the namespace, kubectl-style errors."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone

from netsim.api import errors
from netsim.api.client import HttpClient
from netsim.api.resources import Resource


class CliError(Exception):
    """An error already worded for the user; main() prints it and exits 1."""


def check_cluster(name: str, flag: str | None = None) -> str:
    """Refuse an invalid cluster name (it becomes paths and interface names) in one line,
    before anything is touched. `flag` names where it came from; None: --cluster, or
    NETSIM_CLUSTER when that flag was not given."""
    from netsim.net.topology import cluster_name_error
    msg = cluster_name_error(name, flag or _cluster_flag(sys.argv[1:]))
    if msg:
        raise CliError(f"error: {msg}")
    return name


@dataclass
class Ctx:
    cluster: str
    namespace: str | None
    all_namespaces: bool
    argv: list[str]

    def __post_init__(self):
        self._client = None
        if not _cluster_verb(self.argv):  # `cluster up|down|status` checks the name it uses
            check_cluster(self.cluster, _cluster_flag(self.argv))

    def __setattr__(self, key, value):
        if key == "cluster" and "argv" in self.__dict__:  # `--cluster` after the verb's words
            check_cluster(value, "--cluster")
        super().__setattr__(key, value)

    @property
    def client(self) -> HttpClient:
        if self._client is None:
            self._client = HttpClient(self.cluster)
        return self._client

    @property
    def ns(self) -> str:
        return self.namespace or "default"

    @staticmethod
    def now() -> datetime:
        return datetime.now(timezone.utc)


def _cluster_verb(argv: list[str]) -> bool:
    from netsim.cli.main import reorder  # main imports this module
    return reorder(list(argv))[:1] == ["cluster"]


def _cluster_flag(argv: list[str]) -> str:
    return "--cluster" if any(a == "--cluster" or a.startswith("--cluster=") for a in argv) \
        else "NETSIM_CLUSTER"


def server_error(e: errors.ApiError, action: str | None = None, source: str | None = None) -> str:
    """`Error from server (NotFound): pods "x" not found` (with kubectl's 'when creating "f"')."""
    if e.code == 503 and e.reason == "ServiceUnavailable":
        return e.message
    causes = [(f"{c['field']}: " if c.get("field") else "") + c.get("message", "")
              for c in (e.details or {}).get("causes") or []]
    if e.reason == "Invalid" and causes:
        # kubectl prints field errors without "Error from server" (cmdutil.checkErr).
        prefix = f'The {e.details.get("kind")} "{e.details.get("name")}" is invalid: '
        if len(causes) == 1:
            return prefix + causes[0]
        return prefix + "\n" + "\n".join(f"* {c}" for c in causes)
    where = f'error when {action} "{source}": ' if action and source else ""
    return f"Error from server ({e.reason}): {where}{e.message}"


def ensure_root() -> None:
    if os.geteuid() != 0:
        raise CliError("netsim must run as root (it creates network namespaces): try sudo netsim ...")


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text if text.endswith("\n") else text + "\n")
    sys.stderr.flush()


def type_name(res: Resource) -> str:
    return res.type_name
