"""Fixtures the unit tests share: a real in-memory Store with admission and a LocalClient.

A file that needs another store (no admission, other cluster flags, a gated client)
defines its own `store` / `client` fixture, which overrides these.
"""

from __future__ import annotations

import pytest

from netsim.api.admission import admit
from netsim.api.client import LocalClient
from netsim.api.store import Store


@pytest.fixture
def store():
    """The API's store, admission on (what `kubectl create` meets), closed after the test."""
    s = Store(":memory:", admission=admit)
    s.bootstrap()
    yield s
    s.close()


@pytest.fixture
def client(store):
    return LocalClient(store)
