"""Issue #16: the control plane's CPU per pod, alone, at several sizes (no root).

The control plane as `cluster up` runs it (the Store with admission, the API on a unix
socket, every controller on one informer factory) in this process; NODES fake kubelets in
a child process, each as a node agent talks to the API over the socket: it watches its
node's pods (as the kubelet), the Services and EndpointSlices (as kube-proxy) and the
NetworkPolicies and Namespaces (as the NetworkPolicy agent, which watches every pod only
once a policy exists: this cluster has none), posts its Node's heartbeat every 10 s, and for each pod
bound to it records the kubelet's events (Pulled, Created, Started) and writes its status
twice (Pending with an IP, then Running and Ready), as the real kubelet does for a pod
without probes; a pod being deleted it deletes for good (the kubelet's final delete). A
Deployment of PODS pods behind a Service is created, until the Deployment is available
and the Service's EndpointSlices hold every pod, ready; then rolled out again (its
template changed, as `kubectl rollout restart`) until every pod is a new one, ready; then
deleted, until its ReplicaSets and pods are gone (the garbage collector's work).

Printed per size and step: this process's CPU (user + system: the control plane's, less
its idle rate) per pod, the API requests per pod, and the seconds it took. A per-pod figure that
grows with the size is an O(n^2) somewhere; flat is the goal. Each step's CPU is also split
by thread (from /proc/self/task: a controller's workers as one, the API's request threads
as one), the clock's answer to which loop grows. The child's CPU is not in the figure (the
real agents are measured by bench_cluster).

Small in CI (3 nodes, 100 and 300 pods); NETSIM_BENCH_FULL=1 for 10 nodes and 300, 1000
(NETSIM_BENCH_NODES / NETSIM_BENCH_SIZES override; NETSIM_BENCH_PODS_PER_NODE=100 gives
each size its own node count instead, so that a series grows the cluster, not the nodes).
Each node takes the size's share of pods. Run alone:
`python -m tests.bench.bench_controlplane`. Each size prints its line when done; the last
line is the headline figure.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

from tests.bench import series

FULL = os.environ.get("NETSIM_BENCH_FULL") == "1"
NODES = int(os.environ.get("NETSIM_BENCH_NODES") or (10 if FULL else 3))
SIZES = series.sizes((300, 1000) if FULL else (100, 300))
PODS_PER_NODE = int(os.environ.get("NETSIM_BENCH_PODS_PER_NODE") or 0)  # 0: NODES nodes
MAX_PODS = 110


def nodes_for(n_pods: int) -> int:
    return -(-n_pods // PODS_PER_NODE) if PODS_PER_NODE else NODES


def _node(name: str, i: int, max_pods: int = MAX_PODS) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "kubernetes.io/os": "linux"}},
            "spec": {"podCIDR": f"10.244.{i}.0/24"},
            "status": {"capacity": {"cpu": "8", "memory": "32Gi", "pods": str(max_pods)},
                       "allocatable": {"cpu": "8", "memory": "32Gi", "pods": str(max_pods)},
                       "conditions": [_ready_condition()],
                       "addresses": [{"type": "InternalIP", "address": f"192.168.200.{10 + i}"}]}}


def _ready_condition() -> dict:
    from netsim.api.timeutil import now_rfc3339
    now = now_rfc3339()
    return {"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
            "lastTransitionTime": now}


# ---- the fake node agents (the child process) ---------------------------------------------
def _kubelets(sock: str, nodes: list[str]) -> None:
    from netsim.api import errors, events
    from netsim.api.client import HttpClient
    from netsim.api.timeutil import now_rfc3339
    from netsim.machinery import InformerFactory, WorkQueue, key_of

    client = HttpClient(path=sock)
    factory = InformerFactory(client)
    for res in ("services", "endpointslices", "networkpolicies", "namespaces"):  # kube-proxies, netpol agents
        for _ in nodes:
            InformerFactory(client).informer(res).start()
    queue = WorkQueue()
    ips: dict[str, str] = {}
    used = [0] * len(nodes)  # addresses handed out per node
    for node in nodes:
        inf = factory.informer("pods", field_selector=f"spec.nodeName={node}")
        inf.add_handler(on_add=lambda o: queue.add(key_of(o)),
                        on_update=lambda a, b: queue.add(key_of(b)))
    factory.start()

    def heartbeat() -> None:
        while True:
            time.sleep(10)
            for node in nodes:
                try:
                    cur = client.get("nodes", node)
                    cur["status"]["conditions"] = [_ready_condition()]
                    client.update_status(cur)
                except errors.ApiError:
                    pass
    threading.Thread(target=heartbeat, daemon=True).start()
    print("ready", flush=True)

    def work() -> None:
        while (key := queue.get(timeout=None)) is not None:
            try:
                ns, name = key.split("/", 1)
                pod = client.get_or_none("pods", name, ns)
                if pod is not None and pod["metadata"].get("deletionTimestamp"):
                    client.delete("pods", name, ns, grace_period_seconds=0)  # its final delete
                    continue
                if pod is None or (pod.get("status") or {}).get("phase") == "Running":
                    continue
                node = pod["spec"]["nodeName"]
                n = nodes.index(node)
                if key not in ips:
                    used[n] += 1
                    ips[key] = f"10.244.{n}.{1 + used[n]}"
                ip = ips[key]
                now = now_rfc3339()
                cname = pod["spec"]["containers"][0]["name"]
                base = {"hostIP": f"192.168.200.{10 + n}", "podIP": ip, "podIPs": [{"ip": ip}],
                        "startTime": now, "qosClass": "BestEffort"}
                cond = [{"type": t, "status": s, "lastProbeTime": None, "lastTransitionTime": now}
                        for t, s in (("PodReadyToStartContainers", "True"), ("Initialized", "True"),
                                     ("Ready", "False"), ("ContainersReady", "False"),
                                     ("PodScheduled", "True"))]
                pod["status"] = {**base, "phase": "Pending", "conditions": cond,
                                 "containerStatuses": [{"name": cname, "ready": False,
                                                        "restartCount": 0, "image": "netsim/echo",
                                                        "imageID": "", "started": False, "state": {
                                                            "waiting": {"reason": "ContainerCreating"}}}]}
                pod = client.update_status(pod)
                for reason, msg in (("Pulled", 'Container image "netsim/echo" already present on machine'),
                                    ("Created", f"Created container {cname}"),
                                    ("Started", f"Started container {cname}")):
                    events.record(client, pod, "Normal", reason, msg, "kubelet", node)
                for c in cond:
                    c["status"] = "True"
                pod["status"] = {**base, "phase": "Running", "conditions": cond,
                                 "containerStatuses": [{"name": cname, "ready": True,
                                                        "restartCount": 0, "image": "netsim/echo",
                                                        "imageID": "", "started": True,
                                                        "state": {"running": {"startedAt": now}}}]}
                client.update_status(pod)
            except errors.ApiError:
                queue.add_rate_limited(key)
            finally:
                queue.done(key)
    threads = [threading.Thread(target=work, daemon=True) for _ in nodes]
    for t in threads:
        t.start()
    sys.stdin.read()  # until the parent is done


# ---- the control plane (this process) -----------------------------------------------------
def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of each live thread of this process, by its kernel id,
    with its Python name: which loop of the control plane costs what, by the clock (a
    sampling profiler attributes lock waits and idle GIL holders)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()  # the name may hold spaces
        except OSError:  # it ended meanwhile
            continue
        out[int(tid)] = (names.get(int(tid), "main?"), (int(fields[11]) + int(fields[12])) / tick)
    return out


def _by_thread(before: dict, after: dict, total: float, n_pods: int, top: int = 8) -> str:
    """The phase's CPU per pod by thread group (a controller's workers together, the API's
    request threads together); threads that ended during the phase are the remainder."""
    groups: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        key = re.sub(r"\d+", "", name).replace("Thread- (process_request_thread)", "api-requests")
        groups[key] = groups.get(key, 0.0) + cpu - before.get(tid, (name, 0.0))[1]
    groups["(threads ended)"] = max(0.0, total - sum(groups.values()))
    ranked = sorted(groups.items(), key=lambda kv: -kv[1])[:top]
    return ", ".join(f"{k} {1000 * v / n_pods:.2f}" for k, v in ranked)


class _Counting:
    """Counts the API's requests (the server's handler calls)."""

    def __init__(self, srv):
        self.n = 0
        orig = srv.RequestHandlerClass.handle_one_request

        def counted(handler, _orig=orig):
            self.n += 1
            return _orig(handler)
        srv.RequestHandlerClass.handle_one_request = counted
        self._restore = lambda: setattr(srv.RequestHandlerClass, "handle_one_request", orig)


class _Phase:
    """One step of the run measured alone: its seconds from the action until `done`, this
    process's CPU per pod over them (less its idle rate) and the API requests per pod."""

    def __init__(self, n_pods: int, idle: float, counter: _Counting):
        self.n_pods, self.idle, self.counter = n_pods, idle, counter

    def __call__(self, act, done, timeout: float, what: str) -> dict:
        from tests.conftest import wait_for
        t, c, r, threads = time.monotonic(), _cpu(), self.counter.n, _thread_cpu()
        act()
        wait_for(done, timeout, 0.2, what=what)
        spent, used = time.monotonic() - t, _cpu() - c
        return {"seconds": spent,
                "cpu_ms_per_pod": 1000 * (used - self.idle * spent) / self.n_pods,
                "requests_per_pod": (self.counter.n - r) / self.n_pods,
                "threads": _by_thread(threads, _thread_cpu(), used, self.n_pods)}


