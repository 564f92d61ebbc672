"""Zero-loss scenarios (issue #18), shared by tests/e2e/test_zero_loss.py and
tests/bench/bench_zero_loss.py.

An echo Deployment `web` (HTTP readiness probe, optionally a preStop sleep) behind a NodePort
Service and an Ingress, and continuous load through every way in while its endpoints change:

- `clusterip`: HTTP to the ClusterIP from a client pod on the control-plane node (which
  runs no `web` pod, so every request crosses to another node);
- `nodeport`: HTTP to the control-plane node's NodePort from a LAN client namespace;
- `ingress`: HTTP through ingress-nginx (hostNetwork on the control-plane node, labelled
  ingress=true) from the LAN client, Host header `web.zero-loss.test`;
- `dns`: A lookups of web.zero-loss.svc.cluster.local through kube-dns from the client pod,
  a new source port per query as a stub resolver sends them.

The load generator (tests/zero_loss_loadgen.py) runs inside those namespaces, never in the
root namespace. A scenario prepares the cluster (outside the measured run), starts the load,
waits until every target has answered, acts (rolling update, scale down, delete a coredns
pod, drain), waits until the change is complete — every old pod gone — and keeps the load
on until each target has sent its share of the requests asked for.

With the mitigations — a preStop sleep of PRESTOP_SECONDS on the web pods (longer than
kube-proxy needs to take a terminating endpoint out on every node), a coredns readiness
probe that fails within CoreDNS's 5 s lame duck (see COREDNS_PROBE_MITIGATED) and, for the
drain, a PodDisruptionBudget (maxUnavailable 1) — no request may fail. Without them a web pod gets SIGTERM while some node still sends it new
connections, and a DNS query whose random source port meets an old conntrack entry of the
deleted coredns pod is lost; upstream behaves the same (hence the advice to add a preStop
sleep, and coredns/helm#204).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.conftest import wait_for

NS = "zero-loss"
APP = "web"
HOST = "web.zero-loss.test"
PRESTOP_SECONDS = 2
LOADGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zero_loss_loadgen.py")
LAN_CLIENT = "zlclient"
LAN_CLIENT_HOST = 50  # the LAN client's address: .50 of the cluster's LAN
# The control-plane node runs the ingress controller (it tolerates the taint) and the client
# pod, and no web pod: a drain of a worker takes neither the ingress nor the client away.
INGRESS_NODE = CLIENT_NODE = "k8s-master-171"
KINDS = ("clusterip", "nodeport", "ingress", "dns")


# --- objects ---------------------------------------------------------------------------------

def web_deployment(replicas: int, prestop: bool) -> dict:
    container = {
        "name": "echo", "image": "netsim/echo",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1},
    }
    if prestop:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": APP, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": APP}},
                     "template": {"metadata": {"labels": {"app": APP}},
                                  "spec": {"terminationGracePeriodSeconds": 30,
                                           "containers": [container]}}}}


def objects(replicas: int, prestop: bool) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        web_deployment(replicas, prestop),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": APP, "namespace": NS},
         "spec": {"type": "NodePort", "selector": {"app": APP},
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
         "metadata": {"name": APP, "namespace": NS},
         "spec": {"ingressClassName": "nginx", "rules": [{"host": HOST, "http": {"paths": [
             {"path": "/", "pathType": "Prefix",
              "backend": {"service": {"name": APP, "port": {"number": 80}}}}]}}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client", "namespace": NS},
         "spec": {"nodeName": CLIENT_NODE, "containers": [{"name": "client", "image": "busybox"}],
                  "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                   "operator": "Exists", "effect": "NoSchedule"}]}},
    ]


# --- the cluster side -------------------------------------------------------------------------

def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def pods(cluster, namespace: str, selector: str | None) -> list[dict]:
    return cluster.client.list("pods", namespace, selector)


def settled(cluster, namespace: str, selector: str | None, count: int) -> bool:
    """`count` pods, all Ready, none terminating."""
    ps = pods(cluster, namespace, selector)
    return len(ps) == count and all(_ready(p) and not p["metadata"].get("deletionTimestamp")
                                    for p in ps)


@dataclass
class Env:
    """A cluster set up for the scenarios, and where the load goes."""

    cluster: object
    cluster_ip: str = ""
    node_port: int = 0
    dns_ip: str = ""
    nodeport_ip: str = ""
    ingress_ip: str = ""
    lan_netns: str = ""
    prestop: bool = True
    replicas: int = 3

    def netsim(self, *args: str, check: bool = True, timeout: float = 120):
        return self.cluster.netsim(*args, check=check, timeout=timeout)

    def apply(self, objs: list[dict]) -> None:
        text = "\n---\n".join(json.dumps(o) for o in objs)
        self.cluster.netsim("apply", "-f", "-", input=text)

    def web_settled(self, count: int | None = None) -> bool:
        return settled(self.cluster, NS, f"app={APP}", self.replicas if count is None else count)

    def deploy(self, replicas: int, prestop: bool, timeout: float = 180) -> None:
        """The web Deployment at `replicas` with or without the preStop hook, every pod Ready
        and no old one left (changing the hook is a rollout of its own)."""
        self.replicas, self.prestop = replicas, prestop
        self.apply([web_deployment(replicas, prestop)])
        wait_for(lambda: self.web_settled() and _rolled_out(self.cluster), timeout, 0.2,
                 what=f"{replicas} settled web pods (preStop {prestop})")


def _rolled_out(cluster) -> bool:
    d = cluster.client.get("deployments", APP, NS)
    st = d.get("status", {})
    want = d["spec"]["replicas"]
    return (st.get("observedGeneration") == d["metadata"]["generation"]
            and st.get("updatedReplicas") == want and st.get("availableReplicas") == want
            and st.get("replicas") == want)


def setup(cluster, replicas: int = 3, prestop: bool = True) -> Env:
    """Namespace, web, Service, Ingress, client pod, the ingress node label, a LAN client."""
    import ipaddress
    env = Env(cluster, prestop=prestop, replicas=replicas)
    cluster.netsim("label", "node", INGRESS_NODE, "ingress=true", "--overwrite")
    env.apply(objects(replicas, prestop))
    wait_for(lambda: settled(cluster, "ingress-nginx", "app.kubernetes.io/component=controller",
                             1), 120, 0.2, what="the ingress controller Ready")
    wait_for(lambda: env.web_settled() and settled(cluster, NS, None, replicas + 1), 180, 0.2,
             what="web and the client pod Ready")
    svc = cluster.client.get("services", APP, NS)
    env.cluster_ip = svc["spec"]["clusterIP"]
    env.node_port = svc["spec"]["ports"][0]["nodePort"]
    env.dns_ip = cluster.client.get("services", "kube-dns", "kube-system")["spec"]["clusterIP"]
    nodes = {n["metadata"]["name"]: n for n in cluster.client.list("nodes")}

    def ip(name: str) -> str:
        return next(a["address"] for a in nodes[name]["status"]["addresses"]
                    if a["type"] == "InternalIP")
    master = next(n for n in nodes if "master" in n)
    env.nodeport_ip, env.ingress_ip = ip(master), ip(INGRESS_NODE)
    env.lan_netns = cluster.lan_client(LAN_CLIENT,
                                       str(ipaddress.ip_network(cluster.lan)[LAN_CLIENT_HOST]))
    return env


def teardown(env: Env) -> None:
    env.netsim("delete", "namespace", NS, check=False, timeout=180)
    env.netsim("label", "node", INGRESS_NODE, "ingress-", check=False)


# --- the load ---------------------------------------------------------------------------------

@dataclass
class Load:
    """The load generators of one run: one in the client pod, one in the LAN client."""

    env: Env
    rate: float
    # a request unanswered this long is lost (a dropped SYN is resent after 1 s and 3 s; a
    # loaded machine answers late, not never); a DNS lookup gets two tries of this long
    # (glibc's resolver with resolv.conf's defaults, timeout:5 attempts:2)
    timeout: float = 5.0
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="zero-loss-"))
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def stop_file(self) -> str:
        return os.path.join(self.workdir, "stop")

    def _args(self, name: str) -> list[str]:
        return [sys.executable, LOADGEN, "--stop-file", self.stop_file,
                "--progress-file", os.path.join(self.workdir, f"{name}.json"),
                "--rate", str(self.rate), "--timeout", str(self.timeout)]

    def start(self) -> None:
        e = self.env
        pod = self._args("pod") + [
            "--http", f"clusterip={e.cluster_ip}:80",
            "--dns", f"dns={e.dns_ip}:{APP}.{NS}.svc.cluster.local"]
        lan = self._args("lan") + [
            "--http", f"nodeport={e.nodeport_ip}:{e.node_port}",
            "--http", f"ingress={e.ingress_ip}:80,{HOST}"]
        cmd = [sys.executable, "-m", "netsim.cli.main", "exec", "-n", NS, "client", "--", *pod]
        envv = {**os.environ, "NETSIM_CLUSTER": e.cluster.name}
        self.procs["pod"] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             text=True, env=envv)
        self.procs["lan"] = subprocess.Popen(["ip", "netns", "exec", e.lan_netns, *lan],
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             text=True)

    def counts(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for name in ("pod", "lan"):
            try:
                with open(os.path.join(self.workdir, f"{name}.json")) as f:
                    out.update(json.load(f))
            except (OSError, ValueError):
                pass
        return out

    def warm(self, timeout: float = 60) -> None:
        """Every target has been answered at least 10 times."""
        def ok():
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise AssertionError(f"load generator {name} ended: {p.communicate()}")
            c = self.counts()
            return all(c.get(k, {}).get("requests", 0) - c.get(k, {}).get("failures", 0) >= 10
                       for k in KINDS)
        wait_for(ok, timeout, 0.1, what="every load target answering")

    def stop(self) -> dict[str, dict]:
        open(self.stop_file, "w").close()
        out: dict[str, dict] = {}
        for name, p in self.procs.items():
            stdout, stderr = p.communicate(timeout=60)
            try:
                out.update(json.loads(stdout.strip().splitlines()[-1]))
            except (ValueError, IndexError) as e:
                raise AssertionError(f"load generator {name}: {stdout!r} {stderr!r}") from e
        return out

    def kill(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                open(self.stop_file, "w").close()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


# --- scenarios --------------------------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    prepare: Callable[[Env], None]  # before the load starts (not measured)
    act: Callable[[Env], object]  # returns what `done` needs
    done: Callable[[Env, object], bool]
    after: Callable[[Env], None] = lambda env: None
    reset: Callable[[Env], None] = lambda env: None  # between repeated acts (under load)


def _old_pods(env: Env) -> set[str]:
    return {p["metadata"]["name"] for p in pods(env.cluster, NS, f"app={APP}")}


def rolling_update(replicas: int) -> Scenario:
    def act(env: Env):
        old = _old_pods(env)

        def restarted() -> bool:
            # kubectl refuses a second restart within the same second (its annotation has a
            # second's resolution, the patch would be empty), and a quick rollout is done
            # within one: as a user would, try again a moment later
            p = env.netsim("rollout", "restart", f"deployment/{APP}", "-n", NS, check=False)
            if p.returncode and "within the past second" not in p.stderr:
                raise AssertionError(f"rollout restart: {p.stdout}{p.stderr}")
            return p.returncode == 0
        wait_for(restarted, 10, 0.2, what="rollout restart accepted")
        return old

    def done(env: Env, old) -> bool:
        return (not (_old_pods(env) & old) and env.web_settled() and _rolled_out(env.cluster))
    return Scenario(f"rolling update of {replicas}", lambda env: prepare(env, replicas), act,
                    done)


def scale_down(start: int, end: int) -> Scenario:
    def act(env: Env):
        env.replicas = end
        env.netsim("scale", f"deployment/{APP}", "-n", NS, f"--replicas={end}")

    def reset(env: Env) -> None:
        env.replicas = start
        env.netsim("scale", f"deployment/{APP}", "-n", NS, f"--replicas={start}")
        wait_for(env.web_settled, 120, 0.2, what=f"{start} web pods again")
    return Scenario(f"scale {start} -> {end}", lambda env: prepare(env, start), act,
                    lambda env, _: env.web_settled(end), reset=reset)


def _coredns(env: Env) -> list[dict]:
    return pods(env.cluster, "kube-system", "k8s-app=kube-dns")


# CoreDNS's own preStop: `lameduck 5s` (kubeadm's Corefile) keeps answering after SIGTERM,
# but a UDP flow stays DNATed to the pod while its endpoint is serving, and with kubeadm's
# readiness probe (every 10 s, 3 failures) it is serving until the pod exits: a query whose
# source port matches an earlier query's conntrack entry (random ports, 30 s entries) is
# lost in the gap between the exit and the endpoint's removal. A readiness probe that fails
# within the lame duck (coredns/helm#204's advice) closes the gap: the mitigation here.
COREDNS_PROBE_KUBEADM = (10, 3)  # periodSeconds, failureThreshold
COREDNS_PROBE_MITIGATED = (1, 1)


def set_coredns_readiness(env: Env, period: int, failures: int) -> None:
    """coredns's readiness probe as given, its pods rolled and settled."""
    c = env.cluster.client
    d = c.get("deployments", "coredns", "kube-system")
    probe = d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    if (probe.get("periodSeconds"), probe.get("failureThreshold")) != (period, failures):
        probe.update(periodSeconds=period, failureThreshold=failures)
        c.update(d)

    def rolled() -> bool:
        d = c.get("deployments", "coredns", "kube-system")
        st = d.get("status", {})
        return (st.get("observedGeneration") == d["metadata"]["generation"]
                and st.get("updatedReplicas") == st.get("replicas") == 2
                and settled(env.cluster, "kube-system", "k8s-app=kube-dns", 2))
    wait_for(rolled, 120, 0.2, what="2 coredns pods Ready")


