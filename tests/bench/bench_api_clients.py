"""Bench: the API's read path as kubectl drives it, over HTTPS beside the unix socket.

A store with N pods (1,000 with NETSIM_BENCH_FULL=1, 200 by default; created through the
API with admission, as real pods are) is served by the real listeners in a child
process: HTTPS with client certificates (the admin cert, as kubectl presents it) and the
unix socket netsim's own processes use. On one keep-alive connection each, as kubectl
holds one, the bench measures full lists per second of

- `kubectl get po -o json`'s request: `?limit=500`, Accept application/json, following
  `continue` until the list is whole;
- `kubectl get po`'s request: the same with the Table Accept (and the time of one such
  list made in a new second, when every row's AGE is printed afresh);

then a watch fan-out: 50 watchers (HTTPS) on the pods, one pod's label changed at a
time, the time until all 50 have its event (median and worst of 20 changes).

Runs as a script or under pytest (no root, no cluster); NETSIM_BENCH_PYTHONPATH serves
another checkout (the before figure). The last line is the headline.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 1000 if os.environ.get("NETSIM_BENCH_FULL") == "1" else 200
WATCHERS = 50
SECONDS = 3.0
TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
         "g=meta.k8s.io,application/json")

# The child: a store with N pods behind both listeners; prints the port, then waits.
_SERVER = r"""
import os, sys, threading
from netsim.api.admission import Admission, ClusterSettings
from netsim.api.server import serve, serve_tls, tls_context
from netsim.api.store import Store
from netsim.cluster import pki
state, n = sys.argv[1], int(sys.argv[2])
p = pki.create(state, ["127.0.0.1"])
store = Store(os.path.join(state, "store.db"),
              admission=Admission(ClusterSettings.parse("10.96.0.0/16", "30000-32767")))
