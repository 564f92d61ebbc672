"""rules/ingress/: the nginx.conf the controller writes for the manifests in examples/ingress/.

Regenerate after an intended change with `python -m netsim.ingress golden` and review the
diff; `python -m netsim.ingress golden --check` (and tests/e2e/test_ingress.py) compare.
Endpoints are fixed pod IPs, certificates placeholders (only their paths reach the conf).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from netsim.golden import write_or_check
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


def _slice(ns: str, svc: str, port: int, ips: list[str]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{svc}-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips]}


def _tls_secret(ns: str, name: str) -> dict:
    import base64
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": ns},
            "data": {"tls.crt": base64.b64encode(FAKE_CRT).decode(),
                     "tls.key": base64.b64encode(FAKE_KEY).decode()}}


def cases() -> dict[str, str]:
    """file name -> rendered nginx.conf."""
    app = _docs("myblog.yaml")
    services = [d for d in app if d.get("kind") == "Service"]
    slices = [_slice("demo", "myblog", 8002, ["10.244.1.3", "10.244.2.3"])]
    ingresses = []
    for i, name in enumerate(("ingress.yaml", "ingress-tls.yaml")):
        for d in _docs(name):
            d.setdefault("metadata", {})["creationTimestamp"] = f"2026-11-25T18:0{i}:00Z"
            ingresses.append(d)
    ctrl = IngressController(None, cluster="netsim", pod_name=POD)
    ctrl._default_cert = (FAKE_CRT, FAKE_KEY)
    classes = [ingress_class_object()]

    def render(ings: list[dict], secrets: list[dict]) -> str:
        return ctrl.render(ctrl._handled(ings, classes), services, slices, secrets).conf

    return {
        "myblog.conf": render(ingresses[:1], []),
        "myblog-tls.conf": render(ingresses, [_tls_secret("demo", "https-secret")]),
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
