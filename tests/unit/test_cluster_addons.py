"""`cluster up --no-addons`: the control plane's bootstrap creates the `kubernetes` Service
and no add-on (CoreDNS, ingress-nginx, the default StorageClass); without it, all of them."""

from __future__ import annotations

import pytest

from netsim.api.client import LocalClient
from netsim.api.store import Store
from netsim.cli.main import build_parser
from netsim.cluster.controlplane import bootstrap_objects
from netsim.net.topology import ClusterConfig


def _made(addons: bool) -> dict[str, list[str]]:
    store = Store()
    store.bootstrap()
    client = LocalClient(store)
    bootstrap_objects(client, ClusterConfig.make(name="addt", nodes=2, addons=addons))
    return {r: sorted(o["metadata"]["name"] for o in client.list(r))
            for r in ("services", "deployments", "storageclasses")}


def test_no_addons_makes_only_what_kubeadm_makes():
    assert _made(False) == {"services": ["kubernetes"], "deployments": [],
                            "storageclasses": []}


def test_addons_by_default():
    made = _made(True)
    assert "kube-dns" in made["services"] and "coredns" in made["deployments"]
    assert "ingress-nginx-controller" in made["deployments"] and made["storageclasses"]


@pytest.mark.parametrize("argv, addons", [([], True), (["--no-addons"], False)])
def test_the_flag_reaches_the_config(argv, addons, monkeypatch):
    from netsim.cli import cluster_cmds

    made = []
    monkeypatch.setattr(cluster_cmds.lifecycle, "up", made.append)
    args = build_parser().parse_args(["cluster", "up", "--name", "addt", *argv])
    cluster_cmds.run(args)
    assert [c.addons for c in made] == [addons]
