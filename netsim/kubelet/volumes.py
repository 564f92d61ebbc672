"""Pod volumes, as the kubelet mounts them: emptyDir, configMap, secret, downwardAPI,
projected (with ServiceAccount tokens) and hostPath, in the pod's own mount namespace.

Layout (upstream's /var/lib/kubelet/pods/<uid>/volumes/<plugin>/<name>, under the pod's
state folder):  <pod dir>/volumes/kubernetes.io~{empty-dir,configmap,secret,downward-api,
projected}/<volume>. configMap and downwardAPI volumes and disk emptyDirs are folders on
disk (in a cluster, under PodVolumes.disk_root, the pod's volume path a symlink there); secret and projected volumes and emptyDirs with medium Memory are tmpfs that exist
only in the pod's mount namespace (netsim.kubelet.mounter makes it, held by the pod's pause
process; the kubelet writes them through /proc/<holder>/root). Files are written as
upstream's AtomicWriter does (pkg/volume/util/atomic_writer.go): a `..data` symlink to a
timestamped folder holding the payload, and one symlink per top-level name into `..data`,
so an update (the ConfigMap or Secret changed, a token refreshed) swaps `..data` at once.

Each container gets a private copy of the pod's namespace where its volumeMounts are bind
mounts at their mountPaths (subPath, readOnly; configMap, secret, downwardAPI and projected
volumes always read-only, as upstream); a mountPath the host lacks was made in the pod's
namespace only. Nothing is mounted on the host: a pod's volumes vanish with its holder.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from netsim.api import errors, events, quantity
from netsim.api.timeutil import rfc3339_seconds
from netsim.kubelet import cgroups, mounter, runtime
from netsim.kubelet.env import _field as _env_field
from netsim.machinery import SharedInformer

log = logging.getLogger("netsim.kubelet.volumes")

PLUGINS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
           "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
           "projected": "kubernetes.io~projected"}
READ_ONLY = {"configMap", "secret", "downwardAPI", "projected"}  # always mounted read-only
DEFAULT_MODE = 0o644  # upstream's 420
DATA_DIR, NEW_DATA_DIR = "..data", "..data_tmp"
TOKEN_DEFAULT_SECONDS = 3600
HOLDER_START_TIMEOUT = 10.0  # without using any CPU (runtime.StartWatch; 2 min in all)
STATE_FILE = "volumes.json"

# (resource, name, namespace) -> the object or None (the kubelet's cache, then the API)
Getter = Callable[[str, str, str], "dict | None"]
# (namespace, service account, TokenRequest body) -> the TokenRequest the API returned
TokenRequester = Callable[[str, str, dict], dict]


class MountError(Exception):
    """A volume cannot be set up (the FailedMount event's `: <message>`)."""


def source_type(vol: dict) -> str | None:
    for t in (*PLUGINS, "hostPath", "persistentVolumeClaim"):
        if vol.get(t) is not None:
            return t
    return None


def on_tmpfs(vol: dict) -> bool:
    """Secrets, projected volumes (tokens) and Memory emptyDirs never touch the disk."""
    t = source_type(vol)
    return t in ("secret", "projected") or (
        t == "emptyDir" and (vol["emptyDir"] or {}).get("medium") == "Memory")


def volume_dir(pdir: str, vol: dict) -> str:
    return os.path.join(pdir, "volumes", PLUGINS[source_type(vol)], vol["name"])


def tmpfs_options(vol: dict) -> str:
    """tmpfs's own defaults (mode 1777, half the memory) as the kubelet mounts it, with
    `size` from an emptyDir's sizeLimit."""
    limit = (vol.get("emptyDir") or {}).get("sizeLimit")
    if limit:
        with contextlib.suppress(ValueError):
            return f"size={int(quantity.parse(limit))}"
    return ""


# ---- payloads (what each volume's folder holds) -------------------------------------------

Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)


def _b64(value: str) -> bytes:
    return base64.b64decode(value or "")


def configmap_payload(items: list[dict] | None, cm: dict, default_mode: int,
                      optional: bool) -> Payload:
    """pkg/volume/configmap MakePayload: every key (data and binaryData), or `items`."""
    data, binary = cm.get("data") or {}, cm.get("binaryData") or {}
    out: Payload = {}
    if not items:
        for k, v in data.items():
            out[k] = (v.encode(), default_mode)
        for k, v in binary.items():
            out[k] = (_b64(v), default_mode)
        return out
    for it in items:
        key = it.get("key", "")
        if key in data:
            content = data[key].encode()
        elif key in binary:
            content = _b64(binary[key])
        elif optional:
            continue
        else:
            raise MountError(f"configmap references non-existent config key: {key}")
        out[it.get("path") or key] = (content, it.get("mode", default_mode))
    return out


def secret_payload(items: list[dict] | None, secret: dict, default_mode: int,
                   optional: bool) -> Payload:
    """pkg/volume/secret MakePayload (the API holds base64)."""
    data = secret.get("data") or {}
    if not items:
        return {k: (_b64(v), default_mode) for k, v in data.items()}
    out: Payload = {}
    for it in items:
        key = it.get("key", "")
        if key not in data:
            if optional:
                continue
            raise MountError(f"references non-existent secret key: {key}")
        out[it.get("path") or key] = (_b64(data[key]), it.get("mode", default_mode))
    return out


