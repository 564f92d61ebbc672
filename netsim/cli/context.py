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


@dataclass
class Ctx:
    cluster: str
    namespace: str | None
    all_namespaces: bool
    argv: list[str]

    def __post_init__(self):
        self._client = None

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


def server_error(e: errors.ApiError, action: str | None = None, source: str | None = None) -> str:
    """`Error from server (NotFound): pods "x" not found` (with kubectl's 'when creating "f"')."""
    if e.code == 503 and e.reason == "ServiceUnavailable":
        return e.message
    causes = [c.get("message", "") for c in (e.details or {}).get("causes") or []]
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
