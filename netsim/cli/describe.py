"""`netsim describe`, laid out exactly like kubectl describe.

Ports of kubectl ``pkg/describe/describe.go``. kubectl writes ``Label:\\tvalue``
lines through a Go tabwriter (minwidth 0, tabwidth 8, padding 2) and flushes it
before an events table; :class:`_PrefixWriter` reproduces both, so alignment
follows the same column blocks as upstream. Everything is a pure function of the
object plus ``related`` objects the caller fetched (events, ReplicaSets,
Endpoints, pods on a node…); nothing here talks to the API.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from netsim.api import quantity, selectors
from netsim.api.printing.duration import age, rfc1123z
from netsim.api.printing.format import (
    NONE,
    UNSET,
    cluster_ip,
    join_host_port,
    lb_status_string,
    meta_of,
    node_roles,
    spec_of,
    status_of,
    to_int,
)
from netsim.api.printing.printers import (
    format_endpoints,
    format_label_selector,
    format_labels,
    tabwrite,
)
from netsim.api.timeutil import parse_rfc3339

__all__ = ["describe", "describe_events", "SUPPORTED"]

_SKIP_ANNOTATIONS = {"kubectl.kubernetes.io/last-applied-configuration"}
_MAX_ANNOTATION_LEN = 140


# --------------------------------------------------------------------------- writer


class _PrefixWriter:
    """kubectl's PrefixWriter over a Go tabwriter: ``write(level, text)`` indents by 2*level."""

    def __init__(self) -> None:
        self._done: list[str] = []
        self._buf: list[str] = []

    def write(self, level: int, text: str) -> None:
        self._buf.append("  " * level + text)

    def line(self, text: str) -> None:
        """``WriteLine``: the text and a newline, no indent."""
        self._buf.append(text + "\n")

    def flush(self) -> None:
        if self._buf:
            self._done.append(tabwrite("".join(self._buf), minwidth=0, padding=2))
            self._buf = []

    def text(self) -> str:
        self.flush()
        return "".join(self._done)


def _go_bool(v) -> str:
    return "true" if v else "false"


def _print_bool(v) -> str:
    return "True" if v else "False"


def _intstr(v) -> str:
    return "" if v is None else str(v)


# --------------------------------------------------------------------------- shared blocks


def _labels_multiline(
    w: _PrefixWriter, title: str, labels: Mapping | None, initial: str = "", inner: str = "\t"
) -> None:
    w.write(0, f"{initial}{title}:{inner}")
    if not labels:
        w.line(NONE)
        return
    for i, k in enumerate(sorted(labels)):
        if i:
            w.write(0, initial + inner)
        w.write(0, f"{k}={labels[k]}\n")


def _annotations_multiline(w: _PrefixWriter, title: str, annotations: Mapping | None) -> None:
    w.write(0, f"{title}:\t")
    keys = sorted(k for k in (annotations or {}) if k not in _SKIP_ANNOTATIONS)
    if not keys:
        w.line(NONE)
        return
    for i, k in enumerate(keys):
        if i:
            w.write(0, "\t")
        value = str(annotations[k])
        if value.endswith("\n"):
            value = value[:-1]
        if len(value) + len(k) + 2 > _MAX_ANNOTATION_LEN or "\n" in value:
            w.write(0, f"{k}:\n")
            for s in value.split("\n"):
                if len(s) > _MAX_ANNOTATION_LEN - 2:
                    s = s[: _MAX_ANNOTATION_LEN - 2] + "..."
                w.write(0, f"\t  {s}\n")
        else:
            w.write(0, f"{k}: {value}\n")


def _taint_string(t: Mapping) -> str:
    key, value, effect = t.get("key", ""), t.get("value", ""), t.get("effect", "")
    if not effect:
        return key if not value else f"{key}={value}:"
    return f"{key}:{effect}" if not value else f"{key}={value}:{effect}"


def _taints_multiline(w: _PrefixWriter, title: str, taints: list | None) -> None:
    w.write(0, f"{title}:\t")
    if not taints:
        w.line(NONE)
        return
    ordered = sorted(taints, key=lambda t: f"{t.get('effect', '')},{t.get('key', '')}")
    for i, t in enumerate(ordered):
        if i:
            w.write(0, "\t")
        w.write(0, _taint_string(t) + "\n")


def _tolerations_multiline(w: _PrefixWriter, title: str, tolerations: list | None) -> None:
    w.write(0, f"{title}:\t")
    if not tolerations:
        w.line(NONE)
        return
    for i, t in enumerate(sorted(tolerations, key=lambda t: t.get("key", ""))):
        if i:
            w.write(0, "\t")
        s = t.get("key", "")
        if t.get("value"):
            s += "=" + t["value"]
        if t.get("effect"):
            s += ":" + t["effect"]
        if t.get("operator") == "Exists" and not t.get("value"):
            s += " op=Exists" if (t.get("key") or t.get("effect")) else "op=Exists"
        if t.get("tolerationSeconds") is not None:
            s += f" for {t['tolerationSeconds']}s"
        w.write(0, s + "\n")


def _event_sort_key(e: Mapping):
    t = parse_rfc3339(e.get("lastTimestamp"))
    micro = (e.get("series") or {}).get("lastObservedTime") or e.get("eventTime") or ""
    return (t is not None, t or datetime.min, micro)


