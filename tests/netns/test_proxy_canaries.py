"""kube-proxy's canary chains (iptables mode): read in-process with python-iptables from the
agent's own netns, by `iptables -L` for another one; both must tell the same, and a
canary deleted from any one table must be noticed (the full resync it brings is
tests/netns/test_kube_proxy.py's)."""

from __future__ import annotations

import subprocess
import uuid

import pytest
from pyroute2 import netns as pnetns

from netsim.proxy.apply import CANARY_CHAINS, Iptables, backend_prefix
from tests.conftest import requires_root

pytestmark = requires_root


@pytest.fixture
def ns():
    name = f"kpcan-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name])


@pytest.mark.skipif(backend_prefix() != "iptables-legacy",
                    reason="in-process reading is for legacy tables only")
def test_in_process_and_exec_agree_on_each_lost_canary(ns):
    outside = Iptables(netns=ns)
    outside.ensure_canaries()
    for table, chain in CANARY_CHAINS:
        pnetns.pushns(ns)
        try:
            assert Iptables().canaries_present()  # in-process: the agent's own netns
        finally:
            pnetns.popns()
        assert outside.canaries_present()
        outside.run("-w", "-t", table, "-X", chain)
        pnetns.pushns(ns)
        try:
            assert not Iptables().canaries_present(), table
        finally:
            pnetns.popns()
        assert not outside.canaries_present(), table
        outside.ensure_canaries()


@pytest.mark.skipif(backend_prefix() != "iptables-legacy",
                    reason="in-process reading is for legacy tables only")
def test_an_unchanged_table_is_not_read_again(ns, monkeypatch):
    """A table whose header (entry count, size, hook offsets) is what it was when its
    canary was last seen is not copied again (the nat table of 5,000 endpoints: ~11 ms
    every 2 s); once a rule is added anywhere in it, it is."""
    from netsim.net import pyiptables
    from netsim.proxy import apply

    outside = Iptables(netns=ns)
    outside.ensure_canaries()
    pnetns.pushns(ns)
    try:
        assert Iptables().canaries_present()
        real, loads = pyiptables.load, []
        monkeypatch.setattr(pyiptables, "load", lambda: loads.append(1) or real())
        assert apply._canaries_iptc() and loads == []
        outside.run("-w", "-t", "nat", "-N", "SOMEONE-ELSES")
        assert apply._canaries_iptc() and loads == [1]
    finally:
        pnetns.popns()