def prepare(env: Env, replicas: int) -> None:
    """Before a run: web at `replicas`, with the preStop sleep and coredns's quick readiness
    probe when env.prestop (the mitigations), kubeadm's probe without."""
    env.deploy(replicas, env.prestop)
    set_coredns_readiness(env, *(COREDNS_PROBE_MITIGATED if env.prestop
                                 else COREDNS_PROBE_KUBEADM))


def delete_coredns() -> Scenario:

    def act(env: Env):
        victim = sorted(p["metadata"]["name"] for p in _coredns(env))[0]
        env.netsim("delete", "pod", "-n", "kube-system", victim, "--wait=false")
        return victim

    def done(env: Env, victim) -> bool:
        return (victim not in {p["metadata"]["name"] for p in _coredns(env)}
                and settled(env.cluster, "kube-system", "k8s-app=kube-dns", 2))
    return Scenario("delete a coredns pod", lambda env: prepare(env, 3), act, done)


def drain(replicas: int) -> Scenario:
    def busiest(env: Env) -> str:
        by_node: dict[str, int] = {}
        for p in pods(env.cluster, NS, f"app={APP}"):
            node = p["spec"].get("nodeName")
            if node:
                by_node[node] = by_node.get(node, 0) + 1
        return max(sorted(by_node), key=lambda n: by_node[n])

    def act(env: Env):
        node = busiest(env)
        env.netsim("drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                   timeout=300)
        return node

    def done(env: Env, node) -> bool:
        return env.web_settled() and all(p["spec"].get("nodeName") != node
                                         for p in pods(env.cluster, NS, f"app={APP}"))

    def after(env: Env) -> None:
        for n in env.cluster.client.list("nodes"):
            if n.get("spec", {}).get("unschedulable"):
                env.netsim("uncordon", n["metadata"]["name"], check=False)
    def prepare_drain(env: Env) -> None:
        prepare(env, replicas)
        set_budget(env, env.prestop)
    return Scenario(f"drain of the node holding most of {replicas} endpoints",
                    prepare_drain, act, done, after, reset=after)


# A drain evicts every pod of the node at once: when they are all the Service's endpoints,
# it has none until their replacements are Ready, preStop or not. A PodDisruptionBudget is
# the mitigation (the eviction API refuses with 429 and the drain retries every 5 s).
def budget() -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": APP, "namespace": NS},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": APP}}}}