def format_map(m: dict) -> str:
    """fieldpath.FormatMap: sorted `key="value"` lines (Go's %q), no final newline."""
    return "\n".join(f"{k}={json.dumps(m[k], ensure_ascii=False)}" for k in sorted(m))


def field_value(pod: dict, path: str) -> str:
    """fieldpath.ExtractFieldPathAsString (what a downwardAPI volume may name)."""
    md = pod.get("metadata") or {}
    for name in ("labels", "annotations"):
        prefix = f"metadata.{name}['"
        if path.startswith(prefix) and path.endswith("']"):
            return (md.get(name) or {}).get(path[len(prefix):-2], "")
        if path == f"metadata.{name}":
            return format_map(md.get(name) or {})
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(md.get(path.split(".", 1)[1]) or "")
    raise MountError(f"unsupported fieldPath: {path}")


def resource_value(ref: dict, pod: dict, allocatable: dict[str, str]) -> str:
    """resource.ExtractResourceValueByContainerNameAndNodeAllocatable: a limit unset falls
    back to the node's allocatable; the value is rounded up in units of the divisor."""
    cname, res = ref.get("containerName", ""), ref.get("resource", "")
    spec = pod.get("spec") or {}
    c = next((c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])
              if c.get("name") == cname), None)
    if c is None:
        raise MountError(f"container {cname} not found")
    kind, _, rname = res.partition(".")
    resources = (c.get("resources") or {}).get(kind) or {}
    raw = resources.get(rname)
    if raw is None and kind == "limits":
        raw = allocatable.get(rname)
    if kind not in ("limits", "requests") or not rname:
        raise MountError(f"unsupported container resource : {res}")
    value = quantity.parse_exact(raw)[0] if raw is not None else Decimal(0)
    divisor = quantity.parse_exact(ref.get("divisor") or "1")[0] or Decimal(1)
    if rname == "cpu":  # in milli units, as convertResourceCPUToString
        value, divisor = value * 1000, divisor * 1000
    return str(math.ceil(value / divisor))


def downward_payload(items: list[dict] | None, pod: dict, default_mode: int,
                     allocatable: dict[str, str]) -> Payload:
    out: Payload = {}
    errs = []
    for it in items or []:
        mode = it.get("mode", default_mode)
        try:
            if it.get("fieldRef"):
                value = field_value(pod, it["fieldRef"].get("fieldPath", ""))
            elif it.get("resourceFieldRef"):
                value = resource_value(it["resourceFieldRef"], pod, allocatable)
            else:
                value = ""
        except (MountError, ValueError) as e:
            errs.append(str(e))
            continue
        out[os.path.normpath(it.get("path", ""))] = (value.encode(), mode)
    if errs:
        raise MountError(_aggregate(errs))
    return out


def _aggregate(errs: list[str]) -> str:
    """utilerrors.NewAggregate's message: one error as it is, more in brackets."""
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


def _not_found(kind: str, name: str) -> MountError:
    # the kubelet's watch-based managers: NewNotFound(Resource("configmap"|"secret"), name)
    return MountError(f'{kind} "{name}" not found')


def _mode(src: dict) -> int:
    mode = src.get("defaultMode")
    return DEFAULT_MODE if mode is None else int(mode)


@dataclass
class Sources:
    """What building a payload needs from the node: objects, tokens, allocatable."""

    get: Getter
    token: Callable[[dict, dict], bytes]  # (pod, serviceAccountToken source) -> token
    allocatable: dict[str, str] = field(default_factory=dict)


def payload(vol: dict, pod: dict, src: Sources) -> Payload | None:
    """The files of a configMap/secret/downwardAPI/projected volume (None: other types).
    Raises MountError as upstream's SetUp fails."""
    t = source_type(vol)
    ns = pod["metadata"].get("namespace", "default")
    if t == "configMap":
        s = vol["configMap"] or {}
        return _configmap(s, ns, _mode(s), src)
    if t == "secret":
        s = vol["secret"] or {}
        return _secret(s, s.get("secretName", ""), ns, _mode(s), src)
    if t == "downwardAPI":
        s = vol["downwardAPI"] or {}
        return downward_payload(s.get("items"), pod, _mode(s), src.allocatable)
    if t == "projected":
        return projected_payload(vol["projected"] or {}, pod, src)
    return None


def _configmap(s: dict, ns: str, mode: int, src: Sources) -> Payload:
    optional = bool(s.get("optional"))
    obj = src.get("configmaps", s.get("name", ""), ns)
    if obj is None:
        if not optional:
            raise _not_found("configmap", s.get("name", ""))
        obj = {}
    return configmap_payload(s.get("items"), obj, mode, optional)


def _secret(s: dict, name: str, ns: str, mode: int, src: Sources) -> Payload:
    optional = bool(s.get("optional"))
    obj = src.get("secrets", name, ns)
    if obj is None:
        if not optional:
            raise _not_found("secret", name)
        obj = {}
    return secret_payload(s.get("items"), obj, mode, optional)


