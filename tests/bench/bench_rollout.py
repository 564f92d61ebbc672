"""Issue #3 benchmark: rolling update of 30 replicas v1 -> v2 with readiness probes (period 1 s).

Reports the rollout time and its ratio to the ideal: with maxSurge 25% (8) and maxUnavailable
25% (7), each step can replace up to 15 pods, and a step cannot be shorter than one readiness
period, so the ideal is ceil(30 / 15) = 2 steps of 1 s. Small in CI (10 replicas);
`NETSIM_BENCH_FULL=1` for 30. The last line is the headline figure.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

from tests.bench import stop_on_sigterm
from tests.conftest import is_root, wait_for

NAME, LAN = "nsroll", "192.168.70.0/24"
REPLICAS = 30 if os.environ.get("NETSIM_BENCH_FULL") == "1" else 10


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsim.cli.main", *args], capture_output=True,
                          text=True, env={**os.environ, "NETSIM_CLUSTER": NAME}, timeout=300)


def deployment(image: str) -> dict:
    probe = {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "roll", "namespace": "default"},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "roll"}},
                     "template": {"metadata": {"labels": {"app": "roll"}},
                                  "spec": {"tolerations": [{"operator": "Exists"}],
                                           "containers": [{"name": "echo", "image": image,
                                                           "ports": [{"containerPort": 8080}],
                                                           "readinessProbe": probe}]}}}}


def complete(c) -> bool:
    d = c.get("deployments", "roll", "default")
    st = d.get("status", {})
    pods = [p for p in c.list("pods", "default", "app=roll")]
    return (st.get("observedGeneration") == d["metadata"]["generation"]
            and st.get("updatedReplicas") == REPLICAS and st.get("availableReplicas") == REPLICAS
            and st.get("replicas") == REPLICAS and len(pods) == REPLICAS)


def measure() -> dict:
    _cli("cluster", "down", "--name", NAME)
    r = _cli("cluster", "up", "--name", NAME, "--lan", LAN)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        from netsim.api.client import HttpClient
        c = HttpClient(NAME)
        c.create(deployment("netsim/echo:v1"))
        wait_for(lambda: complete(c), 300, 0.2, what=f"{REPLICAS} v1 replicas available")
        d = c.get("deployments", "roll", "default")
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "netsim/echo:v2"
        t = time.monotonic()
        c.update(d)
        wait_for(lambda: complete(c), 600, 0.1, what="the rollout to v2")
        took = time.monotonic() - t
    finally:
        _cli("cluster", "down", "--name", NAME)
    surge = math.ceil(REPLICAS * 0.25)
    unavailable = math.floor(REPLICAS * 0.25)
    steps = math.ceil(REPLICAS / (surge + unavailable))
    return {"replicas": REPLICAS, "seconds": took, "ideal_steps": steps, "ideal_s": steps * 1.0,
            "surge": surge, "unavailable": unavailable}


def report(m: dict) -> None:
    print(f"replicas {m['replicas']}, maxSurge {m['surge']}, maxUnavailable {m['unavailable']}: "
          f"ideal {m['ideal_steps']} steps x 1 s readiness period")
    print(f"rollout v1 -> v2:  {m['seconds']:.1f} s")
    print(f"headline: rollout of {m['replicas']} replicas in {m['seconds']:.1f} s, "
          f"{m['seconds'] / m['ideal_s']:.1f}x the ideal {m['ideal_s']:.0f} s")


@pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")
def test_bench_rollout():
    report(measure())


if __name__ == "__main__":
    stop_on_sigterm()
    report(measure())
