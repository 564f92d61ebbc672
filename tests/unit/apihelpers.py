"""Helpers for the API-facing unit tests: a Pod builder, what a refused create leaves and
says, a store seeded with good objects, and a client whose list/watch of one resource
misbehaves."""

from __future__ import annotations

import copy
import threading

import pytest

from netsim.api import errors
from netsim.api.client import LocalClient
from netsim.api.resources import BY_KIND
from netsim.api.store import Store
from tests.unit.test_bad_objects import good_objects


def pod(name="web", **spec):
    """A Pod in default, one `app` container unless `spec` says otherwise."""
    spec.setdefault("containers", [{"name": "app", "image": "echo"}])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": spec}


def container(**c):
    return {"name": "app", "image": "echo", **c}


def refused(client, obj, code=422) -> str:
    """Create must fail with `code`, leave the store as it was, and return the message."""
    plural = BY_KIND[obj["kind"]].plural
    before = client.list(plural, None)
    with pytest.raises(errors.ApiError) as ei:
        client.create(copy.deepcopy(obj))
    assert ei.value.code == code, ei.value.message
    assert client.list(plural, None) == before
    return ei.value.message


def seeded(client, *extra: dict):
    """`client` with test_bad_objects' good Services and EndpointSlices (and `extra`) created."""
    services, slices = good_objects()
    for o in services + slices + list(extra):
        client.create(o)
    return client


class GatedClient(LocalClient):
    """A LocalClient whose `list_gated` list fails with 503 until `list_ok` is set (an API
    that answers one resource and not yet another), and whose `watch_gated` watch can drop
    events (`lose`) and then expire with 410 Gone (`expire`)."""

    def __init__(self, store: Store, list_gated: str, watch_gated: str):
        super().__init__(store)
        self.list_gated, self.watch_gated = list_gated, watch_gated
        self.list_ok = threading.Event()
        self.lose = threading.Event()
        self.expire = threading.Event()

    def list_rv(self, resource, namespace=None, label_selector=None):
        if resource == self.list_gated and not self.list_ok.is_set():
            raise errors.ApiError("the server is currently unable to handle the request",
                                  code=503, reason="ServiceUnavailable")
        return super().list_rv(resource, namespace, label_selector)

    def watch(self, resource, namespace=None, resource_version=None, timeout=300.0,
              label_selector=None):
        for etype, obj in super().watch(resource, namespace, resource_version, timeout,
                                        label_selector):
            if self.expire.is_set() and resource == self.watch_gated:
                self.expire.clear()
                self.lose.clear()
                raise errors.Gone(f"too old resource version: {resource_version}")
            if self.lose.is_set() and etype != "BOOKMARK" and resource == self.watch_gated:
                continue
            yield etype, obj
