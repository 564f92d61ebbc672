"""Helpers for the admission tests: what a refused create leaves and says."""

from __future__ import annotations

import copy

import pytest

from netsim.api import errors
from netsim.api.resources import BY_KIND


def refused(client, obj, code=422) -> str:
    """Create must fail with `code`, leave the store as it was, and return the message."""
    plural = BY_KIND[obj["kind"]].plural
    before = client.list(plural, None)
    with pytest.raises(errors.ApiError) as ei:
        client.create(copy.deepcopy(obj))
    assert ei.value.code == code, ei.value.message
    assert client.list(plural, None) == before
    return ei.value.message
