"""`netsim describe` must print exactly what kubectl describe prints.

The SEED_* blocks are copied verbatim from the seed tutorial's kubectl transcripts;
the WANT_* blocks follow upstream describe.go layouts (tabwriter padding 2, column
blocks broken by tab-less lines, events table flushed separately). Lines ending in
spaces are written with ␠ so the file stays free of trailing whitespace.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from netsim.cli.describe import SUPPORTED, describe

NOW = datetime(2022, 10, 3, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw) -> str:
    return (NOW - timedelta(**kw)).strftime("%Y-%m-%dT%H:%M:%SZ")


def want(s: str) -> str:
    return s.replace("␠", " ")


SEED_SVC_UBLOG_3 = """\
Name:              svc-ublog
Namespace:         uit
Labels:            <none>
Annotations:       <none>
Selector:          app=myblog
Type:              ClusterIP
IP:                10.105.146.135
Port:              <unset>  80/TCP
TargetPort:        8002/TCP
Endpoints:         10.244.1.35:8002,10.244.2.32:8002,10.244.2.33:8002
Session Affinity:  None
Events:            <none>
"""

SEED_SVC_UBLOG_2 = """\
Name:              svc-ublog
Namespace:         uit
Labels:            <none>
Annotations:       <none>
Selector:          app=myblog
Type:              ClusterIP
IP:                10.105.146.135
Port:              <unset>  80/TCP
TargetPort:        8002/TCP
Endpoints:         10.244.1.35:8002,10.244.2.32:8002
Session Affinity:  None
Events:            <none>
"""

SEED_KUBE_DNS = """\
Name:              kube-dns
Namespace:         kube-system
Labels:            k8s-app=kube-dns
                   kubernetes.io/cluster-service=true
                   kubernetes.io/name=KubeDNS
Annotations:       prometheus.io/port: 9153
                   prometheus.io/scrape: true
Selector:          k8s-app=kube-dns
Type:              ClusterIP
IP:                10.96.0.10
Port:              dns  53/UDP
TargetPort:        53/UDP
Endpoints:         10.244.0.5:53,10.244.0.6:53
Port:              dns-tcp  53/TCP
TargetPort:        53/TCP
Endpoints:         10.244.0.5:53,10.244.0.6:53
Port:              metrics  9153/TCP
TargetPort:        9153/TCP
Endpoints:         10.244.0.5:9153,10.244.0.6:9153
Session Affinity:  None
Events:            <none>
"""

SEED_SVC_NP = """\
Name:                     svc-np-ublog
Namespace:                uit
Labels:                   <none>
Annotations:              <none>
Selector:                 app=myblog
Type:                     NodePort
IP:                       10.107.82.31
Port:                     <unset>  80/TCP
TargetPort:               8002/TCP
NodePort:                 <unset>  32543/TCP
Endpoints:                10.244.1.35:8002,10.244.2.32:8002
Session Affinity:         None
External Traffic Policy:  Cluster
Events:                   <none>
"""

SEED_DEPLOY_TAIL = """\
Conditions:
  Type           Status  Reason
  ----           ------  ------
  Available      True    MinimumReplicasAvailable
  Progressing    True    NewReplicaSetAvailable
OldReplicaSets:  <none>
NewReplicaSet:   ublog-5ff678657f (3/3 replicas created)
Events:
  Type    Reason             Age                From                   Message
  ----    ------             ----               ----                   -------
  Normal  ScalingReplicaSet  89s (x2 over 2d)   deployment-controller  Scaled up replica set ublog-5ff678657f to 1
  Normal  ScalingReplicaSet  66s                deployment-controller  Scaled down replica set ublog-5f55c5568b to 2
  Normal  ScalingReplicaSet  66s                deployment-controller  Scaled up replica set ublog-5ff678657f to 2
  Normal  ScalingReplicaSet  49s (x2 over 37h)  deployment-controller  Scaled up replica set ublog-5ff678657f to 3
  Normal  ScalingReplicaSet  49s                deployment-controller  Scaled down replica set ublog-5f55c5568b to 1
  Normal  ScalingReplicaSet  27s                deployment-controller  Scaled down replica set ublog-5f55c5568b to 0
