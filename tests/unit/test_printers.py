"""`netsim get` tables must be byte-identical to the kubectl transcripts in the seed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from netsim.api.printing.duration import age, human_duration, short_human_duration
from netsim.api.printing.printers import (
    no_resources_message,
    print_name,
    print_table,
    tabulate,
    tabwrite,
)

NOW = datetime(2022, 10, 3, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def dedent(s: str) -> str:
    return "\n".join(line[4:] if line.startswith("    ") else line for line in s.split("\n"))


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "secs,want",
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (207, "3m27s"),
        (660, "11m"),
        (179 * 60 + 59, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (11 * 3600, "11h"),
        (37 * 3600, "37h"),
        (48 * 3600, "2d"),
        (60 * 3600, "2d12h"),
        (23 * 86400, "23d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_duration_matches_apimachinery(secs, want):
    assert human_duration(secs) == want


@pytest.mark.parametrize(
    "secs,want",
    [(-2, "<invalid>"), (59, "59s"), (89, "1m"), (3599, "59m"), (7200, "2h"),
     (2 * 86400, "2d"), (400 * 86400, "1y")],
)  # fmt: skip
def test_short_human_duration(secs, want):
    assert short_human_duration(secs) == want


def test_age_of_unset_timestamp_is_unknown():
    assert age(None, NOW) == "<unknown>"
    assert age(ago(minutes=11), NOW) == "11m"
    assert age("2022-10-03T11:59:15.123456789Z", NOW) == "44s"


# --------------------------------------------------------------------------- tabwriter


def test_tabulate_pads_to_widest_plus_three_and_leaves_last_column():
    out = tabulate(
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        [["mysql", "1/1", "1", "1", "11m"], ["ublog", "1/1", "1", "1", "10m"]],
    )
    assert out == dedent(
        """\
    NAME    READY   UP-TO-DATE   AVAILABLE   AGE
    mysql   1/1     1            1           11m
    ublog   1/1     1            1           10m
    """
    )


def test_tabulate_minwidth_six():
    assert tabulate(["A", "B"], [["x", "y"]]) == "A     B\nx     y\n"


def test_tabwriter_column_blocks_restart_after_a_line_without_tabs():
    text = "a:\tb\nlonger:\tc\nbreak\nx:\ty\n"
    assert tabwrite(text, padding=2) == "a:       b\nlonger:  c\nbreak\nx:  y\n"


# --------------------------------------------------------------------------- objects


def pod(name, *, ready=True, phase="Running", age_kw, labels=None, ip=None, node=None,
        restarts=0, deleting=False, waiting=None, namespace="uit"):  # fmt: skip
    cs = {"name": "c", "ready": ready, "restartCount": restarts}
    if waiting:
        cs["state"] = {"waiting": {"reason": waiting}}
    elif phase == "Running":
        cs["state"] = {"running": {"startedAt": ago(**age_kw)}}
    else:
        cs["state"] = {"waiting": {}}
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": ago(**age_kw),
            "labels": labels or {},
        },
        "spec": {"containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": phase},
    }
    if phase != "Pending" or waiting:
        obj["status"]["containerStatuses"] = [cs]
    if node:
        obj["spec"]["nodeName"] = node
    if ip:
        obj["status"]["podIP"] = ip
        obj["status"]["podIPs"] = [{"ip": ip}]
    if deleting:
        obj["metadata"]["deletionTimestamp"] = ago(seconds=1)
    return obj


def test_get_deploy_seed():
    def dep(name, minutes):
        return {
            "metadata": {
                "name": name,
                "namespace": "uit",
                "creationTimestamp": ago(minutes=minutes),
            },
            "spec": {"replicas": 1, "template": {"spec": {"containers": []}}},
            "status": {"readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1},
        }

    out = print_table("deployments", [dep("mysql", 11), dep("ublog", 10)], now=NOW)
    assert out == dedent(
        """\
    NAME    READY   UP-TO-DATE   AVAILABLE   AGE
    mysql   1/1     1            1           11m
    ublog   1/1     1            1           10m
    """
    )


def rs(name, desired, current, ready, **age_kw):
    return {
        "metadata": {"name": name, "namespace": "uit", "creationTimestamp": ago(**age_kw)},
        "spec": {"replicas": desired, "selector": {"matchLabels": {"app": "x"}}},
        "status": {"replicas": current, "readyReplicas": ready},
    }


def test_get_rs_seed():
    out = print_table(
        "replicasets",
        [
            rs("mysql-6fbb5cc967", 1, 1, 1, days=2, hours=3),
            rs("ublog-5f55c5568b", 3, 3, 3, hours=37, minutes=20),
            rs("ublog-5ff678657f", 0, 0, 0, days=2, hours=1),
        ],
        now=NOW,
    )
    assert out == dedent(
        """\
    NAME               DESIRED   CURRENT   READY   AGE
    mysql-6fbb5cc967   1         1         1       2d3h
    ublog-5f55c5568b   3         3         3       37h
    ublog-5ff678657f   0         0         0       2d1h
    """
    )
    # the seed's "2d" is exactly 48h..49h
    out = print_table("replicasets", [rs("mysql-6fbb5cc967", 1, 1, 1, days=2)], now=NOW)
    assert out.splitlines()[1] == "mysql-6fbb5cc967   1         1         1       2d"


def test_get_po_seed_with_pending_and_terminating():
    pods = [
        pod("mysql-6fbb5cc967-48dfd", age_kw={"minutes": 25}),
        pod("mysql-6fbb5cc967-957gj", ready=False, phase="Pending", age_kw={"seconds": 8}),
        pod("mysql-6fbb5cc967-rdlrb", ready=False, phase="Pending", age_kw={"seconds": 207}),
        pod("ublog-5ff678657f-m42hz", age_kw={"minutes": 25}),
    ]
    assert print_table("pods", pods, now=NOW) == dedent(
        """\
    NAME                     READY   STATUS    RESTARTS   AGE
    mysql-6fbb5cc967-48dfd   1/1     Running   0          25m
    mysql-6fbb5cc967-957gj   0/1     Pending   0          8s
    mysql-6fbb5cc967-rdlrb   0/1     Pending   0          3m27s
    ublog-5ff678657f-m42hz   1/1     Running   0          25m
    """
    )
    pods = [
        pod("mysql-6fbb5cc967-48dfd", age_kw={"minutes": 34}),
        pod(
            "ublog-5ff678657f-8xcp7",
            ready=False,
            phase="Pending",
            waiting="ContainerCreating",
            age_kw={"seconds": 1},
        ),  # fmt: skip
        pod("ublog-5ff678657f-nbs77", deleting=True, age_kw={"seconds": 82}),
    ]
    assert print_table("pods", pods, now=NOW) == dedent(
        """\
    NAME                     READY   STATUS              RESTARTS   AGE
    mysql-6fbb5cc967-48dfd   1/1     Running             0          34m
    ublog-5ff678657f-8xcp7   0/1     ContainerCreating   0          1s
    ublog-5ff678657f-nbs77   1/1     Terminating         0          82s
    """
    )


def test_get_po_wide_seed():
    pods = [
        pod("mysql-6fbb5cc967-48dfd", age_kw={"hours": 11}, ip="192.168.3.172",
            node="k8s-slave-172"),
        pod("ublog-5f55c5568b-2ggd7", age_kw={"seconds": 48}, ip="10.244.1.27",
            node="k8s-slave-172"),
        pod("ublog-5f55c5568b-jstms", age_kw={"seconds": 24}, ip="10.244.2.24",
            node="k8s-slave-173"),
        pod("ublog-5f55c5568b-mgn96", ready=False, phase="Pending", waiting="ContainerCreating",
            age_kw={"seconds": 1}, node="k8s-slave-172"),
        pod("ublog-5ff678657f-5k2d7", deleting=True, age_kw={"seconds": 155}, ip="10.244.1.26",
            node="k8s-slave-172"),
        pod("ublog-5ff678657f-8xcp7", age_kw={"hours": 10}, ip="10.244.2.22",
            node="k8s-slave-173"),
        pod("ublog-5ff678657f-d8fkk", deleting=True, age_kw={"seconds": 155}, ip="10.244.2.23",
            node="k8s-slave-173"),
    ]  # fmt: skip
    want = """\
