"""The seed's sections 1, 2, 2.2 and 3 replayed with the real kubectl (`kubectl --context
netsim-<cluster>`), checked as the netsim-verb tests check them, and the tables `netsim`
prints for the same commands compared with kubectl's (AGE aside).

kubectl 1.37 has no `--record`: those steps are `kubectl annotate ...
kubernetes.io/change-cause=...`, as users write them today. The tests run in order and share
the cluster's state, as the tutorial's reader does."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import wait_for
from tests.e2e.kubectl_helpers import KUBECTL, assert_same, kubectl, requires_kubectl

pytestmark = [pytest.mark.root, pytest.mark.e2e, requires_kubectl]

EX = Path(__file__).resolve().parents[2] / "examples"
UIT = EX / "uit"
V1 = "192.168.3.171:5000/myblog:v1"
V2 = "192.168.3.171:5000/myblog:v2"
HASH = "[bcdfghjklmnpqrstvwxz2456789]{1,10}"
SUFFIX = "[bcdfghjklmnpqrstvwxz2456789]{5}"


def k(cluster, *args: str, check: bool = True, env: dict | None = None,
      timeout: float = 120) -> subprocess.CompletedProcess:
    """`kubectl -n uit ...` with an optional environment (EDITOR for edit)."""
    if env is None:
        return kubectl(cluster, "-n", "uit", *args, check=check)
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    p = subprocess.run([KUBECTL, "--context", f"netsim-{cluster.name}", "-n", "uit", *args],
                       capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "HOME": home, **env})
    if check:
        assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stdout}{p.stderr}"
    return p


def rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def rollout_done(cluster, name: str) -> None:
    p = k(cluster, "rollout", "status", f"deploy/{name}", "--timeout=180s")
    assert p.stdout.strip().endswith(f'deployment "{name}" successfully rolled out'), p.stdout


def history(cluster, name: str) -> list[tuple[str, str]]:
    lines = k(cluster, "rollout", "history", "deploy", name).stdout.split("\n")
    assert lines[0] == f"deployment.apps/{name} "
    assert re.match(r"^REVISION  CHANGE-CAUSE$", lines[1])
    return [tuple(re.split(r"\s+", line, maxsplit=1)) for line in lines[2:] if line]


def live_pods(cluster, selector: str) -> list[dict]:
    return [p for p in cluster.client.list("pods", "uit", selector)
            if not p["metadata"].get("deletionTimestamp")]


@pytest.fixture(scope="module")
def uit(cluster):
    kubectl(cluster, "delete", "namespace", "uit", "--ignore-not-found", "--timeout=120s")
    kubectl(cluster, "label", "node", "k8s-slave-172", "component=zz", "--overwrite")
    yield "uit"
    kubectl(cluster, "delete", "namespace", "uit", "--ignore-not-found", "--timeout=120s",
            check=False)
    kubectl(cluster, "delete", "namespace", "demo", "--ignore-not-found", "--timeout=120s",
            check=False)
    kubectl(cluster, "label", "node", "k8s-slave-172", "component-", "ingress-", check=False)


def test_section1_create_and_look(cluster, uit):
    p = kubectl(cluster, "create", "-f", str(UIT / "namespace.yaml"))
    assert p.stdout == "namespace/uit created\n"
    p = kubectl(cluster, "create", "-f", str(UIT / "configmap.yaml"), "-f", str(UIT / "secret.yaml"))
    assert p.stdout == "configmap/ublog created\nsecret/ublog created\n"
    assert kubectl(cluster, "create", "-f", str(UIT / "mysql.yaml")).stdout == \
        "deployment.apps/mysql created\n"
    assert kubectl(cluster, "create", "-f", str(UIT / "ublog.yaml")).stdout == \
        "deployment.apps/ublog created\n"
    p = k(cluster, "wait", "--for=condition=Available", "deploy/mysql", "deploy/ublog",
          "--timeout=120s")
    assert p.stdout == ("deployment.apps/mysql condition met\n"
                        "deployment.apps/ublog condition met\n")
    t = rows(assert_same(cluster, "-n", "uit", "get", "deploy"))
    assert [r[:4] for r in t[1:]] == [["mysql", "1/1", "1", "1"], ["ublog", "1/1", "1", "1"]]
    t = rows(assert_same(cluster, "-n", "uit", "get", "rs"))
    assert re.fullmatch(f"mysql-{HASH}", t[1][0]) and t[1][1:4] == ["1", "1", "1"]
    t = rows(assert_same(cluster, "-n", "uit", "get", "po"))
    assert [r[1:4] for r in t[1:]] == [["1/1", "Running", "0"]] * 2
    assert_same(cluster, "-n", "uit", "get", "po", "-o", "wide")
    p = k(cluster, "get", "po", "-l", "component=zz")
    assert p.stdout == "" and p.stderr.strip() == "No resources found in uit namespace."


def test_section1_replicas_apply_scale_and_replace(cluster, uit, tmp_path):
    doc = yaml.safe_load((UIT / "mysql.yaml").read_text())
    doc["spec"]["replicas"] = 2
    f = tmp_path / "mysql.yaml"
    f.write_text(yaml.safe_dump(doc))
    p = kubectl(cluster, "apply", "-f", str(f))
    assert p.stdout == "deployment.apps/mysql configured\n"
    # created without --save-config: kubectl's own warning, as against a real cluster
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in p.stderr
    assert kubectl(cluster, "apply", "-f", str(f)).stdout == "deployment.apps/mysql unchanged\n"
    assert k(cluster, "scale", "deploy", "mysql", "--replicas=3").stdout == \
        "deployment.apps/mysql scaled\n"

    def pending(n):
        t = rows(k(cluster, "get", "po", "-l", "app=mysql").stdout)[1:]
        return len([r for r in t if r[1:3] == ["0/1", "Pending"]]) == n and len(t) == n + 1
    wait_for(lambda: pending(2), 60, 0.3, "two mysql replicas Pending")
    assert "FailedScheduling" in k(cluster, "get", "ev").stdout
    k(cluster, "scale", "deploy", "mysql", "--replicas=1")
    wait_for(lambda: len(live_pods(cluster, "app=mysql")) == 1, 60, what="mysql back to one pod")

    old = live_pods(cluster, "app=myblog")[0]["metadata"]["name"]
    p = k(cluster, "delete", "pod", old)
    assert re.fullmatch(rf'pod "{old}" deleted( from uit namespace)?\n', p.stdout), p.stdout
    wait_for(lambda: [x for x in live_pods(cluster, "app=myblog")
                      if x["metadata"]["name"] != old and x["status"].get("phase") == "Running"],
             90, 0.3, "a replacement ublog pod")


def test_section1_update_edit_and_watch(cluster, uit):
    k(cluster, "scale", "deploy", "ublog", "--replicas=3")
    rollout_done(cluster, "ublog")
    home = os.path.join(os.path.dirname(os.environ["KUBECONFIG"]),
                        f"netsim-test-{cluster.name}.home")
    watcher = subprocess.Popen([KUBECTL, "--context", f"netsim-{cluster.name}", "-n", "uit",
                                "get", "po", "-l", "app=myblog", "-w"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HOME": home})
    try:
        p = k(cluster, "set", "image", "deploy", "ublog", f"myblog={V2}")
        assert p.stdout == "deployment.apps/ublog image updated\n"
        p = k(cluster, "set", "image", "deploy", "ublog", f"ublog={V2}", check=False)
        assert p.returncode == 1
        assert p.stderr.strip() == 'error: unable to find container named "ublog"'
        rollout_done(cluster, "ublog")
    finally:
        watcher.send_signal(signal.SIGINT)
        out, _ = watcher.communicate(timeout=30)
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    states = {line.split()[2] for line in lines[1:]}
    assert {"Pending", "Running"} <= states or {"ContainerCreating", "Running"} <= states, out
    assert "Terminating" in states or "Completed" in states or len(lines) > 7, out
    # the old ReplicaSet keeps 0 replicas, the new one 3; the container ports survived the
    # strategic merge of set image
    t = rows(assert_same(cluster, "-n", "uit", "get", "rs", "-l", "app=myblog"))[1:]
    assert sorted(r[1:4] for r in t) == [["0", "0", "0"], ["3", "3", "3"]]
    d = cluster.client.get("deployments", "ublog", "uit")
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == V2 and c["ports"] == [{"containerPort": 8002, "protocol": "TCP"}]

    p = k(cluster, "edit", "deploy", "ublog", env={"EDITOR": "sed -i s#myblog:v2#myblog:v1#"})
    assert p.stdout == "deployment.apps/ublog edited\n", p.stderr
    rollout_done(cluster, "ublog")
    desc = assert_same(cluster, "-n", "uit", "describe", "deploy", "ublog")
    assert re.search(r"Available\s+True\s+MinimumReplicasAvailable", desc)
    assert "Scaled down replica set ublog-" in desc


def test_section1_history_causes_and_undo(cluster, uit):
    assert history(cluster, "ublog") == [("2", "<none>"), ("3", "<none>")]
    causes = []
    for img in (V2, V1):
        k(cluster, "set", "image", "deploy", "ublog", f"myblog={img}")
        cause = f"kubectl set image deploy ublog myblog={img}"
        p = k(cluster, "annotate", "deploy", "ublog", f"kubernetes.io/change-cause={cause}",
              "--overwrite")
        assert p.stdout == "deployment.apps/ublog annotated\n"
        causes.append(cause)
        rollout_done(cluster, "ublog")
    wait_for(lambda: history(cluster, "ublog")[-2:] == [("4", causes[0]), ("5", causes[1])],
             30, 0.3, "history 4, 5 with change causes")
    assert_same(cluster, "-n", "uit", "rollout", "history", "deploy", "ublog")
    p = k(cluster, "rollout", "undo", "deploy", "ublog", "--to-revision=4")
    assert p.stdout == "deployment.apps/ublog rolled back\n"
    rollout_done(cluster, "ublog")
    wait_for(lambda: history(cluster, "ublog")[-1] == ("6", causes[0]), 30, 0.3,
             "revision 4 back as 6")
    p = k(cluster, "rollout", "undo", "deploy", "ublog", "--to-revision=9", check=False)
    assert p.returncode == 1
    assert p.stderr.strip() == "error: unable to find specified revision 9 in history"


def test_section2_cluster_ip_endpoints_and_discovery(cluster, uit):
    p = kubectl(cluster, "create", "-f", str(UIT / "svc-ublog.yaml"))
    assert p.stdout == "service/svc-ublog created\n"
    t = rows(assert_same(cluster, "-n", "uit", "get", "svc"))
    assert t[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert t[1][:5] == ["svc-ublog", "ClusterIP", t[1][2], "<none>", "80/TCP"]
    assert ipaddress.ip_address(t[1][2]) in ipaddress.ip_network("10.96.0.0/12")
    k(cluster, "scale", "deploy", "ublog", "--replicas=2")
    rollout_done(cluster, "ublog")

    def two_endpoints():
        out = k(cluster, "get", "endpoints", "svc-ublog").stdout
        return out if out.count(":8002") == 2 else None
    wait_for(two_endpoints, 60, 0.5, "two endpoints of svc-ublog")
    assert_same(cluster, "-n", "uit", "get", "endpoints", "svc-ublog")
    assert_same(cluster, "-n", "uit", "describe", "svc", "svc-ublog")

    assert kubectl(cluster, "create", "-f", str(UIT / "svc-mysql.yaml")).stdout == \
        "service/svc-mysql created\n"
    assert_same(cluster, "-n", "uit", "get", "svc", "svc-mysql")
    assert_same(cluster, "get", "svc", "--all-namespaces")
    assert_same(cluster, "-n", "kube-system", "describe", "svc", "kube-dns")
    assert_same(cluster, "-n", "kube-system", "get", "po", "-l", "k8s-app=kube-dns", "-o", "wide")

    # 2.2: pods made after the Service see its environment variables; the name resolves
    k(cluster, "rollout", "restart", "deploy", "ublog")
    rollout_done(cluster, "ublog")
    pod = [x for x in live_pods(cluster, "app=myblog")
           if x["status"].get("phase") == "Running"][0]["metadata"]["name"]
    svc_ip = cluster.client.get("services", "svc-mysql", "uit")["spec"]["clusterIP"]
    env = k(cluster, "exec", pod, "--", "env").stdout
    assert f"SVC_MYSQL_SERVICE_HOST={svc_ip}\n" in env and "SVC_MYSQL_SERVICE_PORT=3306\n" in env
    p = k(cluster, "exec", pod, "--", sys.executable, "-c",
          "import socket; print(socket.gethostbyname('svc-mysql'))")
    assert p.stdout.strip() == svc_ip

    # the env-file ConfigMap, as the tutorial re-creates it
    assert k(cluster, "delete", "cm", "ublog").stdout.startswith('configmap "ublog" deleted')
    p = k(cluster, "create", "configmap", "ublog", f"--from-env-file={UIT / 'configmap.txt'}")
    assert p.stdout == "configmap/ublog created\n"
    assert cluster.client.get("configmaps", "ublog", "uit")["data"] == {
        "MYSQL_HOST": "192.168.3.172", "MYSQL_PORT": "3306"}


def test_section2_nodeport(cluster, uit):
    p = kubectl(cluster, "create", "-f", str(UIT / "svc-np-ublog.yaml"))
    assert p.stdout == "service/svc-np-ublog created\n"
    t = rows(assert_same(cluster, "-n", "uit", "get", "svc", "svc-np-ublog"))
    assert t[1][1] == "NodePort" and t[1][4] == "80:32333/TCP"
    assert_same(cluster, "-n", "uit", "describe", "svc", "svc-np-ublog")
    net = ipaddress.ip_network(cluster.lan)
    client = cluster.lan_client("seedk", str(net.network_address + 61))
    for node in cluster.cfg.nodes:
        wait_for(lambda n=node: "myblog" in cluster.in_netns(
            client, "curl", "-s", "-m", "3", f"http://{n.ip}:32333/blog/index/").stdout,
            30, 0.5, f"NodePort 32333 on {node.name}")


def test_section3_ingress(cluster, uit):
    assert kubectl(cluster, "create", "namespace", "demo").stdout == "namespace/demo created\n"
    p = kubectl(cluster, "apply", "-f", str(EX / "ingress" / "myblog.yaml"))
    assert p.stdout == "deployment.apps/myblog created\nservice/myblog created\n"
    kubectl(cluster, "-n", "demo", "wait", "--for=condition=Available", "deploy/myblog",
            "--timeout=120s")
    kubectl(cluster, "label", "node", "k8s-slave-172", "ingress=true", "--overwrite")
    p = kubectl(cluster, "apply", "-f", str(EX / "ingress" / "ingress.yaml"))
    # kubectl names it by the version the file used, as against a 1.21 apiserver
    assert p.stdout in ("ingress.extensions/myblog created\n",
                        "ingress.networking.k8s.io/myblog created\n"), p.stdout
    assert ("Warning: extensions/v1beta1 Ingress is deprecated in v1.14+, unavailable in "
            "v1.22+; use networking.k8s.io/v1 Ingress") in p.stderr
    node_ip = cluster.cfg.node("k8s-slave-172").ip
    net = ipaddress.ip_network(cluster.lan)
    client = cluster.lan_client("seedk", str(net.network_address + 61))
    wait_for(lambda: "myblog v1" in cluster.in_netns(
        client, "curl", "-s", "-m", "3", "-H", "Host: myblog.devops.cn",
        f"http://{node_ip}/blog/index/").stdout, 60, 0.5, "the blog through the ingress")
    out = wait_for(lambda: [o for o in [kubectl(cluster, "-n", "demo", "get", "ing").stdout]
                            if node_ip in o], 30, what="ADDRESS column")[0]
    assert_same(cluster, "-n", "demo", "get", "ing")
    assert "myblog.devops.cn" in out