def projected_payload(proj: dict, pod: dict, src: Sources) -> Payload:
    """pkg/volume/projected collectData: the sources in order, later paths win; every
    source's error is collected (the volume fails with all of them)."""
    ns = pod["metadata"].get("namespace", "default")
    mode = _mode(proj)
    out: Payload = {}
    errs: list[str] = []
    for source in proj.get("sources") or []:
        try:
            if source.get("configMap") is not None:
                out.update(_configmap(source["configMap"], ns, mode, src))
            elif source.get("secret") is not None:
                s = source["secret"]
                out.update(_secret(s, s.get("name", ""), ns, mode, src))
            elif source.get("downwardAPI") is not None:
                out.update(downward_payload(source["downwardAPI"].get("items"), pod, mode,
                                            src.allocatable))
            elif source.get("serviceAccountToken") is not None:
                tp = source["serviceAccountToken"]
                out[tp.get("path", "token")] = (src.token(pod, tp), mode)
        except MountError as e:
            errs.append(str(e))
    if errs:
        raise MountError(_aggregate(errs))
    return out


# ---- the AtomicWriter ----------------------------------------------------------------------

def validate_path(p: str) -> None:
    if not p:
        raise MountError(f'invalid path: must not be empty: "{p}"')
    if os.path.isabs(p):
        raise MountError(f"invalid path: must be relative path: {p}")
    if len(p) > 4096:
        raise MountError("invalid path: must be less than or equal to 4096 characters")
    parts = p.split("/")
    for item in parts:
        if item == "..":
            raise MountError(f"invalid path: must not contain '..': {p}")
        if len(item) > 255:
            raise MountError("invalid path: filenames must be less than or equal to 255 characters")
    if parts[0].startswith("..") and len(parts[0]) > 2:
        raise MountError(f"invalid path: must not start with '..': {p}")


def _walk(root: str) -> set[str]:
    out = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def atomic_write(target: str, files: Payload) -> bool:
    """AtomicWriter.Write: returns whether anything was written (False: unchanged)."""
    for p in files:
        validate_path(p)
    clean = {os.path.normpath(p): v for p, v in files.items()}
    data_link = os.path.join(target, DATA_DIR)
    try:
        old = os.readlink(data_link)
    except FileNotFoundError:
        old = ""
    old_path = os.path.join(target, old) if old else ""
    remove: set[str] = set()
    if old:
        keep = set()
        for p in clean:
            while p:
                keep.add(p)
                p = os.path.dirname(p)
        remove = _walk(old_path) - keep if os.path.isdir(old_path) else set()
        if not remove and not _should_write(clean, old_path):
            return False
    ts = _new_ts_dir(target)
    for p, (content, mode) in clean.items():
        full = os.path.join(ts, p)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(fd, "wb") as f:
            f.write(content)
        os.chmod(full, mode)
    for p in clean:
        top = p.split("/", 1)[0]
        visible = os.path.join(target, top)
        if not os.path.lexists(visible):
            os.symlink(os.path.join(DATA_DIR, top), visible)
    tmp = os.path.join(target, NEW_DATA_DIR)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(os.path.basename(ts), tmp)
    os.rename(tmp, data_link)
    for p in remove:
        if "/" not in p:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(target, p))
    if old_path:
        shutil.rmtree(old_path, ignore_errors=True)
    return True


def _should_write(files: Payload, old_dir: str) -> bool:
    for p, (content, _mode) in files.items():
        try:
            with open(os.path.join(old_dir, p), "rb") as f:
                if f.read() != content:
                    return True
        except FileNotFoundError:
            return True
    return False


def _new_ts_dir(target: str) -> str:
    """..2006_01_02_15_04_05.<random digits>, as os.MkdirTemp names it; mode 0755."""
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    while True:
        path = os.path.join(target, stamp + str(random.randrange(2**32)))
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        os.chmod(path, 0o755)
        return path


# ---- mounts ------------------------------------------------------------------------------

@dataclass
class Bind:
    src: str
    dst: str
    read_only: bool


def _mounts(pod: dict) -> list[tuple[dict, dict]]:
    """(container, volumeMount) for every container, init containers first."""
    spec = pod.get("spec") or {}
    return [(c, m) for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
            for m in c.get("volumeMounts") or []]


def _vols(pod: dict) -> dict[str, dict]:
    return {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}


def _sub_path(pod: dict, c: dict, m: dict) -> str:
    """subPath, or subPathExpr with $(VAR) from the container's env values and fieldRefs."""
    if m.get("subPathExpr"):
        env = {}
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("fieldRef")
            if ref:
                env[e.get("name")] = _env_field(pod, ref.get("fieldPath", ""))
            elif "value" in e:
                env[e.get("name")] = str(e["value"])
        out = m["subPathExpr"]
        for k, v in env.items():
            out = out.replace(f"$({k})", v)
        return out
    return m.get("subPath") or ""


def needs_namespace(pod: dict) -> bool:
    """Only pods that mount a managed volume (or at a path the host lacks) get a mount
    namespace and holder: others start exactly as before."""
    vols = _vols(pod)
    for _c, m in _mounts(pod):
        v = vols.get(m.get("name"))
        if v is None:
            continue
        if source_type(v) in PLUGINS or not os.path.lexists(m.get("mountPath", "")):
            return True
    return False