"""

WANT_DEPLOY = """\
Name:                   ublog
Namespace:              uit
CreationTimestamp:      Sat, 01 Oct 2022 08:00:00 +0000
Labels:                 component=zz
Annotations:            deployment.kubernetes.io/revision: 3
Selector:               app=myblog
Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable
StrategyType:           RollingUpdate
MinReadySeconds:        0
RollingUpdateStrategy:  25% max unavailable, 25% max surge
Pod Template:
  Labels:  app=myblog
  Containers:
   myblog:
    Image:      192.168.3.171:5000/myblog:v1
    Port:       8002/TCP
    Host Port:  0/TCP
    Limits:
      cpu:     100m
      memory:  500Mi
    Requests:
      cpu:      50m
      memory:   100Mi
    Liveness:   http-get http://:8002/blog/index/ delay=10s timeout=2s period=15s successThreshold=1 failureThreshold=3
    Readiness:  http-get http://:8002/blog/index/ delay=10s timeout=2s period=15s successThreshold=1 failureThreshold=3
    Environment:
      MYSQL_HOST:      <set to the key 'MYSQL_HOST' of config map 'ublog'>  Optional: false
      MYSQL_PASSWD:    <set to the key 'MYSQL_PASSWD' in secret 'ublog'>    Optional: false
      MYSQL_DATABASE:  myblog
    Mounts:            <none>
  Volumes:             <none>
  Node-Selectors:      <none>
  Tolerations:         <none>
Conditions:
  Type           Status  Reason
  ----           ------  ------
  Available      True    MinimumReplicasAvailable
  Progressing    True    NewReplicaSetAvailable
OldReplicaSets:  <none>
NewReplicaSet:   ublog-5ff678657f (3/3 replicas created)
Events:
  Type    Reason             Age                From                   Message
  ----    ------             ----               ----                   -------
  Normal  ScalingReplicaSet  89s (x2 over 2d)   deployment-controller  Scaled up replica set ublog-5ff678657f to 1
  Normal  ScalingReplicaSet  66s                deployment-controller  Scaled down replica set ublog-5f55c5568b to 2
  Normal  ScalingReplicaSet  66s                deployment-controller  Scaled up replica set ublog-5ff678657f to 2
  Normal  ScalingReplicaSet  49s (x2 over 37h)  deployment-controller  Scaled up replica set ublog-5ff678657f to 3
  Normal  ScalingReplicaSet  49s                deployment-controller  Scaled down replica set ublog-5f55c5568b to 1
  Normal  ScalingReplicaSet  27s                deployment-controller  Scaled down replica set ublog-5f55c5568b to 0
"""

WANT_POD = """\
Name:             ublog-5ff678657f-rk92z
Namespace:        uit
Priority:         0
Service Account:  default
Node:             k8s-slave-172/192.168.3.172
Start Time:       Mon, 03 Oct 2022 11:17:00 +0000
Labels:           app=myblog
                  pod-template-hash=5ff678657f
Annotations:      <none>
Status:           Running
IP:               10.244.1.35
IPs:
  IP:           10.244.1.35
Controlled By:  ReplicaSet/ublog-5ff678657f
Containers:
  myblog:
    Container ID:   netsim://4f2a
    Image:          192.168.3.171:5000/myblog:v1
    Image ID:       netsim://myblog@v1
    Port:           8002/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Mon, 03 Oct 2022 11:18:00 +0000
    Ready:          True
    Restart Count:  0
    Readiness:      tcp-socket :8002 delay=0s timeout=1s period=10s successThreshold=1 failureThreshold=3
    Environment:
      POD_IP:  10.244.1.35 (v1:status.podIP)
    Mounts:
      /var/run/secrets/kubernetes.io/serviceaccount from kube-api-access-x (ro)
Conditions:
  Type              Status
  Initialized       True␠
  Ready             True␠
  ContainersReady   True␠
  PodScheduled      True␠
Volumes:
  kube-api-access-x:
    Type:                    Projected (a volume that contains injected data from multiple sources)
    TokenExpirationSeconds:  3607
    ConfigMapName:           kube-root-ca.crt
    Optional:                false
    DownwardAPI:             true