def measure(n_pods: int, n_nodes: int | None = None) -> dict:
    from netsim import gcpolicy
    from netsim.api.admission import Admission, ClusterSettings
    from netsim.api.client import LocalClient
    from netsim.api.kinds import DEFAULT_KINDS
    from netsim.api.kinds import serviceaccount as sa_admission
    from netsim.api.server import serve
    from netsim.api.store import Store
    from netsim.cluster.controlplane import start_controllers, stop_controllers
    from netsim.machinery import InformerFactory

    n_nodes = n_nodes or nodes_for(n_pods)
    tmp = tempfile.mkdtemp(prefix="netsim-bench-cp-")
    sock = os.path.join(tmp, "api.sock")
    store = Store(os.path.join(tmp, "store.db"), admission=Admission(
        ClusterSettings.parse("10.96.0.0/12", "30000-32767"), kinds=(*DEFAULT_KINDS, sa_admission)))
    store.bootstrap()
    srv = serve(store, sock)
    counter = _Counting(srv)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    client = LocalClient(store)
    nodes = [f"node-{i}" for i in range(n_nodes)]
    for i, name in enumerate(nodes):  # room for the size's share, as bench_pod_density
        client.create(_node(name, i, max(MAX_PODS, -(-n_pods // n_nodes) + 10)))
    informers = InformerFactory(client)
    controllers = start_controllers(client, informers)
    gcpolicy.for_daemon()  # as the control plane daemon does once it is up
    child = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_controlplane",
                              "--kubelets", sock, *nodes],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    m: dict = {"pods": n_pods, "nodes": n_nodes}
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        t, c = time.monotonic(), _cpu()
        time.sleep(2.0)
        idle = (_cpu() - c) / (time.monotonic() - t)
        client.create({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "bench", "namespace": "default"},
                       "spec": {"selector": {"app": "bench"},
                                "ports": [{"port": 80, "targetPort": 8080}]}})

        def create() -> None:
            client.create({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "bench", "namespace": "default"},
                           "spec": {"replicas": n_pods,
                                    "selector": {"matchLabels": {"app": "bench"}},
                                    "template": {"metadata": {"labels": {"app": "bench"}},
                                                 "spec": {"containers": [{
                                                     "name": "echo", "image": "netsim/echo",
                                                     "ports": [{"containerPort": 8080}]}]}}}})

        def roll() -> None:  # as `kubectl rollout restart` changes the template
            d = client.get("deployments", "bench", "default")
            d["spec"]["template"]["metadata"]["annotations"] = {
                "kubectl.kubernetes.io/restartedAt": "bench"}
            client.update(d)

        def rolled_out() -> bool:
            d = client.get("deployments", "bench", "default")
            st = d.get("status") or {}
            if st.get("observedGeneration", 0) < d["metadata"]["generation"] or any(
                    st.get(k, 0) != n_pods for k in ("replicas", "updatedReplicas",
                                                       "availableReplicas")):
                return False
            slices = client.list("endpointslices", "default",
                                 "kubernetes.io/service-name=bench")
            eps = [e for s in slices for e in s.get("endpoints") or []]
            return len(eps) == n_pods and all((e.get("conditions") or {}).get("ready")
                                              for e in eps)

        def gone() -> bool:  # counted, not decoded: 5,000 pods listed each 0.2 s would cost
            items, _, _, left = store.list_page("pods", "default", limit=1)
            return not items and not left and not client.list("replicasets", "default")

        timeout = 60 + n_pods
        phase = _Phase(n_pods, idle, counter)
        m.update(phase(create, rolled_out, timeout, f"{n_pods} pods available and in the slices"))
        m["slices"] = len(client.list("endpointslices", "default",
                                      "kubernetes.io/service-name=bench"))
        m["rollout"] = phase(roll, rolled_out, timeout, f"{n_pods} pods replaced")
        m["delete"] = phase(lambda: client.delete("deployments", "bench", "default"), gone,
                            timeout, f"{n_pods} pods and their ReplicaSets gone")
    finally:
        child.stdin.close()
        child.kill()
        child.wait()
        stop_controllers(controllers, informers)
        srv.shutdown()
        counter._restore()
        store.close()
        informers.join(1.0)
    return m


def line(m: dict) -> dict:
    """One size's figures, printed as soon as it is measured (a long series shows what it
    has so far)."""
    series.point("controlplane", "CPU per pod", m["pods"], m["cpu_ms_per_pod"],
                 x_label="pods", y_label="ms CPU per pod")
    for step in ("rollout", "delete"):
        series.point("controlplane", f"CPU per pod ({step})", m["pods"],
                     m[step]["cpu_ms_per_pod"], x_label="pods", y_label="ms CPU per pod")
    print(f"{m['pods']:5d} pods on {m['nodes']} nodes: control plane {m['cpu_ms_per_pod']:.1f} ms "
          f"CPU/pod, {m['requests_per_pod']:.1f} API requests/pod (over the socket), "
          f"{m['slices']} EndpointSlices, {m['seconds']:.1f} s; "
          + "; ".join(f"{step} {m[step]['cpu_ms_per_pod']:.1f} ms/pod, "
                      f"{m[step]['requests_per_pod']:.1f} requests/pod, {m[step]['seconds']:.1f} s"
                      for step in ("rollout", "delete")), flush=True)
    for step, figures in (("create", m), ("rollout", m["rollout"]), ("delete", m["delete"])):
        print(f"  {step}, ms CPU/pod by thread: {figures['threads']}", flush=True)
    return m


def report(results: list[dict]) -> None:
    print(f"load average: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    first, last = results[0], results[-1]

    def growth(a: dict, b: dict) -> str:
        return f"x{b['cpu_ms_per_pod'] / max(a['cpu_ms_per_pod'], 1e-9):.2f}"
    print(f"rollout {last['rollout']['cpu_ms_per_pod']:.1f}, delete "
          f"{last['delete']['cpu_ms_per_pod']:.1f} ms CPU/pod at {last['pods']} pods "
          f"({growth(first['rollout'], last['rollout'])} and "
          f"{growth(first['delete'], last['delete'])} per pod from {first['pods']})")
    print(f"headline: control plane {last['cpu_ms_per_pod']:.1f} ms CPU/pod at {last['pods']} pods "
          f"({first['cpu_ms_per_pod']:.1f} at {first['pods']}: {growth(first, last)} per pod for "
          f"x{last['pods'] / first['pods']:.1f} the pods)")


def test_bench_controlplane():
    report([line(measure(n)) for n in SIZES])


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubelets", nargs="+", metavar=("SOCKET", "NODE"))
    args = ap.parse_args()
    if args.kubelets:
        _kubelets(args.kubelets[0], args.kubelets[1:])
    else:
        report([line(measure(n)) for n in SIZES])