def mount_kind(vol: dict, sub: str, files: Payload | None) -> str:
    """Whether a mountPath the host lacks must be a file or a folder."""
    if not sub:
        if source_type(vol) == "hostPath":
            return "file" if os.path.isfile(vol["hostPath"].get("path", "")) else "dir"
        return "dir"
    if files is not None and os.path.normpath(sub) in {os.path.normpath(p) for p in files}:
        return "file"
    if source_type(vol) == "hostPath":
        return "file" if os.path.isfile(os.path.join(vol["hostPath"].get("path", ""), sub)) \
            else "dir"
    return "dir"


def deepest_existing(path: str) -> str:
    """The deepest folder above `path` that exists (symlinks resolved: /var/run -> /run)."""
    p = os.path.realpath(path)
    while p != "/" and not os.path.isdir(p):
        p = os.path.dirname(p)
    return p


def plan(pod: dict, pdir: str, payloads: dict[str, Payload | None], netns: str = "") -> dict:
    """What the holder mounts (netsim.kubelet.mounter): tmpfs volumes, self-binds of the
    disk ones, the folders to mimic and the missing mountPaths to make; `netns`: the pod's
    network namespace, the one its /run/netns keeps."""
    vols = _vols(pod)
    out: dict = {"tmpfs": [], "selfbind": [], "scratch": os.path.join(pdir, "volumes", ".scratch"),
                 "mimic": [], "placeholders": [], "netns": netns}
    for v in vols.values():
        if source_type(v) not in PLUGINS:
            continue
        d = volume_dir(pdir, v)
        if on_tmpfs(v):
            out["tmpfs"].append([d, tmpfs_options(v)])
        else:
            out["selfbind"].append(d)
    seen = set()
    for c, m in _mounts(pod):
        v = vols.get(m.get("name"))
        dst = os.path.normpath(m.get("mountPath", "") or "/")
        if v is None or dst in seen or os.path.lexists(dst) or dst == "/":
            continue
        seen.add(dst)
        real = os.path.realpath(dst)
        anc = deepest_existing(dst)
        if anc not in out["mimic"]:  # never made on the host's own folder
            out["mimic"].append(anc)
        out["placeholders"].append([real, mount_kind(v, _sub_path(pod, c, m),
                                                     payloads.get(m.get("name")))])
    return out


def container_binds(pod: dict, c: dict, pdir: str, record: Callable[[str], None],
                    claims: dict[str, str] | None = None) -> list[Bind]:
    """The container's bind mounts, parents first (as containerd sorts them). A hostPath
    whose path is missing is not mounted (`record` gets the FailedMount message).
    `claims`: the folder of each persistentVolumeClaim volume's bound PersistentVolume."""
    vols = _vols(pod)
    claims = claims or {}
    out = []
    for m in c.get("volumeMounts") or []:
        v = vols.get(m.get("name"))
        t = source_type(v) if v else None
        dst = os.path.normpath(m.get("mountPath", "") or "/")
        sub = _sub_path(pod, c, m)
        if t == "hostPath":
            base = v["hostPath"].get("path", "")
            src = os.path.join(base, sub) if sub else base
            if not os.path.exists(src):
                record(f'hostPath volume "{m.get("name")}" not mounted at {dst}: {src} does '
                       "not exist on this machine (netsim creates no host directories)")
                continue
        elif t in PLUGINS:
            src = volume_dir(pdir, v)
            if sub:
                src = os.path.join(src, sub)
        elif t == "persistentVolumeClaim" and m.get("name") in claims:
            src = claims[m["name"]]
            if sub:
                src = os.path.join(src, sub)
                with contextlib.suppress(OSError):
                    os.makedirs(src, exist_ok=True)  # a subPath is made in the volume
            ro = bool(m.get("readOnly")) or bool((v["persistentVolumeClaim"] or {}).get("readOnly"))
            out.append(Bind(src, dst, ro))
            continue
        else:
            continue
        out.append(Bind(src, dst, bool(m.get("readOnly")) or t in READ_ONLY))
    out.sort(key=lambda b: b.dst.rstrip("/").count("/"))
    return out


def write_binds(binds: list[Bind], path: str) -> str:
    """The launcher's file: `source<TAB>target[<TAB>ro]` lines ("" when there is none)."""
    if not binds:
        return ""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        for b in binds:
            f.write(f"{b.src}\t{b.dst}\t{'ro' if b.read_only else ''}\n")
    return path


# ---- the pod's mount namespace holder --------------------------------------------------------

