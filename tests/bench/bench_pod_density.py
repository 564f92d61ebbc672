"""Issue #16 benchmark: what one echo pod costs (PSS, CPU) and how fast N of them get Ready.

An echo Deployment (tcpSocket readiness probe every second) of N replicas on K nodes, from
`apply` until every pod is Running, Ready and answers HTTP. Then, measured as `smem` does:
  - PSS per pod: the Pss (/proc/PID/smaps_rollup) of every process in the pods' cgroups
    (containers and the pod's pause/holder process) plus the node image servers that
    pre-fork them (netsim.images.zygote: their shared pages are part of the pods' cost),
    divided by N; RSS per pod beside it;
  - CPU per pod: utime+stime (children included) of the control plane, the node agents and
    the image servers during the run, plus all the CPU used in the pods' cgroups (containers,
    holders, the probes they answered), or the CPU time of the pods' processes when that is
    more (an exec'd holder starts an interpreter before it joins its cgroup), / N;
  - pods/s: N / seconds from apply to all Ready.
It runs twice, with the image server (the default) and without it (NETSIM_ZYGOTE=0 in
`cluster up`'s environment: every container is a fresh `python3` exec), so each figure
stands beside its anchor measured in the same run.

Small in CI (2 nodes x 20 pods); NETSIM_BENCH_FULL=1 for 10 nodes x 100 pods;
NETSIM_BENCH_NODES / NETSIM_BENCH_PODS override either (5,000 pods: 25 nodes and
NETSIM_BENCH_PROBE_PERIOD=10). NETSIM_BENCH_MODES=zygote (or exec)
runs one mode only. NETSIM_BENCH_SERVICE=1 puts a Service in front of the pods (every
node's kube-proxy then follows their endpoints as they come). Once all answer, the cluster
is left alone for NETSIM_BENCH_IDLE_SECONDS (5): what it costs doing nothing, in cores.
Run alone: `sudo python -m tests.bench.bench_pod_density`.
The last line is the headline figure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.bench import series, stop_on_sigterm
from tests.bench.bench_cluster import _PROBE  # every pod IP answers HTTP
from tests.conftest import is_root, wait_for

NAME = os.environ.get("NETSIM_BENCH_CLUSTER", "nsdensity")
LAN = os.environ.get("NETSIM_BENCH_LAN", "192.168.74.0/24")
FULL = os.environ.get("NETSIM_BENCH_FULL") == "1"
NODES = int(os.environ.get("NETSIM_BENCH_NODES") or (10 if FULL else 2))
PODS = int(os.environ.get("NETSIM_BENCH_PODS") or (1000 if FULL else 20 * NODES))
# 1 s: Ready is seen within a second of the pod listening. Each probe costs ~0.45 ms of
# CPU (kubelet side, the echo server's accept, the kernel's handshake): 5,000 pods probed
# every second would need more than this 2-core machine, so a 5,000-pod run takes
# upstream's default of 10 s (NETSIM_BENCH_PROBE_PERIOD=10).
PROBE_PERIOD = int(os.environ.get("NETSIM_BENCH_PROBE_PERIOD") or 1)
MODES = tuple(m for m in os.environ.get("NETSIM_BENCH_MODES", "exec,zygote").split(",") if m)
SERVICE = os.environ.get("NETSIM_BENCH_SERVICE") == "1"
IDLE_SECONDS = float(os.environ.get("NETSIM_BENCH_IDLE_SECONDS") or 5)
TICK = os.sysconf("SC_CLK_TCK")



def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "netsim.cli.main", *args], capture_output=True,
                          text=True, env={**os.environ, "NETSIM_CLUSTER": NAME, **(env or {})},
                          timeout=600)


def deployment(n: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "density", "namespace": "default"},
            "spec": {"replicas": n, "selector": {"matchLabels": {"app": "density"}},
                     "template": {"metadata": {"labels": {"app": "density"}}, "spec": {
                         "tolerations": [{"operator": "Exists"}],
                         "containers": [{
                             "name": "echo", "image": "netsim/echo",
                             "ports": [{"containerPort": 8080}],
                             "readinessProbe": {"tcpSocket": {"port": 8080},
                                                "periodSeconds": PROBE_PERIOD}}]}}}}


SERVICE_OBJ = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "density", "namespace": "default"},
               "spec": {"selector": {"app": "density"},
                        "ports": [{"port": 80, "targetPort": 8080}]}}


def _stat_ticks(pid: int, children: bool = True) -> int:
    """utime + stime (+ cutime + cstime: reaped children) of a process, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(x) for x in rest[11:15 if children else 13])


