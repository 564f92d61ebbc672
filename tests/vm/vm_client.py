"""Clients for the VM scenarios, run in the scenario's own interpreter (no process per
request: under emulation every process start costs a second or more). Each call enters a
network namespace on the calling thread only (setns(2), netsim.net.rtnl.in_netns); a
socket belongs to the netns it was created in, whichever thread uses it later.

- `get(netns, url)`, `get_many(...)`: HTTP GETs, one connection each (the echo's JSON, or
  "error: ..." as a string);
- `Loop(netns, url)`: a thread sending requests back to back until `stop()`;
- `Hold(netns, host, port)`: one keep-alive connection, a request per `ask()`, closed with
  a RST by `close()` (IPVS then forgets the connection in seconds, not TIME_WAIT's 2 min);
- `ping(netns, ip, ...)`: ICMP echo over a raw socket, as `ping -q` sums it up;
- `ipvs_table(netns)`: each virtual server's real servers with weight and connection
  counts, from that netns' /proc/net/ip_vs (what `ipvsadm -Ln` shows);
- `DnsFixedPort(netns, server, sport)`: A queries from one UDP source port, as a client
  that keeps its socket (the DNS black hole's client); `ipvs_udp_dest(netns, sport, vip)`:
  the real server IPVS's connection entry of that port sends to (/proc/net/ip_vs_conn).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import threading
import time
import urllib.request

from netsim.net.rtnl import in_netns
from netsim.proxy.ipvs_graceful import parse_proc_ip_vs

NETNS_DIR = "/var/run/netns"


def netns_of(name: str):
    return in_netns(os.path.join(NETNS_DIR, name))


def _get(url: str, timeout: float):
    try:
        req = urllib.request.Request(url, headers={"Connection": "close"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except Exception as e:  # noqa: BLE001 - reported to the scenario
        return f"error: {e}"


def get(netns: str, url: str, timeout: float = 5.0):
    with netns_of(netns):
        return _get(url, timeout)


def get_many(netns: str, url: str, n: int, timeout: float = 5.0) -> list:
    with netns_of(netns):
        return [_get(url, timeout) for _ in range(n)]


class Loop(threading.Thread):
    """Requests back to back from `netns` until stop(); `ok`, `failed` (with when, seconds
    after the start) and `versions` (the echo's version field -> answers)."""

    def __init__(self, netns: str, url: str, timeout: float = 5.0) -> None:
        super().__init__(daemon=True, name="vm-client-loop")
        self.netns, self.url, self.timeout = netns, url, timeout
        self.ok = 0
        self.failed: list[str] = []
        self.versions: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        with netns_of(self.netns):
            while not self._halt.is_set():
                r = _get(self.url, self.timeout)
                if isinstance(r, dict):
                    self.ok += 1
                    v = str(r.get("version", "?"))
                    self.versions[v] = self.versions.get(v, 0) + 1
                else:
                    self.failed.append(f"{time.monotonic() - t0:.1f}s {r}")

    def stop(self) -> dict:
        self._halt.set()
        self.join(timeout=60)
        return {"ok": self.ok, "failed": self.failed, "versions": self.versions}


class Hold:
    """One keep-alive HTTP connection made from `netns`."""

    def __init__(self, netns: str, host: str, port: int, timeout: float = 15.0) -> None:
        with netns_of(netns):
            self.sock = socket.create_connection((host, port), timeout=timeout)

    def ask(self) -> dict:
        s = self.sock
        s.sendall(b"GET / HTTP/1.1\r\nHost: vm\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        n = next(int(ln.split(b":", 1)[1]) for ln in head.split(b"\r\n")
                 if ln.lower().startswith(b"content-length:"))
        while len(body) < n:
            body += s.recv(65536)
        return json.loads(body[:n])

    def close(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping(netns: str, ip: str, count: int = 5, interval: float = 0.2,
         wait: float = 2.0) -> dict:
    """`count` echo requests `interval` s apart, replies awaited until `wait` s after the
    last: {"loss": percent (float), "avg_ms": mean RTT, "min_ms": the smallest (None
    without answers)}. The smallest is what a delay shows: under emulation a busy guest
    wakes this loop late now and then, which adds to some RTTs and so to the mean."""
    ident = (os.getpid() ^ threading.get_ident()) & 0xFFFF
    with netns_of(netns):
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sent: dict[int, float] = {}
    rtts: dict[int, float] = {}
    try:
        deadline = None
        seq = 0
        next_send = time.monotonic()
        while True:
            now = time.monotonic()
            if seq < count and now >= next_send:
                seq += 1
                hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
                payload = b"netsim-vm-ping!!"
                pkt = struct.pack("!BBHHH", 8, 0, _checksum(hdr + payload), ident, seq) + payload
                sent[seq] = time.monotonic()
                s.sendto(pkt, (ip, 0))
                next_send = now + interval
                if seq == count:
                    deadline = time.monotonic() + wait
            if deadline is not None and (time.monotonic() >= deadline or len(rtts) == count):
                break
            until = next_send if seq < count else deadline
            r, _, _ = select.select([s], [], [], max(0.0, until - time.monotonic()))
            if not r:
                continue
            data, addr = s.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if typ == 0 and rid == ident and addr[0] == ip and rseq in sent \
                    and rseq not in rtts:
                rtts[rseq] = (time.monotonic() - sent[rseq]) * 1e3
    finally:
        s.close()
    loss = 100.0 * (count - len(rtts)) / count
    avg = sum(rtts.values()) / len(rtts) if rtts else None
    return {"loss": round(loss, 1), "avg_ms": round(avg, 1) if avg is not None else None,
            "min_ms": round(min(rtts.values()), 1) if rtts else None}


def ipvs_table(netns: str) -> dict:
    """{(PROTO, vip, port): {"ip:port": RealServerStats(weight, active, inactive)}}."""
    with netns_of(netns):
        with open("/proc/thread-self/net/ip_vs") as f:
            return parse_proc_ip_vs(f.read())


class DnsFixedPort:
    """A queries for `name` to server:53, every one from source port `sport`: the
    loadgen's --dns-fixed client (tests/zero_loss_loadgen.dns_once) on a socket made in
    `netns`."""

    def __init__(self, netns: str, server: str, sport: int,
                 name: str = "kubernetes.default.svc.cluster.local") -> None:
        self.server, self.name = server, name
        with netns_of(netns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", sport))

    def ask(self, timeout: float = 2.0) -> bool:
        """One query; True when an answer with records came within `timeout`."""
        from tests.zero_loss_loadgen import dns_once
        try:
            dns_once(self.sock, self.server, 53, self.name, timeout)
            return True
        except (OSError, RuntimeError):  # no answer, an ICMP error, an empty answer
            return False

    def close(self) -> None:
        self.sock.close()


def ipvs_udp_dest(netns: str, sport: int, vip: str) -> str | None:
    """The real server's IP of IPVS's UDP connection from port `sport` to vip:53."""
    want_vip = socket.inet_aton(vip).hex().upper()
    with netns_of(netns):
        with open("/proc/thread-self/net/ip_vs_conn") as f:
            lines = f.read().splitlines()[1:]
    for ln in lines:
        w = ln.split()
        if len(w) >= 7 and w[0] == "UDP" and int(w[2], 16) == sport and w[3] == want_vip:
            return socket.inet_ntoa(bytes.fromhex(w[5]))
    return None