NAME                     READY   STATUS              RESTARTS   AGE     IP              NODE            NOMINATED NODE   READINESS GATES
mysql-6fbb5cc967-48dfd   1/1     Running             0          11h     192.168.3.172   k8s-slave-172   <none>           <none>
ublog-5f55c5568b-2ggd7   1/1     Running             0          48s     10.244.1.27     k8s-slave-172   <none>           <none>
ublog-5f55c5568b-jstms   1/1     Running             0          24s     10.244.2.24     k8s-slave-173   <none>           <none>
ublog-5f55c5568b-mgn96   0/1     ContainerCreating   0          1s      <none>          k8s-slave-172   <none>           <none>
ublog-5ff678657f-5k2d7   1/1     Terminating         0          2m35s   10.244.1.26     k8s-slave-172   <none>           <none>
ublog-5ff678657f-8xcp7   1/1     Running             0          10h     10.244.2.22     k8s-slave-173   <none>           <none>
ublog-5ff678657f-d8fkk   1/1     Terminating         0          2m35s   10.244.2.23     k8s-slave-173   <none>           <none>
"""
    assert print_table("pods", pods, now=NOW, wide=True) == want


def test_get_po_show_labels_seed():
    pods = [
        pod("mysql-6fbb5cc967-48dfd", age_kw={"days": 2, "hours": 12},
            labels={"pod-template-hash": "6fbb5cc967", "app": "mysql"}),
        pod("ublog-5ff678657f-7qx5z", age_kw={"minutes": 42},
            labels={"app": "myblog", "pod-template-hash": "5ff678657f"}),
    ]  # fmt: skip
    assert print_table("pods", pods, now=NOW, show_labels=True) == dedent(
        """\
    NAME                     READY   STATUS    RESTARTS   AGE     LABELS
    mysql-6fbb5cc967-48dfd   1/1     Running   0          2d12h   app=mysql,pod-template-hash=6fbb5cc967
    ublog-5ff678657f-7qx5z   1/1     Running   0          42m     app=myblog,pod-template-hash=5ff678657f
    """
    )


def test_coredns_wide_with_restarts_seed():
    pods = [
        pod("coredns-58cc8c89f4-hzprn", age_kw={"days": 23}, ip="10.244.0.5",
            node="k8s-master-171", restarts=1, namespace="kube-system"),
        pod("coredns-58cc8c89f4-vvj77", age_kw={"days": 23}, ip="10.244.0.6",
            node="k8s-master-171", restarts=2, namespace="kube-system"),
    ]  # fmt: skip
    want = """\
