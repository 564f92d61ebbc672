"""The ingress controller: watch the API, render nginx.conf, `nginx -t`, swap, reload.

It runs as the container of an ingress-nginx pod (usually hostNetwork, so nginx listens on
the node's 80/443). One process per pod:

- Ingresses, IngressClasses, Services, EndpointSlices, Secrets (and the pods of its own
  namespace, for the status addresses) come from netsim.machinery informers (list, watch,
  relist on 410 Gone, one backoff); their handlers only mark the state dirty;
- the sync loop (main thread) waits until those caches have synced, then renders a new
  config from them after a short debounce and does nothing when the text and files are
  unchanged;
- the new config is checked with `nginx -t` on a scratch copy; if it fails, the offending
  Ingresses are found by bisection, left out, and reported as Warning events; the last good
  config keeps serving whatever happens;
- files are written (certificates 0600), nginx.conf is replaced by rename, and nginx gets a
  SIGHUP: its master starts new workers, old ones finish the requests in flight (a graceful
  reload), so endpoint-only changes cost no failed request;
- nginx is our child, in our process group and netns, with PR_SET_PDEATHSIG: SIGTERM of
  the controller (or of its group by the kubelet) stops nginx too, SIGKILL of the
  controller makes the kernel stop nginx;
- the Ingresses it serves get `status.loadBalancer.ingress[].ip` = the node IPs of the
  running controller pods.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.server
import json
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from netsim.api import errors, events
from netsim.ingress.model import normalize_ingress
from netsim.ingress.render import (
    CLASS_ANNOTATION,
    FILE_MODE,
    RenderResult,
    generate_default_certificate,
    render_nginx_conf,
    validate,
)
from netsim.machinery import InformerFactory, SharedInformer

log = logging.getLogger("netsim.ingress")

CONTROLLER_CLASS = "k8s.io/ingress-nginx"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
COMPONENT = "nginx-ingress-controller"
STATE_ROOT = "/var/lib/netsim"
RESOURCES = ("ingresses", "ingressclasses", "services", "endpointslices", "secrets")

_PR_SET_PDEATHSIG = 1


def _pdeathsig() -> None:
    """In the forked nginx: die with SIGTERM when the controller's thread that forked it dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _children(pid: int) -> set[int]:
    """PIDs whose parent is `pid` (nginx workers of a master)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat.rsplit(b")", 1)[-1].split()
        if len(rest) > 2 and int(rest[1]) == pid and rest[0] != b"Z":
            out.add(int(entry))
    return out


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def write_file(path: str, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file and rename: readers see the old or the new file, never half."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.replace(tmp, path)


# --------------------------------------------------------------------------- nginx


class Nginx:
    """One nginx master running `conf` in the foreground as our child."""

    def __init__(self, binary: str, conf: str, pid_path: str, error_log: str):
        self.binary = binary
        self.conf = conf
        self.pid_path = pid_path
        self.error_log = error_log
        self.proc: subprocess.Popen | None = None
        self.reloads = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill_stale(self) -> None:
        """A master left from an earlier controller in this pod dir (its pid file names it)."""
        try:
            with open(self.pid_path) as f:
                pid = int(f.read().strip() or 0)
        except (OSError, ValueError):
            return
        if pid > 1 and "nginx" in _cmdline(pid) and self.conf in _cmdline(pid):
            log.info("stopping stale nginx master %d", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
                time.sleep(0.05)

    def start(self, timeout: float = 10.0) -> None:
        self.kill_stale()
        self.proc = subprocess.Popen(
            [self.binary, "-c", self.conf, "-e", self.error_log],
            stdin=subprocess.DEVNULL, preexec_fn=_pdeathsig, close_fds=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}: {self.tail_error()}")
            if _children(self.proc.pid):
                return
            time.sleep(0.01)
        raise RuntimeError("nginx started no worker in time")

    def reload(self, timeout: float = 10.0) -> bool:
        """SIGHUP; done when a new worker runs and every old one stopped accepting.

        nginx starts the new workers, sleeps 100 ms, then tells the old ones to quit: in
        between both generations accept. Waiting for the old ones' "is shutting down" title
        (or exit) makes "reloaded" mean that every new connection gets the new config."""
        if not self.alive():
            return False
        before = _children(self.proc.pid)
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        started = False
        while time.monotonic() < deadline:
            now = _children(self.proc.pid)
            if not started and now - before:
                started = True
            if started and all("shutting down" in _cmdline(p) or not _cmdline(p)
                               for p in before & now):
                self.reloads += 1
                return True
            if not self.alive():
                return False
            time.sleep(0.002)
        return False

    def stop(self, grace: float = 10.0) -> None:
        """Graceful quit (SIGQUIT), then SIGTERM, then SIGKILL."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGQUIT, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
        self.proc = None

    def tail_error(self, n: int = 5) -> str:
        try:
            with open(self.error_log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4096))
                lines = f.read().decode(errors="replace").splitlines()
            return " | ".join(lines[-n:])
        except OSError:
            return ""