store.bootstrap()
store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
for i in range(n):
    store.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"web-{i:05d}", "namespace": "bench", "labels": {"app": "web", "i": str(i)}},
        "spec": {"nodeName": f"node{i % 3}", "containers": [
            {"name": "web", "image": "netsim/echo:v1", "ports": [{"containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": f"10.244.{i // 250}.{i % 250 + 2}",
                   "podIPs": [{"ip": f"10.244.{i // 250}.{i % 250 + 2}"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0,
                                          "image": "netsim/echo:v1", "imageID": "",
                                          "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}})
ctx = tls_context(p.server_crt, p.server_key, p.ca_crt)
servers = [serve_tls(store, "127.0.0.1", 0, ctx), serve(store, os.path.join(state, "api.sock"))]
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
import netsim
print(servers[0].server_address[1], os.path.dirname(os.path.dirname(netsim.__file__)), flush=True)
sys.stdin.read()
"""


class Conn:
    """One keep-alive HTTP/1.1 connection (TLS or unix), reading Content-Length bodies."""

    def __init__(self, state: str, tls: bool, port: int):
        if tls:
            ctx = ssl.create_default_context(cafile=os.path.join(state, "pki", "ca.crt"))
            ctx.load_cert_chain(os.path.join(state, "pki", "admin.crt"),
                                os.path.join(state, "pki", "admin.key"))
            ctx.set_alpn_protocols(["http/1.1"])
            raw = socket.create_connection(("127.0.0.1", port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(os.path.join(state, "api.sock"))
        self.rfile = self.sock.makefile("rb")

    def send(self, method: str, path: str, accept: str = "application/json",
             body: bytes | None = None, ctype: str = "") -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n"
        if body is not None:
            head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + (body or b""))

    def head(self) -> tuple[int, dict]:
        status = int(self.rfile.readline().split()[1])
        headers = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def request(self, method: str, path: str, accept: str = "application/json",
                body: bytes | None = None, ctype: str = "") -> bytes:
        self.send(method, path, accept, body, ctype)
        status, headers = self.head()
        data = self.rfile.read(int(headers["content-length"]))
        assert status < 300, data[:300]
        return data

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


def _metadata(data: bytes) -> dict:
    """The list's own metadata (it comes first, before the items or rows): the client
    reads `continue` without decoding the whole body, so the figure is the server's."""
    start = data.index(b'"metadata":') + len(b'"metadata":')
    return json.loads(data[start:data.index(b"}", start) + 1])


def full_list(c: Conn, accept: str, count: bool = False) -> int:
    """One `kubectl get po` list: limit=500 pages until no continue; returns the items
    (counted only when asked: decoding the body is the client's cost, not the API's)."""
    n, cont = 0, ""
    while True:
        data = c.request("GET", "/api/v1/namespaces/bench/pods?limit=500" + (
            f"&continue={cont}" if cont else ""), accept)
        if count:
            out = json.loads(data)
            n += len(out.get("rows" if out.get("kind") == "Table" else "items") or [])
        cont = _metadata(data).get("continue") or ""
        if not cont:
            return n


def rate(state: str, port: int, tls: bool, accept: str) -> tuple[float, int]:
    c = Conn(state, tls, port)
    try:
        items = full_list(c, accept, count=True)  # warm, and whole
        done, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < SECONDS:
            full_list(c, accept)
            done += 1
        return done / (time.perf_counter() - t0), items
    finally:
        c.close()


def cold_table(state: str, port: int, samples: int = 5) -> float:
    """ms for one Table list made in a new second, as a user's `kubectl get po` every few
    seconds is (each second's AGE cells are printed afresh); the median of `samples`."""
    c = Conn(state, True, port)
    try:
        took = []
        for _ in range(samples):
            time.sleep(1.02 - time.time() % 1.0)
            t0 = time.perf_counter()
            full_list(c, TABLE)
            took.append(time.perf_counter() - t0)
        return statistics.median(took) * 1000
    finally:
        c.close()


def fanout(state: str, port: int, rounds: int = 20) -> list[float]:
    """50 watchers; per round one label patch, the time until all 50 saw its version."""
    c = Conn(state, True, port)
    rv = json.loads(c.request("GET", "/api/v1/namespaces/bench/pods?limit=1"))[
        "metadata"]["resourceVersion"]
    seen: dict[str, list[float]] = {}
    lock, all_seen = threading.Lock(), threading.Condition()
    watchers = []

    def watch(w: Conn) -> None:
        w.send("GET", f"/api/v1/namespaces/bench/pods?watch=true&resourceVersion={rv}"
                      "&allowWatchBookmarks=true&timeoutSeconds=120")
        w.head()
        try:
            while True:
                size = int(w.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    return
                data = w.rfile.read(size)
                w.rfile.readline()
                t = time.perf_counter()
                if data.strip():
                    ev = json.loads(data)
                    erv = ev["object"]["metadata"]["resourceVersion"]
                    if ev["type"] != "BOOKMARK":
                        with lock:
                            seen.setdefault(erv, []).append(t)
                            if len(seen[erv]) == WATCHERS:
                                with all_seen:
                                    all_seen.notify_all()
        except (OSError, ValueError):
            return

    for _ in range(WATCHERS):
        w = Conn(state, True, port)
        watchers.append(w)
        threading.Thread(target=watch, args=(w,), daemon=True).start()
    lat = []
    try:
        # round -1 warms up: a watch not registered yet gets the change replayed from rv, so
        # once all 50 saw it every watch is live and later rounds time the fan-out alone
        for i in range(-1, rounds):
            t0 = time.perf_counter()
            out = json.loads(c.request(
                "PATCH", "/api/v1/namespaces/bench/pods/web-00000",
                body=json.dumps({"metadata": {"labels": {"round": f"r{i + 1}"}}}).encode(),
                ctype="application/merge-patch+json"))
            erv = out["metadata"]["resourceVersion"]
            with all_seen:
                all_seen.wait_for(lambda erv=erv: len(seen.get(erv, ())) >= WATCHERS, 10)
            with lock:
                got = seen.get(erv, [])
                if i >= 0:
                    lat.append((max(got) - t0) if len(got) >= WATCHERS else float("inf"))
    finally:
        for w in watchers:
            try:
                w.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            w.close()
        c.close()
    return lat


def measure() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.environ.get("NETSIM_BENCH_PYTHONPATH") or ROOT
    with tempfile.TemporaryDirectory(prefix="netsim-bench-api-") as state:
        # cwd: not the checkout (python -c puts the cwd first on sys.path, before PYTHONPATH)
        srv = subprocess.Popen([sys.executable, "-c", _SERVER, state, str(N)], env=env,
                               cwd=state, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
        try:
            port, served_from = srv.stdout.readline().split()
            port = int(port)
            out = {"n": N, "from": served_from}
            for name, tls, accept in (("json_https", True, "application/json"),
                                      ("json_unix", False, "application/json"),
                                      ("table_https", True, TABLE),
                                      ("table_unix", False, TABLE)):
                out[name], items = rate(state, port, tls, accept)
                assert items == N, (name, items)
            out["table_cold_ms"] = cold_table(state, port)
            out["fanout"] = fanout(state, port)
        finally:
            srv.stdin.close()
            srv.wait(10)
    return out


def report(m: dict) -> None:
    n = m["n"]
    print(f"netsim served from {m['from']}")
    print(f"{n} pods, full lists per second on one connection (kubectl's limit=500 pages):")
    for kind in ("json", "table"):
        print(f"  {kind:5s}  https {m[kind + '_https']:7.1f}/s   unix socket "
              f"{m[kind + '_unix']:7.1f}/s")
    print(f"  table in a new second (AGE printed afresh, as `kubectl get po` every few "
          f"seconds): {m['table_cold_ms']:.1f} ms a list")
    lat = sorted(m["fanout"])
    print(f"watch fan-out to {WATCHERS} watchers (https): median "
          f"{statistics.median(lat) * 1000:.1f} ms, worst {lat[-1] * 1000:.1f} ms")
    print(f"headline: {n} pods: kubectl get po (Table) {m['table_https']:.1f} lists/s, "
          f"-o json {m['json_https']:.1f} lists/s over https; an update reaches "
          f"{WATCHERS} watchers in {statistics.median(lat) * 1000:.1f} ms (median)")


def test_bench_api_clients():
    m = measure()
    report(m)
    assert m["table_https"] > 0 and m["json_https"] > 0
    assert max(m["fanout"]) < 10


if __name__ == "__main__":
    report(measure())
