"""Cluster DNS end to end (root; the cluster fixture skips without it): the coredns pods behind kube-dns, seen from pods as a user sees them.

Two client pods in namespace `dnse2e`:
- `cf`: dnsPolicy ClusterFirst (resolv.conf -> 10.96.0.10, through kube-proxy);
- `direct`: dnsPolicy None + dnsConfig naming the coredns pod IPs (the same search list),
  so the server itself is tested even where the Service path is broken.
Queries go out with `dig` and glibc (`getent`, Python's getaddrinfo) inside those pods.
Python inside a pod is the interpreter running these tests (the venv netsim was installed
into, which has scapy), never whatever `python3` the machine's PATH finds first.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

import pytest

from tests.conftest import wait_for

NS = "dnse2e"
OTHER = "dnse2e-other"
TOKEN = uuid.uuid4().hex[:10]
DOMAIN = "cluster.local"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = sys.executable  # pods share the host's filesystem: the venv is there too


def manifests(coredns_ips: list[str]) -> str:
    servers = "\n".join(f"      - {ip}" for ip in coredns_ips)
    return textwrap.dedent("""\
        apiVersion: v1
        kind: Namespace
        metadata: {{name: {ns}}}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {{name: {other}}}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web, namespace: {ns}}}
        spec:
          replicas: 2
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              containers:
              - name: echo
                image: netsim/echo
                ports: [{{name: http, containerPort: 8080}}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: web, namespace: {ns}}}
        spec:
          selector: {{app: web}}
          ports: [{{name: http, port: 80, targetPort: http}}]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: hl, namespace: {ns}}}
        spec:
          replicas: 3
          selector: {{matchLabels: {{app: hl}}}}
          template:
            metadata: {{labels: {{app: hl}}}}
            spec:
              containers:
              - name: echo
                image: netsim/echo
                ports: [{{name: http, containerPort: 8080}}]
                env:
                - name: POD_NAME
                  valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
                - name: ECHO_FAIL_HEALTHZ_FILE
                  value: /tmp/netsim-dns-{token}-$(POD_NAME)
                readinessProbe:
                  httpGet: {{path: /healthz, port: 8080}}
                  periodSeconds: 1
                  failureThreshold: 1
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: hl, namespace: {ns}}}
        spec:
          clusterIP: None
          selector: {{app: hl}}
          ports: [{{name: http, port: 8080}}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: ext, namespace: {ns}}}
        spec:
          type: ExternalName
          externalName: one.example.com
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: far, namespace: {other}}}
        spec:
          ports: [{{port: 5432}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: cf, namespace: {ns}}}
        spec:
          containers: [{{name: c, image: busybox, args: [sleep, "100000"]}}]
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: direct, namespace: {ns}}}
        spec:
          dnsPolicy: None
          dnsConfig:
            nameservers:
        {servers}
            searches: [{ns}.svc.{domain}, svc.{domain}, {domain}]
            options:
            - {{name: ndots, value: "5"}}
            - {{name: timeout, value: "1"}}
            - {{name: attempts, value: "3"}}
          containers: [{{name: c, image: busybox, args: [sleep, "100000"]}}]
        """).format(ns=NS, other=OTHER, token=TOKEN, domain=DOMAIN, servers=servers)


def test_golden_zones_in_rules_are_current():
    """rules/dns/*.zone match what the server would serve for examples/ (no root needed)."""
    p = subprocess.run([sys.executable, os.path.join(REPO, "rules", "dns", "regen.py"),
                        "--check"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


# ------------------------------------------------------------------------------ helpers
def coredns_pods(cluster) -> list[dict]:
    return cluster.wait_pods_ready("kube-system", "k8s-app=kube-dns", 2, timeout=90)


class Env:
    def __init__(self, cluster, server_ips: list[str]):
        self.cluster = cluster
        self.server_ips = server_ips

    def exec(self, pod: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.cluster.pod_exec(pod, *cmd, namespace=NS, timeout=timeout)

    def dig(self, *args: str, pod: str = "direct", server: str | None = None) -> str:
        """dig's full output from inside `pod` (the `direct` pod asks a coredns pod IP)."""
        if server is None and pod == "direct":
            server = self.server_ips[0]
        cmd = ["dig", "+time=2", "+tries=3", *args]
        if server:
            cmd.insert(1, "@" + server)
        p = self.exec(pod, *cmd)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    def answer(self, *args: str, pod: str = "direct") -> list[tuple[str, str, str]]:
        """(owner, type, rdata) of the answer section."""
        out = self.dig("+noall", "+answer", *args, pod=pod)
        rows = []
        for line in out.splitlines():
            parts = line.split(None, 4)
            if len(parts) == 5 and parts[2] == "IN":
                rows.append((parts[0], parts[3], parts[4].strip()))
        return rows

    def a(self, name: str, *args: str, pod: str = "direct") -> list[str]:
        return sorted(r for _, t, r in self.answer(name, *args, pod=pod) if t == "A")

    def svc(self, name: str, ns: str = NS) -> dict:
        return self.cluster.client.get("services", name, ns)


def ready_ips(cluster, selector: str) -> list[str]:
    pods = cluster.client.list("pods", NS, selector)
    return sorted(p["status"]["podIP"] for p in pods
                  if not p["metadata"].get("deletionTimestamp") and p["status"].get("podIP")
                  and any(c["type"] == "Ready" and c["status"] == "True"
                          for c in p["status"].get("conditions", [])))


@pytest.fixture(scope="module")
def env(cluster):
    ips = sorted(p["status"]["podIP"] for p in coredns_pods(cluster))
    docs = manifests(ips).split("---\n")
    # namespaces first: `netsim apply` validates a file as a whole against existing namespaces
    cluster.netsim("apply", "-f", "-", input="---\n".join(docs[:2]))
    cluster.netsim("apply", "-f", "-", input="---\n".join(docs[2:]))
    cluster.wait_pods_ready(NS, "app=web", 2)
    cluster.wait_pods_ready(NS, "app=hl", 3)
    for pod in ("cf", "direct"):
        wait_for(lambda pod=pod: cluster.client.get("pods", pod, NS)["status"].get("phase")
                 == "Running", 60, what=f"pod {pod} running")
    e = Env(cluster, ips)
    # the zone follows the API: wait until the headless service has its three addresses
    wait_for(lambda: len(e.a(f"hl.{NS}.svc.{DOMAIN}")) == 3, 30, interval=0.5,
             what="headless records in the zone")
    yield e
    cluster.netsim("delete", "namespace", NS, OTHER, check=False)
    subprocess.run(f"rm -f /tmp/netsim-dns-{TOKEN}-*", shell=True, check=False)


# ---------------------------------------------------------------------- what users see
def test_coredns_pods_and_kube_dns_service(cluster):
    coredns_pods(cluster)
    out = cluster.netsim("-n", "kube-system", "get", "po", "-l", "k8s-app=kube-dns",
                         "-o", "wide").stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    assert len(rows) == 2, out
    assert all(r[0].startswith("coredns-") and r[1] == "1/1" and r[2] == "Running"
               for r in rows), out
    out = cluster.netsim("get", "svc", "-A").stdout
    line = next(line for line in out.splitlines() if " kube-dns " in line)
    assert line.split()[:6] == ["kube-system", "kube-dns", "ClusterIP", cluster.cfg.dns_ip,
                                "<none>", "53/UDP,53/TCP,9153/TCP"], out
    out = cluster.netsim("-n", "kube-system", "describe", "svc", "kube-dns").stdout
    for text in ("k8s-app=kube-dns", "kubernetes.io/cluster-service=true",
                 "kubernetes.io/name=KubeDNS", "prometheus.io/port: 9153",
                 "prometheus.io/scrape: true", "dns  53/UDP", "dns-tcp  53/TCP",
                 "metrics  9153/TCP"):
        assert text in out, out


def test_pod_resolv_conf_is_the_kubelets(env):
    lines = env.exec("cf", "cat", "/etc/resolv.conf").stdout.splitlines()
    # containerd's order: search, nameserver, options; the kubelet appends the node's own
    # search domains (none on most test machines)
    assert lines[0].startswith(f"search {NS}.svc.{DOMAIN} svc.{DOMAIN} {DOMAIN}"), lines
    assert lines[1] == f"nameserver {env.cluster.cfg.dns_ip}", lines
    assert lines[2:] == ["options ndots:5"], lines


# ------------------------------------------------------------------------------ dig
@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
@pytest.mark.parametrize("name", ["kubernetes.default", "kubernetes.default.svc",
                                  f"kubernetes.default.svc.{DOMAIN}"])
def test_dig_kubernetes_service(env, name, transport):
    assert env.a(name, "+search", transport) == [env.cluster.cfg.kubernetes_ip]


@pytest.mark.parametrize("transport", ["+notcp", "+tcp"])
def test_dig_through_kube_dns_cluster_ip(env, transport):
    """The pod's own resolv.conf: 10.96.0.10, reached through kube-proxy's rules."""
    assert env.a("kubernetes.default", "+search", transport, pod="cf") == [
        env.cluster.cfg.kubernetes_ip]


def test_a_srv_and_ptr_of_a_cluster_ip_service(env):
    ip = env.svc("web")["spec"]["clusterIP"]
    fqdn = f"web.{NS}.svc.{DOMAIN}."
    assert env.a(fqdn) == [ip]
    out = env.dig("+noall", "+answer", "+additional", "SRV", f"_http._tcp.web.{NS}.svc.{DOMAIN}")
    assert re.search(rf"^_http\._tcp\.web\.{NS}\.svc\.{DOMAIN}\.\s+30\s+IN\s+SRV\s+0 100 80 "
                     rf"{re.escape(fqdn)}$", out, re.M), out
    assert re.search(rf"^{re.escape(fqdn)}\s+30\s+IN\s+A\s+{re.escape(ip)}$", out, re.M), out
    assert env.answer("-x", ip) == [(".".join(reversed(ip.split("."))) + ".in-addr.arpa.",
                                     "PTR", fqdn)]


def test_headless_set_is_the_ready_pods_and_shrinks_on_unready(env):
    name = f"hl.{NS}.svc.{DOMAIN}"
    pods = env.cluster.client.list("pods", NS, "app=hl")
    assert env.a(name) == ready_ips(env.cluster, "app=hl") and len(env.a(name)) == 3
    out = env.dig("+noall", "+answer", "SRV", f"_http._tcp.{name}")
    targets = sorted(line.split()[-1] for line in out.splitlines() if " SRV " in line)
    assert targets == sorted(f"{p['status']['podIP'].replace('.', '-')}.{name}."
                             for p in pods), out
    victim = pods[0]
    flag = f"/tmp/netsim-dns-{TOKEN}-{victim['metadata']['name']}"
    env.exec(victim["metadata"]["name"], "touch", flag)
    try:
        wait_for(lambda: victim["status"]["podIP"] not in ready_ips(env.cluster, "app=hl"), 30,
                 what="the pod to turn unready")
        wait_for(lambda: env.a(name) == ready_ips(env.cluster, "app=hl") and len(env.a(name))
                 == 2, 30, interval=0.3, what="the headless A set to shrink to the ready pods")
        assert victim["status"]["podIP"] not in env.a(name)
    finally:
        subprocess.run(["rm", "-f", flag], check=False)
    wait_for(lambda: len(env.a(name)) == 3, 30, interval=0.3, what="the pod back in the set")


def test_external_name_cname_follows_updates_and_type_change(env):
    name = f"ext.{NS}.svc.{DOMAIN}."
    assert env.answer(name, "CNAME") == [(name, "CNAME", "one.example.com.")]
    env.cluster.client.patch("services", "ext", NS, {"spec": {"externalName": "two.example.com"}})
    wait_for(lambda: env.answer(name, "CNAME") == [(name, "CNAME", "two.example.com.")], 20,
             interval=0.3, what="CNAME to follow the update")
    env.cluster.client.patch("services", "ext", NS, {"spec": {
        "type": "ClusterIP", "externalName": None, "ports": [{"port": 80}]}})
    ip = wait_for(lambda: env.svc("ext")["spec"].get("clusterIP"), 20, what="a clusterIP")
    wait_for(lambda: env.answer(name) == [(name, "A", ip)], 20, interval=0.3,
             what="an A record after the type change")
    assert env.answer(name, "CNAME") == []


def test_nxdomain_and_nodata_carry_the_soa(env):
    soa = re.compile(rf"^{DOMAIN}\.\s+5\s+IN\s+SOA\s+ns\.dns\.{DOMAIN}\. hostmaster\.{DOMAIN}\. "
                     r"\d+ 7200 1800 86400 5$", re.M)
    out = env.dig("+noall", "+comments", "+authority", f"nope.{NS}.svc.{DOMAIN}")
    assert "status: NXDOMAIN" in out and soa.search(out), out
    out = env.dig("+noall", "+comments", "+authority", "AAAA", f"web.{NS}.svc.{DOMAIN}")
    assert "status: NOERROR" in out and "ANSWER: 0" in out and soa.search(out), out
    out = env.dig("+noall", "+comments", "example.com")  # no forwarder: quick REFUSED
    assert "status: REFUSED" in out, out


def test_ttl_edit_in_the_configmap_applies_without_restart(env):
    client = env.cluster.client
    name = f"web.{NS}.svc.{DOMAIN}"

    def ttls() -> set[str]:
        return {line.split()[1] for ip in env.server_ips for line in env.dig(
            "+noall", "+answer", name, server=ip).splitlines()}

    def set_ttl(old: str, new: str) -> None:
        cm = client.get("configmaps", "coredns", "kube-system")
        cm["data"]["Corefile"] = cm["data"]["Corefile"].replace(f"ttl {old}", f"ttl {new}")
        client.update(cm)

    assert ttls() == {"30"}
    set_ttl("30", "7")
    try:
        wait_for(lambda: ttls() == {"7"}, 20, interval=0.3, what="both servers to use ttl 7")
    finally:
        set_ttl("7", "30")
    wait_for(lambda: ttls() == {"30"}, 20, interval=0.3, what="ttl 30 again")


# ----------------------------------------------------------------------------- glibc
GETADDRINFO = ("import socket,sys; print(sorted({a[4][0] for a in socket.getaddrinfo("
               "sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM)}))")


def glibc_cases(env) -> list[tuple[str, str]]:
    web, far = env.svc("web")["spec"]["clusterIP"], env.svc("far", OTHER)["spec"]["clusterIP"]
    return [("web", web), (f"web.{NS}", web), (f"web.{NS}.svc.{DOMAIN}", web),
            (f"far.{OTHER}", far), (f"far.{OTHER}.svc", far), ("kubernetes.default",
                                                               env.cluster.cfg.kubernetes_ip)]


@pytest.mark.parametrize("pod", ["direct", "cf"])
def test_getent_and_getaddrinfo_inside_a_pod(env, pod):
    for name, ip in glibc_cases(env):
        p = env.exec(pod, "getent", "hosts", name)
        assert p.returncode == 0 and p.stdout.split()[0] == ip, (name, p.stdout, p.stderr)
        p = env.exec(pod, PYTHON, "-c", GETADDRINFO, name)
        assert p.returncode == 0 and p.stdout.strip() == repr([ip]), (name, p.stdout, p.stderr)
    p = env.exec(pod, "getent", "hosts", f"missing.{NS}")
    assert p.returncode == 2, p.stdout


# -------------------------------------------------------------------- failure drills
LOOKUP_LOOP = textwrap.dedent("""\
    import socket, sys, time, json
    n, ok, fails, deadline = 0, 0, [], time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        n += 1
        try:
            socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM)
            ok += 1
            if ok == 5:
                print("answering", flush=True)  # the test kills a server after this line
        except OSError as e:
            fails.append(str(e))
        time.sleep(0.05)
    print(json.dumps({"n": n, "ok": ok, "fails": fails}), flush=True)
    """)


def test_lookups_keep_succeeding_while_a_coredns_pod_is_replaced(env):
    cluster = env.cluster
    before = coredns_pods(cluster)
    victim = before[0]["metadata"]["name"]
    loop = subprocess.Popen(
        [sys.executable, "-m", "netsim.cli.main", "exec", "-n", NS, "cf", "--", PYTHON, "-c",
         LOOKUP_LOOP, f"web.{NS}.svc.{DOMAIN}", "15"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "NETSIM_CLUSTER": cluster.name})
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in loop.stdout],
                              daemon=True)
    reader.start()
    try:
        first = lines.get(timeout=30)  # the lookups are answered: now kill one server
        assert first.strip() == "answering", first
        cluster.netsim("-n", "kube-system", "delete", "po", victim, timeout=90)
        assert loop.wait(90) == 0
    finally:
        if loop.poll() is None:
            loop.kill()
    reader.join(10)
    rest = list(lines.queue)
    after = coredns_pods(cluster)
    assert victim not in {p["metadata"]["name"] for p in after}
    stats = json.loads(rest[-1])
    assert stats["n"] > 50 and stats["ok"] == stats["n"] and stats["fails"] == [], stats
    env.server_ips = sorted(p["status"]["podIP"] for p in after)
    new = next(p for p in after if p["metadata"]["name"] not in
               {b["metadata"]["name"] for b in before})
    out = env.dig("+short", f"kubernetes.default.svc.{DOMAIN}", server=new["status"]["podIP"])
    assert out.strip() == cluster.cfg.kubernetes_ip


FUZZ = textwrap.dedent("""\
    import os, random, socket, sys, time
    from scapy.all import DNS, DNSQR, DNSRR, fuzz, raw
    random.seed(int(sys.argv[3]))
    ip, count = sys.argv[1], int(sys.argv[2])
    templates = []
    for i in range(1500):  # scapy-built packets: fuzzed DNS, lying counts, pointer loops
        k = i % 5
        if k == 0:
            p = raw(fuzz(DNS()))
        elif k == 1:
            p = raw(fuzz(DNS(qd=DNSQR(qname="web.default.svc.cluster.local"))))
        elif k == 2:
            p = raw(DNS(id=i, qdcount=random.randint(2, 65535), ancount=random.randint(0, 9),
                        qd=DNSQR(qname=os.urandom(random.randint(1, 40)).hex() + ".local")))
        elif k == 3:
            p = raw(DNS(id=i, qd=DNSQR(qname="x.cluster.local"), an=DNSRR(rrname="a",
                                                                      rdata="1.2.3.4")))
            p = p[:12] + b"\\xc0\\x0c" + p[14:]  # the qname points at itself
        else:
            p = os.urandom(random.randint(0, 700))
        templates.append(p)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    sent = 0
    for n in range(count):
        p = bytearray(random.choice(templates))
        for _ in range(random.randint(0, 3)):  # flip a few bytes
            if p:
                p[random.randrange(len(p))] = random.randrange(256)
        try:
            s.sendto(bytes(p[:random.randint(0, len(p))] if n % 7 == 0 else p), (ip, 53))
            sent += 1
        except BlockingIOError:
            time.sleep(0.001)
        if n % 200 == 199:
            time.sleep(0.004)  # ~40k packets/s: most reach the server, not the drop counter
            try:
                while s.recv(4096):
                    pass
            except BlockingIOError:
                pass
    print(sent)
    """)


def server_pid(cluster, pod: dict) -> int:
    from netsim.kubelet.sandbox import netns_name
    ns = netns_name(cluster.name, pod["metadata"]["uid"])
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    for pid in pids.split():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"netsim.dns" in f.read():
                    return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no DNS server process in {ns}: {pids}")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


def test_random_and_malformed_packets_do_not_stop_the_server(env):
    cluster = env.cluster
    target = coredns_pods(cluster)[0]
    ip = target["status"]["podIP"]
    pid = server_pid(cluster, target)
    # warm-up: caches and allocator arenas reach their working size first
    p = env.exec("direct", PYTHON, "-c", FUZZ, ip, "20000", "1", timeout=300)
    assert p.returncode == 0, p.stderr
    before = rss_kb(pid)
    p = env.exec("direct", PYTHON, "-c", FUZZ, ip, "100000", "2", timeout=600)
    assert p.returncode == 0, p.stderr
    assert int(p.stdout.split()[-1]) > 90000, p.stdout
    assert server_pid(cluster, target) == pid  # same process, still there
    wait_for(lambda: env.dig("+short", f"kubernetes.default.svc.{DOMAIN}", server=ip).strip()
             == cluster.cfg.kubernetes_ip, 20, what="an answer after the flood")
    assert env.dig("+tcp", "+short", f"web.{NS}.svc.{DOMAIN}", server=ip).strip() == \
        env.svc("web")["spec"]["clusterIP"]
    after = rss_kb(pid)
    print(f"coredns RSS before {before} kB, after 100k packets {after} kB")
    assert after - before < 20 * 1024, (before, after)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_lame_duck_then_exit(env):
    """SIGTERM: still answering for the Corefile's `lameduck 5s` (so a Service's clients never
    hit a dead server while the endpoint is withdrawn), then gone, well within the grace."""
    cluster = env.cluster
    pod = coredns_pods(cluster)[1]
    pid, ip = server_pid(cluster, pod), pod["status"]["podIP"]
    t0 = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    assert env.dig("+short", f"kubernetes.default.svc.{DOMAIN}", server=ip).strip() == \
        cluster.cfg.kubernetes_ip
    assert alive(pid)
    wait_for(lambda: not alive(pid), 15, what="the server to exit after its lame duck")
    assert 4.5 < time.monotonic() - t0 < 8
    coredns_pods(cluster)  # the kubelet restarts the container; both ready again