def _rollup(pid: int) -> tuple[int, int]:
    """(Pss, Rss) in kB of one process."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def _daemons() -> dict[str, list[int]]:
    """Pids of the cluster's daemons by kind (control plane, agents, image servers)."""
    from netsim.kubelet.runtime import proc_starttime
    from netsim.net.ledger import Ledger

    out: dict[str, list[int]] = {"controlplane": [], "agents": [], "zygotes": []}
    for r in Ledger(NAME).records():
        if r["kind"] != "process" or proc_starttime(r["pid"]) != r.get("starttime"):
            continue
        role = str(r.get("role", ""))
        kind = "agents" if role.startswith("agent/") else \
            "zygotes" if role.startswith("zygote/") else "controlplane"
        out[kind].append(r["pid"])
    return out


def _pod_cgroups(uids: set[str]) -> list[str]:
    """These pods' cgroups (not the add-ons' pods)."""
    from netsim.kubelet import cgroups

    top = cgroups.cluster_path(NAME)
    return [path for node in (os.listdir(top) if top and os.path.isdir(top) else ())
            for uid in uids for path in [os.path.join(top, node, f"pod{uid}")]
            if os.path.isdir(path)]


def _cgroup_cpu(path: str) -> float:
    """Seconds of CPU every process of the cgroup ever used once in it (threads gone, too:
    per-process ticks round each short-lived container down to nothing)."""
    try:
        with open(os.path.join(path, "cpu.stat")) as f:
            for line in f:
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return 0.0