NAME                       READY   STATUS    RESTARTS   AGE   IP           NODE             NOMINATED NODE   READINESS GATES
coredns-58cc8c89f4-hzprn   1/1     Running   1          23d   10.244.0.5   k8s-master-171   <none>           <none>
coredns-58cc8c89f4-vvj77   1/1     Running   2          23d   10.244.0.6   k8s-master-171   <none>           <none>
"""
    assert print_table("pods", pods, now=NOW, wide=True) == want


def test_restarts_show_last_restart_age():
    p = pod("web", age_kw={"hours": 1}, restarts=3)
    p["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"exitCode": 1, "finishedAt": ago(minutes=5)}
    }
    row = print_table("pods", [p], now=NOW).splitlines()[1]
    assert row == "web    1/1     Running   3 (5m ago)   60m"


@pytest.mark.parametrize(
    "mutate,want",
    [
        (lambda p: p["status"]["containerStatuses"][0].update(
            ready=False, state={"waiting": {"reason": "CrashLoopBackOff"}}), "CrashLoopBackOff"),
        (lambda p: p["status"].update(phase="Succeeded") or p["status"]["containerStatuses"][0]
            .update(ready=False, state={"terminated": {"exitCode": 0, "reason": "Completed"}}),
            "Completed"),
        (lambda p: p["status"]["containerStatuses"][0].update(
            ready=False, state={"terminated": {"exitCode": 2}}), "ExitCode:2"),
        (lambda p: p["status"].update(reason="Evicted", phase="Failed"), "Evicted"),
        (lambda p: (p["metadata"].update(deletionTimestamp=ago(seconds=3)),
                    p["status"].update(reason="NodeLost")), "Unknown"),
        (lambda p: (p["spec"].update(initContainers=[{"name": "i1"}, {"name": "i2"}]),
                    p["status"].update(phase="Pending", initContainerStatuses=[
                        {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
                        {"name": "i2", "state": {"running": {}}}])), "Init:1/2"),
        (lambda p: (p["spec"].update(initContainers=[{"name": "i1"}]),
                    p["status"].update(phase="Pending", initContainerStatuses=[
                        {"name": "i1", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])),
         "Init:CrashLoopBackOff"),
    ],
)  # fmt: skip
def test_pod_status_reasons(mutate, want):
    p = pod("p", age_kw={"minutes": 1})
    mutate(p)
    assert print_table("pods", [p], now=NOW).splitlines()[1].split()[2] == want


def svc(name, typ, ip, ports, namespace="uit", **age_kw):
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": ago(**age_kw)},
        "spec": {"type": typ, "clusterIP": ip, "clusterIPs": [ip], "ports": ports,
                 "selector": {"app": name}},
    }  # fmt: skip


def test_get_svc_seed_nodeport():
    out = print_table(
        "services",
        [
            svc("svc-mysql", "ClusterIP", "10.98.22.166", [{"port": 3306, "protocol": "TCP"}],
                days=2, hours=11),
            svc("svc-np-ublog", "NodePort", "10.107.82.31",
                [{"port": 80, "protocol": "TCP", "nodePort": 32543}], minutes=4, seconds=57),
            svc("svc-ublog", "ClusterIP", "10.105.146.135", [{"port": 80, "protocol": "TCP"}],
                days=2, hours=11),
        ],
        now=NOW,
    )  # fmt: skip
    assert out == dedent(
        """\
    NAME           TYPE        CLUSTER-IP       EXTERNAL-IP   PORT(S)        AGE
    svc-mysql      ClusterIP   10.98.22.166     <none>        3306/TCP       2d11h
    svc-np-ublog   NodePort    10.107.82.31     <none>        80:32543/TCP   4m57s
    svc-ublog      ClusterIP   10.105.146.135   <none>        80/TCP         2d11h
    """
    )


def test_get_svc_all_namespaces_seed():
    dns_ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        {"name": "metrics", "port": 9153, "protocol": "TCP"},
    ]
    objs = [
        svc("kubernetes", "ClusterIP", "10.96.0.1", [{"port": 443}], "default", days=23),
        svc("kube-dns", "ClusterIP", "10.96.0.10", dns_ports, "kube-system", days=23),
        svc("dashboard-metrics-scraper", "ClusterIP", "10.96.54.184", [{"port": 8000}],
            "kubernetes-dashboard", days=22),
        svc("kubernetes-dashboard", "NodePort", "10.97.63.15", [{"port": 443, "nodePort": 30100}],
            "kubernetes-dashboard", days=22),
        svc("svc-mysql", "ClusterIP", "10.98.22.166", [{"port": 3306}], minutes=157),
        svc("svc-ublog", "ClusterIP", "10.105.146.135", [{"port": 80}], hours=3, minutes=5),
    ]  # fmt: skip
    want = """\