QoS Class:                   BestEffort
Node-Selectors:              <none>
Tolerations:                 node.kubernetes.io/not-ready:NoExecute op=Exists for 300s
                             node.kubernetes.io/unreachable:NoExecute op=Exists for 300s
Events:
  Type    Reason     Age   From               Message
  ----    ------     ----  ----               -------
  Normal  Scheduled  43m   default-scheduler  Successfully assigned uit/ublog-5ff678657f-rk92z to k8s-slave-172
  Normal  Started    42m   kubelet            Started container myblog
"""

WANT_SECRET = """\
Name:         https-secret
Namespace:    demo
Labels:       <none>
Annotations:  <none>

Type:  kubernetes.io/tls

Data
====
tls.crt:  1164 bytes
tls.key:  1707 bytes
"""

WANT_CM = """\
Name:         ublog
Namespace:    uit
Labels:       <none>
Annotations:  <none>

Data
====
MYSQL_HOST:
----
svc-mysql

MYSQL_PORT:
----
3306


BinaryData
====

Events:  <none>
"""

WANT_ING = """\
Name:             myblog-tls
Labels:           <none>
Namespace:        demo
Address:          192.168.3.172
Ingress Class:    nginx
Default backend:  <default>
TLS:
  https-secret terminates myblog.devops.cn
Rules:
  Host              Path  Backends
  ----              ----  --------
  myblog.devops.cn␠␠
                    /   myblog:80 (10.244.1.5:8002,10.244.2.6:8002)
Annotations:        <none>
Events:             <none>
"""

WANT_EP = """\
Name:         svc-ublog
Namespace:    uit
Labels:       app=myblog
Annotations:  <none>
Subsets:
  Addresses:          10.244.1.35,10.244.2.32
  NotReadyAddresses:  <none>
  Ports:
    Name     Port  Protocol
    ----     ----  --------
    <unset>  8002  TCP

Events:  <none>
"""

WANT_RS = """\
Name:           ublog-5ff678657f
Namespace:      uit
Selector:       app=myblog,pod-template-hash=5ff678657f
Labels:         app=myblog
                pod-template-hash=5ff678657f
Annotations:    deployment.kubernetes.io/desired-replicas: 3
Controlled By:  Deployment/ublog
Replicas:       3 current / 3 desired
Pods Status:    1 Running / 0 Waiting / 0 Succeeded / 0 Failed
Pod Template:
  Labels:  app=myblog
           pod-template-hash=5ff678657f
  Containers:
   myblog:
    Image:         myblog:v1
    Port:          <none>
    Host Port:     <none>
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Events:            <none>
"""

WANT_NODE = """\
Name:               k8s-master-171
Roles:              master
Labels:             kubernetes.io/hostname=k8s-master-171
                    node-role.kubernetes.io/master=
Annotations:        node.alpha.kubernetes.io/ttl: 0
CreationTimestamp:  Sat, 10 Sep 2022 08:00:00 +0000
Taints:             node-role.kubernetes.io/master:NoSchedule
Unschedulable:      false
Lease:              Failed to get lease: leases.coordination.k8s.io "k8s-master-171" not found
Conditions:
  Type    Status  LastHeartbeatTime                 LastTransitionTime                Reason         Message
  ----    ------  -----------------                 ------------------                ------         -------
  Ready   True    Mon, 03 Oct 2022 11:59:50 +0000   Sat, 10 Sep 2022 08:01:00 +0000   KubeletReady   kubelet is posting ready status
Addresses:
  InternalIP:  192.168.3.171
  Hostname:    k8s-master-171
Capacity:
  cpu:     2
  memory:  4039228Ki
  pods:    110
Allocatable:
  cpu:     2
  memory:  3936828Ki
  pods:    110
System Info:
  Machine ID:                 m
  System UUID:                s
  Boot ID:                    b
  Kernel Version:             6.1.0
  OS Image:                   netsim
  Operating System:           linux
  Architecture:               amd64
  Container Runtime Version:  netsim://0.1.0
  Kubelet Version:            v1.16.0
  Kube-Proxy Version:         v1.16.0