def load_holder(pdir: str) -> tuple[int, int]:
    try:
        with open(os.path.join(pdir, STATE_FILE)) as f:
            d = json.load(f)
        return int(d["pid"]), int(d["starttime"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0


def holder_alive(pid: int, start: int) -> bool:
    return bool(pid) and runtime.proc_starttime(pid) == start


def spawn_holder(pdir: str, the_plan: dict, cgroup: str,
                 fork=None) -> tuple[int, int]:
    """Start the holder (holder_ready says when it holds the mounts); `fork(plan, log,
    cgroup)`: the node's image server (netsim.kubelet.zygote), which forks it from a warm
    interpreter instead of starting a fresh one (None when it cannot)."""
    for d, _ in the_plan["tmpfs"]:
        os.makedirs(d, exist_ok=True)
    for d in the_plan["selfbind"]:
        os.makedirs(d, exist_ok=True)
    os.makedirs(the_plan["scratch"], exist_ok=True)
    path = os.path.join(pdir, "volumes", "plan")
    with open(path, "w") as f:
        f.write(mounter.write_plan(the_plan))
    logp = os.path.join(pdir, "volumes", "holder.log")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(logp)
    forked = fork(path, logp, os.path.join(cgroup, "pause") if cgroup else "") if fork else None
    if forked:
        return forked
    fd = -1
    if cgroup:
        with contextlib.suppress(OSError):
            fd = cgroups.open_procs(os.path.join(cgroup, "pause"))
    argv = ["unshare", "--mount", "--propagation", "slave", sys.executable, "-I", "-S",
            mounter.__file__, path]
    try:
        return runtime.spawn(argv, logp, stdin=fd if fd >= 0 else subprocess.DEVNULL)
    finally:
        if fd >= 0:
            os.close(fd)


def holder_ready(pdir: str, pid: int, start: int) -> bool:
    """Whether the holder holds the mounts (it has become `sleep infinity`: recorded for
    an agent that restarts); MountError with its own words once it died."""
    if runtime.cmdline(pid) == ["sleep", "infinity"] and holder_alive(pid, start):
        with open(os.path.join(pdir, STATE_FILE), "w") as f:
            json.dump({"pid": pid, "starttime": start}, f)
        return True
    if holder_alive(pid, start):
        return False
    stop_holder(pid, start)
    try:
        with open(os.path.join(pdir, "volumes", "holder.log")) as f:
            why = f.read().strip().splitlines()[-1]
    except (OSError, IndexError):
        why = "the pod's mount namespace did not come up"
    raise MountError(why.removeprefix("netsim: "))


def start_holder(pdir: str, the_plan: dict, cgroup: str, fork=None) -> tuple[int, int]:
    """Start the holder and wait until it holds the mounts."""
    pid, start = spawn_holder(pdir, the_plan, cgroup, fork)
    watch = runtime.StartWatch(pid, HOLDER_START_TIMEOUT)
    while not holder_ready(pdir, pid, start):
        if watch.expired():
            stop_holder(pid, start)
            raise MountError("the pod's mount namespace did not come up in time")
        time.sleep(watch.poll())
    return pid, start


def stop_holder(pid: int, start: int) -> None:
    """SIGKILL the holder (nothing in it needs a grace) and reap it when it is ours."""
    if not holder_alive(pid, start):
        runtime.reap([pid]) if pid else None
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    gone: set[int] = set()
    while time.monotonic() < deadline:
        if runtime.reap([pid], gone) or pid in gone or not os.path.exists(f"/proc/{pid}"):
            return
        time.sleep(0.005)


def in_holder(pid: int, path: str) -> str:
    """`path` as the holder's mount namespace sees it."""
    return f"/proc/{pid}/root{path}"


# ---- the kubelet's volume manager -----------------------------------------------------------

def request_token(client, ns: str, sa: str, body: dict) -> dict:
    """POST .../serviceaccounts/<sa>/token (the TokenRequest subresource)."""
    create = getattr(client, "create_token", None)
    if create is not None:
        return create(ns, sa, body)
    req = getattr(client, "_request", None)
    if req is None:
        raise errors.NotFound("the server could not find the requested resource")
    return req("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", body)


@dataclass
class _Token:
    token: bytes
    refresh_at: float  # time.time() after which it is asked again (80% of its life)
    expires: float


class PodVolumes:
    """Per node: sets up each pod's volumes before its containers start, keeps them in
    step with their ConfigMaps, Secrets and tokens, and tears them down with the pod."""

    def __init__(self, client, get: Getter, node_name: str,
                 token_requester: TokenRequester | None = None,
                 allocatable: dict[str, str] | None = None):
        self.client = client
        self.get = get
        self.node_name = node_name
        self.request = token_requester or (lambda ns, sa, body: request_token(client, ns, sa, body))
        self.allocatable = allocatable or {}
        self.holders: dict[str, tuple[int, int]] = {}  # pod uid -> holder (pid, starttime)
        # pod uid -> (audience, expirationSeconds, path) -> token: one pod's sync looks at
        # its own tokens only (scanning the node's for each sync was O(pods) a sync)
        self.tokens: dict[str, dict[tuple, _Token]] = {}
        # uid -> (monotonic time of the next try, failures so far): the volume manager's
        # back-off, 0.5 s doubling to 2m2s (a change of a referenced object: at once)
        self.backoff: dict[str, tuple[float, int]] = {}
        self.ready: set[str] = set()  # uids whose volumes were all set up once
        self.starting: dict[str, tuple[int, int, float]] = {}  # uid -> holder coming up
        self.claims: dict[str, dict[str, str]] = {}  # uid -> volume name -> the PV's folder
        self.fork_holder = None  # the image server's start_holder (spawn_holder's `fork`)
        # Where the disk volumes of this node's pods live (None: in the pod's folder):
        # the pods' folders are on a tmpfs of the cluster (netsim.cluster.lifecycle), and a
        # disk emptyDir must show the node's disk in the pod (`df`), as upstream's does.
        self.disk_root: str | None = None

    def event(self, pod: dict, etype: str, reason: str, msg: str) -> None:
        events.record(self.client, pod, etype, reason, msg, "kubelet", self.node_name)

    def _token(self, pod: dict, tp: dict) -> bytes:
        md, spec = pod["metadata"], pod.get("spec") or {}
        exp = int(tp.get("expirationSeconds") or TOKEN_DEFAULT_SECONDS)
        aud = tp.get("audience") or ""
        mine = self.tokens.setdefault(md.get("uid") or "", {})
        key = (aud, exp, tp.get("path"))
        cur = mine.get(key)
        now = time.time()
        if cur and now < cur.refresh_at:
            return cur.token
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [aud] if aud else [], "expirationSeconds": exp,
                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                            "name": md.get("name"), "uid": md.get("uid")}}}
        try:
            tr = self.request(md.get("namespace", "default"), sa, body)
            tok = (tr.get("status") or {}).get("token")
            if not tok:
                raise errors.ApiError("no token in the TokenRequest's status")
        except errors.ApiError as e:
            if cur and now < cur.expires:
                return cur.token  # still valid: upstream keeps serving it until it expires
            raise MountError(f"failed to fetch token: {e}") from e
        life = float(((tr.get("spec") or {}).get("expirationSeconds")) or exp)
        expires = (tr.get("status") or {}).get("expirationTimestamp")
        at = rfc3339_seconds(expires) if expires else None
        if at is not None:
            life = max(1.0, at - now)
        mine[key] = _Token(tok.encode(), now + 0.8 * life, now + life)
        return mine[key].token

    def refresh_in(self, uid: str) -> float | None:
        """Seconds until a token of this pod must be asked for again."""
        times = [t.refresh_at for t in self.tokens.get(uid, {}).values()]
        return max(0.5, min(times) - time.time()) if times else None

    def mount_ns(self, uid: str) -> str:
        h = self.holders.get(uid)
        return f"/proc/{h[0]}/ns/mnt" if h and holder_alive(*h) else ""

    def setup(self, pod: dict, pdir: str, cgroup: str, started: bool = False,
              netns: str = "") -> bool:
        """Set up or refresh every volume of the pod. Returns False while a volume
        cannot be set up and no container has started (the pod stays ContainerCreating;
        `started`: some container ran already, e.g. before the agent restarted; `netns`:
        the pod's network namespace)."""
        md = pod["metadata"]
        uid = md["uid"]
        if started:
            self.ready.add(uid)
        if uid not in self.ready and time.monotonic() < self.backoff.get(uid, (0.0, 0))[0]:
            return False
        vols = _vols(pod)
        if uid not in self.claims:  # resolved once (also after an agent restart)
            try:
                self.claims[uid] = claim_folders(pod, self.client)
            except MountError as e:
                self.event(pod, "Warning", "FailedMount", str(e))
                if uid not in self.ready:
                    return self._failed(uid)
        src = Sources(self.get, self._token, self.allocatable)
        payloads: dict[str, Payload | None] = {}
        failed: dict[str, str] = {}
        for name, v in vols.items():
            if source_type(v) not in PLUGINS:
                continue
            try:
                payloads[name] = payload(v, pod, src)
            except MountError as e:
                failed[name] = str(e)
        for name, msg in failed.items():  # a running pod keeps the files it had
            self.event(pod, "Warning", "FailedMount",
                       f'MountVolume.SetUp failed for volume "{name}" : {msg}')
        if failed and uid not in self.ready:
            return self._failed(uid)
        if not needs_namespace(pod):
            self.ready.add(uid)
            return True
        self._disk_folders(uid, pdir, vols)
        h = self.holders.get(uid) or load_holder(pdir)
        if not holder_alive(*h):
            if h[0]:
                runtime.reap([h[0]])  # a holder that died (killed by hand): not left a zombie
            try:
                if uid in self.ready:  # containers may need it now: wait for it
                    h = start_holder(pdir, plan(pod, pdir, payloads, netns), cgroup, self.fork_holder)
                else:  # a new pod: the sync thread goes on with other pods meanwhile
                    got = self._holder_started(uid, pdir, plan(pod, pdir, payloads, netns), cgroup)
                    if got is None:
                        return False
                    h = got
            except (MountError, OSError) as e:
                self.starting.pop(uid, None)
                self.event(pod, "Warning", "FailedMount",
                           f"MountVolume.SetUp failed for the pod's mount namespace : {e}")
                return uid in self.ready or self._failed(uid)
        self.holders[uid] = h
        errs = {}
        for name, files in payloads.items():
            if files is None:  # an emptyDir: nothing to write (no ..data in it)
                continue
            v = vols[name]
            d = volume_dir(pdir, v)
            target = in_holder(h[0], d) if on_tmpfs(v) else d
            try:
                atomic_write(target, files)
            except (MountError, OSError) as e:
                errs[name] = str(e)
        for v in vols.values():  # the emptyDir upstream wraps them in is 0777
            if source_type(v) in PLUGINS and not on_tmpfs(v):
                os.chmod(volume_dir(pdir, v), 0o777)
        for c, m in _mounts(pod):  # an emptyDir's subPath is made in it (as upstream)
            v = vols.get(m.get("name"))
            sub = _sub_path(pod, c, m)
            if v is not None and sub and source_type(v) == "emptyDir":
                d = volume_dir(pdir, v)
                base = in_holder(h[0], d) if on_tmpfs(v) else d
                with contextlib.suppress(OSError):
                    os.makedirs(os.path.join(base, sub), exist_ok=True)
        for name, msg in errs.items():
            self.event(pod, "Warning", "FailedMount",
                       f'MountVolume.SetUp failed for volume "{name}" : {msg}')
        if errs and uid not in self.ready:
            return self._failed(uid)
        self.ready.add(uid)
        self.backoff.pop(uid, None)
        return True

    def _disk_folders(self, uid: str, pdir: str, vols: dict[str, dict]) -> None:
        """Each disk volume's folder (disk emptyDir, configMap, downwardAPI) made under
        disk_root/<uid>, with the pod's volume path a symlink to it (mounts follow it)."""
        if not self.disk_root:
            return
        for v in vols.values():
            if source_type(v) not in PLUGINS or on_tmpfs(v):
                continue
            d = volume_dir(pdir, v)
            if os.path.lexists(d):
                continue
            real = os.path.join(self.disk_root, uid, PLUGINS[source_type(v)], v["name"])
            os.makedirs(real, exist_ok=True)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            os.symlink(real, d)

    def _holder_started(self, uid: str, pdir: str, the_plan: dict,
                        cgroup: str) -> tuple[int, int] | None:
        """The new pod's holder once it is up (None while it starts; MountError)."""
        st = self.starting.get(uid)
        if st is None:
            pid, start = spawn_holder(pdir, the_plan, cgroup, self.fork_holder)
            st = self.starting[uid] = (pid, start, runtime.StartWatch(pid, HOLDER_START_TIMEOUT))
        pid, start, watch = st
        if not holder_ready(pdir, pid, start):
            if watch.expired():
                stop_holder(pid, start)
                raise MountError("the pod's mount namespace did not come up in time")
            return None
        self.starting.pop(uid, None)
        return pid, start

    def _failed(self, uid: str) -> bool:
        n = self.backoff.get(uid, (0.0, 0))[1] + 1
        self.backoff[uid] = (time.monotonic() + min(0.5 * 2 ** (n - 1), 122.0), n)
        return False

    def retry_in(self, uid: str) -> float:
        """Seconds until a pod whose volumes failed (or whose holder starts) is tried again."""
        if uid in self.starting:  # its holder starts: looked at soon, less often as it takes
            return self.starting[uid][2].poll()
        return max(0.05, self.backoff.get(uid, (0.0, 0))[0] - time.monotonic())

    def retry_now(self, uid: str) -> None:
        """A referenced ConfigMap or Secret changed: try again at once."""
        if uid in self.backoff:
            self.backoff[uid] = (0.0, self.backoff[uid][1])

    def binds_file(self, pod: dict, c: dict, pdir: str) -> str:
        binds = container_binds(pod, c, pdir, lambda msg: self.event(
            pod, "Warning", "FailedMount", msg), self.claims.get(pod["metadata"]["uid"]))
        return write_binds(binds, os.path.join(pdir, c["name"], "binds"))

    def teardown(self, uid: str, pdir: str) -> None:
        """The pod is gone: its holder (and with it every tmpfs of the pod) goes."""
        h = self.holders.pop(uid, None) or load_holder(pdir)
        stop_holder(*h)
        st = self.starting.pop(uid, None)
        if st:
            stop_holder(st[0], st[1])
        self.ready.discard(uid)
        self.backoff.pop(uid, None)
        self.claims.pop(uid, None)
        if self.disk_root:
            shutil.rmtree(os.path.join(self.disk_root, uid), ignore_errors=True)
        self.tokens.pop(uid, None)

    def references(self, pod: dict, resource: str, name: str) -> bool:
        """Whether the pod's volumes name this ConfigMap or Secret."""
        for v in _vols(pod).values():
            if resource == "configmaps" and (v.get("configMap") or {}).get("name") == name:
                return True
            if resource == "secrets" and (v.get("secret") or {}).get("secretName") == name:
                return True
            for s in (v.get("projected") or {}).get("sources") or []:
                key = "configMap" if resource == "configmaps" else "secret"
                if (s.get(key) or {}).get("name") == name:
                    return True
        return False


