"""Golden cluster-DNS zones: what the coredns pods serve for each folder under examples/.

    python rules/dns/regen.py           # rewrite rules/dns/<folder>.zone
    python rules/dns/regen.py --check   # compare only (tests/e2e/test_dns.py runs this)

Each zone is `Zone.render()` (netsim/dns/records.py) of the objects a fresh cluster would
hold after `netsim apply -f examples/<folder>`: the offline cluster of netsim/offline.py
(the real admission, allocators, controllers and scheduler, as `netsim render` runs them
for rules/, with the same node labels) settles the example's objects, then what `cluster
up` creates (Service `kubernetes` 10.96.0.1, the DNS add-on's `kube-dns` 10.96.0.10 and its
coredns Deployment), so the example's pods keep the addresses they have in rules/. TTL 30
as in the add-on's Corefile; the SOA serial is 0 (no resourceVersions offline).
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from netsim import offline  # noqa: E402
from netsim.cli.manifests import ManifestError, load  # noqa: E402
from netsim.dns import addon  # noqa: E402
from netsim.dns.records import Zone  # noqa: E402
from netsim.golden import EXAMPLE_NODE_LABELS, write_or_check  # noqa: E402
from netsim.net.topology import ClusterConfig  # noqa: E402

EXAMPLES = os.path.join(REPO, "examples")


def cluster_objects(cfg: ClusterConfig) -> list[dict]:
    kubernetes = {"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "kubernetes", "namespace": "default"},
                  "spec": {"clusterIP": cfg.kubernetes_ip, "type": "ClusterIP",
                           "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                      "targetPort": 6443}]}}
    return [kubernetes, addon.service(cfg), addon.deployment(cfg)]


def zone_for(objs: list[dict], node_labels: dict | None = None) -> Zone:
    cfg = ClusterConfig.make(name="render", nodes=3)
    snap = offline.build(objs, node_labels=node_labels, then=cluster_objects(cfg))
    return Zone.build(snap.list("services"), snap.list("endpointslices"), snap.list("pods"),
                      domain=cfg.cluster_domain, ttl=30, serial=0)


def cases() -> list[tuple[str, str]]:
    out = []
    for d in sorted(os.listdir(EXAMPLES)) if os.path.isdir(EXAMPLES) else []:
        path = os.path.join(EXAMPLES, d)
        if os.path.isdir(path) and any(f.endswith((".yaml", ".yml", ".json"))
                                       for f in os.listdir(path)):
            out.append((f"{d}.zone", path))
    return out


def regen(check: bool = False) -> int:
    bad = 0
    for fname, path in cases():
        try:
            labels = EXAMPLE_NODE_LABELS.get(fname.removesuffix(".zone"))
            text = zone_for([d.obj for d in load([path])], labels).render()
        except ManifestError as e:
            print(f"skip {os.path.relpath(path, REPO)}: {e}", file=sys.stderr)
            continue
        if not write_or_check(os.path.join(HERE, fname), text, check,
                              "python rules/dns/regen.py"):
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare, write nothing")
    sys.exit(regen(check=ap.parse_args().check))
