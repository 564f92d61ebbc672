"""Issue #6 benchmark: requests/s and latency through the ingress vs straight to the pod,
and render + validate + reload time for 1,000 Ingress paths.

Load comes from wrk (Debian package `wrk`; installed here with apt-get when missing) run in
the netns of node k8s-slave-173, against (a) the ingress on k8s-slave-172:80 with a Host
header and (b) the echo pod's IP:8080 - same client, same single backend pod.
Paths: 1,000 Ingress paths rendered and checked with `nginx -t` in-process, then the same
Ingresses applied to the cluster and timed until the last path answers (the controller's
own render/validate/reload split comes from its /metrics on :10254).

Small by default (5 s of load, 200 paths in the cluster); `NETSIM_BENCH_FULL=1` for 30 s
and 1,000 paths. Run alone: `sudo python -m tests.bench.bench_ingress`. The last line is
the headline figure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from tests.bench import stop_on_sigterm
from tests.conftest import is_root, wait_for

NAME, LAN = "nsbenchi", "192.168.81.0/24"
FULL = os.environ.get("NETSIM_BENCH_FULL") == "1"
DURATION = 30 if FULL else 5
CLUSTER_PATHS = 1000 if FULL else 200
PATHS_PER_INGRESS = 10
INGRESS_NODE, CLIENT_NODE = "k8s-slave-172", "k8s-slave-173"
NS = "bench"


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "netsim.cli.main", *args], capture_output=True,
                       text=True, env={**os.environ, "NETSIM_CLUSTER": NAME}, timeout=300)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def ensure_wrk() -> str:
    """wrk's path; installs the Debian package when missing (reported in the output)."""
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk not installed: apt-get install -y wrk")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    path = shutil.which("wrk")
    assert path, "wrk could not be installed"
    return path


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    n, unit = float(m.group(1)), m.group(2)
    return n / 1000 if unit == "us" else n * 1000 if unit == "s" else n


def parse_wrk(out: str) -> dict:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    avg = _ms(re.search(r"Latency\s+(\S+)", out).group(1))
    pct = {int(p): _ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": rps, "avg_ms": avg, "p50_ms": pct.get(50, 0.0), "p99_ms": pct.get(99, 0.0),
            "errors": (int(errors.group(1)) if errors else 0)
            + (sum(int(x) for x in sock.groups()) if sock else 0)}


def wrk(netns: str, url: str, host: str | None = None) -> dict:
    cmd = ["ip", "netns", "exec", netns, ensure_wrk(), "-t2", "-c32", f"-d{DURATION}s",
           "--latency"]
    if host:
        cmd += ["-H", f"Host: {host}"]
    p = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=DURATION + 60)
    assert p.returncode == 0, p.stdout + p.stderr
    return parse_wrk(p.stdout)


def ingresses(n_paths: int, namespace: str = NS, service: str = "echo") -> list[dict]:
    out = []
    for i in range(0, n_paths, PATHS_PER_INGRESS):
        paths = [{"path": f"/app{j}", "pathType": "Prefix" if j % 2 else "Exact",
                  "backend": {"service": {"name": service, "port": {"number": 80}}}}
                 for j in range(i, min(i + PATHS_PER_INGRESS, n_paths))]
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                    "metadata": {"name": f"paths-{i // PATHS_PER_INGRESS}",
                                 "namespace": namespace,
                                 "creationTimestamp": f"2026-01-01T00:00:{i % 60:02d}Z"},
                    "spec": {"ingressClassName": "nginx",
                             "rules": [{"host": f"h{i // 100}.bench.example",
                                        "http": {"paths": paths}}]}})
    return out


def measure_offline(n_paths: int = 1000) -> dict:
    """Pure render + `nginx -t` for n paths (no cluster)."""
    from netsim.ingress.controller import IngressController
    from netsim.ingress.render import validate

    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "namespace": NS},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    sl = {"metadata": {"name": "echo-x", "namespace": NS,
                       "labels": {"kubernetes.io/service-name": "echo"}},
          "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
          "endpoints": [{"addresses": [f"10.244.1.{k}"], "conditions": {"ready": True}}
                        for k in range(2, 12)]}
    with tempfile.TemporaryDirectory() as tmp:
        ctrl = IngressController(None, cluster=NAME, state_dir=tmp)
        ctrl.default_certificate()
        ings = ingresses(n_paths)
        t0 = time.perf_counter()
        r = ctrl.render(ings, [svc], [sl], [])
        t1 = time.perf_counter()
        ok, msg = validate(r.conf, r.files, ctrl.nginx_binary)
        t2 = time.perf_counter()
    assert ok, msg
    return {"paths": n_paths, "render_ms": (t1 - t0) * 1000, "validate_ms": (t2 - t1) * 1000,
            "conf_kb": len(r.conf) / 1024,
            "locations": r.conf.count("location ")}


def _metrics(node_netns: str) -> dict:
    out = subprocess.run(["ip", "netns", "exec", node_netns, "curl", "-s",
                          "http://127.0.0.1:10254/metrics"], capture_output=True, text=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}


