"""Liveness, readiness and startup probes, run by the kubelet from the node's netns.

Each probe keeps its own schedule (initialDelaySeconds, periodSeconds) and thresholds;
results change readiness (-> Ready condition -> endpoints) or restart the container.
"""

from __future__ import annotations

import errno
import http.client
import os
import selectors
import socket
import ssl
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from netsim.api import events
from netsim.api.validation import parse_ip  # cached: asked once a second per probe

KINDS = ("startupProbe", "livenessProbe", "readinessProbe")


@dataclass
class ProbeState:
    spec: dict
    container: dict
    started: float
    next_at: float
    result: bool
    successes: int = 0
    failures: int = 0
    running: bool = False


def _port(port, container: dict) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} not found")


def run_probe(spec: dict, container: dict, pod_ip: str, pid: int,
              cgroup: str = "") -> tuple[bool, str]:
    """Execute one probe; returns (success, kubelet-style failure message).

    An exec probe runs in the container's cgroup (as the runtime's exec does), so what it
    leaves behind dies with the container."""
    timeout = float(spec.get("timeoutSeconds", 1))
    if "httpGet" in spec:
        h = spec["httpGet"]
        host = h.get("host") or pod_ip
        scheme = h.get("scheme", "HTTP").lower()
        try:
            port = _port(h.get("port"), container)
        except ValueError as e:
            return False, str(e)
        url = f"{scheme}://{host}:{port}{h.get('path', '/')}"
        try:
            if scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                                   context=ssl._create_unverified_context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.30")
            conn.request("GET", h.get("path", "/"), headers=headers)
            code = conn.getresponse().status
            conn.close()
        except ConnectionRefusedError:
            return False, f'Get "{url}": dial tcp {host}:{port}: connect: connection refused'
        except TimeoutError:
            return False, (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded '
                           "while awaiting headers)")
        except OSError as e:
            return False, f'Get "{url}": {e}'
        if 200 <= code < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {code}"
    if "tcpSocket" in spec:
        t = spec["tcpSocket"]
        host = t.get("host") or pod_ip
        try:
            port = _port(t.get("port"), container)
            with socket.create_connection((host, port), timeout=timeout):
                return True, ""
        except ConnectionRefusedError:
            return _dialled(errno.ECONNREFUSED, host, port)
        except TimeoutError:
            return False, _timed_out(host, port)
        except (OSError, ValueError) as e:
            return False, str(e)
    if "exec" in spec:
        cmd = spec["exec"].get("command") or []
        argv = ["nsenter", "-t", str(pid), "-n", "-u", "-m", "-r", "--wd", "--", *cmd]
        fd = -1
        if cgroup:
            # stdin is the cgroup's cgroup.procs (the mount namespace has no cgroupfs)
            at = argv.index("--") + 1
            argv[at:at] = ["sh", "-c", 'echo $$ >&0 || exit 125; exec "$@" </dev/null', "sh"]
            try:
                fd = os.open(os.path.join(cgroup, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            except OSError as e:
                return False, f"container cgroup {cgroup}: {e}"
        try:
            r = subprocess.run(argv, capture_output=True, timeout=timeout + 0.5,
                               stdin=fd if fd >= 0 else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return False, f"command {cmd!r} timed out"
        finally:
            if fd >= 0:
                os.close(fd)
        if r.returncode == 0:
            return True, ""
        out = (r.stdout + r.stderr).decode(errors="replace").strip()
        return False, out or f"command {cmd!r} exited with {r.returncode}"
    return True, ""


class TcpDials:
    """tcpSocket probes in flight: non-blocking connects watched by one selector (what
    net.DialTimeout does for the kubelet), each with its deadline."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()

    def start(self, key, s, host: str, port: int, timeout: float):
        """Dial host:port; returns (ok, message) when that is known at once, else None
        (wait() reports it)."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                             socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        err = sock.connect_ex((host, port))
        if err == errno.EINPROGRESS:
            self.sel.register(sock, selectors.EVENT_WRITE,
                              (key, s, host, port, time.monotonic() + timeout))
            return None
        sock.close()
        return _dialled(err, host, port)

    def wait(self, timeout: float, stopped: threading.Event) -> list[tuple]:
        """Up to `timeout` s for dials to end; the (key, state, ok, message) of those that
        did (connected, refused, or past their deadline: i/o timeout)."""
        if not self.sel.get_map():
            stopped.wait(timeout)
            return []
        out = []
        for sk, _ in self.sel.select(timeout):
            key, s, host, port, _deadline = sk.data
            err = sk.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            self.sel.unregister(sk.fileobj)
            sk.fileobj.close()
            out.append((key, s, *_dialled(err, host, port)))
        now = time.monotonic()
        for sk in list(self.sel.get_map().values()):
            key, s, host, port, deadline = sk.data
            if now >= deadline:
                self.sel.unregister(sk.fileobj)
                sk.fileobj.close()
                out.append((key, s, False, _timed_out(host, port)))
        return out


def _dialled(err: int, host: str, port: int) -> tuple[bool, str]:
    if err == 0:
        return True, ""
    return False, f"dial tcp {_hostport(host, port)}: connect: {os.strerror(err).lower()}"


def _timed_out(host: str, port: int) -> str:
    return f"dial tcp {_hostport(host, port)}: i/o timeout"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ProbeManager:
    def __init__(self, kubelet):
        self.kubelet = kubelet
        self.states: dict[tuple[str, str, str], ProbeState] = {}
        self.pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="probe")
        self.lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._loop, daemon=True, name="probes").start()

    def forget(self, uid: str) -> None:
        with self.lock:
            for k in [k for k in self.states if k[0] == uid]:
                del self.states[k]

    def container_started(self, uid: str, cname: str) -> None:
        with self.lock:
            for k in [k for k in self.states if k[0] == uid and k[1] == cname]:
                del self.states[k]

    def _state(self, uid: str, cname: str, kind: str, c: dict, crec) -> ProbeState | None:
        spec = c.get(kind)
        if not spec or crec is None or not crec.alive():
            return None
        key = (uid, cname, kind)
        with self.lock:
            s = self.states.get(key)
            if s is None:
                now = time.monotonic()
                # A process needs a moment to listen (Python images: ~50 ms, seconds on a
                # loaded machine): liveness/startup probes never fire in the first second,
                # so a slow start is not mistaken for a dead container and killed.
                delay = float(spec.get("initialDelaySeconds", 0))
                if kind != "readinessProbe":
                    delay = max(delay, 1.0)
                s = self.states[key] = ProbeState(
                    spec=spec, container=c, started=now, next_at=now + delay,
                    result=(kind == "livenessProbe"))
            return s

    def started(self, uid, cname, c, crec) -> bool | None:
        s = self._state(uid, cname, "startupProbe", c, crec)
        return None if s is None else s.result

    def ready(self, uid, cname, c, crec) -> bool:
        if crec is None or not crec.alive():
            return False
        self._state(uid, cname, "livenessProbe", c, crec)
        if self.started(uid, cname, c, crec) is False:
            return False
        s = self._state(uid, cname, "readinessProbe", c, crec)
        return True if s is None else s.result

    def _loop(self) -> None:
        dials = TcpDials()
        while not self.kubelet.stopped.is_set():
            for key, s, ok, msg in dials.wait(0.1, self.kubelet.stopped):
                self._done(key, s, ok, msg)
            now = time.monotonic()
            with self.lock:
                due = [(k, s) for k, s in self.states.items() if not s.running and s.next_at <= now]
            for key, s in due:
                uid, cname, kind = key
                if kind != "readinessProbe" and uid in getattr(self.kubelet, "terminating", ()):
                    continue  # upstream: pod deletion requested, liveness and startup stop
                if kind != "startupProbe":
                    st = self.states.get((uid, cname, "startupProbe"))
                    if st and not st.result:
                        continue
                s.running = True
                target = self._tcp_target(key, s)
                if target is None:
                    self.pool.submit(self._probe, key, s)
                elif target:
                    done = dials.start(key, s, *target)
                    if done is not None:
                        self._done(key, s, *done)

    def _tcp_target(self, key, s: ProbeState) -> tuple[str, int, float] | None | bool:
        """(host, port, timeout) of a tcpSocket probe to an address, dialled from this
        thread without blocking (no pool thread per probe: a thousand pods probed every
        second cost a core that way); None for the pool; False when its container is gone
        (rescheduled here)."""
        t = s.spec.get("tcpSocket")
        if t is None or "exec" in s.spec or "httpGet" in s.spec or "grpc" in s.spec:
            return None
        rec = self.kubelet.records.get(key[0])
        crec = rec.containers.get(key[1]) if rec else None
        if rec is None or crec is None or not crec.alive():
            self._reschedule(key, s)
            return False
        host = t.get("host") or rec.ip
        if parse_ip(host) is None:
            return None  # a name to resolve: the pool's run_probe says so
        try:
            port = _port(t.get("port"), s.container)
        except ValueError:
            return None  # a port not found: the pool's run_probe says so
        return host, port, float(s.spec.get("timeoutSeconds", 1))

    def _done(self, key, s: ProbeState, ok: bool, msg: str) -> None:
        """A success is recorded here (counters, at most a queued sync); a failure may
        record events or restart the container, so it goes to the pool."""
        if ok:
            self._record(key, s, ok, msg)
        else:
            self.pool.submit(self._record, key, s, ok, msg)

    def _probe(self, key, s: ProbeState) -> None:
        uid, cname, _ = key
        rec = self.kubelet.records.get(uid)
        crec = rec.containers.get(cname) if rec else None
        if rec is None or crec is None or not crec.alive():
            self._reschedule(key, s)
            return
        try:
            ok, msg = run_probe(s.spec, s.container, rec.ip, crec.pid, crec.cgroup)
        except Exception:
            self._reschedule(key, s)
            raise
        self._record(key, s, ok, msg)

    def _record(self, key, s: ProbeState, ok: bool, msg: str) -> None:
        """A probe's result: thresholds, events, a restart for a failed liveness probe."""
        uid, cname, kind = key
        rec = self.kubelet.records.get(uid)
        crec = rec.containers.get(cname) if rec else None
        try:
            if rec is None or crec is None:
                return
            success_needed = int(s.spec.get("successThreshold", 1))
            failure_needed = int(s.spec.get("failureThreshold", 3))
            before = s.result
            if ok:
                s.successes += 1
                s.failures = 0
                if s.successes >= success_needed:
                    s.result = True
            else:
                s.failures += 1
                s.successes = 0
                pod = self.kubelet.pod(f"{rec.namespace}/{rec.name}")  # the cache
                word = {"startupProbe": "Startup", "livenessProbe": "Liveness",
                        "readinessProbe": "Readiness"}[kind]
                warming = (kind == "readinessProbe" and time.monotonic() - s.started
                           < float(s.spec.get("periodSeconds", 10)))
                if pod and not warming:
                    events.record(self.kubelet.client, pod, "Warning", "Unhealthy",
                                  f"{word} probe failed: {msg}", "kubelet", self.kubelet.node.name)
                if s.failures >= failure_needed:
                    s.result = False
                    if kind in ("livenessProbe", "startupProbe") and pod:
                        events.record(self.kubelet.client, pod, "Normal", "Killing",
                                      f"Container {cname} failed {word.lower()} probe, will be restarted",
                                      "kubelet", self.kubelet.node.name)
                        grace = s.spec.get("terminationGracePeriodSeconds") or \
                            pod["spec"].get("terminationGracePeriodSeconds", 30)
                        # as every kill the kubelet makes: preStop first, then the signals
                        self.kubelet.kill_container(pod, rec, crec, s.container, float(grace))
                        crec.killed_by_us = True
            if s.result != before:
                self.kubelet.queue.add(f"{rec.namespace}/{rec.name}")
        finally:
            self._reschedule(key, s)

    @staticmethod
    def _reschedule(key, s: ProbeState) -> None:
        period = float(s.spec.get("periodSeconds", 10))
        now = time.monotonic()
        if key[2] == "readinessProbe" and not s.result and now - s.started < period:
            # Not ready yet in the first period: look again soon rather than a whole
            # period later, so a pod is Ready as soon as it answers.
            period = min(period, 0.5)
        s.next_at = now + period
        s.running = False