# --------------------------------------------------------------------------- controller


@dataclass
class SyncStats:
    syncs: int = 0
    reloads: int = 0
    last_render_s: float = 0.0
    last_validate_s: float = 0.0
    last_reload_s: float = 0.0
    rejected: dict[str, str] = field(default_factory=dict)


def _md(obj: dict) -> dict:
    md = obj.get("metadata") if isinstance(obj, dict) else None
    return md if isinstance(md, dict) else {}


def _key(obj: dict) -> tuple[str, str]:
    md = _md(obj)
    return (md.get("namespace") or "", md.get("name") or "")


def _ing_key(obj: dict) -> str:
    md = _md(obj)
    return f"{md.get('namespace') or 'default'}/{md.get('name') or ''}"


_KINDS = {"services": "Service", "endpointslices": "EndpointSlice"}


class IngressController:
    def __init__(self, client, *, cluster: str, pod_name: str = "", pod_namespace: str = "",
                 node_name: str = "", class_name: str = "nginx",
                 controller_class: str = CONTROLLER_CLASS, state_dir: str | None = None,
                 http_port: int = 80, https_port: int = 443, nginx_binary: str = "nginx",
                 publish_ips: list[str] | None = None, watch_without_class: bool = True,
                 debounce: float = 0.05, min_interval: float = 0.0, user: str | None = None,
                 create_class: bool = True, update_status: bool = True,
                 factory: InformerFactory | None = None):
        """`factory`: an InformerFactory shared with other consumers in the process (one
        watch per resource); by default the controller makes its own."""
        self.client = client
        self.cluster = cluster
        self.pod_name = pod_name or os.environ.get("HOSTNAME", "") or "ingress"
        self.pod_namespace = pod_namespace
        self.node_name = node_name
        self.class_name = class_name
        self.controller_class = controller_class
        self.dir = state_dir or os.path.join(STATE_ROOT, cluster, "ingress", self.pod_name)
        self.http_port, self.https_port = http_port, https_port
        self.nginx_binary = shutil.which(nginx_binary) or nginx_binary
        self.publish_ips = publish_ips
        self.watch_without_class = watch_without_class
        self.debounce = debounce
        self.min_interval = min_interval
        self.user = user
        self.create_class = create_class
        self.update_status = update_status
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.cert_dir = os.path.join(self.dir, "certs")
        self.log_dir = os.path.join(self.dir, "logs")
        self.pid_path = os.path.join(self.dir, "nginx.pid")
        self.nginx = Nginx(self.nginx_binary, self.conf_path, self.pid_path,
                           os.path.join(self.log_dir, "error.log"))
        self.stats = SyncStats()
        self._cond = threading.Condition()
        self.factory = factory or InformerFactory(client)
        self.informers: dict[str, SharedInformer] = {
            r: self.factory.informer(r) for r in RESOURCES}
        # our own namespace's pods only (the status addresses): not the factory's pods
        self.pods: SharedInformer | None = (
            SharedInformer(client, "pods", namespace=pod_namespace)
            if pod_namespace and update_status else None)
        self._handlers = [(inf, inf.add_handler(
            on_add=self._on_event, on_update=lambda old, new: self._kick(),
            on_delete=self._on_event))
            for inf in [*self.informers.values(), *([self.pods] if self.pods else [])]]
        self._retained = False
        self._dirty = False
        self._stop = threading.Event()
        self._current: tuple[str, dict[str, bytes]] | None = None
        self._reported: dict[str, tuple[str, ...]] = {}
        # ("services"|"endpointslices", "ns/name") -> message already reported
        self._reported_invalid: dict[tuple[str, str], str] = {}
        self._reload_error: str | None = None  # last "Error reloading NGINX" reported
        self._status_ips: dict[str, tuple[str, ...]] = {}
        self._default_cert: tuple[bytes, bytes] | None = None
        self.ready = threading.Event()

    # ------------------------------------------------------------------ watching

    def _kick(self) -> None:
        with self._cond:
            self._dirty = True
            self._cond.notify_all()

    def _on_event(self, obj: dict) -> None:
        self._kick()

    def start_watches(self) -> None:
        """Start the informers (their threads list, watch and relist on their own)."""
        with self._cond:
            if self._stop.is_set() or self._retained:
                return
            self.factory.retain()
            self._retained = True
        self.factory.start()
        if self.pods is not None:
            self.pods.start()

    def _stop_watches(self) -> None:
        with self._cond:
            retained, self._retained = self._retained, False
        self.factory.detach(self._handlers, release=retained)
        if self.pods is not None:
            self.pods.stop()

    # ------------------------------------------------------------------ classes

    def ensure_ingress_class(self) -> None:
        """Create IngressClass `<class>` (default class) when nobody did."""
        if not self.create_class:
            return
        try:
            self.client.get("ingressclasses", self.class_name)
        except errors.NotFound:
            with contextlib.suppress(errors.AlreadyExists):
                self.client.create(ingress_class_object(self.class_name, self.controller_class))
        except errors.ApiError as exc:
            log.info("IngressClass check failed: %s", exc)

    def _handled(self, ingresses: list[dict], classes: list[dict]) -> list[dict]:
        """Our Ingresses, as v1 with the class fields removed (the renderer then takes all).

        Ours: the annotation `kubernetes.io/ingress.class` equals our class name; or
        spec.ingressClassName names an IngressClass whose controller is ours (or our class
        name when that IngressClass does not exist); or no class at all when our class is
        the default one or no class is default (ingress-nginx's --watch-ingress-without-class).
        """
        ours = {_key(c)[1] for c in classes
                if (c.get("spec") or {}).get("controller") == self.controller_class}
        known = {_key(c)[1] for c in classes}
        defaults = {_key(c)[1] for c in classes if _is_default(c)}
        out = []
        for raw in ingresses:
            try:
                ing, _ = normalize_ingress(raw)
                md = _md(ing)
                spec = ing.get("spec") or {}
                ann = (md.get("annotations") or {}).get(CLASS_ANNOTATION)
                if not isinstance(spec, dict):
                    raise TypeError(f"spec is a {type(spec).__name__}, not an object")
            except Exception:  # noqa: BLE001 - the renderer rejects it with a reason
                out.append(raw)
                continue
            if md.get("deletionTimestamp"):
                continue
            name = spec.get("ingressClassName")
            if ann is not None:
                mine = ann == self.class_name
            elif name is not None:
                mine = name in ours or (name == self.class_name and name not in known)
            else:
                mine = bool(defaults & ours) or (not defaults and self.watch_without_class)
            if not mine:
                continue
            ing = dict(ing)
            ing["metadata"] = {**md, "annotations": {
                k: v for k, v in (md.get("annotations") or {}).items() if k != CLASS_ANNOTATION}}
            ing["spec"] = {k: v for k, v in spec.items() if k != "ingressClassName"}
            out.append(ing)
        return out

    # ------------------------------------------------------------------ render

    def default_certificate(self) -> tuple[bytes, bytes]:
        if self._default_cert is None:
            path = os.path.join(self.dir, "default-cert.pem")
            try:
                with open(path, "rb") as f:
                    data = f.read()
                crt, _, key = data.partition(b"-----END CERTIFICATE-----\n")
                crt += b"-----END CERTIFICATE-----\n"
                if b"PRIVATE KEY" not in key:
                    raise ValueError("no key")
                self._default_cert = (crt, key)
            except (OSError, ValueError):
                crt, key = generate_default_certificate()
                write_file(path, crt + key, FILE_MODE)
                self._default_cert = (crt, key)
        return self._default_cert

    def render(self, ingresses: list[dict], services, slices, secrets) -> RenderResult:
        return render_nginx_conf(
            ingresses, services, slices, secrets, class_name=self.class_name,
            is_default_class=True, cert_dir=self.cert_dir, listen_http=self.http_port,
            listen_https=self.https_port, pid_path=self.pid_path, log_dir=self.log_dir,
            state_dir=self.dir, daemon=False, default_certificate=self.default_certificate(),
            user=self.user)

    def _snapshot(self) -> tuple[list[dict], list[dict], list[dict], list[dict], list[dict]]:
        """What the caches hold now (shared objects: read-only)."""
        ingresses, classes, services, slices, secrets = (
            self.informers[r].indexer.list() for r in RESOURCES)
        return ingresses, classes, services, slices, secrets

    def build(self) -> tuple[RenderResult, list[dict], dict[str, str]]:
        """Render, `nginx -t`, and leave out whatever Ingress nginx rejects.

        Returns (result, handled Ingresses, rejected "ns/name" -> message)."""
        ingresses, classes, services, slices, secrets = self._snapshot()
        handled = self._handled(ingresses, classes)
        t0 = time.monotonic()
        result = self.render(handled, services, slices, secrets)
        t1 = time.monotonic()
        rejected = dict(result.errors)
        ok, msg = validate(result.conf, result.files, self.nginx_binary)
        if not ok:
            bad = self._bisect([i for i in handled if _ing_key(i) not in rejected],
                               services, slices, secrets)
            for key, why in bad.items():
                rejected[key] = why
            keep = [i for i in handled if _ing_key(i) not in rejected]
            result = self.render(keep, services, slices, secrets)
            ok, msg = validate(result.conf, result.files, self.nginx_binary)
            if not ok:
                raise RuntimeError(f"nginx -t failed even without the rejected Ingresses: {msg}")
        self.stats.last_render_s = t1 - t0
        self.stats.last_validate_s = time.monotonic() - t1
        return result, handled, rejected

    def _bisect(self, ings: list[dict], services, slices, secrets) -> dict[str, str]:
        """Ingresses nginx -t rejects: halve the set until single culprits remain."""

        def check(subset: list[dict]) -> tuple[bool, str]:
            r = self.render(subset, services, slices, secrets)
            return validate(r.conf, r.files, self.nginx_binary)

        bad: dict[str, str] = {}

        def walk(subset: list[dict]) -> None:
            ok, msg = check(subset)
            if ok:
                return
            if len(subset) <= 1:
                if not subset:  # nginx rejects even the empty config: not an Ingress' fault
                    raise RuntimeError(f"nginx -t failed: {msg}")
                bad[_ing_key(subset[0])] = f"nginx -t rejected the configuration: {msg}"
                return
            mid = len(subset) // 2
            walk(subset[:mid])
            walk(subset[mid:])

        walk(ings)
        # culprits that only fail together: add one at a time, oldest first
        rest = [i for i in ings if _ing_key(i) not in bad]
        if rest and not check(rest)[0]:
            good: list[dict] = []
            for ing in rest:
                ok, msg = check(good + [ing])
                if ok:
                    good.append(ing)
                else:
                    bad[_ing_key(ing)] = f"nginx -t rejected the configuration: {msg}"
        return bad

    # ------------------------------------------------------------------ apply

    def apply(self, result: RenderResult) -> bool:
        """Write files, swap nginx.conf, start or reload nginx. False: nothing changed."""
        state = (result.conf, result.files)
        if self._current == state and self.nginx.alive():
            return False
        for path, data in result.files.items():
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            write_file(path, data, FILE_MODE)
        write_file(self.conf_path, result.conf.encode(), 0o644)
        t0 = time.monotonic()
        if not self.nginx.alive():
            self.nginx.start()
            log.info("nginx started (pid %s) with %s", self.nginx.pid, self.conf_path)
        elif not self.nginx.reload():
            raise RuntimeError(f"nginx reload failed: {self.nginx.tail_error()}")
        self.stats.last_reload_s = time.monotonic() - t0
        log.info("nginx reloaded in %.0f ms: %d Ingresses, %d rejected",
                 self.stats.last_reload_s * 1000,
                 sum(1 for x in result.conf.splitlines() if x.startswith("# ingress ")),
                 len(result.errors))
        self.stats.reloads += 1
        # certificates no longer referenced
        with contextlib.suppress(OSError):
            for name in os.listdir(self.cert_dir):
                path = os.path.join(self.cert_dir, name)
                if path not in result.files and name.endswith(".pem"):
                    os.unlink(path)
        self._current = state
        return True

    def sync(self) -> bool:
        """One render/validate/apply round plus events and status. True when nginx reloaded."""
        self.stats.syncs += 1
        result, handled, rejected = self.build()
        changed = self.apply(result)
        self.stats.rejected = rejected
        self.ready.set()
        self._reload_error = None
        by_key = {_ing_key(i): i for i in self._snapshot()[0]}
        self._report(by_key, {_ing_key(i) for i in handled}, rejected, result.warnings)
        self._report_invalid(result.invalid)
        if self.update_status:
            served = [by_key[_ing_key(i)] for i in handled
                      if _ing_key(i) not in rejected and _ing_key(i) in by_key]
            self._update_status(served)
        return changed

    def _report(self, by_key: dict[str, dict], handled: set[str], rejected: dict[str, str],
                warnings: dict[str, list[str]]) -> None:
        """Events on an Ingress when what we have to say about it changes (not every sync):
        Warning Rejected (left out of nginx.conf), Warning Degraded (served around a
        problem), Normal Sync once per generation when all is well."""
        for key in list(self._reported):
            if key not in by_key:
                self._reported.pop(key)
        for key, obj in by_key.items():
            if key not in handled:
                continue
            msgs: list[tuple[str, str, str]] = []
            if key in rejected:
                msgs.append(("Warning", "Rejected", rejected[key]))
            for w in warnings.get(key, []):
                msgs.append(("Warning", "Degraded", w))
            sig = ((obj.get("metadata") or {}).get("generation"), tuple(m[2] for m in msgs))
            if self._reported.get(key) == sig:
                continue
            self._reported[key] = sig
            for etype, reason, message in msgs:
                self._event(obj, etype, reason, message, COMPONENT)
            if not msgs:
                self._event(obj, "Normal", "Sync", "Scheduled for sync", COMPONENT)

    def _event(self, obj: dict, etype: str, reason: str, message: str, component: str) -> None:
        """events.record, which must not fail a sync whatever the object looks like."""
        try:
            events.record(self.client, obj, etype, reason, message, component,
                          self.node_name or None)
        except Exception as exc:  # noqa: BLE001 - the log line is the main signal
            log.info("could not record the event %s: %s", reason, exc)

    def _report_invalid(self, invalid: dict[tuple[str, str], str]) -> None:
        """A Service or EndpointSlice left out of nginx.conf: one log line and one Warning
        event when its problem first appears or changes."""
        for (resource, key), message in invalid.items():
            if self._reported_invalid.get((resource, key)) == message:
                continue
            kind = _KINDS.get(resource, resource)
            log.warning("%s %s left out of nginx.conf: %s", kind, json.dumps(key), message)
            obj = self.informers[resource].indexer.get(key) if resource in self.informers else None
            if obj is not None:
                self._event({**obj, "kind": obj.get("kind") or kind}, "Warning",
                              "Rejected", f"left out of nginx.conf: {message}", COMPONENT)
        self._reported_invalid = dict(invalid)

    def _report_sync_failure(self, exc: Exception) -> None:
        """ingress-nginx's `Warning RELOAD Error reloading NGINX: ...` on the controller's
        Pod, once per distinct error; nginx keeps serving the last good config meanwhile."""
        message = f"Error reloading NGINX: {exc}"
        if message == self._reload_error:
            return
        self._reload_error = message
        if not (self.pod_namespace and self.pod_name):
            return
        try:
            pod = self.client.get("pods", self.pod_name, self.pod_namespace)
        except Exception as e:  # noqa: BLE001 - the API may be down: the log has it
            log.info("could not read pod %s for the event: %s", self.pod_name, e)
            return
        self._event(pod, "Warning", "RELOAD", message, COMPONENT)

    def addresses(self) -> list[str]:
        """Node IPs of the running pods of this controller (same labels as our pod)."""
        if self.publish_ips:
            return sorted(set(self.publish_ips))
        if self.pods is None:
            return []
        pods = self.pods.indexer.list()
        me = self.pods.indexer.get(f"{self.pod_namespace}/{self.pod_name}")
        if me is None:
            return []
        labels = {k: v for k, v in ((me.get("metadata") or {}).get("labels") or {}).items()
                  if k != "pod-template-hash"}
        ips = set()
        for p in pods:
            md, st = p.get("metadata") or {}, p.get("status") or {}
            plabels = md.get("labels") or {}
            if md.get("deletionTimestamp") or st.get("phase") != "Running":
                continue
            if any(plabels.get(k) != v for k, v in labels.items()):
                continue
            if st.get("hostIP"):
                ips.add(st["hostIP"])
        if (me.get("status") or {}).get("hostIP") and not (me.get("metadata") or {}).get(
                "deletionTimestamp"):
            ips.add(me["status"]["hostIP"])
        return sorted(ips, key=lambda a: tuple(int(x) for x in a.split(".")) if "." in a else (a,))

    def _update_status(self, served: list[dict]) -> None:
        ips = tuple(self.addresses())
        if not ips:
            return
        for ing in served:
            md = ing.get("metadata") or {}
            key = _ing_key(ing)
            current = tuple(e.get("ip") for e in ((ing.get("status") or {}).get("loadBalancer")
                                                  or {}).get("ingress") or [])
            if current == ips:
                self._status_ips[key] = ips
                continue
            try:
                self.client.patch("ingresses", md.get("name"), md.get("namespace"),
                                  {"status": {"loadBalancer": {
                                      "ingress": [{"ip": ip} for ip in ips]}}},
                                  subresource="status")
                self._status_ips[key] = ips
            except errors.ApiError as exc:
                log.info("status of %s: %s", key, exc)

    # ------------------------------------------------------------------ main loop

    def has_synced(self) -> bool:
        """True once every cache the config is rendered from holds its first list."""
        return all(inf.has_synced() for inf in self.informers.values())

    def wait_synced(self, timeout: float = 30.0) -> bool:
        """Until has_synced(), stop() or `timeout`: no config is rendered from half a
        picture (every Ingress' backend would be missing)."""
        deadline = time.monotonic() + timeout
        for inf in self.informers.values():
            if not inf.wait_for_sync(max(0.0, deadline - time.monotonic()), stop=self._stop):
                return False
        return True

    def run(self) -> None:
        """Blocks until stop(); the sync loop runs in the calling (main) thread because nginx
        is forked from it and PR_SET_PDEATHSIG follows the forking thread."""
        for d in (self.dir, self.log_dir):
            os.makedirs(d, mode=0o755, exist_ok=True)
        os.makedirs(self.cert_dir, mode=0o700, exist_ok=True)
        self.ensure_ingress_class()
        self.start_watches()
        while not self.wait_synced(30.0) and not self._stop.is_set():
            log.warning("caches not synced after 30s (%s); still waiting", ", ".join(
                inf.resource for inf in self.informers.values() if not inf.has_synced()))
        self._kick()  # the first sync, even with nothing cached to mark it dirty
        last = 0.0
        failures = 0
        try:
            while not self._stop.is_set():
                with self._cond:
                    while not self._dirty and not self._stop.is_set():
                        self._cond.wait(5.0)
                        if not self.nginx.alive() and self._current is not None:
                            log.warning("nginx exited (%s); restarting",
                                        self.nginx.tail_error())
                            self._current = None
                            self._dirty = True
                    if self._stop.is_set():
                        break
                self._stop.wait(self.debounce)
                wait = self.min_interval - (time.monotonic() - last)
                if wait > 0:
                    self._stop.wait(wait)
                with self._cond:
                    self._dirty = False
                try:
                    self.sync()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    log.exception("sync failed (still serving the last good config): %s", exc)
                    self._report_sync_failure(exc)
                    self._stop.wait(min(0.2 * 2 ** failures, 5.0))
                    self._kick()
                last = time.monotonic()
        finally:
            self._stop_watches()
            self.nginx.stop()

    def stop(self) -> None:
        """At once: the loop ends at its next step (a sync in progress finishes first)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._stop_watches()


def _is_default(ic: dict) -> bool:
    anns = (ic.get("metadata") or {}).get("annotations") or {}
    return str(anns.get(DEFAULT_CLASS_ANNOTATION, "")).lower() == "true"


def ingress_class_object(name: str = "nginx", controller: str = CONTROLLER_CLASS) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": name,
                         "labels": {"app.kubernetes.io/name": "ingress-nginx",
                                    "app.kubernetes.io/component": "controller"},
                         "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "spec": {"controller": controller}}


# --------------------------------------------------------------------------- health


def serve_health(controller: IngressController, port: int) -> http.server.HTTPServer | None:
    """`/healthz` as ingress-nginx serves it on 10254: 200 once nginx runs a synced config."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.split("?")[0] in ("/healthz", "/is-dynamic-lb-initialized"):
                ok = controller.ready.is_set() and controller.nginx.alive()
                body = b"ok" if ok else b"nginx is not running"
                self.send_response(200 if ok else 500)
            elif self.path.split("?")[0] == "/metrics":
                s = controller.stats
                body = (f"netsim_ingress_syncs_total {s.syncs}\n"
                        f"netsim_ingress_reloads_total {s.reloads}\n"
                        f"netsim_ingress_render_seconds {s.last_render_s:.6f}\n"
                        f"netsim_ingress_validate_seconds {s.last_validate_s:.6f}\n"
                        f"netsim_ingress_reload_seconds {s.last_reload_s:.6f}\n"
                        f"netsim_ingress_rejected {len(s.rejected)}\n").encode()
                self.send_response(200)
            else:
                body = b"not found"
                self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    try:
        srv = http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler)
    except OSError as exc:
        log.warning("healthz on :%d unavailable: %s", port, exc)
        return None
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True, name="healthz").start()
    return srv