def describe_events(w: _PrefixWriter, events: list[Mapping] | None, now: datetime) -> None:
    """``DescribeEvents``: ``Events: <none>`` inline, or a flushed table sorted by lastTimestamp."""
    if events is None:
        return
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    w.flush()
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")
    for e in sorted(events, key=_event_sort_key):
        first = age(e.get("eventTime"), now)
        if not e.get("eventTime"):
            first = age(e.get("firstTimestamp"), now)
        series = e.get("series")
        if series:
            interval = (
                f"{age(series.get('lastObservedTime'), now)} "
                f"(x{to_int(series.get('count'))} over {first})"
            )
        elif to_int(e.get("count")) > 1:
            interval = f"{age(e.get('lastTimestamp'), now)} (x{to_int(e['count'])} over {first})"
        else:
            interval = first
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        msg = (e.get("message") or "").strip()
        w.write(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{interval}\t{source}\t{msg}\n")


def _object_header(w: _PrefixWriter, meta: Mapping, selector: str | None = None) -> None:
    """Name, Namespace, Labels and Annotations: how most describers open (describeReplicaSet
    and describeJob put their Selector after the Namespace)."""
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    if selector is not None:
        w.write(0, f"Selector:\t{selector}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))


def _conditions_with_reason(w: _PrefixWriter, conditions: list[Mapping] | None) -> None:
    """The Type/Status/Reason conditions table of deployments and replicasets."""
    if not conditions:
        return
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n")
    w.write(1, "----\t------\t------\n")
    for c in conditions:
        w.write(1, f"{c.get('type', '')} \t{c.get('status', '')}\t{c.get('reason', '')}\n")


def _controller_of(obj: Mapping) -> str:
    for ref in meta_of(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return f"{ref.get('kind', '')}/{ref.get('name', '')}"
    return ""


def _controlled_by(w: _PrefixWriter, obj: Mapping) -> None:
    """The Controlled By line, only for an object with a controller."""
    controller = _controller_of(obj)
    if controller:
        w.write(0, f"Controlled By:\t{controller}\n")


# --------------------------------------------------------------------------- containers

_PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}


def _probe(p: Mapping) -> str:
    """``DescribeProbe`` with the API server's defaults filled in for missing fields."""

    def f(k: str) -> int:
        return to_int(p.get(k, _PROBE_DEFAULTS[k]))

    attrs = (
        f"delay={f('initialDelaySeconds')}s timeout={f('timeoutSeconds')}s "
        f"period={f('periodSeconds')}s successThreshold={f('successThreshold')} "
        f"failureThreshold={f('failureThreshold')}"
    )
    if p.get("exec") is not None:
        return f"exec [{' '.join(p['exec'].get('command') or [])}] {attrs}"
    if p.get("httpGet") is not None:
        g = p["httpGet"]
        scheme = (g.get("scheme") or "HTTP").lower()
        port = _intstr(g.get("port"))
        host = g.get("host", "")
        hostport = join_host_port(host, port) if port else host
        return f"http-get {scheme}://{hostport}{g.get('path', '')} {attrs}"
    if p.get("tcpSocket") is not None:
        t = p["tcpSocket"]
        return f"tcp-socket {t.get('host', '')}:{_intstr(t.get('port'))} {attrs}"
    if p.get("grpc") is not None:
        g = p["grpc"]
        return f"grpc <pod>:{g.get('port')} {g.get('service', '')} {attrs}"
    return f"unknown {attrs}"


def _field_ref_value(pod: Mapping | None, path: str) -> str:
    if pod is None:
        return ""
    meta, spec, status = meta_of(pod), spec_of(pod), status_of(pod)
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    if path in simple:
        return simple[path] or ""
    if path == "status.podIPs":
        return ",".join(i.get("ip", "") for i in status.get("podIPs") or [])
    for prefix, src in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return (meta.get(src) or {}).get(path[len(prefix) + 2 : -2], "")
    return ""


def _state(w: _PrefixWriter, name: str, state: Mapping | None) -> None:
    state = state or {}
    if state.get("running") is not None:
        w.write(2, f"{name}:\tRunning\n")
        w.write(3, f"Started:\t{rfc1123z(state['running'].get('startedAt'))}\n")
    elif state.get("waiting") is not None:
        w.write(2, f"{name}:\tWaiting\n")
        if state["waiting"].get("reason"):
            w.write(3, f"Reason:\t{state['waiting']['reason']}\n")
    elif state.get("terminated") is not None:
        t = state["terminated"]
        w.write(2, f"{name}:\tTerminated\n")
        if t.get("reason"):
            w.write(3, f"Reason:\t{t['reason']}\n")
        if t.get("message"):
            w.write(3, f"Message:\t{t['message']}\n")
        w.write(3, f"Exit Code:\t{to_int(t.get('exitCode'))}\n")
        if to_int(t.get("signal")) > 0:
            w.write(3, f"Signal:\t{to_int(t.get('signal'))}\n")
        w.write(3, f"Started:\t{rfc1123z(t.get('startedAt'))}\n")
        w.write(3, f"Finished:\t{rfc1123z(t.get('finishedAt'))}\n")
    else:
        w.write(2, f"{name}:\tWaiting\n")


def _resources(w: _PrefixWriter, res: Mapping | None, level: int) -> None:
    res = res or {}
    for title, key in (("Limits", "limits"), ("Requests", "requests")):
        values = res.get(key) or {}
        if values:
            w.write(level, f"{title}:\n")
        for name in sorted(values):
            w.write(level + 1, f"{name}:\t{values[name]}\n")


def _container_ports(w: _PrefixWriter, ports: list[Mapping]) -> None:
    """``Port:``/``Ports:`` and ``Host Port:``/``Host Ports:`` (plural once there are two)."""
    def named(p: Mapping) -> str:  # kubectl 1.37: "8080/TCP (http)" for a named port
        return f" ({p['name']})" if p.get("name") else ""
    port_s = ", ".join(f"{p.get('containerPort')}/{p.get('protocol') or 'TCP'}{named(p)}"
                       for p in ports)
    host_s = ", ".join(f"{to_int(p.get('hostPort'))}/{p.get('protocol') or 'TCP'}{named(p)}"
                       for p in ports)
    for title, value in (("Port", port_s), ("Host Port", host_s)):
        if "," in value:
            w.write(2, f"{title}s:\t{value}\n")
        else:
            w.write(2, f"{title}:\t{value or NONE}\n")


def _env_from(w: _PrefixWriter, env_from: list[Mapping]) -> None:
    w.write(2, "Environment Variables from:\n")
    for e in env_from:
        if e.get("configMapRef") is not None:
            frm, ref = "ConfigMap", e["configMapRef"]
        elif e.get("secretRef") is not None:
            frm, ref = "Secret", e["secretRef"]
        else:
            frm, ref = "", {}
        opt = _go_bool(ref.get("optional"))
        if e.get("prefix"):
            frm = f"{frm} with prefix '{e['prefix']}'"
        w.write(3, f"{ref.get('name', '')}\t{frm}\tOptional: {opt}\n")


def _env_value_from(c: Mapping, vf: Mapping, pod: Mapping | None) -> str:
    """The value column of one ``valueFrom`` variable (after ``NAME:\t``)."""
    if vf.get("fieldRef") is not None:
        fr = vf["fieldRef"]
        val = _field_ref_value(pod, fr.get("fieldPath", ""))
        return f"{val} ({fr.get('apiVersion', 'v1')}:{fr.get('fieldPath', '')})"
    if vf.get("resourceFieldRef") is not None:
        res = vf["resourceFieldRef"].get("resource", "")
        kind, _, rname = res.partition(".")
        val = str(((c.get("resources") or {}).get(kind) or {}).get(rname, "0"))
        if val == "0" and res in ("limits.cpu", "limits.memory"):
            val = "node allocatable"
        return f"{val} ({res})"
    for key, what in (("secretKeyRef", "in secret"), ("configMapKeyRef", "of config map")):
        if vf.get(key) is not None:
            r = vf[key]
            return (f"<set to the key '{r.get('key', '')}' {what} '{r.get('name', '')}'>"
                    f"\tOptional: {_go_bool(r.get('optional'))}")
    return ""


def _env(w: _PrefixWriter, c: Mapping, pod: Mapping | None) -> None:
    env = c.get("env") or []
    w.write(2, f"Environment:{'' if env else chr(9) + NONE}\n")
    for e in env:
        vf = e.get("valueFrom")
        if vf is None:
            for i, s in enumerate(str(e.get("value", "")).split("\n")):
                w.write(3, f"{e.get('name', '')}:\t{s}\n" if i == 0 else f"\t{s}\n")
        elif any(vf.get(k) is not None for k in _VALUE_FROM):
            w.write(3, f"{e.get('name', '')}:\t{_env_value_from(c, vf, pod)}\n")


_VALUE_FROM = ("fieldRef", "resourceFieldRef", "secretKeyRef", "configMapKeyRef")


def _mounts(w: _PrefixWriter, mounts: list[Mapping]) -> None:
    mounts = sorted(mounts, key=lambda m: m.get("mountPath", ""))
    w.write(2, f"Mounts:{'' if mounts else chr(9) + NONE}\n")
    for m in mounts:
        flags = ["ro" if m.get("readOnly") else "rw"]
        if m.get("subPath"):
            flags.append(f'path="{m["subPath"]}"')
        w.write(3, f"{m.get('mountPath', '')} from {m.get('name', '')} ({','.join(flags)})\n")


def _containers(
    w: _PrefixWriter,
    label: str,
    containers: list[Mapping],
    statuses: list[Mapping] | None,
    pod: Mapping | None,
    space: str,
) -> None:
    """``describeContainers``, one block per container in kubectl's order."""
    by_name = {s.get("name"): s for s in statuses or []}
    w.write(0, f"{space}{label}:{' <none>' if not containers else ''}\n")
    for c in containers:
        st = by_name.get(c.get("name"))
        w.write(1, f"{' ' if space else ''}{c.get('name', '')}:\n")
        if st is not None:
            w.write(2, f"Container ID:\t{st.get('containerID', '')}\n")
        w.write(2, f"Image:\t{c.get('image', '')}\n")
        if st is not None:
            w.write(2, f"Image ID:\t{st.get('imageID', '')}\n")
        _container_ports(w, c.get("ports") or [])
        for title, key in (("Command", "command"), ("Args", "args")):
            if c.get(key):
                w.write(2, f"{title}:\n")
                for word in c[key]:
                    for s in str(word).split("\n"):
                        w.write(3, f"{s}\n")
        if st is not None:
            _state(w, "State", st.get("state"))
            last = st.get("lastState") or {}
            if last.get("terminated") is not None:
                _state(w, "Last State", last)
            w.write(2, f"Ready:\t{_print_bool(st.get('ready'))}\n")
            w.write(2, f"Restart Count:\t{to_int(st.get('restartCount'))}\n")
        _resources(w, c.get("resources"), 2)
        for title, key in (
            ("Liveness", "livenessProbe"),
            ("Readiness", "readinessProbe"),
            ("Startup", "startupProbe"),
        ):
            if c.get(key) is not None:
                w.write(2, f"{title}:\t{_probe(c[key])}\n")
        if c.get("envFrom"):
            _env_from(w, c["envFrom"])
        _env(w, c, pod)
        _mounts(w, c.get("volumeMounts") or [])


# kubectl's print<Kind>VolumeSource for the sources that are a type line and fields:
# (source key, Type text, [(label, field, how the value prints)])
_VOLUME_SOURCES: list[tuple[str, str, list[tuple[str, str, Callable]]]] = [
    ("hostPath", "HostPath (bare host directory volume)",
     [("Path", "path", lambda v: v or ""), ("HostPathType", "type", lambda v: v or "")]),
    ("emptyDir", "EmptyDir (a temporary directory that shares a pod's lifetime)",
     [("Medium", "medium", lambda v: v or ""), ("SizeLimit", "sizeLimit", lambda v: v or UNSET)]),
    ("secret", "Secret (a volume populated by a Secret)",
     [("SecretName", "secretName", lambda v: v or ""), ("Optional", "optional", _go_bool)]),
    ("configMap", "ConfigMap (a volume populated by a ConfigMap)",
     [("Name", "name", lambda v: v or ""), ("Optional", "optional", _go_bool)]),
    ("persistentVolumeClaim",
     "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)",
     [("ClaimName", "claimName", lambda v: v or ""), ("ReadOnly", "readOnly", _go_bool)]),
]


def _projected(w: _PrefixWriter, projected: Mapping) -> None:
    w.write(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n")
    for src in projected.get("sources") or []:
        for key, label in (("secret", "SecretName"), ("configMap", "ConfigMapName")):
            if src.get(key) is not None:
                w.write(
                    2,
                    f"{label}:\t{src[key].get('name', '')}\n"
                    f"    Optional:\t{_go_bool(src[key].get('optional'))}\n",
                )
                break
        else:
            if src.get("downwardAPI") is not None:
                w.write(2, "DownwardAPI:\ttrue\n")
            elif src.get("serviceAccountToken") is not None:
                secs = to_int(src["serviceAccountToken"].get("expirationSeconds", 3600))
                w.write(2, f"TokenExpirationSeconds:\t{secs}\n")


def _downward_api(w: _PrefixWriter, downward: Mapping) -> None:
    w.write(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n")
    w.write(0, "    Items:\n")
    for item in downward.get("items") or []:
        if item.get("fieldRef"):
            w.write(3, f"{item['fieldRef'].get('fieldPath', '')} -> {item.get('path', '')}\n")
        if item.get("resourceFieldRef"):
            res = item["resourceFieldRef"].get("resource", "")
            w.write(3, f"{res} -> {item.get('path', '')}\n")


def _volumes(w: _PrefixWriter, volumes: list[Mapping] | None, space: str) -> None:
    """``describeVolumes``."""
    if not volumes:
        w.write(0, f"{space}Volumes:\t{NONE}\n")
        return
    w.write(0, f"{space}Volumes:\n")
    for v in volumes:
        w.write(1, f"{' ' if space else ''}{v.get('name', '')}:\n")
        for key, typ, fields in _VOLUME_SOURCES:
            if v.get(key) is not None:
                src = v[key]
                text = "".join(f"    {label}:\t{fmt(src.get(field))}\n"
                               for label, field, fmt in fields)
                w.write(2, f"Type:\t{typ}\n{text}")
                break
        else:
            if v.get("projected") is not None:
                _projected(w, v["projected"])
            elif v.get("downwardAPI") is not None:
                _downward_api(w, v["downwardAPI"])
            else:
                w.write(1, "<unknown>\n")


def _pod_template(w: _PrefixWriter, template: Mapping | None) -> None:
    """``DescribePodTemplate``: the Pod Template section of deployments and replicasets."""
    w.write(0, "Pod Template:\n")
    if template is None:
        w.write(1, UNSET)
        return
    meta, spec = meta_of(template), spec_of(template)
    _labels_multiline(w, "  Labels", meta.get("labels"))
    if meta.get("annotations"):
        _annotations_multiline(w, "  Annotations", meta["annotations"])
    if spec.get("serviceAccountName"):
        w.write(1, f"Service Account:\t{spec['serviceAccountName']}\n")
    if spec.get("initContainers"):
        _containers(w, "Init Containers", spec["initContainers"], None, None, "  ")
    _containers(w, "Containers", spec.get("containers") or [], None, None, "  ")
    _volumes(w, spec.get("volumes"), "  ")
    if spec.get("priorityClassName"):
        w.write(1, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    _labels_multiline(w, "  Node-Selectors", spec.get("nodeSelector"))
    _tolerations_multiline(w, "  Tolerations", spec.get("tolerations"))


# --------------------------------------------------------------------------- quantities

def _quantity(q) -> tuple[Decimal, bool]:
    """kubectl reads quantities the API already decoded: one it cannot read counts as zero."""
    try:
        return quantity.parse_exact(q)
    except ValueError:
        return Decimal(0), False


def _add(acc: dict, name: str, value: Decimal, binary: bool) -> None:
    """Add to a {resource: (sum, binary)} total; the first quantity's format stays."""
    total, fmt = acc.get(name, (Decimal(0), binary))
    acc[name] = (total + value, fmt)


def _pod_requests_limits(pod: Mapping) -> tuple[dict, dict]:
    """``PodRequestsAndLimits`` (sum of containers, max with each init container)."""
    spec = spec_of(pod)

    def add(acc: dict, res: Mapping) -> None:
        for k, q in (res or {}).items():
            _add(acc, k, *_quantity(q))

    reqs: dict = {}
    limits: dict = {}
    for c in spec.get("containers") or []:
        add(reqs, (c.get("resources") or {}).get("requests"))
        add(limits, (c.get("resources") or {}).get("limits"))
    for c in spec.get("initContainers") or []:
        for acc, key in ((reqs, "requests"), (limits, "limits")):
            for k, q in ((c.get("resources") or {}).get(key) or {}).items():
                v, b = _quantity(q)
                if k not in acc or acc[k][0] < v:
                    acc[k] = (v, b)
    return reqs, limits


def _qos_class(pod: Mapping) -> str:
    if status_of(pod).get("qosClass"):
        return status_of(pod)["qosClass"]
    spec = spec_of(pod)
    requests: dict = {}
    limits: dict = {}
    zero_requests = True
    all_limited = True
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        res = c.get("resources") or {}
        for k, q in (res.get("requests") or {}).items():
            if k in ("cpu", "memory") and _quantity(q)[0] != 0:
                zero_requests = False
                requests[k] = requests.get(k, Decimal(0)) + _quantity(q)[0]
        lim = {k: q for k, q in (res.get("limits") or {}).items() if k in ("cpu", "memory")}
        for k, q in lim.items():
            if _quantity(q)[0] != 0:
                zero_requests = False
                limits[k] = limits.get(k, Decimal(0)) + _quantity(q)[0]
        if set(lim) != {"cpu", "memory"}:
            all_limited = False
    if zero_requests:
        return "BestEffort"
    if (
        all_limited
        and set(requests) <= set(limits)
        and all(requests.get(k, limits[k]) == limits[k] for k in limits)
    ):
        return "Guaranteed"
    return "Burstable"


# --------------------------------------------------------------------------- describers


def _describe_pod(pod: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec, status = meta_of(pod), spec_of(pod), status_of(pod)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    if spec.get("priority") is not None:
        w.write(0, f"Priority:\t{to_int(spec['priority'])}\n")
    if spec.get("priorityClassName"):
        w.write(0, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    if spec.get("runtimeClassName"):
        w.write(0, f"Runtime Class Name:\t{spec['runtimeClassName']}\n")
    if spec.get("serviceAccountName"):
        w.write(0, f"Service Account:\t{spec['serviceAccountName']}\n")
    if not spec.get("nodeName"):
        w.write(0, f"Node:\t{NONE}\n")
    else:
        w.write(0, f"Node:\t{spec['nodeName']}/{status.get('hostIP', '')}\n")
    if status.get("startTime"):
        w.write(0, f"Start Time:\t{rfc1123z(status['startTime'])}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    phase = status.get("phase", "")
    if meta.get("deletionTimestamp") and phase not in ("Failed", "Succeeded"):
        w.write(0, f"Status:\tTerminating (lasts {age(meta['deletionTimestamp'], now)})\n")
        w.write(0, f"Termination Grace Period:\t{to_int(meta.get('deletionGracePeriodSeconds'))}s\n")
    else:
        w.write(0, f"Status:\t{phase}\n")
    if status.get("reason"):
        w.write(0, f"Reason:\t{status['reason']}\n")
    if status.get("message"):
        w.write(0, f"Message:\t{status['message']}\n")
    w.write(0, f"IP:\t{status.get('podIP', '')}\n")
    ips = status.get("podIPs") or []
    if not ips and status.get("podIP"):
        ips = [{"ip": status["podIP"]}]
    if not ips:
        w.write(0, f"IPs:\t{NONE}\n")
    else:
        w.write(0, "IPs:\n")
        for ip in ips:
            w.write(1, f"IP:\t{ip.get('ip', '')}\n")
    _controlled_by(w, pod)
    if status.get("nominatedNodeName"):
        w.write(0, f"NominatedNodeName:\t{status['nominatedNodeName']}\n")
    if spec.get("initContainers"):
        _containers(
            w, "Init Containers", spec["initContainers"],
            status.get("initContainerStatuses"), pod, "",
        )  # fmt: skip
    _containers(
        w, "Containers", spec.get("containers") or [], status.get("containerStatuses"), pod, ""
    )
    if spec.get("readinessGates"):
        w.write(0, "Readiness Gates:\n  Type\tStatus\n")
        for g in spec["readinessGates"]:
            st = NONE
            for c in status.get("conditions") or []:
                if c.get("type") == g.get("conditionType"):
                    st = c.get("status", "")
                    break
            w.write(1, f"{g.get('conditionType', '')} \t{st} \n")
    if status.get("conditions"):
        w.write(0, "Conditions:\n  Type\tStatus\n")
        for c in status["conditions"]:
            w.write(1, f"{c.get('type', '')} \t{c.get('status', '')} \n")
    _volumes(w, spec.get("volumes"), "")
    w.write(0, f"QoS Class:\t{_qos_class(pod)}\n")
    _labels_multiline(w, "Node-Selectors", spec.get("nodeSelector"))
    _tolerations_multiline(w, "Tolerations", spec.get("tolerations"))
    describe_events(w, related.get("events", []), now)
    return w.text()


def _describe_deployment(d: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec, status = meta_of(d), spec_of(d), status_of(d)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w.write(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Selector:\t{selectors.to_string(spec.get('selector'))}\n")
    replicas = spec.get("replicas", 1)
    w.write(
        0,
        f"Replicas:\t{to_int(replicas)} desired | {to_int(status.get('updatedReplicas'))} updated | "
        f"{to_int(status.get('replicas'))} total | {to_int(status.get('availableReplicas'))} "
        f"available | {to_int(status.get('unavailableReplicas'))} unavailable\n",
    )
    strategy = spec.get("strategy") or {}
    stype = strategy.get("type") or "RollingUpdate"
    w.write(0, f"StrategyType:\t{stype}\n")
    w.write(0, f"MinReadySeconds:\t{to_int(spec.get('minReadySeconds'))}\n")
    ru = strategy.get("rollingUpdate")
    if ru is None and stype == "RollingUpdate":
        ru = {}
    if ru is not None:
        mu = _intstr(ru.get("maxUnavailable", "25%"))
        ms = _intstr(ru.get("maxSurge", "25%"))
        w.write(0, f"RollingUpdateStrategy:\t{mu} max unavailable, {ms} max surge\n")
    _pod_template(w, spec.get("template"))
    _conditions_with_reason(w, status.get("conditions"))
    old_rs = related.get("old_rs") or []
    new_rs = related.get("new_rs")
    if isinstance(new_rs, Mapping):
        new_rs = [new_rs]
    new_rs = new_rs or []
    if old_rs or new_rs:
        w.write(0, f"OldReplicaSets:\t{_rs_list(old_rs)}\n")
        w.write(0, f"NewReplicaSet:\t{_rs_list(new_rs)}\n")
    describe_events(w, related.get("events", []), now)
    return w.text()


def _rs_list(rss: Iterable[Mapping]) -> str:
    parts = [
        f"{meta_of(rs).get('name', '')} ({to_int(status_of(rs).get('replicas'))}/"
        f"{to_int(spec_of(rs).get('replicas', 1))} replicas created)"
        for rs in rss
    ]
    return ", ".join(parts) or NONE


def _pod_phase_counts(owner: Mapping, pods: Iterable[Mapping]) -> tuple[int, int, int, int]:
    uid = meta_of(owner).get("uid")
    counts = {"Running": 0, "Pending": 0, "Succeeded": 0, "Failed": 0}
    for p in pods:
        refs = [r for r in meta_of(p).get("ownerReferences") or [] if r.get("controller")]
        if not refs or (uid and refs[0].get("uid") != uid):
            continue
        if not uid and refs[0].get("name") != meta_of(owner).get("name"):
            continue
        ph = status_of(p).get("phase")
        if ph in counts:
            counts[ph] += 1
    return counts["Running"], counts["Pending"], counts["Succeeded"], counts["Failed"]


def _describe_replicaset(rs: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    meta, spec, status = meta_of(rs), spec_of(rs), status_of(rs)
    _object_header(w, meta, format_label_selector(spec.get("selector")))
    _controlled_by(w, rs)
    w.write(
        0,
        f"Replicas:\t{to_int(status.get('replicas'))} current / "
        f"{to_int(spec.get('replicas', 1))} desired\n",
    )
    running, waiting, succeeded, failed = _pod_phase_counts(rs, related.get("pods") or [])
    w.write(
        0,
        f"Pods Status:\t{running} Running / {waiting} Waiting / {succeeded} Succeeded / "
        f"{failed} Failed\n",
    )
    _pod_template(w, spec.get("template"))
    _conditions_with_reason(w, status.get("conditions"))
    describe_events(w, related.get("events", []), now)
    return w.text()


def _describe_daemonset(ds: Mapping, related: Mapping, now: datetime) -> str:
    """describeDaemonSet: the node counts are written without a tab (not aligned)."""
    w = _PrefixWriter()
    meta, spec, status = meta_of(ds), spec_of(ds), status_of(ds)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Selector:\t{selectors.to_string(spec.get('selector'))}\n")
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    w.write(0, f"Node-Selector:\t{format_labels(node_selector)}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    for title, key in (("Desired Number of Nodes Scheduled", "desiredNumberScheduled"),
                       ("Current Number of Nodes Scheduled", "currentNumberScheduled"),
                       ("Number of Nodes Scheduled with Up-to-date Pods", "updatedNumberScheduled"),
                       ("Number of Nodes Scheduled with Available Pods", "numberAvailable"),
                       ("Number of Nodes Misscheduled", "numberMisscheduled")):
        w.write(0, f"{title}: {to_int(status.get(key))}\n")
    running, waiting, succeeded, failed = _pod_phase_counts(ds, related.get("pods") or [])
    w.write(0, f"Pods Status:\t{running} Running / {waiting} Waiting / {succeeded} Succeeded / "
               f"{failed} Failed\n")
    _pod_template(w, spec.get("template"))
    describe_events(w, related.get("events", []), now)
    return w.text()


def _volume_claim_templates(w: _PrefixWriter, templates: list[Mapping] | None) -> None:
    """describeVolumeClaimTemplates."""
    if not templates:
        w.write(0, f"Volume Claims:\t{NONE}\n")
        return
    w.write(0, "Volume Claims:\n")
    for pvc in templates:
        pmeta, pspec = meta_of(pvc), spec_of(pvc)
        w.write(1, f"Name:\t{pmeta.get('name', '')}\n")
        klass = pspec.get("storageClassName") or (pmeta.get("annotations") or {}).get(
            "volume.beta.kubernetes.io/storage-class", "")
        w.write(1, f"StorageClass:\t{klass}\n")
        _labels_multiline(w, "Labels", pmeta.get("labels"), initial="  ")
        _labels_multiline(w, "Annotations", pmeta.get("annotations"), initial="  ")
        cap = ((pspec.get("resources") or {}).get("requests") or {}).get("storage")
        w.write(1, f"Capacity:\t{cap if cap is not None else '<default>'}\n")
        w.write(1, f"Access Modes:\t[{' '.join(pspec.get('accessModes') or [])}]\n")


def _describe_statefulset(sts: Mapping, related: Mapping, now: datetime) -> str:
    """describeStatefulSet."""
    w = _PrefixWriter()
    meta, spec, status = meta_of(sts), spec_of(sts), status_of(sts)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w.write(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    w.write(0, f"Selector:\t{selectors.to_string(spec.get('selector'))}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Replicas:\t{to_int(spec.get('replicas', 1))} desired | "
               f"{to_int(status.get('replicas'))} total\n")
    strategy = spec.get("updateStrategy") or {}
    w.write(0, f"Update Strategy:\t{strategy.get('type', 'RollingUpdate')}\n")
    ru = strategy.get("rollingUpdate")
    if ru is not None and ru.get("partition") is not None:
        w.write(1, f"Partition:\t{to_int(ru.get('partition'))}\n")
        if ru.get("maxUnavailable") is not None:
            w.write(1, f"MaxUnavailable:\t{_intstr(ru.get('maxUnavailable'))}\n")
    running, waiting, succeeded, failed = _pod_phase_counts(sts, related.get("pods") or [])
    w.write(0, f"Pods Status:\t{running} Running / {waiting} Waiting / {succeeded} Succeeded / "
               f"{failed} Failed\n")
    _pod_template(w, spec.get("template"))
    _volume_claim_templates(w, spec.get("volumeClaimTemplates"))
    describe_events(w, related.get("events", []), now)
    return w.text()


def _format_endpoint_slices(slices: list[Mapping], names: set[str] | None) -> str:
    """``formatEndpointSlices``: ready endpoints as ``ip:port``, at most 3 then `` + N more...``."""
    if not slices:
        return NONE
    out: list[str] = []
    maximum, more, count = 3, False, 0
    for s in slices:
        # a slice without ports lists bare addresses (the port loop runs once, port-less)
        for p in s.get("ports") or [None]:
            if p is not None and names is not None and (p.get("name") or "") not in names:
                continue
            for e in s.get("endpoints") or []:
                if len(out) == maximum:
                    more = True
                if (e.get("conditions") or {}).get("ready") is False:
                    continue
                if not more:
                    addr = (e.get("addresses") or [""])[0]
                    out.append(addr if p is None else join_host_port(addr, p.get("port")))
                count += 1
    ret = ",".join(out)
    if more:
        return f"{ret} + {count - maximum} more..."
    return ret


def _service_endpoints(related: Mapping, port_name: str) -> str:
    if related.get("endpointslices") is not None:
        return _format_endpoint_slices(list(related["endpointslices"]), {port_name})
    ep = related.get("endpoints")
    if ep is None:
        return NONE
    return format_endpoints(ep, {port_name})


def _describe_service(svc: Mapping, related: Mapping, now: datetime) -> str:
    """``describeService``. Dual-stack lines (IP Family Policy, IP Families, IPs) appear
    only when the object carries those fields, which keeps pre-dual-stack objects
    (and the seed's transcripts) byte-identical to the kubectl that printed them."""
    w = _PrefixWriter()
    meta, spec, status = meta_of(svc), spec_of(svc), status_of(svc)
    typ = spec.get("type") or "ClusterIP"
    _object_header(w, meta)
    w.write(0, f"Selector:\t{format_labels(spec.get('selector'))}\n")
    w.write(0, f"Type:\t{typ}\n")
    if spec.get("ipFamilyPolicy"):
        w.write(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}\n")
    if spec.get("ipFamilies"):
        w.write(0, f"IP Families:\t{','.join(spec['ipFamilies'])}\n")
    ip = spec.get("clusterIP")
    if ip is None:
        ip = cluster_ip(spec) if spec.get("clusterIPs") else ""
    w.write(0, f"IP:\t{ip}\n")
    if spec.get("clusterIPs"):
        w.write(0, f"IPs:\t{','.join(spec['clusterIPs'])}\n")
    if spec.get("externalIPs"):
        w.write(0, f"External IPs:\t{','.join(spec['externalIPs'])}\n")
    if spec.get("loadBalancerIP"):
        w.write(0, f"Desired LoadBalancer IP:\t{spec['loadBalancerIP']}\n")
    if spec.get("externalName"):
        w.write(0, f"External Name:\t{spec['externalName']}\n")
    lb_ing = (status.get("loadBalancer") or {}).get("ingress") or []
    if lb_ing:
        parts = []
        for i in lb_ing:
            if i.get("ip"):
                parts.append(i["ip"] + (f" ({i['ipMode']})" if i.get("ipMode") else ""))
            else:
                parts.append(i.get("hostname", ""))
        w.write(0, f"LoadBalancer Ingress:\t{', '.join(parts)}\n")
    for p in spec.get("ports") or []:
        name = p.get("name") or UNSET
        proto = p.get("protocol") or "TCP"
        w.write(0, f"Port:\t{name}\t{p.get('port')}/{proto}\n")
        tp = p.get("targetPort", p.get("port"))
        w.write(0, f"TargetPort:\t{tp}/{proto}\n")
        if to_int(p.get("nodePort")):
            w.write(0, f"NodePort:\t{name}\t{p['nodePort']}/{proto}\n")
        w.write(0, f"Endpoints:\t{_service_endpoints(related, p.get('name') or '')}\n")
    w.write(0, f"Session Affinity:\t{spec.get('sessionAffinity') or 'None'}\n")
    etp = spec.get("externalTrafficPolicy")
    if not etp and typ in ("NodePort", "LoadBalancer"):
        etp = "Cluster"  # the API server's default for externally reachable services
    if etp:
        w.write(0, f"External Traffic Policy:\t{etp}\n")
    if spec.get("internalTrafficPolicy"):
        w.write(0, f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}\n")
    if to_int(spec.get("healthCheckNodePort")):
        w.write(0, f"HealthCheck NodePort:\t{spec['healthCheckNodePort']}\n")
    if spec.get("loadBalancerSourceRanges"):
        w.write(0, f"LoadBalancer Source Ranges:\t{','.join(spec['loadBalancerSourceRanges'])}\n")
    if spec.get("trafficDistribution"):
        w.write(0, f"Traffic Distribution:\t{spec['trafficDistribution']}\n")
    describe_events(w, related.get("events", []), now)
    return w.text()


def _describe_endpoints(ep: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    _object_header(w, meta_of(ep))
    w.write(0, "Subsets:\n")
    for ss in ep.get("subsets") or []:
        addrs = ",".join(a.get("ip", "") for a in ss.get("addresses") or [])
        w.write(1, f"Addresses:\t{addrs or NONE}\n")
        nr = ",".join(a.get("ip", "") for a in ss.get("notReadyAddresses") or [])
        w.write(1, f"NotReadyAddresses:\t{nr or NONE}\n")
        if ss.get("ports"):
            w.write(1, "Ports:\n")
            w.write(2, "Name\tPort\tProtocol\n")
            w.write(2, "----\t----\t--------\n")
            for p in ss["ports"]:
                w.write(
                    2, f"{p.get('name') or UNSET}\t{p.get('port')}\t{p.get('protocol') or 'TCP'}\n"
                )
        w.write(0, "\n")
    describe_events(w, related.get("events", []), now)
    return w.text()


def _describe_configmap(cm: Mapping, related: Mapping, now: datetime) -> str:
    w = _PrefixWriter()
    _object_header(w, meta_of(cm))
    w.write(0, "\nData\n====\n")
    data = cm.get("data") or {}
    for k in sorted(data):
        w.write(0, f"{k}:\n----\n")
        w.write(0, f"{data[k]}\n")
        w.write(0, "\n")
    w.write(0, "\nBinaryData\n====\n")
    binary = cm.get("binaryData") or {}
    for k in sorted(binary):
        try:
            n = len(base64.b64decode(binary[k] or ""))
        except (binascii.Error, ValueError):
            n = len(binary[k] or "")
        w.write(0, f"{k}: {n} bytes\n")
    w.write(0, "\n")
    describe_events(w, related.get("events", []), now)
    return w.text()


def _describe_secret(secret: Mapping, related: Mapping, now: datetime) -> str:
    """``describeSecret``: sizes only (``tls.crt:  1164 bytes``), never the values."""
    w = _PrefixWriter()
    typ = secret.get("type") or "Opaque"
    _object_header(w, meta_of(secret))
    w.write(0, f"\nType:\t{typ}\n")
    w.write(0, "\nData\n====\n")
    data = secret.get("data") or {}
    for k in sorted(data):
        try:
            raw = base64.b64decode(data[k] or "")
        except (binascii.Error, ValueError):
            raw = str(data[k]).encode()
        if k == "token" and typ == "kubernetes.io/service-account-token":
            w.write(0, f"{k}:\t{raw.decode(errors='replace')}\n")
        else:
            w.write(0, f"{k}:\t{len(raw)} bytes\n")
    return w.text()


def _find_named(items, name: str) -> Mapping | None:
    if isinstance(items, Mapping):
        return items.get(name)
    for it in items or []:
        if meta_of(it).get("name") == name:
            return it
    return None


def _ingress_backend(backend: Mapping, related: Mapping) -> str:
    svc_b = backend.get("service")
    if svc_b is not None:
        port = svc_b.get("port") or {}
        bport = str(port["number"]) if port.get("number") else port.get("name", "")
        sb = f"{svc_b.get('name', '')}:{bport}"
        svc = _find_named(related.get("services"), svc_b.get("name", ""))
        if svc is None:
            return f'{sb} (<error: services "{svc_b.get("name", "")}" not found>)'
        sp_name = ""
        for sp in spec_of(svc).get("ports") or []:
            if port.get("number") and port["number"] == sp.get("port"):
                sp_name = sp.get("name") or ""
            elif port.get("name") and port["name"] == sp.get("name"):
                sp_name = sp.get("name") or ""
        slices = related.get("endpointslices")
        if slices is not None:
            mine = [
                s for s in slices
                if (meta_of(s).get("labels") or {}).get("kubernetes.io/service-name")
                == svc_b.get("name")
            ]  # fmt: skip
            ep = _format_endpoint_slices(mine, {sp_name})
        else:
            eps = _find_named(related.get("endpoints"), svc_b.get("name", ""))
            ep = format_endpoints(eps, {sp_name}) if eps is not None else NONE
        return f"{sb} ({ep})"
    res = backend.get("resource")
    if res is not None:
        return (
            f"APIGroup: {res.get('apiGroup') or NONE}, Kind: {res.get('kind', '')}, "
            f"Name: {res.get('name', '')}"
        )
    return ""


def _describe_ingress(ing: Mapping, related: Mapping, now: datetime) -> str:
    """``describeIngressV1``; ``related`` may carry ``services`` and ``endpointslices``
    (or ``endpoints``) of the namespace so backends show their endpoints."""
    w = _PrefixWriter()
    meta, spec = meta_of(ing), spec_of(ing)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}\n")
    w.write(0, f"Address:\t{lb_status_string(status_of(ing).get('loadBalancer'))}\n")
    w.write(0, f"Ingress Class:\t{spec.get('ingressClassName') or NONE}\n")
    default = "<default>"
    if spec.get("defaultBackend") is not None:
        default = _ingress_backend(spec["defaultBackend"], related)
    w.write(0, f"Default backend:\t{default}\n")
    if spec.get("tls"):
        w.write(0, "TLS:\n")
        for t in spec["tls"]:
            hosts = ",".join(t.get("hosts") or [])
            if not t.get("secretName"):
                w.write(1, f"SNI routes {hosts}\n")
            else:
                w.write(1, f"{t['secretName']} terminates {hosts}\n")
    w.write(0, "Rules:\n  Host\tPath\tBackends\n")
    w.write(1, "----\t----\t--------\n")
    count = 0
    for rule in spec.get("rules") or []:
        if rule.get("http") is None:
            continue
        count += 1
        w.write(1, f"{rule.get('host') or '*'}\t\n")
        for path in rule["http"].get("paths") or []:
            backend = _ingress_backend(path.get("backend") or {}, related)
            w.write(2, f"\t{path.get('path', '')} \t{backend}\n")
    if count == 0:
        w.write(1, f"*\t*\t{default}\n")
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    describe_events(w, related.get("events", []), now)
    return w.text()


def _describe_node(node: Mapping, related: Mapping, now: datetime) -> str:
    """``describeNode``. ``related``: ``pods`` (non-terminated pods on the node), optional
    ``lease`` (the node's Lease, or None when it could not be found) and ``events``."""
    w = _PrefixWriter()
    meta, spec, status = meta_of(node), spec_of(node), status_of(node)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    w.write(0, f"Roles:\t{','.join(node_roles(node)) or NONE}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"CreationTimestamp:\t{rfc1123z(meta.get('creationTimestamp'))}\n")
    _taints_multiline(w, "Taints", spec.get("taints"))
    w.write(0, f"Unschedulable:\t{_go_bool(spec.get('unschedulable'))}\n")
    if "lease" in related:
        lease = related["lease"]
        if lease is None:
            w.write(
                0,
                f"Lease:\tFailed to get lease: leases.coordination.k8s.io "
                f'"{meta.get("name", "")}" not found\n',
            )
        else:
            ls = spec_of(lease)
            w.write(0, "Lease:\n")
            w.write(1, f"HolderIdentity:\t{ls.get('holderIdentity') or UNSET}\n")
            acq = rfc1123z(ls["acquireTime"]) if ls.get("acquireTime") else UNSET
            ren = rfc1123z(ls["renewTime"]) if ls.get("renewTime") else UNSET
            w.write(1, f"AcquireTime:\t{acq}\n")
            w.write(1, f"RenewTime:\t{ren}\n")
    if status.get("conditions"):
        w.write(
            0,
            "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n",
        )
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------\n")
        for c in status["conditions"]:
            w.write(
                1,
                f"{c.get('type', '')} \t{c.get('status', '')} \t"
                f"{rfc1123z(c.get('lastHeartbeatTime'))} \t"
                f"{rfc1123z(c.get('lastTransitionTime'))} \t{c.get('reason', '')} \t"
                f"{c.get('message', '')}\n",
            )
    w.write(0, "Addresses:\n")
    for a in status.get("addresses") or []:
        w.write(1, f"{a.get('type', '')}:\t{a.get('address', '')}\n")
    for title, key in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        rl = status.get(key) or {}
        if rl:
            w.write(0, f"{title}:\n")
            for r in sorted(rl):
                w.write(0, f"  {r}:\t{rl[r]}\n")
    info = status.get("nodeInfo") or {}
    w.write(0, "System Info:\n")
    for label, key in (
        ("Machine ID", "machineID"),
        ("System UUID", "systemUUID"),
        ("Boot ID", "bootID"),
        ("Kernel Version", "kernelVersion"),
        ("OS Image", "osImage"),
        ("Operating System", "operatingSystem"),
        ("Architecture", "architecture"),
        ("Container Runtime Version", "containerRuntimeVersion"),
        ("Kubelet Version", "kubeletVersion"),
        ("Kube-Proxy Version", "kubeProxyVersion"),
    ):
        w.write(0, f"  {label}:\t{info.get(key, '')}\n")
    if spec.get("podCIDR"):
        w.write(0, f"PodCIDR:\t{spec['podCIDR']}\n")
    if spec.get("podCIDRs"):
        w.write(0, f"PodCIDRs:\t{','.join(spec['podCIDRs'])}\n")
    if spec.get("providerID"):
        w.write(0, f"ProviderID:\t{spec['providerID']}\n")
    pods = related.get("pods")
    if pods is None:
        w.write(0, "Pods:\tnot authorized\n")
    else:
        _node_resources(w, node, list(pods), now)
    describe_events(w, related.get("events", []), now)
    return w.text()


def _node_resources(w: _PrefixWriter, node: Mapping, pods: list[Mapping], now: datetime) -> None:
    status = status_of(node)
    alloc = status.get("allocatable") or status.get("capacity") or {}
    alloc_cpu = _quantity(alloc.get("cpu", "0"))[0]
    alloc_mem = _quantity(alloc.get("memory", "0"))[0]

    def pct(v: Decimal, total: Decimal) -> int:
        return int(float(v) / float(total) * 100) if total else 0

    def q(d: dict, k: str) -> tuple[Decimal, str]:
        v, b = d.get(k, (Decimal(0), k != "cpu"))
        return v, quantity.format_exact(v, b)

    w.write(0, f"Non-terminated Pods:\t({len(pods)} in total)\n")
    w.write(
        1,
        "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n",
    )
    w.write(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n")
    tot_req: dict = {}
    tot_lim: dict = {}
    for p in pods:
        req, lim = _pod_requests_limits(p)
        for src, dst in ((req, tot_req), (lim, tot_lim)):
            for k, (v, b) in src.items():
                _add(dst, k, v, b)
        cr, crs = q(req, "cpu")
        cl, cls = q(lim, "cpu")
        mr, mrs = q(req, "memory")
        ml, mls = q(lim, "memory")
        w.write(
            1,
            f"{meta_of(p).get('namespace', '')}\t{meta_of(p).get('name', '')}\t\t"
            f"{crs} ({pct(cr, alloc_cpu)}%)\t{cls} ({pct(cl, alloc_cpu)}%)\t"
            f"{mrs} ({pct(mr, alloc_mem)}%)\t{mls} ({pct(ml, alloc_mem)}%)\t"
            f"{age(meta_of(p).get('creationTimestamp'), now)}\n",
        )
    w.write(
        0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n"
    )
    w.write(1, "Resource\tRequests\tLimits\n")
    w.write(1, "--------\t--------\t------\n")
    standard = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}
    hugepages = sorted(k for k in alloc if k.startswith("hugepages-"))
    ext = sorted(k for k in alloc if k not in standard and not k.startswith("hugepages-"))
    for name in ["cpu", "memory", "ephemeral-storage", *hugepages]:
        total = _quantity(alloc.get(name, "0"))[0]
        rv, rs = q(tot_req, name)
        lv, ls = q(tot_lim, name)
        w.write(1, f"{name}\t{rs} ({pct(rv, total)}%)\t{ls} ({pct(lv, total)}%)\n")
    for name in ext:
        w.write(1, f"{name}\t{q(tot_req, name)[1]}\t{q(tot_lim, name)[1]}\n")


def _describe_namespace(ns: Mapping, related: Mapping, now: datetime) -> str:
    """kubectl's NamespaceDescriber (netsim has no quotas or limit ranges)."""
    w = _PrefixWriter()
    meta = meta_of(ns)
    w.write(0, f"Name:\t{meta.get('name', '')}\n")
    _labels_multiline(w, "Labels", meta.get("labels"))
    _annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Status:\t{(ns.get('status') or {}).get('phase', '')}\n")
    w.write(0, "\nNo resource quota.\n\nNo LimitRange resource.\n")
    return w.text()


def _describe_job(job: Mapping, related: Mapping, now: datetime) -> str:
    from netsim.cli.describe_batch import describe_job  # it builds on this module
    return describe_job(job, related, now)


def _describe_cronjob(cj: Mapping, related: Mapping, now: datetime) -> str:
    from netsim.cli.describe_batch import describe_cronjob
    return describe_cronjob(cj, related, now)


def _describe_storage(which: str):
    def describe(obj: Mapping, related: Mapping, now: datetime) -> str:
        from netsim.cli import describe_storage
        return getattr(describe_storage, which)(obj, related, now)
    return describe


def _describe_networkpolicy(np: Mapping, related: Mapping, now: datetime) -> str:
    from netsim.cli.describe_netpol import describe_networkpolicy
    return describe_networkpolicy(np, related, now)


def _describe_pdb(pdb: Mapping, related: Mapping, now: datetime) -> str:
    from netsim.cli.describe_policy import describe_pdb
    return describe_pdb(pdb, related, now)


_DESCRIBERS: dict[str, Callable[[Mapping, Mapping, datetime], str]] = {
    "namespaces": _describe_namespace,
    "pods": _describe_pod,
    "deployments": _describe_deployment,
    "replicasets": _describe_replicaset,
    "services": _describe_service,
    "nodes": _describe_node,
    "configmaps": _describe_configmap,
    "secrets": _describe_secret,
    "endpoints": _describe_endpoints,
    "ingresses": _describe_ingress,
    "jobs": _describe_job,
    "cronjobs": _describe_cronjob,
    "daemonsets": _describe_daemonset,
    "statefulsets": _describe_statefulset,
    "persistentvolumeclaims": _describe_storage("describe_pvc"),
    "persistentvolumes": _describe_storage("describe_pv"),
    "storageclasses": _describe_storage("describe_sc"),
    "networkpolicies": _describe_networkpolicy,
    "poddisruptionbudgets": _describe_pdb,
}

SUPPORTED = frozenset(_DESCRIBERS)


def describe(resource: str, obj: dict, *, related: dict | None = None, now: datetime) -> str:
    """What ``kubectl describe <resource> <name>`` prints for ``obj`` (newline-terminated).

    ``related`` carries what kubectl would have fetched besides the object:
    ``events`` (Events whose involvedObject is ``obj``; missing means none,
    None means ``--show-events=false``), ``old_rs``/``new_rs`` for deployments,
    ``pods`` for replicasets (pods they control) and nodes (non-terminated pods
    on the node), ``endpoints`` (an Endpoints dict) or ``endpointslices`` for
    services, ``services`` + ``endpointslices``/``endpoints`` for ingresses, and
    ``lease`` for nodes. Several objects are joined by the caller with a blank line.
    """
    if resource not in _DESCRIBERS:
        raise KeyError(f"no describer for resource {resource!r}")
    return _DESCRIBERS[resource](obj, related or {}, now)