def set_budget(env: Env, on: bool) -> None:
    if not on:
        env.netsim("delete", "pdb", APP, "-n", NS, "--ignore-not-found", check=False)
        return
    env.apply([budget()])

    def allowed() -> bool:
        st = env.cluster.client.get("poddisruptionbudgets", APP, NS).get("status", {})
        return st.get("disruptionsAllowed") == 1
    wait_for(allowed, 60, 0.2, what="the web PodDisruptionBudget allowing 1 disruption")


@dataclass
class Result:
    scenario: str
    prestop: bool
    counts: dict[str, dict]
    seconds: float  # the whole measured run
    event_seconds: float  # act -> done (all of them)
    events: int = 1

    @property
    def requests(self) -> int:
        return sum(c["requests"] for c in self.counts.values())

    @property
    def failures(self) -> int:
        return sum(c["failures"] for c in self.counts.values())

    @property
    def retried(self) -> int:
        """Lookups answered only by the resolver's second try (late, not lost)."""
        return sum(n for c in self.counts.values() for who, n in c["served_by"].items()
                   if who.endswith("(retried)"))

    def line(self) -> str:
        per = ", ".join(f"{k} {self.counts[k]['failures']}/{self.counts[k]['requests']}"
                        for k in KINDS if k in self.counts)
        slowest = max((c.get("slowest", 0.0) for c in self.counts.values()), default=0.0)
        return (f"{self.scenario:<46} preStop {'yes' if self.prestop else 'no ':<3} "
                f"{self.failures:>4} failed of {self.requests:>6} "
                f"({self.requests / self.seconds:.0f} req/s, "
                f"{self.events} x {self.event_seconds / self.events:.1f} s; "
                f"failed/sent: {per}; {self.retried} DNS lookups retried, "
                f"slowest answer {slowest:.1f} s)")

    def errors(self) -> list[str]:
        return [f"{k}: {t:.3f} {what}" for k, c in self.counts.items() for t, what in c["errors"]]

    def retry_reasons(self) -> list[str]:
        """Why the first try of a retried lookup failed (a sample)."""
        return [f"{k}: {t:.3f} retried: {what}" for k, c in self.counts.items()
                for t, what in c.get("retries", [])]


