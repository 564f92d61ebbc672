"""Golden cluster-DNS zones: what the coredns pods serve for each folder under examples/.

    python rules/dns/regen.py           # rewrite rules/dns/<folder>.zone
    python rules/dns/regen.py --check   # compare only (tests/e2e/test_dns.py runs this)

Each zone is `Zone.render()` (netsim/dns/records.py) of the objects a fresh cluster would
hold after `netsim apply -f examples/<folder>`: the example's Services, pods and
EndpointSlices filled in exactly as `netsim render` fills them for rules/ (same pod IPs,
ClusterIPs and NodePorts: netsim/proxy/render_cli.py), plus what `cluster up` creates
(Service `kubernetes` 10.96.0.1, the DNS add-on's `kube-dns` 10.96.0.10 and its two coredns
pods, placed after the example's pods so those keep their addresses). TTL 30 as in the
add-on's Corefile; the SOA serial is 0 (no resourceVersions offline).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from netsim.cli.manifests import ManifestError, load  # noqa: E402
from netsim.dns import addon  # noqa: E402
from netsim.dns.records import Zone  # noqa: E402
from netsim.golden import write_or_check  # noqa: E402
from netsim.net.topology import ClusterConfig  # noqa: E402
from netsim.proxy import render_cli  # noqa: E402

EXAMPLES = os.path.join(REPO, "examples")


def cluster_objects(cfg: ClusterConfig) -> list[dict]:
    kubernetes = {"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "kubernetes", "namespace": "default"},
                  "spec": {"clusterIP": cfg.kubernetes_ip, "type": "ClusterIP",
                           "ports": [{"name": "https", "port": 443, "protocol": "TCP",
                                      "targetPort": 6443}]}}
    return [kubernetes, addon.service(cfg), addon.deployment(cfg)]


def zone_for(objs: list[dict]) -> Zone:
    cfg = ClusterConfig.make(name="render", nodes=3)
    objs = [copy.deepcopy(o) for o in objs] + cluster_objects(cfg)
    services = [o for o in objs if o.get("kind") == "Service"]
    render_cli._allocate(services, cfg.service_cidr)
    slices = [o for o in objs if o.get("kind") == "EndpointSlice"]
    for o in objs:
        if o.get("kind") == "Endpoints":
            slices += render_cli._endpoints_to_slices(o)
    have = {(render_cli._ns(s), ((s.get("metadata") or {}).get("labels") or {}).get(
        render_cli.SERVICE_NAME_LABEL)) for s in slices}
    placed = render_cli._pods(objs, render_cli._Placer(cfg))
    for svc in services:
        if (render_cli._ns(svc), render_cli._name(svc)) not in have:
            made = render_cli._synth_slice(svc, placed)
            if made:
                slices += made["slices"]
    pods = [{"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": p["name"], "namespace": p["ns"], "labels": p["labels"]},
             "spec": {"nodeName": p["node"], "containers": p["containers"]},
             "status": {"phase": "Running", "podIP": p["ip"], "podIPs": [{"ip": p["ip"]}],
                        "conditions": [{"type": "Ready", "status": "True"}]}}
            for p in placed]
    return Zone.build(services, slices, pods, domain=cfg.cluster_domain, ttl=30, serial=0)


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
            text = zone_for([d.obj for d in load([path])]).render()
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
