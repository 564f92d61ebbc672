"""kubectl's drain (k8s.io/kubectl pkg/cmd/drain + pkg/drain) over a netsim Client, with its
order and its words: what `netsim drain NODE` (netsim.cli.drain) and `netsim node remove`
run.

1. cordon (`node/x cordoned`, or `already cordoned`);
2. the node's pods (`spec.nodeName=x`, `--pod-selector`) through kubectl's filters in their
   order: skip pods deleted longer ago than --skip-wait-for-delete-timeout; DaemonSet pods
   (refused without --ignore-daemonsets, else left alone with a Warning; an orphan of a
   DaemonSet that is gone only with --force); mirror pods (skipped); pods with an emptyDir
   (refused without --delete-emptydir-data); pods with no controller (refused without
   --force). A refusal is `cannot delete <what> (use --<flag> ...): ns/a, ns/b` and drains
   nothing on that node;
3. every pod evicted at once through pods/eviction (`evicting pod ns/name`), an eviction a
   PodDisruptionBudget refuses (429) retried every 5 s with kubectl's `error when evicting
   pods/"x" -n "ns" (will retry after 5s): ...` line; --disable-eviction deletes instead;
   then each pod waited for until it is gone (or replaced by one of another uid):
   `pod/x evicted` (`deleted`);
4. `node/x drained`; a node that failed is named under `There are pending nodes to be
   drained:` and the command fails with the errors.

--timeout bounds the whole of step 3 (0: forever), --grace-period (-1: the pod's own) goes
into each eviction's DeleteOptions, --dry-run=client lists what would be evicted,
--dry-run=server asks the API with dryRun=All.

As a library (the load tests' "drain under load"):

    from netsim.api.client import HttpClient
    from netsim.cluster.drain import DrainOptions, Drainer
    d = Drainer(HttpClient(cluster), DrainOptions(ignore_daemonsets=True, timeout=120))
    ok = d.drain(["k8s-slave-172"])   # False: d.failure says why; lines go to stdout/stderr
    # (or Drainer(client, opts, out=lines.append, err=lines.append) to keep them)
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from netsim.api import errors
from netsim.api.timeutil import rfc3339_seconds

DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "Pods that declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"

OKAY, SKIP, WARNING, ERROR = "Okay", "Skip", "Warning", "Error"


@dataclass
class DrainOptions:
    force: bool = False
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    grace_period: int = -1            # -1: each pod's terminationGracePeriodSeconds
    timeout: float = 0.0              # seconds for the evictions and waits; 0: no limit
    pod_selector: str = ""
    disable_eviction: bool = False
    skip_wait_for_delete_timeout: int = 0
    dry_run: str = "none"             # none | client | server
    retry_delay: float = 5.0          # EvictErrorRetryDelay
    poll: float = 1.0                 # waitForDelete's interval


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() (5s, 1m0s, 1m30s, 1.5s, 500ms)."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    text = f"{s:.9f}".rstrip("0").rstrip(".") + "s"
    if h:
        return f"{int(h)}h{int(m)}m{text}"
    if m:
        return f"{int(m)}m{text}"
    return text


def aggregate(errs: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error()."""
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


def _controller_ref(pod: dict) -> dict | None:
    return next((r for r in (pod.get("metadata") or {}).get("ownerReferences") or []
                 if r.get("controller")), None)