PodCIDR:                      10.244.0.0/24
PodCIDRs:                     10.244.0.0/24
Non-terminated Pods:          (1 in total)
  Namespace                   Name                        CPU Requests  CPU Limits  Memory Requests  Memory Limits  Age
  ---------                   ----                        ------------  ----------  ---------------  -------------  ---
  kube-system                 coredns-58cc8c89f4-hzprn    100m (5%)     0 (0%)      70Mi (1%)        170Mi (4%)     23d
Allocated resources:
  (Total limits may be over 100 percent, i.e., overcommitted.)
  Resource           Requests   Limits
  --------           --------   ------
  cpu                100m (5%)  0 (0%)
  memory             70Mi (1%)  170Mi (4%)
  ephemeral-storage  0 (0%)     0 (0%)
Events:              <none>
"""


# --------------------------------------------------------------------------- services


def svc_ublog() -> dict:
    return {
        "metadata": {"name": "svc-ublog", "namespace": "uit"},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.105.146.135",
            "selector": {"app": "myblog"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8002}],
            "sessionAffinity": "None",
        },
    }


def endpoints(ips: list[str], ports: list[dict]) -> dict:
    return {"subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": ports}]}


def test_describe_svc_seed_three_endpoints_then_two():
    ep = endpoints(["10.244.1.35", "10.244.2.32", "10.244.2.33"], [{"port": 8002}])
    out = describe("services", svc_ublog(), related={"endpoints": ep}, now=NOW)
    assert out == SEED_SVC_UBLOG_3
    ep = endpoints(["10.244.1.35", "10.244.2.32"], [{"port": 8002}])
    out = describe("services", svc_ublog(), related={"endpoints": ep, "events": []}, now=NOW)
    assert out == SEED_SVC_UBLOG_2


def test_describe_svc_seed_from_endpointslices():
    eps = {
        "ports": [{"name": "", "port": 8002, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.244.1.35"], "conditions": {"ready": True}},
            {"addresses": ["10.244.2.32"], "conditions": {"ready": True}},
            {"addresses": ["10.244.9.9"], "conditions": {"ready": False}},
        ],
    }
    out = describe("services", svc_ublog(), related={"endpointslices": [eps]}, now=NOW)
    assert out == SEED_SVC_UBLOG_2


def test_describe_kube_dns_seed_multiline_labels_and_named_ports():
    dns = {
        "metadata": {
            "name": "kube-dns",
            "namespace": "kube-system",
            "labels": {
                "kubernetes.io/name": "KubeDNS",
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
            },
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9153"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "selector": {"k8s-app": "kube-dns"},
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
            "sessionAffinity": "None",
        },
    }
    ep = endpoints(
        ["10.244.0.5", "10.244.0.6"],
        [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "metrics", "port": 9153, "protocol": "TCP"},
        ],
    )
    assert describe("services", dns, related={"endpoints": ep}, now=NOW) == SEED_KUBE_DNS


def test_describe_nodeport_svc_seed():
    np_svc = svc_ublog()
    np_svc["metadata"]["name"] = "svc-np-ublog"
    np_svc["spec"].update(type="NodePort", clusterIP="10.107.82.31")
    np_svc["spec"]["ports"][0]["nodePort"] = 32543
    ep = endpoints(["10.244.1.35", "10.244.2.32"], [{"port": 8002}])
    assert describe("services", np_svc, related={"endpoints": ep}, now=NOW) == SEED_SVC_NP


def test_describe_svc_dual_stack_fields_print_when_present():
    s = svc_ublog()
    s["spec"].update(
        ipFamilyPolicy="SingleStack",
        ipFamilies=["IPv4"],
        clusterIPs=["10.105.146.135"],
        internalTrafficPolicy="Cluster",
    )
    lines = describe("services", s, related={}, now=NOW).splitlines()
    assert lines[6:10] == [
        "IP Family Policy:         SingleStack",
        "IP Families:              IPv4",
        "IP:                       10.105.146.135",
        "IPs:                      10.105.146.135",
    ]
    assert "Endpoints:                <none>" in lines
    assert "Internal Traffic Policy:  Cluster" in lines


# --------------------------------------------------------------------------- deployments


def blog_deployment() -> dict:
    probe = {
        "httpGet": {"path": "/blog/index/", "port": 8002, "scheme": "HTTP"},
        "initialDelaySeconds": 10,
        "periodSeconds": 15,
        "timeoutSeconds": 2,
    }
    return {
        "metadata": {
            "name": "ublog",
            "namespace": "uit",
            "creationTimestamp": "2022-10-01T08:00:00Z",
            "labels": {"component": "zz"},
            "annotations": {
                "deployment.kubernetes.io/revision": "3",
                "kubectl.kubernetes.io/last-applied-configuration": '{"big": "json"}',
            },
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "myblog"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {
                "metadata": {"labels": {"app": "myblog"}},
                "spec": {
                    "containers": [
                        {
                            "name": "myblog",
                            "image": "192.168.3.171:5000/myblog:v1",
                            "ports": [{"containerPort": 8002, "protocol": "TCP"}],
                            "resources": {
                                "limits": {"cpu": "100m", "memory": "500Mi"},
                                "requests": {"cpu": "50m", "memory": "100Mi"},
                            },
                            "livenessProbe": probe,
                            "readinessProbe": probe,
                            "env": [
                                {"name": "MYSQL_HOST", "valueFrom": {
                                    "configMapKeyRef": {"name": "ublog", "key": "MYSQL_HOST"}}},
                                {"name": "MYSQL_PASSWD", "valueFrom": {
                                    "secretKeyRef": {"name": "ublog", "key": "MYSQL_PASSWD"}}},
                                {"name": "MYSQL_DATABASE", "value": "myblog"},
                            ],
                        }
                    ]
                },
            },
        },
        "status": {
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }  # fmt: skip


def scaling(msg: str, last: dict, first: dict | None = None, count: int = 1) -> dict:
    return {
        "type": "Normal",
        "reason": "ScalingReplicaSet",
        "message": msg,
        "lastTimestamp": ago(**last),
        "firstTimestamp": ago(**(first or last)),
        "count": count,
        "source": {"component": "deployment-controller"},
    }


def test_describe_deploy_seed_rollback():
    events = [
        # given out of order: describe sorts by lastTimestamp like kubectl
        scaling("Scaled down replica set ublog-5f55c5568b to 0", {"seconds": 27}),
        scaling("Scaled up replica set ublog-5ff678657f to 1", {"seconds": 89}, {"days": 2}, 2),
        scaling("Scaled down replica set ublog-5f55c5568b to 2", {"seconds": 66}),
        scaling("Scaled up replica set ublog-5ff678657f to 2", {"seconds": 66}),
        scaling("Scaled up replica set ublog-5ff678657f to 3", {"seconds": 49}, {"hours": 37}, 2),
        scaling("Scaled down replica set ublog-5f55c5568b to 1", {"seconds": 49}),
    ]
    new_rs = {"metadata": {"name": "ublog-5ff678657f"}, "spec": {"replicas": 3},
              "status": {"replicas": 3}}  # fmt: skip
    out = describe(
        "deployments",
        blog_deployment(),
        related={"events": events, "old_rs": [], "new_rs": new_rs},
        now=NOW,
    )
    assert out.endswith(SEED_DEPLOY_TAIL)
    assert out == WANT_DEPLOY


def test_describe_deploy_old_replicasets_listed():
    old = {"metadata": {"name": "ublog-5f55c5568b"}, "spec": {"replicas": 1},
           "status": {"replicas": 1}}  # fmt: skip
    new = {"metadata": {"name": "ublog-5ff678657f"}, "spec": {"replicas": 3},
           "status": {"replicas": 2}}  # fmt: skip
    out = describe("deployments", blog_deployment(),
                   related={"old_rs": [old], "new_rs": [new]}, now=NOW)  # fmt: skip
    assert "OldReplicaSets:  ublog-5f55c5568b (1/1 replicas created)\n" in out
    assert "NewReplicaSet:   ublog-5ff678657f (2/3 replicas created)\n" in out
    assert out.endswith("Events:          <none>\n")


# --------------------------------------------------------------------------- pods & co


def blog_pod() -> dict:
    return {
        "metadata": {
            "name": "ublog-5ff678657f-rk92z",
            "namespace": "uit",
            "creationTimestamp": ago(minutes=43),
            "labels": {"app": "myblog", "pod-template-hash": "5ff678657f"},
            "ownerReferences": [{"kind": "ReplicaSet", "name": "ublog-5ff678657f",
                                 "controller": True, "uid": "u1"}],
        },
        "spec": {
            "nodeName": "k8s-slave-172",
            "priority": 0,
            "serviceAccountName": "default",
            "containers": [{
                "name": "myblog",
                "image": "192.168.3.171:5000/myblog:v1",
                "ports": [{"containerPort": 8002, "protocol": "TCP"}],
                "env": [{"name": "POD_IP", "valueFrom": {
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
                "readinessProbe": {"tcpSocket": {"port": 8002}},
                "volumeMounts": [{"name": "kube-api-access-x", "readOnly": True,
                                  "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
            }],
            "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt"}},
                {"downwardAPI": {}},
            ]}}],
            "tolerations": [
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
            ],
        },
        "status": {
            "phase": "Running",
            "hostIP": "192.168.3.172",
            "podIP": "10.244.1.35",
            "podIPs": [{"ip": "10.244.1.35"}],
            "startTime": ago(minutes=43),
            "qosClass": "BestEffort",
            "conditions": [{"type": t, "status": "True"} for t in
                           ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "containerStatuses": [{
                "name": "myblog", "ready": True, "restartCount": 0,
                "containerID": "netsim://4f2a", "imageID": "netsim://myblog@v1",
                "state": {"running": {"startedAt": ago(minutes=42)}},
            }],
        },
    }  # fmt: skip


def test_describe_pod():
    events = [
        {"type": "Normal", "reason": "Started", "message": "Started container myblog",
         "firstTimestamp": ago(minutes=42), "lastTimestamp": ago(minutes=42), "count": 1,
         "source": {"component": "kubelet"}},
        {"type": "Normal", "reason": "Scheduled",
         "message": "Successfully assigned uit/ublog-5ff678657f-rk92z to k8s-slave-172",
         "firstTimestamp": ago(minutes=43), "lastTimestamp": ago(minutes=43), "count": 1,
         "source": {"component": "default-scheduler"}},
    ]  # fmt: skip
    assert describe("pods", blog_pod(), related={"events": events}, now=NOW) == want(WANT_POD)


def test_describe_terminating_pod_and_last_state():
    p = blog_pod()
    p["metadata"]["deletionTimestamp"] = ago(seconds=20)
    p["metadata"]["deletionGracePeriodSeconds"] = 30
    cs = p["status"]["containerStatuses"][0]
    cs["restartCount"] = 2
    cs["lastState"] = {
        "terminated": {
            "exitCode": 137,
            "reason": "Error",
            "startedAt": ago(minutes=10),
            "finishedAt": ago(minutes=5),
        }
    }
    out = describe("pods", p, related={}, now=NOW)
    assert "Status:                    Terminating (lasts 20s)\n" in out
    assert "Termination Grace Period:  30s\n" in out
    assert "    Last State:     Terminated\n      Reason:       Error\n" in out
    assert "      Exit Code:    137\n" in out
    assert "    Restart Count:  2\n" in out


def test_describe_secret_prints_sizes_never_values():
    sec = {
        "metadata": {"name": "https-secret", "namespace": "demo"},
        "type": "kubernetes.io/tls",
        "data": {"tls.key": "a" * 2276, "tls.crt": "a" * 1552},
    }
    out = describe("secrets", sec, related={}, now=NOW)
    assert out == WANT_SECRET
    assert "tls.crt:  1164 bytes" in out


def test_describe_configmap():
    cm = {"metadata": {"name": "ublog", "namespace": "uit"},
          "data": {"MYSQL_PORT": "3306", "MYSQL_HOST": "svc-mysql"}}  # fmt: skip
    assert describe("configmaps", cm, related={}, now=NOW) == WANT_CM


def test_describe_ingress_with_backend_endpoints():
    ing = {
        "metadata": {"name": "myblog-tls", "namespace": "demo"},
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": "myblog.devops.cn", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "myblog", "port": {"number": 80}}}}]}}],
            "tls": [{"hosts": ["myblog.devops.cn"], "secretName": "https-secret"}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.3.172"}]}},
    }  # fmt: skip
    svc = {"metadata": {"name": "myblog"}, "spec": {"ports": [{"port": 80, "targetPort": 8002}]}}
    eps = {
        "metadata": {"name": "myblog-x", "labels": {"kubernetes.io/service-name": "myblog"}},
        "ports": [{"name": "", "port": 8002}],
        "endpoints": [{"addresses": ["10.244.1.5"]}, {"addresses": ["10.244.2.6"]}],
    }
    out = describe("ingresses", ing, related={"services": [svc], "endpointslices": [eps]}, now=NOW)
    assert out == want(WANT_ING)
    out = describe("ingresses", ing, related={}, now=NOW)
    assert '/   myblog:80 (<error: services "myblog" not found>)\n' in out


def test_describe_endpoints():
    ep = {
        "metadata": {"name": "svc-ublog", "namespace": "uit", "labels": {"app": "myblog"}},
        "subsets": [{"addresses": [{"ip": "10.244.1.35"}, {"ip": "10.244.2.32"}],
                     "ports": [{"port": 8002, "protocol": "TCP"}]}],
    }  # fmt: skip
    assert describe("endpoints", ep, related={}, now=NOW) == WANT_EP


def test_describe_replicaset_counts_controlled_pods():
    rs = {
        "metadata": {
            "name": "ublog-5ff678657f", "namespace": "uit", "uid": "u1",
            "labels": {"app": "myblog", "pod-template-hash": "5ff678657f"},
            "annotations": {"deployment.kubernetes.io/desired-replicas": "3"},
            "ownerReferences": [{"kind": "Deployment", "name": "ublog", "controller": True}],
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "myblog", "pod-template-hash": "5ff678657f"}},
            "template": {
                "metadata": {"labels": {"app": "myblog", "pod-template-hash": "5ff678657f"}},
                "spec": {"containers": [{"name": "myblog", "image": "myblog:v1"}]},
            },
        },
        "status": {"replicas": 3},
    }  # fmt: skip
    stranger = blog_pod()
    stranger["metadata"]["ownerReferences"][0]["uid"] = "other"
    out = describe("replicasets", rs, related={"pods": [blog_pod(), stranger]}, now=NOW)
    assert out == WANT_RS


def test_describe_node():
    node = {
        "metadata": {
            "name": "k8s-master-171",
            "creationTimestamp": "2022-09-10T08:00:00Z",
            "labels": {"kubernetes.io/hostname": "k8s-master-171",
                       "node-role.kubernetes.io/master": ""},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "podCIDR": "10.244.0.0/24",
            "podCIDRs": ["10.244.0.0/24"],
            "taints": [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}],
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True",
                            "lastHeartbeatTime": ago(seconds=10),
                            "lastTransitionTime": "2022-09-10T08:01:00Z",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.3.171"},
                          {"type": "Hostname", "address": "k8s-master-171"}],
            "capacity": {"cpu": "2", "memory": "4039228Ki", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "3936828Ki", "pods": "110"},
            "nodeInfo": {"machineID": "m", "systemUUID": "s", "bootID": "b",
                         "kernelVersion": "6.1.0", "osImage": "netsim",
                         "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "netsim://0.1.0",
                         "kubeletVersion": "v1.16.0", "kubeProxyVersion": "v1.16.0"},
        },
    }  # fmt: skip
    coredns = {
        "metadata": {"name": "coredns-58cc8c89f4-hzprn", "namespace": "kube-system",
                     "creationTimestamp": ago(days=23)},
        "spec": {"containers": [{"name": "coredns", "resources": {
            "limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}}}]},
    }  # fmt: skip
    out = describe("nodes", node, related={"pods": [coredns], "lease": None}, now=NOW)
    assert out == WANT_NODE


def test_show_events_false_omits_events_and_unknown_resource_raises():
    out = describe("services", svc_ublog(), related={"events": None}, now=NOW)
    assert "Events" not in out
    assert {"pods", "services", "deployments", "nodes", "secrets"} <= SUPPORTED
    with pytest.raises(KeyError):
        describe("widgets", {}, related={}, now=NOW)
