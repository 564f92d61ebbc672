"""netsim.net.rtnl's address dump, add and delete against the kernel (`ip` as the referee):
kube-proxy's IPVS mode binds every ClusterIP on kube-ipvs0 through them (IpvsKernel,
in-process: no pyroute2, whose first use took 100 s of the first sync in the qemu VM)."""

from __future__ import annotations

import os
import subprocess

import pytest

from netsim.net import rtnl
from netsim.proxy.ipvs_apply import IpvsKernel
from tests.conftest import requires_root

pytestmark = [requires_root, pytest.mark.root]


@pytest.fixture
def netns():
    name = f"nsimt-rtnl-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for dev in ("kube-ipvs0", "eth0"):  # bridges: this machine's kernel may lack dummy
            subprocess.run(["ip", "-n", name, "link", "add", dev, "type", "bridge"], check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", "192.168.124.7/24", "dev", "eth0"],
                       check=True)
        subprocess.run(["ip", "-n", name, "addr", "add", "192.168.124.8/24", "dev", "eth0",
                        "label", "eth0:1"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _ip_addrs(ns: str, dev: str) -> set[str]:
    out = subprocess.run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", dev],
                         capture_output=True, text=True, check=True).stdout
    return {ln.split()[3].split("/")[0] for ln in out.splitlines()}


def test_ipvs_kernel_lists_binds_and_unbinds_addresses_in_process(netns):
    with rtnl.in_netns(f"/var/run/netns/{netns}"):
        k = IpvsKernel(native=True)
        assert k.node_addresses() == ["192.168.124.7", "192.168.124.8"]  # eth0:1 is eth0's
        k.change_addresses(["10.96.0.1", "10.96.0.10"], [])
        k.change_addresses(["10.96.0.1"], ["10.96.0.99"])  # already there / never there: fine
        assert k.bound_addresses() == {"10.96.0.1", "10.96.0.10"} == _ip_addrs(netns, "kube-ipvs0")
        k.change_addresses([], ["10.96.0.1"])
        assert k.bound_addresses() == {"10.96.0.10"} == _ip_addrs(netns, "kube-ipvs0")
        # a dump longer than one recv()
        many = {f"10.97.{i // 250}.{i % 250 + 1}" for i in range(2000)}
        k.change_addresses(sorted(many), [])
        assert k.bound_addresses() == many | {"10.96.0.10"} == _ip_addrs(netns, "kube-ipvs0")