def measure(mode: str, n: int = PODS, nodes: int = NODES) -> dict:
    env = {"NETSIM_ZYGOTE": "0" if mode == "exec" else "1"}
    _cli("cluster", "down", "--name", NAME)
    r = _cli("cluster", "up", "--name", NAME, "--lan", LAN, "--nodes", str(nodes),
             "--no-addons", "--max-pods", str(max(110, n // nodes + 10)), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        from netsim.api.client import HttpClient
        from netsim.net.topology import ClusterConfig

        cfg = ClusterConfig.load(NAME)
        c = HttpClient(NAME)
        daemons = _daemons()
        before = {k: sum(_stat_ticks(p) for p in v) for k, v in daemons.items()}
        t = time.monotonic()
        if SERVICE:
            c.create(SERVICE_OBJ)
        c.create(deployment(n))

        def rolled_out():  # as `kubectl rollout status` watches it: the Deployment's status
            st = c.get("deployments", "density", "default").get("status") or {}
            return st.get("readyReplicas") == n and st.get("updatedReplicas") == n

        def ready():
            ps = [p for p in c.list("pods", "default", "app=density")
                  if any(x.get("type") == "Ready" and x.get("status") == "True"
                         for x in p["status"].get("conditions") or [])]
            return ps if len(ps) == n else None
        # Polling the pods themselves (a list of N pods five times a second) cost the
        # control plane and this process more than a core at 1,000 pods.
        wait_for(rolled_out, max(600, n * 0.3), 0.2, what=f"{n} replicas ready")
        ready_pods = wait_for(ready, 60, 0.2, what=f"{n} pods Ready")
        ips = [p["status"].get("podIP") for p in ready_pods]
        ready_s = time.monotonic() - t
        answered = subprocess.run(["ip", "netns", "exec", cfg.node_netns(cfg.nodes[0].name),
                                   sys.executable, "-c", _PROBE, *ips],
                                  capture_output=True, text=True, timeout=300).stdout.strip()
        answering_s = time.monotonic() - t
        assert answered == str(n), answered
        daemons = _daemons()  # an image server started meanwhile counts from zero
        after = {k: sum(_stat_ticks(p) for p in v) for k, v in daemons.items()}
        from netsim.kubelet import cgroups

        pod_cgroups = _pod_cgroups({p["metadata"]["uid"] for p in ready_pods})
        pods = [pid for path in pod_cgroups for pid in cgroups.pids(path)]
        cpu = {k: (after[k] - before.get(k, 0)) / TICK for k in after}
        # the larger of two lower bounds: the cgroup's (misses what ran before the process
        # joined it) and the processes' ticks (round each process down to 10 ms)
        cpu["pods"] = sum(max(_cgroup_cpu(path),
                              sum(_stat_ticks(pid) for pid in cgroups.pids(path)) / TICK)
                          for path in pod_cgroups)
        mem = [_rollup(p) for p in pods + daemons["zygotes"]]
        ctr = [_rollup(p) for p in pods if "echo" in (_comm_line(p) or "")]
        idle = _idle_cores(daemons, pod_cgroups)
    finally:
        t = time.monotonic()
        _cli("cluster", "down", "--name", NAME)
        down_s = time.monotonic() - t
    return {"mode": mode, "pods": n, "nodes": nodes, "ready_s": ready_s, "down_s": down_s,
            "answering_s": answering_s, "pods_per_s": n / ready_s,
            "pss_mb": sum(m[0] for m in mem) / 1024 / n, "rss_mb": sum(m[1] for m in mem) / 1024 / n,
            "echo_pss_mb": sum(m[0] for m in ctr) / 1024 / max(1, len(ctr)),
            "cpu_ms": {k: v * 1000 / n for k, v in cpu.items()},
            "idle_cores": idle, "load": os.getloadavg()[0]}


def _idle_cores(daemons: dict[str, list[int]], pod_cgroups: list[str]) -> dict[str, float]:
    """Cores the cluster uses while nothing happens (probes, relists, resyncs), by part,
    over IDLE_SECONDS: what a user's machine pays for keeping the pods."""
    def ticks() -> dict[str, float]:
        out = {k: sum(_stat_ticks(p) for p in v) / TICK for k, v in daemons.items()}
        out["pods"] = sum(_cgroup_cpu(path) for path in pod_cgroups)
        return out
    before, t = ticks(), time.monotonic()
    time.sleep(IDLE_SECONDS)  # a window to measure over, not a wait for something
    after, dt = ticks(), time.monotonic() - t
    return {k: (after[k] - before[k]) / dt for k in after}


def _comm_line(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def report(results: list[dict]) -> None:
    for m in results:
        cpu = m["cpu_ms"]
        total = sum(cpu.values())
        series.point("pod_density", f"PSS per pod ({m['mode']})", m["pods"], m["pss_mb"],
                     x_label="echo pods", y_label="MB")
        series.point("pod_density", f"CPU per pod ({m['mode']})", m["pods"], total,
                     x_label="echo pods", y_label="ms")
        print(f"[{m['mode']:6}] {m['pods']} pods on {m['nodes']} nodes: all Ready in "
              f"{m['ready_s']:.1f} s ({m['pods_per_s']:.1f} pods/s), answering HTTP after "
              f"{m['answering_s']:.1f} s (load {m['load']:.1f}; readiness probe every "
              f"{PROBE_PERIOD} s{'; behind a Service' if SERVICE else ''})")
        print(f"[{m['mode']:6}] PSS per pod {m['pss_mb']:.2f} MB (RSS {m['rss_mb']:.2f} MB; "
              f"the echo process alone {m['echo_pss_mb']:.2f} MB)   (target <= 2 MB)")
        print(f"[{m['mode']:6}] CPU per pod {total:.0f} ms: "
              + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
        idle = m["idle_cores"]
        print(f"[{m['mode']:6}] idle, {IDLE_SECONDS:.0f} s: {sum(idle.values()):.2f} cores: "
              + ", ".join(f"{k} {v:.2f}" for k, v in idle.items()))
        print(f"[{m['mode']:6}] cluster down with {m['pods']} pods running: "
              f"{m['down_s']:.1f} s   (target <= 2 s)")
    last = results[-1]
    print(f"headline: {last['pss_mb']:.2f} MB PSS and {sum(last['cpu_ms'].values()):.0f} ms CPU "
          f"per echo pod, {last['pods']} pods Ready in {last['ready_s']:.1f} s ({last['mode']}"
          + "".join(f"; {m['mode']}: {m['pss_mb']:.2f} MB, {sum(m['cpu_ms'].values()):.0f} ms, "
                    f"{m['ready_s']:.1f} s" for m in results[:-1]) + ")")


@pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")
def test_bench_pod_density():
    report([measure(m) for m in MODES])


if __name__ == "__main__":
    stop_on_sigterm()
    report([measure(m) for m in MODES])