NAMESPACE              NAME                        TYPE        CLUSTER-IP       EXTERNAL-IP   PORT(S)                  AGE
default                kubernetes                  ClusterIP   10.96.0.1        <none>        443/TCP                  23d
kube-system            kube-dns                    ClusterIP   10.96.0.10       <none>        53/UDP,53/TCP,9153/TCP   23d
kubernetes-dashboard   dashboard-metrics-scraper   ClusterIP   10.96.54.184     <none>        8000/TCP                 22d
kubernetes-dashboard   kubernetes-dashboard        NodePort    10.97.63.15      <none>        443:30100/TCP            22d
uit                    svc-mysql                   ClusterIP   10.98.22.166     <none>        3306/TCP                 157m
uit                    svc-ublog                   ClusterIP   10.105.146.135   <none>        80/TCP                   3h5m
"""
    assert print_table("services", objs, now=NOW, all_namespaces=True) == want


def test_svc_headless_externalname_and_wide_selector():
    headless = svc("db", "ClusterIP", "None", [{"port": 5432, "protocol": "TCP"}], minutes=1)
    ext = {
        "metadata": {"name": "ext", "namespace": "uit", "creationTimestamp": ago(minutes=1)},
        "spec": {"type": "ExternalName", "externalName": "example.com"},
    }
    out = print_table("services", [headless, ext], now=NOW, wide=True)
    assert out == dedent(
        """\
    NAME   TYPE           CLUSTER-IP   EXTERNAL-IP   PORT(S)    AGE   SELECTOR
    db     ClusterIP      None         <none>        5432/TCP   60s   app=db
    ext    ExternalName   <none>       example.com   <none>     60s   <none>
    """
    )


def test_get_endpoints_seed_and_more():
    ep = {
        "metadata": {"name": "svc-ublog", "namespace": "uit", "creationTimestamp": ago(minutes=21)},
        "subsets": [
            {
                "addresses": [{"ip": "10.244.1.35"}, {"ip": "10.244.2.32"}],
                "ports": [{"port": 8002, "protocol": "TCP"}],
            }
        ],
    }
    assert print_table("endpoints", [ep], now=NOW) == dedent(
        """\
    NAME        ENDPOINTS                           AGE
    svc-ublog   10.244.1.35:8002,10.244.2.32:8002   21m
    """
    )
    ep["subsets"][0]["addresses"] += [{"ip": f"10.244.3.{i}"} for i in range(3)]
    cell = print_table("endpoints", [ep], now=NOW).splitlines()[1].split("   ")[1]
    assert cell == "10.244.1.35:8002,10.244.2.32:8002,10.244.3.0:8002 + 2 more..."
    ep["subsets"] = []
    assert "<none>" in print_table("endpoints", [ep], now=NOW).splitlines()[1]


def test_get_nodes_and_wide():
    def node(name, role=None, ready="True", unsched=False):
        labels = {"kubernetes.io/hostname": name}
        if role:
            labels[f"node-role.kubernetes.io/{role}"] = ""
        return {
            "metadata": {"name": name, "labels": labels, "creationTimestamp": ago(days=23)},
            "spec": {"unschedulable": unsched},
            "status": {
                "conditions": [{"type": "Ready", "status": ready}],
                "addresses": [{"type": "InternalIP", "address": "192.168.3." + name[-3:]}],
                "nodeInfo": {"kubeletVersion": "v1.16.0", "osImage": "netsim",
                             "kernelVersion": "6.1.0", "containerRuntimeVersion": "netsim://0.1"},
            },
        }  # fmt: skip

    nodes = [node("k8s-master-171", "master"), node("k8s-slave-172", ready="False"),
             node("k8s-slave-173", unsched=True)]  # fmt: skip
    assert print_table("nodes", nodes, now=NOW, all_namespaces=True) == dedent(
        """\
    NAME             STATUS                     ROLES    AGE   VERSION
    k8s-master-171   Ready                      master   23d   v1.16.0
    k8s-slave-172    NotReady                   <none>   23d   v1.16.0
    k8s-slave-173    Ready,SchedulingDisabled   <none>   23d   v1.16.0
    """
    )
    wide = print_table("nodes", nodes[:1], now=NOW, wide=True)
    assert wide == dedent(
        """\
    NAME             STATUS   ROLES    AGE   VERSION   INTERNAL-IP     EXTERNAL-IP   OS-IMAGE   KERNEL-VERSION   CONTAINER-RUNTIME
    k8s-master-171   Ready    master   23d   v1.16.0   192.168.3.171   <none>        netsim     6.1.0            netsim://0.1
    """
    )


def test_deployment_and_rs_wide():
    d = {
        "metadata": {"name": "ublog", "namespace": "uit", "creationTimestamp": ago(minutes=10)},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "myblog"}},
            "template": {"spec": {"containers": [
                {"name": "myblog", "image": "192.168.3.171:5000/myblog:v1"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }  # fmt: skip
    assert print_table("deployments", [d], now=NOW, wide=True) == dedent(
        """\
    NAME    READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES                         SELECTOR
    ublog   2/3     3            2           10m   myblog       192.168.3.171:5000/myblog:v1   app=myblog
    """
    )
    r = rs("ublog-5ff678657f", 3, 3, 3, minutes=10)
    r["spec"]["selector"] = {"matchLabels": {"app": "myblog", "pod-template-hash": "5ff678657f"}}
    r["spec"]["template"] = d["spec"]["template"]
    line = print_table("replicasets", [r], now=NOW, wide=True).splitlines()[1]
    assert line.endswith(
        "myblog       192.168.3.171:5000/myblog:v1   app=myblog,pod-template-hash=5ff678657f"
    )


def test_configmaps_secrets_namespaces():
    cm = {"metadata": {"name": "ublog", "namespace": "uit", "creationTimestamp": ago(minutes=3)},
          "data": {"MYSQL_HOST": "svc-mysql", "MYSQL_PORT": "3306"}}  # fmt: skip
    assert print_table("configmaps", [cm], now=NOW) == "NAME    DATA   AGE\nublog   2      3m\n"
    sec = {"metadata": {"name": "https-secret", "namespace": "demo",
                        "creationTimestamp": ago(seconds=5)},
           "type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}}  # fmt: skip
    assert print_table("secrets", [sec], now=NOW) == dedent(
        """\
    NAME           TYPE                DATA   AGE
    https-secret   kubernetes.io/tls   2      5s
    """
    )
    ns = {"metadata": {"name": "uit", "creationTimestamp": ago(days=3)},
          "status": {"phase": "Active"}}  # fmt: skip
    assert print_table("namespaces", [ns], now=NOW) == "NAME   STATUS   AGE\nuit    Active   3d\n"


def test_events_table():
    ev = {
        "metadata": {"name": "ublog.1", "namespace": "uit"},
        "involvedObject": {"kind": "Deployment", "name": "ublog"},
        "type": "Normal",
        "reason": "ScalingReplicaSet",
        "message": "Scaled up replica set ublog-5ff678657f to 3",
        "firstTimestamp": ago(hours=37),
        "lastTimestamp": ago(seconds=49),
        "count": 2,
        "source": {"component": "deployment-controller"},
    }
    assert print_table("events", [ev], now=NOW) == dedent(
        """\
    LAST SEEN   TYPE     REASON              OBJECT             MESSAGE
    49s         Normal   ScalingReplicaSet   deployment/ublog   Scaled up replica set ublog-5ff678657f to 3
    """
    )
    wide = print_table("events", [ev], now=NOW, wide=True).splitlines()
    assert wide[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE",
                               "MESSAGE", "FIRST", "SEEN", "COUNT", "NAME"]  # fmt: skip
    assert wide[1].endswith("37h          2       ublog.1")


def test_ingress_and_ingressclass():
    ing = {
        "metadata": {
            "name": "myblog-tls",
            "namespace": "demo",
            "creationTimestamp": ago(minutes=2),
        },
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "myblog.devops.cn"}],
            "tls": [{"hosts": ["myblog.devops.cn"], "secretName": "https-secret"}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.3.172"}]}},
    }
    assert print_table("ingresses", [ing], now=NOW) == dedent(
        """\
    NAME         CLASS   HOSTS              ADDRESS         PORTS     AGE
    myblog-tls   nginx   myblog.devops.cn   192.168.3.172   80, 443   2m
    """
    )
    ic = {"metadata": {"name": "nginx", "creationTimestamp": ago(days=1)},
          "spec": {"controller": "k8s.io/ingress-nginx"}}  # fmt: skip
    assert print_table("ingressclasses", [ic], now=NOW) == dedent(
        """\
    NAME    CONTROLLER             PARAMETERS   AGE
    nginx   k8s.io/ingress-nginx   <none>       24h
    """
    )


def test_endpointslices():
    eps = {
        "metadata": {"name": "svc-ublog-abcde", "namespace": "uit",
                     "creationTimestamp": ago(minutes=1)},
        "addressType": "IPv4",
        "ports": [{"name": "", "port": 8002, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.244.1.35"]}, {"addresses": ["10.244.2.32"]}],
    }  # fmt: skip
    assert print_table("endpointslices", [eps], now=NOW) == dedent(
        """\
    NAME              ADDRESSTYPE   PORTS   ENDPOINTS                 AGE
    svc-ublog-abcde   IPv4          8002    10.244.1.35,10.244.2.32   60s
    """
    )


def test_extra_no_headers_and_label_columns():
    p = pod("web", age_kw={"minutes": 1}, labels={"app": "web"})
    out = print_table("pods", [p], now=NOW, extra={"no_headers": True, "label_columns": ["app"]})
    assert out == "web   1/1   Running   0     60s   web\n"
    out = print_table("pods", [p], now=NOW, extra={"label_columns": ["app"]})
    assert out.splitlines()[0] == "NAME   READY   STATUS    RESTARTS   AGE   APP"


def test_print_name_and_empty_message():
    objs = [{"metadata": {"name": "ublog"}}]
    assert print_name("deployments", objs) == "deployment.apps/ublog\n"
    assert print_name("pods", objs) == "pod/ublog\n"
    assert print_name("services", objs) == "service/ublog\n"
    assert print_name("ingresses", objs) == "ingress.networking.k8s.io/ublog\n"
    assert no_resources_message("uit") == "No resources found in uit namespace."
    assert no_resources_message(None) == "No resources found"