def measure() -> dict:
    ensure_wrk()
    m: dict = {"offline": measure_offline(1000)}
    _cli("cluster", "down", "--name", NAME, check=False)
    _cli("cluster", "up", "--name", NAME, "--lan", LAN)
    try:
        from netsim.api.client import HttpClient
        from netsim.net.topology import ClusterConfig

        cfg = ClusterConfig.load(NAME)
        c = HttpClient(NAME)
        client_ns = cfg.node_netns(CLIENT_NODE)
        ingress_ns = cfg.node_netns(INGRESS_NODE)
        node_ip = cfg.node(INGRESS_NODE).ip
        _cli("label", "node", INGRESS_NODE, "ingress=true")
        _cli("create", "namespace", NS)
        labels = {"app": "echo"}
        c.create({"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "echo", "namespace": NS, "labels": labels},
                  "spec": {"containers": [{"name": "echo", "image": "netsim/echo:v1",
                                           "ports": [{"containerPort": 8080}]}]}})
        c.create({"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": "echo", "namespace": NS},
                  "spec": {"selector": labels,
                           "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})

        def ready(ns, sel):
            pods = c.list("pods", ns, sel)
            return pods and all(any(x["type"] == "Ready" and x["status"] == "True"
                                    for x in p.get("status", {}).get("conditions", []))
                                for p in pods) and pods
        ready_pods = wait_for(lambda: ready(NS, "app=echo"), 60, what="echo pod")
        wait_for(lambda: ready("ingress-nginx", "app.kubernetes.io/component=controller"), 90,
                 what="ingress controller")
        pod_ip = ready_pods[0]["status"]["podIP"]
        c.create({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                  "metadata": {"name": "echo", "namespace": NS},
                  "spec": {"rules": [{"host": "echo.bench.example", "http": {"paths": [
                      {"path": "/", "pathType": "Prefix",
                       "backend": {"service": {"name": "echo", "port": {"number": 80}}}}]}}]}})

        def answers(host, path="/"):
            p = subprocess.run(["ip", "netns", "exec", client_ns, "curl", "-s", "-o",
                                "/dev/null", "-w", "%{http_code}", "-H", f"Host: {host}",
                                f"http://{node_ip}{path}"], capture_output=True, text=True)
            return p.stdout == "200"
        wait_for(lambda: answers("echo.bench.example"), 30, what="ingress route")
        m["direct"] = wrk(client_ns, f"http://{pod_ip}:8080/")
        m["ingress"] = wrk(client_ns, f"http://{node_ip}/", "echo.bench.example")

        # many paths through the live controller
        before = _metrics(ingress_ns)
        ings = ingresses(CLUSTER_PATHS)
        t0 = time.monotonic()
        for ing in ings:
            ing["metadata"].pop("creationTimestamp", None)
            c.create(ing)
        created = time.monotonic()
        last = CLUSTER_PATHS - 1
        wait_for(lambda: answers(f"h{last // 100}.bench.example", f"/app{last}"), 120,
                 what="last path served")
        m["cluster"] = {"paths": CLUSTER_PATHS, "create_s": created - t0,
                        "live_s": time.monotonic() - t0}
        # one more change with everything in place: a clean render/validate/reload sample
        wait_for(lambda: _metrics(ingress_ns).get("netsim_ingress_syncs_total", 0)
                 > before.get("netsim_ingress_syncs_total", 0), 30, what="sync")
        before = _metrics(ingress_ns)
        t0 = time.monotonic()
        c.patch("ingresses", "paths-0", NS, {"spec": {"rules": [{
            "host": "h0.bench.example", "http": {"paths": [
                {"path": "/changed", "pathType": "Prefix",
                 "backend": {"service": {"name": "echo", "port": {"number": 80}}}}]}}]}})
        wait_for(lambda: answers("h0.bench.example", "/changed"), 60, what="changed path")
        m["change_live_s"] = time.monotonic() - t0
        after = _metrics(ingress_ns)
        m["ctrl"] = {"render_ms": after["netsim_ingress_render_seconds"] * 1000,
                     "validate_ms": after["netsim_ingress_validate_seconds"] * 1000,
                     "reload_ms": after["netsim_ingress_reload_seconds"] * 1000,
                     "reloads": after["netsim_ingress_reloads_total"]
                     - before["netsim_ingress_reloads_total"]}
    finally:
        _cli("cluster", "down", "--name", NAME, check=False)
    return m


def report(m: dict) -> None:
    o = m["offline"]
    print(f"offline {o['paths']} paths: render {o['render_ms']:.0f} ms, nginx -t "
          f"{o['validate_ms']:.0f} ms ({o['locations']} locations, {o['conf_kb']:.0f} KiB)")
    for k in ("direct", "ingress"):
        w = m[k]
        print(f"{k:8s} wrk -t2 -c32 {DURATION}s: {w['rps']:8.0f} req/s  avg {w['avg_ms']:.2f} ms"
              f"  p50 {w['p50_ms']:.2f} ms  p99 {w['p99_ms']:.2f} ms  errors {w['errors']}")
    cl = m["cluster"]
    print(f"cluster {cl['paths']} paths: created in {cl['create_s']:.1f} s, all live after "
          f"{cl['live_s']:.1f} s")
    ct = m["ctrl"]
    print(f"one change with {cl['paths']} paths in place: live in {m['change_live_s'] * 1000:.0f}"
          f" ms (render {ct['render_ms']:.0f} ms, validate {ct['validate_ms']:.0f} ms, "
          f"reload {ct['reload_ms']:.0f} ms)")
    ratio = m["ingress"]["rps"] / m["direct"]["rps"] if m["direct"]["rps"] else 0
    print(f"headline: ingress {m['ingress']['rps']:.0f} req/s (p99 {m['ingress']['p99_ms']:.1f} ms)"
          f" = {ratio:.0%} of direct {m['direct']['rps']:.0f} req/s; 1000 paths render "
          f"{o['render_ms']:.0f} ms + nginx -t {o['validate_ms']:.0f} ms, reload "
          f"{ct['reload_ms']:.0f} ms ({cl['paths']} paths live)")


@pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")
def test_bench_ingress():
    report(measure())


if __name__ == "__main__":
    stop_on_sigterm()
    report(measure())
