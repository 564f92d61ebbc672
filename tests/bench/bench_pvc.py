"""Bench: PersistentVolumeClaims of the default class (local-path, WaitForFirstConsumer)
from `apply` to a running pod on a provisioned volume.

N claims, each with a pod using it (10 by default, 50 with NETSIM_BENCH_FULL=1), applied in
one file: the claims wait for their pods, the scheduler picks nodes, the provisioner makes
one folder and PersistentVolume per claim, the binder binds both, the kubelet binds the
folder into the pod. Figures: time until every claim is Bound, until every pod is Running,
each claim's wait from its creation to Bound (median, max; polled every 20 ms), and the
`delete` of all claims until every volume and folder is gone.

Run alone: `sudo python -m tests.bench.bench_pvc` (NETSIM_BENCH_CLUSTER / NETSIM_BENCH_LAN
pick the cluster). The last line is the headline figure.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import pytest

from netsim.api.timeutil import rfc3339_seconds
from tests.bench import stop_on_sigterm
from tests.conftest import is_root

NAME = os.environ.get("NETSIM_BENCH_CLUSTER", "nsbench")
LAN = os.environ.get("NETSIM_BENCH_LAN", "192.168.79.0/24")
N = 50 if os.environ.get("NETSIM_BENCH_FULL") == "1" else 10
NS = "pvbench"


def _cli(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsim.cli.main", *args], capture_output=True,
                          text=True, env={**os.environ, "NETSIM_CLUSTER": NAME}, input=input,
                          timeout=300)


def _manifest(n: int) -> str:
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}"]
    for i in range(n):
        docs.append(f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: c{i}, namespace: {NS}}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}""")
        docs.append(f"""apiVersion: v1
kind: Pod
metadata: {{name: p{i}, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "echo {i} > /data/i; sleep 3600"]
    volumeMounts: [{{name: d, mountPath: /data}}]
  volumes:
  - {{name: d, persistentVolumeClaim: {{claimName: c{i}}}}}""")
    return "\n---\n".join(docs) + "\n"


def measure(n: int = N) -> dict:
    from netsim.api.client import HttpClient
    _cli("cluster", "down", "--name", NAME)
    r = _cli("cluster", "up", "--name", NAME, "--lan", LAN)
    assert r.returncode == 0, r.stderr
    client = HttpClient(NAME)
    try:
        t0 = time.monotonic()
        r = _cli("apply", "-f", "-", input=_manifest(n))
        assert r.returncode == 0, r.stderr
        bound_at: dict[str, float] = {}
        bound_all = running_all = None
        deadline = t0 + 300
        while time.monotonic() < deadline:
            now = time.time()
            for c in client.list("persistentvolumeclaims", NS):
                name = c["metadata"]["name"]
                if name not in bound_at and (c.get("status") or {}).get("phase") == "Bound":
                    bound_at[name] = now - (rfc3339_seconds(c["metadata"]["creationTimestamp"])
                                            or now)
            if bound_all is None and len(bound_at) == n:
                bound_all = time.monotonic() - t0
            pods = client.list("pods", NS)
            if bound_all is not None and len(pods) == n and all(
                    (p.get("status") or {}).get("phase") == "Running" for p in pods):
                running_all = time.monotonic() - t0
                break
            time.sleep(0.02)
        assert running_all is not None, "the pods did not all run"
        vols = [c["spec"]["volumeName"] for c in client.list("persistentvolumeclaims", NS)]
        folders = [client.get("persistentvolumes", v)["spec"]["hostPath"]["path"] for v in vols]
        t1 = time.monotonic()
        _cli("delete", "namespace", NS)
        while time.monotonic() < t1 + 300 and (
                any(client.get_or_none("persistentvolumes", v) for v in vols)
                or any(os.path.exists(f) for f in folders)):
            time.sleep(0.05)
        deleted = time.monotonic() - t1
        waits = sorted(bound_at.values())
        return {"n": n, "bound_s": bound_all, "running_s": running_all,
                "bound_median_s": statistics.median(waits), "bound_max_s": waits[-1],
                "deleted_s": deleted}
    finally:
        _cli("cluster", "down", "--name", NAME)


def report(m: dict) -> None:
    print(f"claims+pods: {m['n']}")
    print(f"all claims Bound after apply: {m['bound_s']:.2f} s")
    print(f"claim created -> Bound: median {m['bound_median_s'] * 1000:.0f} ms, "
          f"max {m['bound_max_s'] * 1000:.0f} ms (creationTimestamp is whole seconds)")
    print(f"namespace deleted -> every volume and folder gone: {m['deleted_s']:.2f} s")
    print(f"headline: {m['n']} claims of the default class, apply to every pod Running on its "
          f"provisioned volume: {m['running_s']:.2f} s")


@pytest.mark.skipif(not is_root(), reason="needs root (a cluster)")
def test_bench_pvc():
    report(measure())


if __name__ == "__main__":
    stop_on_sigterm()
    report(measure())
