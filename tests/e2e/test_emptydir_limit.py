"""Issue 12, an emptyDir's sizeLimit as the kubelet enforces it: a pod writing 2 MiB into a
1Mi disk emptyDir is evicted (status Failed, reason Evicted and upstream's message, as
describe shows them, and a Warning Evicted event), its container killed and not restarted; a pod within
its limit keeps running."""

from __future__ import annotations

import pytest

from tests.conftest import namespace_fixture, requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "edlimit"
ns = namespace_fixture(NS)

HOG = f"""apiVersion: v1
kind: Pod
metadata: {{name: hog, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "dd if=/dev/zero of=/scratch/fill bs=1024 count=2048; sleep 3600"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
  volumes:
  - {{name: scratch, emptyDir: {{sizeLimit: 1Mi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: modest, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "dd if=/dev/zero of=/scratch/fill bs=1024 count=100; sleep 3600"]
    volumeMounts: [{{name: scratch, mountPath: /scratch}}]
  volumes:
  - {{name: scratch, emptyDir: {{sizeLimit: 1Mi}}}}
"""

MSG = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '


def test_over_its_limit_the_pod_is_evicted(cluster, ns):
    cluster.netsim("apply", "-f", "-", input=HOG)

    def evicted():
        p = cluster.client.get("pods", "hog", NS)
        return p if (p.get("status") or {}).get("reason") == "Evicted" else None
    pod = wait_for(evicted, 40, what="hog evicted")
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["message"] == MSG
    described = cluster.netsim("describe", "po", "hog", "-n", NS).stdout
    for line in ("Status:           Failed", "Reason:           Evicted",
                 f"Message:          {MSG.strip()}"):
        assert line in described, described
    events = cluster.netsim("get", "events", "-n", NS).stdout
    assert "Evicted" in events and MSG.strip() in events

    def stopped():
        p = cluster.client.get("pods", "hog", NS)
        s = (p["status"].get("containerStatuses") or [{}])[0]
        return "terminated" in s.get("state", {}) and s
    st = wait_for(stopped, 20, what="hog's container terminated")
    # killed by the eviction: SIGTERM (143) when it ends at once, SIGKILL (137) otherwise
    assert st["restartCount"] == 0 and st["state"]["terminated"]["exitCode"] in (137, 143)
    # as with a current kubelet, the killed container's reason (Error) is what STATUS shows
    row = cluster.netsim("get", "po", "hog", "-n", NS).stdout.splitlines()[1].split()
    assert row[1:4] == ["0/1", "Error", "0"]
    assert cluster.pod_exec("hog", "true", namespace=NS).returncode != 0
    modest = cluster.client.get("pods", "modest", NS)
    assert modest["status"]["phase"] == "Running"
    cluster.netsim("delete", "pod", "hog", "modest", "-n", NS)
