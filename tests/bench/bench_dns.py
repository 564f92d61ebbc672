"""Issue #5 benchmark: cluster DNS queries per second, side by side in one run.

Three servers answer the same cluster zone (N Services with named ports, built by
netsim/dns/records.py) on loopback inside a throw-away network namespace:
- netsim's server (asyncio, packed-answer cache) — what the coredns pods run;
- dnslib's own threaded `DNSServer` with the same Zone as its resolver — the naive baseline;
- nsd (Debian's C authoritative server) loaded with `Zone.render()` — the practical ceiling.
Load: dnsperf (Debian `dnsperf`) with A queries for service names and 10% SRV; if dnsperf
is missing and cannot be installed, a small pure-Python asyncio generator is used instead
(it says so; its own CPU use then caps the figures). Server and load generator are pinned
to different cores. nsd and dnsperf are apt-get installed here when missing.

Small by default (200 services, 3 s per server); `NETSIM_BENCH_FULL=1` for 5,000 services,
15 s. Run alone: `sudo python -m tests.bench.bench_dns`. The last line is the headline.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from tests.bench import series
from tests.conftest import is_root

FULL = os.environ.get("NETSIM_BENCH_FULL") == "1"
SERVICES = 5000 if FULL else 200
SECONDS = 15 if FULL else 3
NETNS = f"nsbench-dns-{os.getpid()}"
HOST = "127.0.0.1"
PORTS = {"netsim": 5301, "dnslib": 5302, "nsd": 5303}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Builds the bench zone; shared by the server subprocesses and the query file.
ZONE_CODE = r"""
def bench_zone(n):
    from netsim.dns.records import Zone
    svcs, slices = [], []
    for i in range(n):
        ns = f"ns{i % 20}"
        ip = f"10.{96 + i // 65000}.{(i // 250) % 256}.{i % 250 + 2}"
        svcs.append({"metadata": {"name": f"svc{i}", "namespace": ns, "resourceVersion": "1"},
                     "spec": {"type": "ClusterIP", "clusterIP": ip,
                              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
    return Zone.build(svcs, slices, [], domain="cluster.local", ttl=30, serial=1)
"""

NETSIM_SERVER = ZONE_CODE + r"""
import asyncio, sys
sys.path.insert(0, sys.argv[3])
from netsim.dns.server import DnsServer
server = DnsServer(bench_zone(int(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]),
                   metrics_port=None)
asyncio.run(server.serve_forever())
"""

DNSLIB_SERVER = ZONE_CODE + r"""
import sys, time
sys.path.insert(0, sys.argv[3])
from dnslib import RCODE
from dnslib.server import BaseResolver, DNSLogger, DNSServer
zone = bench_zone(int(sys.argv[1]))
class Resolver(BaseResolver):
    def resolve(self, request, handler):
        reply = zone.answer(request)
        if reply is None:
            reply = request.reply()
            reply.header.rcode = RCODE.REFUSED
        return reply
server = DNSServer(Resolver(), address="127.0.0.1", port=int(sys.argv[2]),
                   logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data"))
server.start_thread()
while True:
    time.sleep(3600)
"""

ZONE_TEXT = ZONE_CODE + r"""
import sys
sys.path.insert(0, sys.argv[2])
print(bench_zone(int(sys.argv[1])).render(), end="")
"""

# Pure-Python fallback load generator: `outstanding` queries in flight over UDP.
PYLOAD = r"""
import asyncio, random, struct, sys, time
host, port, path, secs, outstanding = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
def wire(name, qtype, ident):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", {"A": 1, "SRV": 33}[qtype], 1)
queries = [l.split() for l in open(path) if l.strip()]
class P(asyncio.DatagramProtocol):
    def __init__(s): s.sent = {}; s.done = 0; s.lat = 0.0; s.ident = 0
    def connection_made(s, t): s.t = t
    def send(s):
        s.ident = (s.ident + 1) & 0xFFFF
        name, qt = random.choice(queries)
        s.sent[s.ident] = time.perf_counter(); s.t.sendto(wire(name, qt, s.ident))
    def datagram_received(s, data, addr):
        t0 = s.sent.pop(struct.unpack("!H", data[:2])[0], None)
        if t0 is not None:
            s.done += 1; s.lat += time.perf_counter() - t0
            if time.perf_counter() < s.end: s.send()
async def main():
    loop = asyncio.get_running_loop()
    t, p = await loop.create_datagram_endpoint(P, remote_addr=(host, port))
    p.end = time.perf_counter() + secs
    for _ in range(outstanding): p.send()
    while time.perf_counter() < p.end:
        await asyncio.sleep(0.2)
        while len(p.sent) < outstanding // 2 and time.perf_counter() < p.end: p.send()  # lost ones
    await asyncio.sleep(0.2)
    print(f"Queries per second: {p.done / secs:.1f}")
    print(f"Average Latency (s): {p.lat / max(p.done, 1):.6f}")
asyncio.run(main())
"""


def _sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, **kw)


def _ensure_packages(*pkgs: str) -> list[str]:
    """apt-get install what is missing; returns what is still missing afterwards."""
    missing = [p for p in pkgs if not shutil.which({"nsd": "nsd"}.get(p, p))]
    if missing and shutil.which("apt-get"):
        print(f"installing {' '.join(missing)} with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        r = _sh("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing,
                check=False, env=env, timeout=600)
        if r.returncode != 0:
            _sh("apt-get", "update", "-q", check=False, env=env, timeout=600)
            _sh("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing,
                check=False, env=env, timeout=600)
        if "nsd" in missing and shutil.which("systemctl"):
            # the package starts a system nsd on :53; this bench only wants the binary
            _sh("systemctl", "disable", "--now", "nsd", check=False)
    return [p for p in pkgs if not shutil.which(p)]


def _cpus() -> tuple[str, str]:
    n = os.cpu_count() or 1
    return ("0", "1") if n >= 2 else ("0", "0")


def _in_ns(*cmd: str) -> list[str]:
    return ["ip", "netns", "exec", NETNS, *cmd]


def _wait_udp(port: int, timeout: float = 30) -> None:
    probe = ("import socket,sys,time\n"
             "q=bytes.fromhex('abcd01000001000000000000')+b'\\x0bdns-version\\x07cluster"
             "\\x05local\\x00\\x00\\x10\\x00\\x01'\n"
             "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(0.2)\n"
             f"end=time.time()+{timeout}\n"
             "while time.time()<end:\n"
             f"  s.sendto(q,('{HOST}',{port}))\n"
             "  try: s.recv(512); sys.exit(0)\n"
             "  except OSError: pass\n"
             "sys.exit(1)\n")
    r = subprocess.run(_in_ns(sys.executable, "-c", probe), timeout=timeout + 10)
    if r.returncode != 0:
        raise RuntimeError(f"server on port {port} did not answer")


def _query_file(path: str) -> None:
    rnd = random.Random(5)
    with open(path, "w") as f:
        for _ in range(20000):
            i = rnd.randrange(SERVICES)
            name = f"svc{i}.ns{i % 20}.svc.cluster.local"
            if rnd.random() < 0.1:
                f.write(f"_http._tcp.{name} SRV\n")
            else:
                f.write(f"{name} A\n")


def _load(port: int, qfile: str, cpu: str, use_dnsperf: bool) -> dict:
    if use_dnsperf:
        cmd = ["taskset", "-c", cpu, "dnsperf", "-s", HOST, "-p", str(port), "-d", qfile,
               "-l", str(SECONDS), "-c", "8", "-q", "200", "-t", "2"]
    else:
        cmd = ["taskset", "-c", cpu, sys.executable, "-c", PYLOAD, HOST, str(port), qfile,
               str(SECONDS), "200"]
    out = _sh(*_in_ns(*cmd), timeout=SECONDS + 120).stdout
    m = {"qps": float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1)),
         "lat_ms": 1000 * float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1))}
    lost = re.search(r"Queries lost:\s+(\d+) \(([\d.]+)%\)", out)
    m["lost_pct"] = float(lost.group(2)) if lost else 0.0
    sd = re.search(r"Latency StdDev \(s\):\s+([\d.]+)", out)
    m["sd_ms"] = 1000 * float(sd.group(1)) if sd else float("nan")
    return m


def _nsd(tmp: str, cpu: str) -> subprocess.Popen:
    zone = _sh(sys.executable, "-c", ZONE_TEXT, str(SERVICES), REPO).stdout
    with open(os.path.join(tmp, "cluster.local.zone"), "w") as f:
        f.write("$ORIGIN cluster.local.\n" + zone)
    with open(os.path.join(tmp, "nsd.conf"), "w") as f:
        f.write(f"""server:
    ip-address: {HOST}@{PORTS['nsd']}
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{tmp}"
    database: ""
    zonelistfile: "{tmp}/zone.list"
    xfrdfile: "{tmp}/xfrd.state"
    xfrdir: "{tmp}"
    pidfile: "{tmp}/nsd.pid"
    logfile: "{tmp}/nsd.log"
    verbosity: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: cluster.local
    zonefile: cluster.local.zone
""")
    return subprocess.Popen(_in_ns("taskset", "-c", cpu, "nsd", "-d", "-c",
                                   os.path.join(tmp, "nsd.conf")),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _stop(p: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGTERM)
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(5)


def measure() -> dict:
    missing = _ensure_packages("dnsperf", "nsd")
    use_dnsperf = "dnsperf" not in missing
    if not use_dnsperf:
        print("dnsperf is not installable here: using the pure-Python asyncio load generator "
              "(figures are capped by its own CPU use)")
    load_cpu, server_cpu = _cpus()
    results: dict = {"dnsperf": use_dnsperf}
    _sh("ip", "netns", "add", NETNS)
    tmp = tempfile.mkdtemp(prefix="netsim-bench-dns-")
    try:
        _sh("ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up")
        qfile = os.path.join(tmp, "queries.txt")
        _query_file(qfile)
        servers = {
            "netsim": lambda: subprocess.Popen(
                _in_ns("taskset", "-c", server_cpu, sys.executable, "-c", NETSIM_SERVER,
                       str(SERVICES), str(PORTS["netsim"]), REPO), start_new_session=True),
            "dnslib": lambda: subprocess.Popen(
                _in_ns("taskset", "-c", server_cpu, sys.executable, "-c", DNSLIB_SERVER,
                       str(SERVICES), str(PORTS["dnslib"]), REPO), start_new_session=True),
        }
        if "nsd" not in missing:
            servers["nsd"] = lambda: _nsd(tmp, server_cpu)
        else:
            print("nsd is not installable here: skipping the C server column")
        for name, start in servers.items():
            proc = start()
            try:
                _wait_udp(PORTS[name])
                _load(PORTS[name], qfile, load_cpu, use_dnsperf)  # warm-up (caches, JIT-free)
                results[name] = _load(PORTS[name], qfile, load_cpu, use_dnsperf)
            finally:
                _stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _sh("ip", "netns", "del", NETNS, check=False)
    return results


def report(r: dict) -> None:
    tool = "dnsperf" if r["dnsperf"] else "python asyncio generator"
    print(f"cluster DNS, {SERVICES} services, {SECONDS} s per server, load: {tool}, "
          f"server and load on separate cores")
    print(f"{'server':<28}{'qps':>10}{'avg latency':>14}{'stddev':>12}{'lost':>8}")
    labels = {"netsim": "netsim (asyncio + cache)", "dnslib": "dnslib threaded DNSServer",
              "nsd": "nsd 1 server process (C)"}
    for k in ("netsim", "dnslib", "nsd"):
        if k in r:
            m = r[k]
            print(f"{labels[k]:<28}{m['qps']:>10.0f}{m['lat_ms']:>11.3f} ms{m['sd_ms']:>9.3f} ms"
                  f"{m['lost_pct']:>7.2f}%")
            series.point("dns", f"qps, {SERVICES} services, load: {tool}", labels[k], m["qps"],
                         x_label="server", y_label="queries per second", kind="bar")
    ours = r["netsim"]["qps"]
    ratio = ours / r["dnslib"]["qps"] if r.get("dnslib", {}).get("qps") else float("nan")
    print(f"netsim / dnslib threaded: {ratio:.1f}x")
    tail = ""
    if "nsd" in r and r["nsd"]["qps"]:
        print(f"netsim / nsd:             {ours / r['nsd']['qps']:.2f}x")
        tail = f", {100 * ours / r['nsd']['qps']:.0f}% of nsd"
    print(f"headline: {ours:.0f} qps on one core ({ratio:.1f}x dnslib threaded{tail})")


@pytest.mark.skipif(not is_root(), reason="needs root (network namespaces)")
def test_bench_dns():
    report(measure())


if __name__ == "__main__":
    report(measure())
