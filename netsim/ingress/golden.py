"""rules/ingress/: the nginx.conf the controller writes for the manifests in examples/ingress/.

Regenerate after an intended change with `python -m netsim.ingress golden` and review the
diff; `python -m netsim.ingress golden --check` (and tests/e2e/test_ingress.py) compare.
The objects come from the offline cluster (netsim/offline.py: the real admission,
controllers and scheduler, with node k8s-slave-172 labelled ingress=true as for
`netsim render`), so the upstream servers are the myblog pods' IPs as a fresh cluster
would give them; certificates are placeholders (only their paths reach the conf).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from netsim import offline
from netsim.golden import EXAMPLE_NODE_LABELS, write_or_check
from netsim.ingress.controller import IngressController, ingress_class_object

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "ingress"
RULES = ROOT / "rules" / "ingress"
POD = "ingress-nginx-controller-7789bcb44d-trb72"
FAKE_CRT = b"-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n"
FAKE_KEY = b"-----BEGIN PRIVATE KEY-----\nplaceholder\n-----END PRIVATE KEY-----\n"


def _docs(name: str) -> list[dict]:
    with open(EXAMPLES / name, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _tls_secret(ns: str, name: str) -> dict:
    import base64
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": base64.b64encode(FAKE_CRT).decode(),
                     "tls.key": base64.b64encode(FAKE_KEY).decode()}}


def cases() -> dict[str, str]:
    """file name -> rendered nginx.conf."""
    docs = [d for name in ("mandatory.yaml", "myblog.yaml", "ingress.yaml", "ingress-tls.yaml")
            for d in _docs(name)]
    snap = offline.build(docs + [_tls_secret("demo", "https-secret")],
                         node_labels=EXAMPLE_NODE_LABELS["ingress"])
    ingresses = snap.list("ingresses", "demo")
    by_name = {i["metadata"]["name"]: i for i in ingresses}
    services, slices = snap.list("services"), snap.list("endpointslices")
    ctrl = IngressController(None, cluster="netsim", pod_name=POD)
    ctrl._default_cert = (FAKE_CRT, FAKE_KEY)
    classes = [ingress_class_object()]

    def render(ings: list[dict], secrets: list[dict]) -> str:
        return ctrl.render(ctrl._handled(ings, classes), services, slices, secrets).conf

    return {
        "myblog.conf": render([by_name["myblog"]], []),
        "myblog-tls.conf": render(ingresses, snap.list("secrets", "demo")),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m netsim.ingress golden")
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args(argv)
    bad = 0
    for name, text in cases().items():
        if not write_or_check(str(RULES / name), text, args.check,
                              "python -m netsim.ingress golden"):
            bad += 1
    return 1 if bad else 0
