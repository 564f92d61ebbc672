"""The node agent's kubelet: registers the Node, runs the pods bound to it, reports status.

Level-triggered, on netsim.machinery: informers keep caches of the pods, Services,
ConfigMaps and Secrets; every event on a pod bound to this node (or a container exit, or
a probe result, or the periodic resync) queues the pod's key, and sync() compares the pod
in the cache with what runs locally and converges. A sync reads no object from the API:
the pod, its Services' variables and its env sources come from the caches (the API only
for a ConfigMap or Secret not cached yet). Nothing is synced before the caches have
synced: a container re-adopted after an agent restart is never mistaken for one whose pod
is gone. All netlink work happens on the one sync thread (pyroute2 namespace switching is
per thread).

As upstream's kubelet, the pod informer lists and watches only the pods bound to this node
(fieldSelector spec.nodeName=<node>): a pod being bound arrives as ADDED, one deleted as
DELETED. They are still filed by spec.nodeName (the "node" index) and handlers still pass
over any other node's pod (an informer shared with a component that wants them all).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import shutil
import signal
import threading
import time

from netsim.api import errors, events
from netsim.api.client import Client
from netsim.api.discovery import KUBERNETES_VERSION
from netsim.api.timeutil import now_rfc3339
from netsim.images import catalog
from netsim.kubelet import (
    apireach,
    cgroups,
    hooks,
    localstorage,
    logrotate,
    runtime,
    sandbox,
    volumes,
)
from netsim.kubelet import status as st
from netsim.kubelet import zygote as zyg
from netsim.kubelet.env import ConfigError, container_env, service_env
from netsim.kubelet.probes import ProbeManager
from netsim.machinery import (
    InformerFactory,
    ItemBackoff,
    WorkQueue,
    key_of,
    node_name_index,
    status_only_change,
)
from netsim.net import netlink as nl
from netsim.net.ipam import Ipam, IpamExhausted
from netsim.net.ledger import Ledger, state_dir
from netsim.net.topology import ClusterConfig, NodeSpec

log = logging.getLogger("netsim.kubelet")
KUBELET_VERSION = KUBERNETES_VERSION  # the nodes report the version the API serves
NODE_INDEX = "node"
SLOW_SYNC = 2.0  # s: a pod sync that took longer is logged (pods sync one at a time)
MIN_GRACE = 2.0  # seconds a container gets after its preStop hook, at least (as upstream)
POST_START_TIMEOUT = 300.0  # a postStart hook that never returns is given up after this
RESYNC_SECONDS = 60.0  # every pod of the node is synced again (the kubelet's syncFrequency)


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


def _os_image() -> str:
    with contextlib.suppress(OSError):
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


class Kubelet:
    def __init__(self, client: Client, cfg: ClusterConfig, node: NodeSpec,
                 informers: InformerFactory | None = None):
        self.client = client
        self.cfg = cfg
        self.node = node
        self.node_netns = cfg.node_netns(node.name)
        self.ledger = Ledger(cfg.name)
        self.root = runtime.node_root(cfg.name, node.name)
        self.ipam = Ipam(os.path.join(state_dir(cfg.name), "ipam", f"{node.name}.json"),
                         node.pod_cidr)
        self.records: dict[str, runtime.PodRecord] = {}   # pod uid -> record
        # A sync that raised is retried after 0.1 s, 0.2 s, ... up to 10 s (per pod).
        self.queue = WorkQueue(ItemBackoff(base=0.1, cap=10.0))
        self.stopped = threading.Event()
        self.informers = informers or InformerFactory(client)
        self.pods = self.informers.informer("pods", {NODE_INDEX: node_name_index},
                                            field_selector=f"spec.nodeName={node.name}")
        self.services = self.informers.informer("services")
        # ConfigMaps and Secrets: only those the node's pods reference, one watch each (the
        # kubelet's watch-based configmap and secret managers), never the cluster's whole lot
        self.configmaps = volumes.ObjectWatches(client, "configmaps",
                                                lambda o: self._config_event("configmaps", o))
        self.secrets = volumes.ObjectWatches(client, "secrets",
                                             lambda o: self._config_event("secrets", o))
        self._reads = ("pods", "services")
        # pod key -> the pod as our last status write returned it, until the cache has it
        self._written: dict[str, dict] = {}
        self._lock = threading.Lock()  # guards _written and _retained
        self._retained = False  # we hold the factory (retain) until stop()
        self.backoff: dict[tuple[str, str], tuple[float, float]] = {}  # (uid, c) -> (delay, last restart)
        self.image_failures: dict[tuple[str, str], int] = {}
        self.terminating: set[str] = set()
        self.probes = ProbeManager(self)
        self._exit_watch: zyg.ExitWatch | None = None  # the monitor's, while it runs
        self.volumes = volumes.PodVolumes(client, self._config_object, node.name,
                                          allocatable=_allocatable())
        self.volumes.disk_root = runtime.node_disk_root(cfg.name, node.name)
        self.cgroup = ""  # this node's cgroup ("" when cgroup v2 is unusable)
        self.cgroup_error = ""
        # built-in images are forked by the node's image server (None: all exec'd)
        self.zygote = zyg.Zygote(cfg.name, node.name, self.ledger,
                                 os.path.join(state_dir(cfg.name), "logs")) \
            if zyg.enabled() else None
        if self.zygote is not None:
            self.volumes.fork_holder = self.zygote.start_holder

    def _setup_cgroups(self) -> None:
        try:
            self.cgroup = cgroups.ensure_node(self.ledger, self.cfg.name, self.node.name)
        except OSError as e:
            self.cgroup_error = (f"cgroup v2 is not usable ({e}): a container's processes are "
                                 "killed through its process group and, when its pod is deleted, "
                                 "the pod's network namespace only; a daemonized child of a "
                                 "hostNetwork pod or one that left its network namespace can "
                                 "outlive its container")
            log.warning("%s", self.cgroup_error)

    # ---- node ------------------------------------------------------------------------
    def node_object(self) -> dict:
        labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": self.node.name,
                  "kubernetes.io/os": "linux"}
        spec: dict = {"podCIDR": self.node.pod_cidr, "podCIDRs": [self.node.pod_cidr]}
        if self.node.control_plane:
            labels["node-role.kubernetes.io/control-plane"] = ""
            labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
            spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane",
                               "effect": "NoSchedule"}]
        mem_kib = 0
        with contextlib.suppress(OSError):
            with open("/proc/meminfo") as f:
                mem_kib = int(f.readline().split()[1])
        cap = st.node_capacity(os.cpu_count() or 1, mem_kib, self.cfg.max_pods)
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node.name, "labels": labels,
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                             "netsim.io/netns": self.node_netns}},
                "spec": spec,
                "status": {"capacity": cap, "allocatable": dict(cap),
                           "addresses": [{"type": "InternalIP", "address": self.node.ip},
                                         {"type": "Hostname", "address": self.node.name}],
                           "nodeInfo": {"kubeletVersion": KUBELET_VERSION,
                                        "kubeProxyVersion": KUBELET_VERSION,
                                        "osImage": _os_image(), "operatingSystem": "linux",
                                        "architecture": "amd64",
                                        "kernelVersion": platform.release(),
                                        "containerRuntimeVersion": "netsim://0.1.0",
                                        "machineID": "", "systemUUID": "", "bootID": ""},
                           "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                           "conditions": self._node_conditions([])}}

    def _node_conditions(self, old: list[dict]) -> list[dict]:
        now = now_rfc3339()
        out = []
        for ctype, ok_status, reason, msg in (
                ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                ("Ready", "True", "KubeletReady", "kubelet is posting ready status")):
            prev = next((c for c in old if c.get("type") == ctype), None)
            ltt = prev["lastTransitionTime"] if prev and prev.get("status") == ok_status else now
            out.append({"type": ctype, "status": ok_status, "reason": reason, "message": msg,
                        "lastHeartbeatTime": now, "lastTransitionTime": ltt})
        return out

    def register(self) -> None:
        """Create (or update) this node's Node, retrying as upstream's registerWithAPIServer
        does (100 ms doubling to 7 s, until it works): an API server too busy to answer
        within the client's timeout, as on a slow or emulated machine while the control
        plane starts, or one that restarts, is waited for, not the end of the agent."""
        delay = 0.1
        while True:
            try:
                self._register()
                return
            except (errors.ApiError, OSError) as e:
                code = getattr(e, "code", 0)
                if code and code < 500 and code != 429:
                    raise  # the API refused the object itself: no retry makes it right
                log.warning("Unable to register node %s with API server: %s", self.node.name, e)
                if self.stopped.wait(delay):
                    raise
                delay = min(delay * 2, 7.0)

    def _register(self) -> None:
        obj = self.node_object()
        try:
            self.client.create(obj)
        except errors.AlreadyExists:
            cur = self.client.get("nodes", self.node.name)
            cur["status"] = {**obj["status"],
                             "conditions": self._node_conditions(cur.get("status", {}).get("conditions", []))}
            self.client.update_status(cur)
        events.record(self.client, self.client.get("nodes", self.node.name), "Normal",
                      "NodeReady", f"Node {self.node.name} status is now: NodeReady", "kubelet",
                      self.node.name)
        if self.cgroup_error:
            events.record(self.client, self.client.get("nodes", self.node.name), "Warning",
                          "CgroupsUnavailable", self.cgroup_error, "kubelet", self.node.name)

    def heartbeat(self) -> None:
        while not self.stopped.wait(10.0):
            if not apireach.api_reachable(self.cfg, self.node):
                continue  # partitioned from the API server's node (netsim link partition)
            with contextlib.suppress(Exception):
                cur = self.client.get("nodes", self.node.name)
                cur["status"]["conditions"] = self._node_conditions(
                    cur.get("status", {}).get("conditions", []))
                self.client.update_status(cur)

    # ---- paths -----------------------------------------------------------------------
    def pod_dir(self, ns: str, name: str, uid: str) -> str:
        return runtime.pod_dir(self.root, ns, name, uid)

    def _load_records(self) -> None:
        base = os.path.join(self.root, "pods")
        if not os.path.isdir(base):
            return
        for d in os.listdir(base):
            rec = runtime.PodRecord.load(os.path.join(base, d))
            if rec:
                self.records[rec.uid] = rec

    # ---- loops -----------------------------------------------------------------------
    def run(self) -> None:
        """Register the node, then sync pods until stop()."""
        self._load_records()
        self._setup_cgroups()
        if self.zygote is not None:  # started (or adopted) while the node registers
            threading.Thread(target=self.zygote.ensure, daemon=True, name="zygote").start()
        self.register()
        threading.Thread(target=self.heartbeat, daemon=True, name="heartbeat").start()
        threading.Thread(target=self._monitor, daemon=True, name="monitor").start()
        threading.Thread(target=self._local_storage, daemon=True, name="eviction").start()
        self.probes.start()
        self.serve()

    def stop(self) -> None:
        """Stop at once (SIGTERM): the sync loop returns; containers keep running."""
        self.stopped.set()
        self._wake_monitor()
        self.queue.shutdown()
        with self._lock:
            retained, self._retained = self._retained, False
        if retained:
            self.informers.release()  # the last user of the factory stops its informers
        self.secrets.stop()
        self.configmaps.stop()

    def serve(self) -> None:
        """The informers, then the sync loop (once every cache has synced)."""
        self.pods.add_handler(on_add=self._pod_event, on_update=self._pod_update,
                              on_delete=self._pod_event)
        with self._lock:
            if self.stopped.is_set():
                return
            self.informers.retain()
            self._retained = True
        self.informers.start()
        if not self.informers.wait_for_sync(stop=self.stopped, resources=list(self._reads)):
            return
        for rec in list(self.records.values()):  # pods gone while the agent was away
            self.queue.add(f"{rec.namespace}/{rec.name}")
        threading.Thread(target=self._resync, daemon=True, name="resync").start()
        while not self.stopped.is_set():
            key = self.queue.get(timeout=1.0)
            if key is None:
                if self.queue.shutting_down:
                    return
                continue
            began = time.monotonic()
            try:
                again = self.sync(key)
                self.queue.forget(key)
                if again:
                    self.queue.add_after(key, again)
            except Exception:
                log.exception("sync %s", key)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)
                took = time.monotonic() - began
                if took > SLOW_SYNC:  # every other pod of this node waited meanwhile
                    log.warning("sync of pod %s took %.1f s", key, took)

    def _pod_event(self, pod: dict) -> None:
        """An informer handler: queue the pods bound to this node (a delete too)."""
        if (pod.get("spec") or {}).get("nodeName") == self.node.name:
            self.queue.add(key_of(pod))

    def _pod_update(self, old: dict, new: dict) -> None:
        """A pod's update, unless it changed only the status: the kubelet owns a pod's
        status, and its own status writes coming back queued another whole sync of the pod
        each (upstream's pod config passes on only updates that differ semantically:
        podsDifferSemantically). A pod with readinessGates is synced for its conditions;
        a status someone else wrote is put right by the periodic resync."""
        if status_only_change(old, new) and not (new.get("spec") or {}).get("readinessGates"):
            return
        self._pod_event(new)

    def _config_event(self, resource: str, obj: dict) -> None:
        """A ConfigMap or Secret changed: sync the pods here whose volumes show it."""
        md = obj.get("metadata") or {}
        for p in self.pods.indexer.by_index(NODE_INDEX, self.node.name):
            if (p.get("metadata") or {}).get("namespace") == md.get("namespace") and \
                    self.volumes.references(p, resource, md.get("name", "")):
                self.volumes.retry_now(p["metadata"].get("uid", ""))
                self.queue.add(key_of(p))

    def _resync(self) -> None:
        while not self.stopped.wait(RESYNC_SECONDS):
            pods = self.pods.indexer.by_index(NODE_INDEX, self.node.name)
            self.secrets.keep(volumes.referenced(pods, "secrets"))  # no pod here names it
            self.configmaps.keep(volumes.referenced(pods, "configmaps"))
            keys = {key_of(p) for p in pods}
            keys.update(f"{r.namespace}/{r.name}" for r in list(self.records.values()))
            for key in sorted(keys):
                self.queue.add(key)

    def pod(self, key: str) -> dict | None:
        """The pod bound to this node under `key`, as the cache has it, or as our own
        status write returned it while the cache has not caught up with that write (so a
        sync never writes over a status it wrote itself, nor trips on a stale version)."""
        cached = self.pods.indexer.get(key)
        if cached is not None and (cached.get("spec") or {}).get("nodeName") != self.node.name:
            cached = None
        with self._lock:
            mine = self._written.get(key)
            if mine is None:
                return cached
            if cached is not None and mine["metadata"].get("uid") == cached["metadata"].get("uid") \
                    and _rv(mine) > _rv(cached):
                return mine
            del self._written[key]  # the cache has it (or the pod is gone)
        return cached

    def _monitor(self) -> None:
        """Notice container exits: our children by waitpid (one syscall each), the image
        server's by their pidfds (one epoll for all), adopted ones (or ones another thread
        reaped) by their /proc entry. Between looks it sleeps on the pidfds: an exit, a
        container started (_start wakes it) or stop() ends the sleep; our own children are
        looked at every 0.1 s, the rest once a second (upstream's PLEG relists every 1 s)."""
        watch = self._exit_watch = zyg.ExitWatch()
        try:
            self._watch_exits(watch)
        finally:
            self._exit_watch = None
            watch.close()

    def _watch_exits(self, watch: zyg.ExitWatch) -> None:
        while not self.stopped.is_set():
            live = [(r, c) for r in list(self.records.values())
                    for c in list(r.containers.values()) if c.pid and c.exit_code is None]
            forked = [(r, c) for r, c in live if c.exit_file]
            gone = watch.exited([(c.pid, c.starttime) for _, c in forked])
            live = [(r, c) for r, c in live if not c.exit_file]
            foreign: set[int] = set()
            codes = runtime.reap([c.pid for _, c in live], foreign)  # kept for take_exit
            for rec, c in live:
                if c.pid in codes or (c.pid in foreign and not c.alive()):
                    self.queue.add(f"{rec.namespace}/{rec.name}")
            for rec, c in forked:
                if (c.pid, c.starttime) in gone:
                    self.queue.add(f"{rec.namespace}/{rec.name}")
            watch.wait(0.1 if live else 1.0)

    def _wake_monitor(self) -> None:
        watch = self._exit_watch
        if watch is not None:
            watch.wake()

    def _local_storage(self) -> None:
        """The eviction manager's local-storage pass: a pod whose disk emptyDir holds more
        than its sizeLimit is evicted (netsim.kubelet.localstorage); running containers'
        logs past containerLogMaxSize are rotated (netsim.kubelet.logrotate)."""
        while not self.stopped.wait(localstorage.INTERVAL):
            for rec in list(self.records.values()):
                key = f"{rec.namespace}/{rec.name}"
                for crec in list(rec.containers.values()):
                    if crec.log_path and crec.pid and crec.exit_code is None:
                        try:
                            logrotate.rotate(crec.log_path)
                        except OSError as e:
                            log.warning("rotating %s: %s", crec.log_path, e)
                pod = self.pod(key)
                if pod is None or pod["metadata"].get("uid") != rec.uid or \
                        pod["metadata"].get("deletionTimestamp") or \
                        (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                try:
                    msg = localstorage.over_limit(pod, self.pod_dir(rec.namespace, rec.name,
                                                                    rec.uid))
                    if msg:
                        self._evict(pod, msg)
                except Exception:  # noqa: BLE001 - one pod must not stop the pass
                    log.exception("local storage check of %s", key)

    def _evict(self, pod: dict, message: str) -> None:
        """evictPod: the Failed/Evicted status first (the API is the truth: a restarted
        agent sees it too), the event, then the sync kills the containers for good."""
        try:
            out = self.client.update_status(
                {**pod, "status": localstorage.evicted_status(pod.get("status") or {},
                                                              message, now_rfc3339())})
        except (errors.NotFound, errors.Conflict):
            return
        with self._lock:
            self._written[key_of(pod)] = out
        events.record(self.client, pod, "Warning", localstorage.EVICTED, message, "kubelet",
                      self.node.name)
        self.queue.add(key_of(pod))

    def _run_evicted(self, pod: dict, rec: runtime.PodRecord) -> float | None:
        """An evicted pod: its containers killed at once, never restarted; their statuses
        terminated, the Failed/Evicted status kept."""
        live = [c for c in rec.containers.values() if c.alive()]
        for crec in live:
            crec.killed_by_us = True
            runtime.stop(crec, 0)
        for crec in rec.containers.values():
            if not crec.alive() and crec.exit_code is None and crec.pid:
                self._record_exit(pod, crec)
        old = pod.get("status") or {}
        statuses = [st.container_status(
            c, rec.containers.get(c["name"]), image_error=None, config_error=None,
            backoff=False, ready=False, started=None, image_id=f"netsim://{c.get('image', '')}")
            for c in pod["spec"].get("containers") or []]
        if old.get("containerStatuses") != statuses:
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                out = self.client.update_status({**pod, "status": {**old,
                                                                   "containerStatuses": statuses}})
                with self._lock:
                    self._written[key_of(pod)] = out
        return None

    # ---- sync ------------------------------------------------------------------------
    def sync(self, key: str) -> float | None:
        ns, name = key.split("/", 1)
        pod = self.pod(key)
        uid = pod["metadata"]["uid"] if pod else None
        # Records of pods with this name that are gone (or replaced by a new uid).
        for rec in [r for r in self.records.values() if r.namespace == ns and r.name == name
                    and r.uid != uid]:
            self._kill_and_cleanup(rec, grace=0)
        if pod is None:
            return None
        if pod["metadata"].get("deletionTimestamp"):
            return self._terminate(pod)
        return self._run_pod(pod)

    def _terminate(self, pod: dict) -> float | None:
        uid = pod["metadata"]["uid"]
        rec = self.records.get(uid)
        if rec and any(c.alive() for c in rec.containers.values()):
            if uid not in self.terminating:
                self.terminating.add(uid)
                grace = float(pod["metadata"].get("deletionGracePeriodSeconds", 30))
                for c in rec.containers.values():
                    if c.alive():
                        events.record(self.client, pod, "Normal", "Killing",
                                      f"Stopping container {c.name}", "kubelet", self.node.name)
                threading.Thread(target=self._stop_all, args=(pod, rec, grace), daemon=True).start()
            self._write_terminating_status(pod, rec)
            return 0.5
        if rec:
            self._cleanup(rec)
        self.terminating.discard(uid)
        with contextlib.suppress(errors.NotFound):
            self.client.delete("pods", pod["metadata"]["name"], pod["metadata"]["namespace"], 0)
        return None

    def _write_terminating_status(self, pod: dict, rec: runtime.PodRecord) -> None:
        """While a pod terminates its Ready condition still follows its probes, as upstream's
        SyncTerminatingPod: readiness probes go on (a server that fails /ready in its lame
        duck turns the pod's endpoints `serving: false`, so kube-proxy moves its UDP flows
        while it still answers)."""
        specs = pod["spec"].get("containers") or []
        if (pod.get("status") or {}).get("phase") != "Running" or not all(
                rec.containers.get(c["name"]) and rec.containers[c["name"]].alive()
                for c in specs):
            return  # stopped during its init phase, or going: the pod is deleted next
        uid = pod["metadata"]["uid"]
        statuses = []
        for c in specs:
            crec = rec.containers[c["name"]]
            statuses.append(st.container_status(
                c, crec, image_error=None, config_error=None, backoff=False,
                ready=self.probes.ready(uid, c["name"], c, crec),
                started=self.probes.started(uid, c["name"], c, crec),
                image_id=f"netsim://{c.get('image', '')}"))
        self._write_status(pod, rec, statuses, pod["spec"].get("restartPolicy", "Always"),
                           apps_started=True)

    def _stop_all(self, pod: dict, rec: runtime.PodRecord, grace: float) -> None:
        """The termination sequence, per container at once: its preStop hook, then SIGTERM,
        then SIGKILL when the grace period, counted from the start, is over (at least 2 s
        after the hook, upstream's minimumGracePeriodInSeconds)."""
        begin = time.monotonic()
        specs = {c["name"]: c for c in (pod["spec"].get("initContainers") or [])
                 + (pod["spec"].get("containers") or [])}
        # The app containers first, then the sidecars (which serve them until then).
        for group in (False, True):
            threads = [threading.Thread(target=self._stop_one,
                                        args=(pod, rec, c, specs.get(c.name) or {}, grace, begin))
                       for c in rec.containers.values()
                       if st.is_sidecar(specs.get(c.name) or {}) == group]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.queue.add(f"{rec.namespace}/{rec.name}")

    def kill_container(self, pod: dict, rec: runtime.PodRecord, crec: runtime.ContainerRecord,
                       c: dict, grace: float) -> None:
        """Stop one container as killContainer does (its preStop hook, SIGTERM, SIGKILL
        after `grace`), e.g. for a failed liveness probe."""
        self._stop_one(pod, rec, crec, c, grace, time.monotonic())

    def _stop_one(self, pod: dict, rec: runtime.PodRecord, crec: runtime.ContainerRecord,
                  c: dict, grace: float, begin: float) -> None:
        pre = hooks.handler(c, "preStop")
        if pre and crec.alive():
            msg = hooks.run(pre, c, pod, rec.ip, crec.pid, crec.cgroup,
                            timeout=grace - (time.monotonic() - begin), stop=self.stopped)
            if msg is not None:
                events.record(self.client, pod, "Warning", "FailedPreStopHook", msg, "kubelet",
                              self.node.name)
        left = max(grace - (time.monotonic() - begin), MIN_GRACE)
        runtime.stop(crec, left)

    def _kill_and_cleanup(self, rec: runtime.PodRecord, grace: float) -> None:
        for c in rec.containers.values():
            runtime.stop(c, grace)
        self._cleanup(rec)

    def _cleanup(self, rec: runtime.PodRecord) -> None:
        self._kill_rest(rec)
        # Killed, not yet reaped (a stop's wait saw it a zombie): once the record is gone
        # nothing would reap it, and a zombie stays in `ps` for as long as the agent lives.
        runtime.collect([(c.pid, c.starttime) for c in rec.containers.values()])
        for c in rec.containers.values():
            runtime.take_exit(c.pid)  # nobody asks for these codes now: not kept
        if not rec.host_network and rec.netns:
            sandbox.destroy(self.cfg.name, rec.uid, self.ledger, rec.ip)
        self.ipam.release(rec.uid)
        self.probes.forget(rec.uid)
        self.records.pop(rec.uid, None)
        for k in [k for k in self.backoff if k[0] == rec.uid]:
            self.backoff.pop(k, None)
        pdir = self.pod_dir(rec.namespace, rec.name, rec.uid)
        self.volumes.teardown(rec.uid, pdir)
        shutil.rmtree(pdir, ignore_errors=True)

    def _kill_rest(self, rec: runtime.PodRecord) -> None:
        """Nothing a pod started outlives it: its cgroup is killed and removed (without
        cgroup v2: whatever still runs in its own network namespace is killed)."""
        if rec.cgroup:
            cgroups.kill(rec.cgroup)
            cgroups.remove(rec.cgroup)
            if not os.path.isdir(rec.cgroup):
                self.ledger.forget("cgroup", path=rec.cgroup)
        elif not rec.host_network and rec.netns:
            inode = nl.netns_inode(rec.netns)
            if inode:
                for pid, _ in runtime.processes_in_netns({inode}):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    def _ensure_sandbox(self, pod: dict, rec: runtime.PodRecord) -> str | None:
        """Returns an error message when the sandbox cannot be made."""
        md, spec = pod["metadata"], pod["spec"]
        if self.cgroup and not rec.cgroup:
            path = cgroups.pod_path(self.cgroup, rec.uid)
            try:
                cgroups.make_pod(self.ledger, path)
            except OSError as e:
                return f"cannot make the pod's cgroup {path}: {e}"
            rec.cgroup = path
        if rec.netns:
            return None
        if spec.get("hostNetwork"):
            rec.host_network = True
            rec.netns = self.node_netns
            rec.ip = self.node.ip
        else:
            try:
                ip = self.ipam.allocate(rec.uid)
            except IpamExhausted as e:
                return str(e)
            nsname, _ = sandbox.create(self.cfg.name, rec.uid, ip, self.node.pod_cidr, self.ledger)
            rec.netns, rec.ip = nsname, ip
        files = {"resolv.conf": sandbox.resolv_conf(pod, dns_ip=self.cfg.dns_ip,
                                                    domain=self.cfg.cluster_domain)}
        if not rec.host_network:
            files["hosts"] = sandbox.hosts_file(pod, rec.ip, self.cfg.cluster_domain)
            sandbox.write_etc(rec.netns, files, self.ledger)
        pdir = self.pod_dir(md["namespace"], md["name"], rec.uid)
        os.makedirs(os.path.join(pdir, "etc"), exist_ok=True)
        for fname, text in files.items():
            with open(os.path.join(pdir, "etc", fname), "w") as f:
                f.write(text)
        rec.save(pdir)
        return None

    def _config_object(self, resource: str, name: str, namespace: str) -> dict | None:
        """A ConfigMap or Secret for a container's env or a volume, from the watch this node
        keeps on that one object (started on first use, dropped when no pod here names it)."""
        if resource == "secrets":
            return self.secrets.get(namespace, name)
        return self.configmaps.get(namespace, name)

    def _run_pod(self, pod: dict) -> float | None:
        md, spec = pod["metadata"], pod["spec"]
        uid = md["uid"]
        rec = self.records.get(uid)
        if rec is None:
            rec = self.records[uid] = runtime.PodRecord(uid=uid, namespace=md["namespace"], name=md["name"])
        if localstorage.is_evicted(pod):
            return self._run_evicted(pod, rec)
        pdir = self.pod_dir(md["namespace"], md["name"], uid)
        err = self._ensure_sandbox(pod, rec)
        if err:
            events.record(self.client, pod, "Warning", "FailedCreatePodSandBox",
                          f"Failed to create pod sandbox: {err}", "kubelet", self.node.name)
            return 5.0
        restart_policy = spec.get("restartPolicy", "Always")
        base_env = {"PATH": os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
                    "HOSTNAME": sandbox.pod_hostname(pod), "HOME": "/root",
                    "NETSIM_POD_NAMESPACE": md["namespace"], "NETSIM_POD_NAME": md["name"],
                    "NETSIM_NODE_NAME": self.node.name, "NETSIM_CLUSTER": self.cfg.name}
        services = self.services.indexer
        k8s = services.get("default/kubernetes")
        links = service_env(services.list(md["namespace"]) + ([k8s] if k8s else []),
                            md["namespace"], spec.get("enableServiceLinks", True) is not False)
        env_base = {**base_env, **links}
        self._requeue: float | None = None
        self._dirty = False
        # Init containers in order: each runs to completion (a sidecar: until it has
        # started) before the next; the app containers start once all are done.
        init_specs = spec.get("initContainers") or []
        init_statuses: list[dict] = []
        blocked = False
        apps = spec.get("containers", [])
        if not self.volumes.setup(pod, pdir, rec.cgroup, started=bool(rec.containers),
                                  netns=rec.netns):
            # upstream's volume manager: no container starts before the volumes are up
            self._write_status(pod, rec, [st.container_status(
                c, rec.containers.get(c["name"]), image_error=None, config_error=None,
                backoff=False, ready=False, started=None,
                image_id=f"netsim://{c.get('image', '')}") for c in apps], restart_policy,
                init_specs, [_pod_initializing(c, rec) for c in init_specs])
            return self.volumes.retry_in(uid)
        refresh = self.volumes.refresh_in(uid)
        if refresh is not None:
            self._again(refresh)  # a ServiceAccount token is renewed at 80% of its life
        # Once an app container has started, a restarting sidecar blocks nothing (the pod
        # does not go back to initializing); once the app containers are done for good,
        # sidecars are stopped and stay stopped (st.apps_done).
        apps_started = any(c["name"] in rec.containers for c in apps)
        done = st.apps_done(restart_policy, [rec.containers.get(c["name"]) for c in apps])
        for c in init_specs:
            sidecar = st.is_sidecar(c)
            if blocked:
                init_statuses.append(_pod_initializing(c, rec))
                continue
            # A regular init container restarts on failure unless the pod says Never;
            # one that exited 0 never runs again.
            policy = ("Never" if done else "Always") if sidecar else \
                ("Never" if restart_policy == "Never" else "OnFailure")
            s = self._ensure(pod, rec, c, policy, env_base, pdir, links, init=not sidecar)
            init_statuses.append(s)
            if not st.init_done(c, s) and not (sidecar and apps_started):
                blocked = True
        statuses = []
        for c in apps:
            if blocked:
                statuses.append(_pod_initializing(c, rec))
                continue
            statuses.append(self._ensure(pod, rec, c, restart_policy, env_base, pdir, links))
        if self._dirty:
            rec.save(pdir)
        if st.apps_done(restart_policy, [rec.containers.get(c["name"]) for c in apps]):
            live = [rec.containers[c["name"]] for c in init_specs if st.is_sidecar(c)
                    and c["name"] in rec.containers and rec.containers[c["name"]].alive()]
            if live and uid not in self.terminating:
                # The app containers are done for good: the sidecars are stopped (as the
                # kubelet does), and the pod ends Succeeded or Failed as its apps say.
                self.terminating.add(uid)
                grace = float(spec.get("terminationGracePeriodSeconds", 30))
                for c in live:
                    events.record(self.client, pod, "Normal", "Killing",
                                  f"Stopping container {c.name}", "kubelet", self.node.name)
                threading.Thread(target=self._stop_sidecars, args=(pod, rec, live, grace),
                                 daemon=True).start()
        self._write_status(pod, rec, statuses, restart_policy, init_specs, init_statuses,
                           apps_started)
        return self._requeue

    def _stop_sidecars(self, pod: dict, rec: runtime.PodRecord,
                       live: list[runtime.ContainerRecord], grace: float) -> None:
        begin = time.monotonic()
        specs = {c["name"]: c for c in pod["spec"].get("initContainers") or []}
        threads = [threading.Thread(target=self._stop_one,
                                    args=(pod, rec, c, specs.get(c.name) or {}, grace, begin))
                   for c in live]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.terminating.discard(pod["metadata"]["uid"])
        self.queue.add(key_of(pod))

    def _again(self, after: float) -> None:
        self._requeue = after if self._requeue is None else min(self._requeue, after)

    def _ensure(self, pod: dict, rec: runtime.PodRecord, c: dict, policy: str,
                env_base: dict, pdir: str, links: dict, init: bool = False) -> dict:
        """Converge one container (start it, restart it after its back-off, or leave it
        finished as `policy` says); returns its status entry."""
        uid = pod["metadata"]["uid"]
        cname = c["name"]
        crec = rec.containers.get(cname)
        image_error = config_error = None
        backoff: bool | str = False
        if crec and crec.pid and crec.exit_code is None and not crec.alive():
            self._record_exit(pod, crec)
            self._dirty = True
        if not (crec and crec.alive()):
            want_start = crec is None or crec.exit_code is None or policy == "Always" \
                or (policy == "OnFailure" and crec.exit_code != 0)
            image = catalog.resolve(c.get("image", ""), c)
            if image is None:
                n = self.image_failures.get((uid, cname), 0) + 1
                self.image_failures[(uid, cname)] = n
                if n == 1:
                    msg = (f'Failed to pull image "{c.get("image")}": rpc error: code = NotFound '
                           f'desc = failed to pull and unpack image "{c.get("image")}": not found')
                    image_error = ("ErrImagePull", msg)
                    events.record(self.client, pod, "Normal", "Pulling",
                                  f'Pulling image "{c.get("image")}"', "kubelet", self.node.name)
                    events.record(self.client, pod, "Warning", "Failed", msg, "kubelet", self.node.name)
                    self._again(2.0)
                else:
                    image_error = ("ImagePullBackOff", f'Back-off pulling image "{c.get("image")}"')
                    events.record(self.client, pod, "Normal", "BackOff",
                                  f'Back-off pulling image "{c.get("image")}"', "kubelet", self.node.name)
                    self._again(min(st.BACKOFF_INITIAL * 2 ** (n - 2), st.BACKOFF_CAP))
                want_start = False
            if want_start and crec and crec.exit_code is not None:
                # A restart: upstream's back-off (10 s doubling to 5 min, reset after 10 min).
                key = (uid, cname)
                now = time.monotonic()
                entry = self.backoff.get(key)
                wait = st.backoff_wait(entry, crec.finished_mono or now, now)
                if wait > 0:
                    backoff = st.backoff_message(entry[0], cname, pod)
                    want_start = False
                    self._again(wait + 0.05)
                    if crec.backoff_noted != crec.restart_count:
                        crec.backoff_noted = crec.restart_count
                        md = pod["metadata"]
                        events.record(self.client, pod, "Warning", "BackOff",
                                      f"Back-off restarting failed container {cname} in pod "
                                      f"{md['name']}_{md['namespace']}({md['uid']})",
                                      "kubelet", self.node.name)
                elif image is not None:
                    self.backoff[key] = st.backoff_next(entry, now)
            if want_start and image is not None:
                try:
                    env = {**env_base, **container_env(self._config_object, pod, c, links)}
                except ConfigError as e:
                    config_error = str(e)
                    events.record(self.client, pod, "Warning", "Failed", f"Error: {e}",
                                  "kubelet", self.node.name)
                    self._again(2.0)
                else:
                    crec = self._start(pod, rec, c, image, env, crec, pdir)
                    self._dirty = True
        ready = self.probes.ready(uid, cname, c, crec)
        started = self.probes.started(uid, cname, c, crec)
        out = st.container_status(
            c, crec, image_error=image_error, config_error=config_error, backoff=backoff,
            ready=ready, started=started, image_id=f"netsim://{c.get('image', '')}")
        term = out["state"].get("terminated")
        if init and term is not None and term.get("exitCode") == 0:
            out["ready"] = True  # a completed init container is reported ready
        return out

    def _record_exit(self, pod: dict, crec: runtime.ContainerRecord) -> None:
        # The leader is gone: the rest of the container goes with it (a pid namespace's
        # processes die with its init).
        cgroups.kill(crec.cgroup)
        code = runtime.take_exit(crec.pid)  # reaped by the monitor or by a stop's wait
        if code is None and crec.exit_file:  # the image server's child: it wrote the code
            code = zyg.read_exit(crec.exit_file,
                                 self.zygote.alive if self.zygote else lambda: False)
        elif code is None:
            # Seen gone (a zombie) before anyone reaped it: reap it here, or take the code
            # another thread is just filing (an init container's 3 is no 0).
            runtime.reap([crec.pid])
            code = runtime.take_exit(crec.pid)
            deadline = time.monotonic() + 0.5
            while code is None and time.monotonic() < deadline and \
                    os.path.exists(f"/proc/{crec.pid}") is False:
                code = runtime.take_exit(crec.pid)
                if code is None:
                    time.sleep(0.02)
        if code is None:
            code = 137 if crec.killed_by_us else 0
        crec.exit_code = code
        crec.finished_at = now_rfc3339()
        crec.finished_mono = time.monotonic()
        crec.reason = "Completed" if code == 0 else "Error"

    def _start(self, pod, rec, c, image, env, crec, pdir) -> runtime.ContainerRecord:
        cname = c["name"]
        if crec is None:
            crec = runtime.ContainerRecord(name=cname)
            rec.containers[cname] = crec
        else:
            crec.last_terminated = {"exitCode": crec.exit_code, "reason": crec.reason,
                                    "startedAt": crec.started_at, "finishedAt": crec.finished_at,
                                    "containerID": f"netsim://{crec.pid}"}
            crec.restart_count += 1
        argv = catalog.expand(image.argv, env)
        crec.log_path = runtime.log_path(pdir, cname, crec.restart_count)
        hostname = self.node.name if rec.host_network else sandbox.pod_hostname(pod)
        # `ip netns exec` already binds /etc/netns/<netns>/* over /etc (sandbox.write_etc
        # put the same resolv.conf and hosts there): binding them again costs two `mount`
        # execs per container. hostNetwork pods have no such directory.
        etc_dir = os.path.join(pdir, "etc")
        if not rec.host_network and os.path.isdir(os.path.join(sandbox.ETC_NETNS, rec.netns)):
            etc_dir = ""
        binds_file = self.volumes.binds_file(pod, c, pdir)
        crec.cgroup = cgroups.container_path(rec.cgroup, cname) if rec.cgroup else ""
        how = dict(netns=rec.netns, hostname=hostname, etc_dir=etc_dir, env=env,
                   binds_file=binds_file, log_path=crec.log_path,
                   cwd=c.get("workingDir") or "/", cgroup=crec.cgroup,
                   mount_ns=self.volumes.mount_ns(rec.uid))
        forked = self.zygote.start(argv, **how) if self.zygote is not None else None
        crec.exit_file = zyg.exit_file(crec.log_path) if forked else ""
        pid, start = forked or runtime.start(argv, **how)
        crec.pid, crec.starttime = pid, start
        self._wake_monitor()  # watched from now on (a quick exit: seen at once)
        crec.started_at = now_rfc3339()
        crec.exit_code = None
        crec.reason = ""
        crec.killed_by_us = False
        self.probes.container_started(pod["metadata"]["uid"], cname)
        ev = self.client
        events.record(ev, pod, "Normal", "Pulled",
                      f'Container image "{c.get("image")}" already present on machine', "kubelet", self.node.name)
        events.record(ev, pod, "Normal", "Created", f"Created container {cname}", "kubelet", self.node.name)
        started = f"Started container {cname}"
        if image.builtin is None and not catalog.known(c.get("image", "")):
            # No such image here: the container's command is the host's program.
            started += (f': the host\'s "{argv[0] if argv else ""}" for image '
                        f'"{c.get("image")}" (not in netsim\'s image catalog; pods share the '
                        "host's filesystem)")
        events.record(ev, pod, "Normal", "Started", started, "kubelet", self.node.name)
        post = hooks.handler(c, "postStart")
        if post:
            threading.Thread(target=self._post_start, args=(pod, rec, c, crec, post, argv),
                             daemon=True, name=f"postStart {cname}").start()
        return crec

    def _post_start(self, pod: dict, rec: runtime.PodRecord, c: dict,
                    crec: runtime.ContainerRecord, h: dict, argv: list[str]) -> None:
        """postStart runs beside the container's process, once it has its namespaces (the
        launcher has exec'd the container's own argv); a failure kills the container
        (which then restarts as its restartPolicy says)."""
        pid, start = crec.pid, crec.starttime
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and crec.alive() and not runtime.launched(pid, argv):
            time.sleep(0.01)
        msg = hooks.run(h, c, pod, rec.ip, pid, crec.cgroup, timeout=POST_START_TIMEOUT,
                        stop=self.stopped)
        if msg is None or crec.pid != pid or crec.starttime != start or not crec.alive():
            return
        events.record(self.client, pod, "Warning", "FailedPostStartHook", msg, "kubelet",
                      self.node.name)
        events.record(self.client, pod, "Normal", "Killing",
                      "FailedPostStartHook", "kubelet", self.node.name)
        runtime.stop(crec, float(pod["spec"].get("terminationGracePeriodSeconds", 30)))
        self.queue.add(key_of(pod))

    def _write_status(self, pod: dict, rec: runtime.PodRecord, statuses: list[dict],
                      restart_policy: str, init_specs: list[dict] | None = None,
                      init_statuses: list[dict] | None = None,
                      apps_started: bool = False) -> None:
        now = now_rfc3339()
        old = pod.get("status") or {}
        oldc = old.get("conditions") or []
        init_specs, init_statuses = init_specs or [], init_statuses or []
        phase = st.init_phase(restart_policy, init_specs, init_statuses, apps_started) or \
            st.pod_phase(restart_policy, statuses)
        if phase in ("Succeeded", "Failed") and any(
                "running" in s["state"] for c, s in zip(init_specs, init_statuses, strict=True)
                if st.is_sidecar(c)):
            phase = "Running"  # not terminal while its sidecars are still being stopped
        not_init = [s["name"] for c, s in zip(init_specs, init_statuses, strict=True)
                    if not st.init_done(c, s) and not (apps_started and st.is_sidecar(c))]
        sidecars = [s for c, s in zip(init_specs, init_statuses, strict=True) if st.is_sidecar(c)]
        conds = st.pod_conditions(statuses + sidecars, phase, sandbox_ready=bool(rec.netns),
                                  old=oldc, now=now, not_initialized=not_init)
        new = dict(old)
        new.update({"phase": phase, "conditions": conds, "hostIP": self.node.ip,
                    "hostIPs": [{"ip": self.node.ip}], "containerStatuses": statuses,
                    "startTime": old.get("startTime") or now})
        if init_statuses:
            new["initContainerStatuses"] = init_statuses
        if rec.ip:
            new["podIP"] = rec.ip
            new["podIPs"] = [{"ip": rec.ip}]
        if new != old:
            # A Conflict: someone else wrote the pod; its event syncs the pod again.
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                out = self.client.update_status({**pod, "status": new})  # never the cached dict
                with self._lock:
                    self._written[key_of(pod)] = out


def _allocatable() -> dict[str, str]:
    """What a downwardAPI resourceFieldRef reads for a limit the container does not set."""
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    return {"cpu": str(os.cpu_count() or 1), "memory": f"{mem_kib}Ki",
            "ephemeral-storage": "50Gi"}


def _pod_initializing(c: dict, rec: runtime.PodRecord) -> dict:
    """The status of a container not started because an init container before it has not
    finished: Waiting, reason PodInitializing, not ready."""
    return st.container_status(
        c, rec.containers.get(c["name"]), image_error=None, config_error=None, backoff=False,
        ready=False, started=None, image_id=f"netsim://{c.get('image', '')}",
        waiting="PodInitializing")