# ---- persistentVolumeClaim volumes ---------------------------------------------------------------

LOCAL_STATE = "/var/lib/netsim/"


def claim_folders(pod: dict, client) -> dict[str, str]:
    """Volume name -> the folder of the PersistentVolume each persistentVolumeClaim volume's
    claim is bound to (hostPath or local). MountError in the kubelet's words while a claim
    is missing or not bound: the pod stays ContainerCreating."""
    ns = pod["metadata"].get("namespace", "default")
    out: dict[str, str] = {}
    pending: list[tuple[str, str]] = []
    for name, v in _vols(pod).items():
        src = v.get("persistentVolumeClaim")
        if not isinstance(src, dict):
            continue
        claim = src.get("claimName", "")
        try:
            pvc = client.get("persistentvolumeclaims", claim, ns)
        except errors.NotFound:
            pending.append((name, f"error processing PVC {ns}/{claim}: failed to fetch PVC from "
                                  f'API server: persistentvolumeclaims "{claim}" not found'))
            continue
        vol = (pvc.get("spec") or {}).get("volumeName")
        if not vol or (pvc.get("status") or {}).get("phase") != "Bound":
            pending.append((name, f"error processing PVC {ns}/{claim}: PVC is not bound"))
            continue
        try:
            pv = client.get("persistentvolumes", vol)
        except errors.NotFound:
            pending.append((name, f"error processing PVC {ns}/{claim}: failed to fetch PV {vol} "
                                  f'from API server: persistentvolumes "{vol}" not found'))
            continue
        spec = pv.get("spec") or {}
        hp = spec.get("hostPath") or spec.get("local") or {}
        path = hp.get("path") or ""
        if not path:
            pending.append((name, f'MountVolume.SetUp failed for volume "{vol}" : netsim mounts '
                                  "only hostPath and local PersistentVolumes"))
            continue
        if not os.path.isdir(path):
            if (spec.get("hostPath") or {}).get("type") == "DirectoryOrCreate" and \
                    path.startswith(LOCAL_STATE):
                os.makedirs(path, mode=0o777, exist_ok=True)  # only netsim's own folders
            else:
                pending.append((name, f'MountVolume.SetUp failed for volume "{vol}" : '
                                      f"hostPath type check failed: {path} is not a directory"))
                continue
        out[name] = path
    if pending:
        names = " ".join(n for n, _ in pending)
        why = ", ".join(m for _, m in pending)
        raise MountError(f"Unable to attach or mount volumes: unmounted volumes=[{names}], "
                         f"unattached volumes=[{names}], failed to process volumes=[{names}]: "
                         f"{why}")
    return out