def run(env: Env, scenario: Scenario, min_requests: int, rate: float = 60.0,
        max_seconds: float = 120.0, repeat: bool = False) -> Result:
    """One measured run: prepare, load on, act, wait for the change to complete, load on
    until every target has sent min_requests / len(KINDS) requests, load off. `repeat`:
    act again (after `reset`) each time the change is complete, until the requests are
    sent, so that they all meet endpoint changes."""
    scenario.prepare(env)
    load = Load(env, rate)
    load.start()
    events = 0
    try:
        load.warm()
        t0 = time.monotonic()
        deadline = t0 + max_seconds
        share = min_requests / len(KINDS)

        def enough() -> bool:
            c = load.counts()
            return all(c.get(k, {}).get("requests", 0) >= share for k in KINDS)
        event = 0.0
        while True:
            t = time.monotonic()
            state = scenario.act(env)
            wait_for(lambda st=state: scenario.done(env, st), max(deadline - t, 30), 0.2,
                     what=f"{scenario.name} to complete")
            event += time.monotonic() - t
            events += 1
            if not repeat or enough() or time.monotonic() > deadline:
                break
            scenario.reset(env)
        while time.monotonic() < deadline and not enough():
            time.sleep(0.2)
        counts = load.stop()
    finally:
        load.kill()
        scenario.after(env)
    seconds = max(c["seconds"] for c in counts.values())
    return Result(scenario.name, env.prestop, counts, seconds, event, events)