def _finished(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _should_skip(pod: dict, skip_seconds: int, now: float) -> bool:
    stamp = (pod.get("metadata") or {}).get("deletionTimestamp")
    return skip_seconds > 0 and bool(stamp) and \
        int(now - (rfc3339_seconds(stamp) or now)) > skip_seconds


def filter_pod(pod: dict, opts: DrainOptions, daemonset_error: Callable[[dict], str | None],
               now: float | None = None) -> tuple[bool, str, str]:
    """(delete, reason, message) of kubectl's filters in their order: the first that says
    do-not-delete ends the walk, else the last filter's status counts.
    `daemonset_error(ref)` is the error getting the pod's DaemonSet (None: it exists)."""
    now = time.time() if now is None else now
    # skipDeletedFilter
    if _should_skip(pod, opts.skip_wait_for_delete_timeout, now):
        return False, SKIP, ""
    # daemonSetFilter
    ref = _controller_ref(pod)
    if ref is not None and ref.get("kind") == "DaemonSet" and ref.get("apiVersion") == "apps/v1" \
            and not _finished(pod):
        problem = daemonset_error(ref)
        if problem is not None:
            if not (problem.endswith("not found") and opts.force):
                return False, ERROR, problem
            # an orphan: deleted with --force (its warning is the next filters' to keep)
        elif not opts.ignore_daemonsets:
            return False, ERROR, DAEMONSET_FATAL
        else:
            return False, WARNING, DAEMONSET_WARNING
    # mirrorPodFilter
    if MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
        return False, SKIP, ""
    # localStorageFilter (its warning is lost to the next filter's Okay, as upstream's TODO says)
    if any(isinstance(v, dict) and "emptyDir" in v
           for v in (pod.get("spec") or {}).get("volumes") or []) and not _finished(pod) \
            and not opts.delete_emptydir_data:
        return False, ERROR, LOCAL_STORAGE_FATAL
    # unreplicatedFilter
    if _finished(pod) or ref is not None:
        return True, OKAY, ""
    if opts.force:
        return True, WARNING, UNMANAGED_WARNING
    return False, ERROR, UNMANAGED_FATAL


def _grouped(items: list[tuple[dict, tuple[bool, str, str]]], reason: str) -> dict[str, list[str]]:
    """message -> [ns/name, ...] in the pods' order."""
    out: dict[str, list[str]] = {}
    for pod, (_, r, msg) in items:
        if r == reason:
            md = pod["metadata"]
            out.setdefault(msg or "unexpected error", []).append(
                f"{md.get('namespace')}/{md['name']}")
    return out


class Drainer:
    """kubectl's drain.Helper plus DrainCmdOptions' printing, over a netsim Client."""

    def __init__(self, client, opts: DrainOptions | None = None,
                 out: Callable[[str], None] | None = None,
                 err: Callable[[str], None] | None = None):
        self.client = client
        self.opts = opts or DrainOptions()
        self._lock = threading.Lock()
        self._out = out or (lambda s: (sys.stdout.write(s + "\n"), sys.stdout.flush()))
        self._err = err or (lambda s: (sys.stderr.write(s + "\n"), sys.stderr.flush()))
        self.failure = ""  # the aggregated error of a drain that failed

    def say(self, text: str) -> None:
        with self._lock:
            self._out(text)

    def warn(self, text: str) -> None:
        with self._lock:
            self._err(text)

    @property
    def _suffix(self) -> str:
        return {"client": " (dry run)", "server": " (server dry run)"}.get(self.opts.dry_run, "")

    # ---- cordon --------------------------------------------------------------------------
    def cordon(self, node: dict, desired: bool = True) -> bool:
        name = node["metadata"]["name"]
        verb = "cordon" if desired else "uncordon"
        if bool((node.get("spec") or {}).get("unschedulable")) == desired:
            self.say(f"node/{name} already {verb}ed{self._suffix}")
            return True
        if self.opts.dry_run != "client":
            try:
                patch = {"spec": {"unschedulable": True if desired else None}}
                if self.opts.dry_run == "server":
                    self.client.update({**node, "spec": {**(node.get("spec") or {}),
                                                         "unschedulable": desired}},
                                       dry_run=True)
                else:
                    self.client.patch("nodes", name, None, patch)
            except errors.ApiError as e:
                self.warn(f'error: unable to {verb} node "{name}": {e.message}')
                return False
        self.say(f"node/{name} {verb}ed{self._suffix}")
        return True

    # ---- which pods ----------------------------------------------------------------------
    def _daemonset_error(self, pod: dict) -> Callable[[dict], str | None]:
        def check(ref: dict) -> str | None:
            try:
                self.client.get("daemonsets", ref.get("name"), pod["metadata"]["namespace"])
            except errors.ApiError as e:
                return e.message
            return None
        return check

    def pods_for_deletion(self, node: str) -> tuple[list[dict], str, list[str]]:
        """GetPodsForDeletion: (pods to delete, the Warnings line, the errors)."""
        from netsim.api import selectors
        try:
            selectors.parse(self.opts.pod_selector)
        except ValueError as e:
            return [], "", [str(e)]
        pods = self.client.list("pods", None, label_selector=self.opts.pod_selector or None,
                                field_selector=f"spec.nodeName={node}")
        items = [(p, filter_pod(p, self.opts, self._daemonset_error(p))) for p in pods]
        warnings = "; ".join(f"{msg}: {', '.join(names)}"
                             for msg, names in _grouped(items, WARNING).items())
        errs = [f"cannot delete {msg}: {', '.join(names)}"
                for msg, names in _grouped(items, ERROR).items()]
        return [p for p, (delete, _, _) in items if delete], warnings, errs

    # ---- evict or delete -----------------------------------------------------------------
    def _delete_options(self) -> dict:
        opts: dict = {}
        if self.opts.grace_period >= 0:
            opts["gracePeriodSeconds"] = self.opts.grace_period
        if self.opts.dry_run == "server":
            opts["dryRun"] = ["All"]
        return opts

    def evict(self, pod: dict) -> None:
        """POST pods/{name}/eviction (policy/v1); raises the ApiError."""
        md = pod["metadata"]
        body = {"kind": "Eviction", "apiVersion": "policy/v1",
                "metadata": {"name": md["name"], "namespace": md["namespace"]},
                "deleteOptions": self._delete_options()}
        store = getattr(self.client, "store", None)
        if store is not None:  # in-process (LocalClient)
            from netsim.api import eviction
            eviction.evict(store, md["namespace"], md["name"], body["deleteOptions"])
            return
        url = self.client._url("pods", md["namespace"], md["name"], "eviction")
        self.client._request("POST", url, body)

    def eviction_supported(self) -> bool:
        """CheckEvictionSupport: /api/v1 lists pods/eviction with a group and version."""
        store = getattr(self.client, "store", None)
        if store is not None:
            from netsim.api import routes
            return ("pods", "eviction") in routes.SUBRESOURCES
        try:
            doc = self.client._request("GET", "/api/v1")
        except errors.ApiError:
            return False
        return any(r.get("name") == "pods/eviction" and r.get("kind") == "Eviction"
                   and r.get("group") and r.get("version") for r in doc.get("resources") or [])

    def _get(self, pod: dict) -> dict | None:
        md = pod["metadata"]
        return self.client.get_or_none("pods", md["name"], md["namespace"])

    def _wait_gone(self, pods: list[dict], deadline: float | None, verb: str) -> list[dict]:
        """waitForDelete: poll until each pod is gone or replaced (another uid); prints
        `pod/x <verb>`. Returns the pods still there at the deadline."""
        pending = list(pods)
        while True:
            left = []
            for pod in pending:
                cur = self._get(pod)
                if cur is None or cur["metadata"].get("uid") != pod["metadata"].get("uid"):
                    self.say(f"pod/{pod['metadata']['name']} {verb}")
                    continue
                if _should_skip(cur, self.opts.skip_wait_for_delete_timeout, time.time()):
                    self.say(f'pod "{pod["metadata"]["name"]}" has DeletionTimestamp older '
                             f"than {self.opts.skip_wait_for_delete_timeout} seconds, skipping")
                    continue
                left.append(pod)
            pending = left
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                return pending
            time.sleep(self.opts.poll if deadline is None
                       else max(0.0, min(self.opts.poll, deadline - time.monotonic())))

    def _evict_one(self, pod: dict, deadline: float | None) -> str | None:
        md = pod["metadata"]
        name, ns = md["name"], md["namespace"]
        timeout = go_duration(self.opts.timeout) if self.opts.timeout else \
            "2562047h47m16.854775807s"
        active = pod
        while True:
            self.say(f"evicting pod {ns}/{name}"
                     + (" (server dry run)" if self.opts.dry_run == "server" else ""))
            if deadline is not None and time.monotonic() >= deadline:
                return f'error when evicting pods/"{name}" -n "{ns}": global timeout ' \
                       f"reached: {timeout}"
            try:
                self.evict(active)
                break
            except errors.NotFound:
                return None
            except errors.ApiError as e:
                if e.code == 429:
                    self.warn(f'error when evicting pods/"{name}" -n "{ns}" (will retry after '
                              f"{go_duration(self.opts.retry_delay)}): {e.message}")
                    wait = self.opts.retry_delay
                    if deadline is not None:
                        wait = min(wait, max(0.0, deadline - time.monotonic()))
                    time.sleep(wait)
                else:
                    return f'error when evicting pods/"{name}" -n "{ns}": {e.message}'
            fresh = self._get(active)
            if fresh is not None:
                active = fresh
        if self.opts.dry_run == "server":
            return None
        if self._wait_gone([active], deadline, "evicted"):
            return f'error when waiting for pod "{name}" in namespace "{ns}" to terminate: ' \
                   "context deadline exceeded"
        return None

    def delete_or_evict(self, pods: list[dict]) -> str | None:
        """DeleteOrEvictPods: None, or the (aggregated) error."""
        if not pods:
            return None
        deadline = time.monotonic() + self.opts.timeout if self.opts.timeout else None
        if not self.opts.disable_eviction and self.eviction_supported():
            results: list[str | None] = [None] * len(pods)

            def run(i: int, pod: dict) -> None:
                try:
                    results[i] = self._evict_one(pod, deadline)
                except Exception as e:  # noqa: BLE001 - one pod's failure is its error
                    results[i] = f"{type(e).__name__}: {e}"
            threads = [threading.Thread(target=run, args=(i, p), daemon=True)
                       for i, p in enumerate(pods)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            errs = [r for r in results if r]
            return aggregate(errs) if errs else None
        opts = self._delete_options()
        for pod in pods:
            md = pod["metadata"]
            try:
                if self.opts.dry_run == "server":
                    continue  # a server dry run of DELETE changes nothing and prints nothing
                self.client.delete("pods", md["name"], md["namespace"],
                                   grace_period_seconds=opts.get("gracePeriodSeconds"))
            except errors.NotFound:
                pass
            except errors.ApiError as e:
                return e.message
        if self.opts.dry_run == "server":
            return None
        if self._wait_gone(pods, deadline, "deleted"):
            return "context deadline exceeded"
        return None

    # ---- the verb ------------------------------------------------------------------------
    def drain_node(self, name: str) -> str | None:
        """deleteOrEvictPodsSimple for one (cordoned) node: None when drained."""
        pods, warnings, errs = self.pods_for_deletion(name)
        if errs:
            return aggregate(errs)
        if warnings:
            self.warn(f"Warning: {warnings}")
        if self.opts.dry_run == "client":
            for p in pods:
                self.say(f"evicting pod {p['metadata']['namespace']}/{p['metadata']['name']} "
                         "(dry run)")
            return None
        problem = self.delete_or_evict(pods)
        if problem:
            left, _, _ = self.pods_for_deletion(name)
            if left:
                self.warn(f'There are pending pods in node "{name}" when an error occurred: '
                          f"{problem}")
                for p in left:
                    self.warn(f"pod/{p['metadata']['name']}")
        return problem

    def drain(self, names: list[str] | None = None, selector: str | None = None) -> bool:
        """RunDrain: cordon every node, then drain them one after the other. False (after
        kubectl's lines) when a node could not be drained."""
        nodes = self.nodes(names, selector)
        for node in nodes:
            self.cordon(node, True)
        fatal, pending = [], []
        for node in nodes:
            name = node["metadata"]["name"]
            problem = self.drain_node(name)
            if problem is None:
                self.say(f"node/{name} drained{self._suffix}")
                continue
            self.warn(f'error: unable to drain node "{name}" due to error: {problem}, '
                      "continuing command...")
            fatal.append(problem)
            pending.append(name)
        if pending:
            self.warn("There are pending nodes to be drained:")
            for n in pending:
                self.warn(f" {n}")
            self.failure = aggregate(fatal)
            return False
        return True

    def nodes(self, names: list[str] | None, selector: str | None) -> list[dict]:
        if names:
            return [self.client.get("nodes", n.split("/", 1)[-1]) for n in names]
        return self.client.list("nodes", None, label_selector=selector)