# ---- the objects pods reference --------------------------------------------------------------

def referenced(pods: list[dict], resource: str) -> set[tuple[str, str]]:
    """(namespace, name) of every ConfigMap or Secret these pods' volumes, env and envFrom
    name (what the kubelet must watch for them)."""
    out = set()
    vkey, pkey = ("configMap", "configMap") if resource == "configmaps" else ("secret", "secret")
    ref_key, from_key = ("configMapKeyRef", "configMapRef") if resource == "configmaps" else \
        ("secretKeyRef", "secretRef")
    for pod in pods:
        ns = (pod.get("metadata") or {}).get("namespace", "default")
        spec = pod.get("spec") or {}
        for vol in spec.get("volumes") or []:
            s = vol.get(vkey) or {}
            name = s.get("name") if resource == "configmaps" else s.get("secretName")
            if name:
                out.add((ns, name))
            for src in (vol.get("projected") or {}).get("sources") or []:
                if (src.get(pkey) or {}).get("name"):
                    out.add((ns, src[pkey]["name"]))
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            for e in c.get("env") or []:
                r = (e.get("valueFrom") or {}).get(ref_key) or {}
                if r.get("name"):
                    out.add((ns, r["name"]))
            for f in c.get("envFrom") or []:
                if (f.get(from_key) or {}).get("name"):
                    out.add((ns, f[from_key]["name"]))
    return out


class ObjectWatches:
    """Upstream's watch-based object manager (pkg/kubelet/util/manager): one cache per
    object a pod on this node references, kept by a watch on metadata.name=<name> in its
    namespace, dropped when no pod here references it any more; so the node holds no other
    Secret of the cluster. `on_change` is told of every change (the pods using it resync)."""

    SYNC_TIMEOUT = 5.0

    def __init__(self, client, resource: str, on_change: Callable[[dict], None]):
        self.client, self.resource, self.on_change = client, resource, on_change
        self._lock = threading.Lock()
        self._watches: dict[tuple[str, str], SharedInformer] = {}

    def get(self, namespace: str, name: str) -> dict | None:
        key = (namespace, name)
        with self._lock:
            inf = self._watches.get(key)
            if inf is None:
                inf = self._watches[key] = SharedInformer(
                    self.client, self.resource, namespace=namespace,
                    field_selector=f"metadata.name={name}")
                inf.add_handler(on_add=self.on_change,
                                on_update=lambda old, new: self.on_change(new),
                                on_delete=self.on_change)
                inf.start()
        if inf.wait_for_sync(self.SYNC_TIMEOUT):
            return inf.indexer.get(f"{namespace}/{name}")
        return self.client.get_or_none(self.resource, name, namespace)

    def keep(self, keys: set[tuple[str, str]]) -> None:
        """Stop watching what no pod here references."""
        with self._lock:
            gone = [k for k in self._watches if k not in keys]
            infs = [self._watches.pop(k) for k in gone]
        for inf in infs:
            inf.stop()

    def watched(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._watches)

    def stop(self) -> None:
        self.keep(set())
