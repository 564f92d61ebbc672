"""`netsim get` tables, byte for byte as kubectl prints them.

Pure functions over Kubernetes JSON dicts. The columns and cell rules are ports of
kubernetes ``pkg/printers/internalversion/printers.go``; the layout is Go's
``text/tabwriter`` (kubectl: minwidth 6, tabwidth 4, padding 3, pad ' '), whose
column-block rules are reproduced exactly by :func:`tabwrite` because users diff
netsim's output against real kubectl transcripts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from netsim.api import selectors
from netsim.api.printing import batch, storage
from netsim.api.printing.duration import age
from netsim.api.printing.format import (
    NONE,
    cluster_ip,
    join_host_port,
    lb_status_string,
    meta_of,
    node_roles,
    spec_of,
    status_of,
    to_int,
)
from netsim.api.timeutil import parse_rfc3339

__all__ = [
    "columns",
    "format_label_selector",
    "format_labels",
    "has_columns",
    "no_resources_message",
    "pod_ready_restarts_status",
    "print_name",
    "print_table",
    "tabulate",
    "tabwrite",
]


# --------------------------------------------------------------------------- tabwriter


def tabwrite(text: str, *, minwidth: int = 0, padding: int = 1, padchar: str = " ") -> str:
    """Go ``text/tabwriter`` (flags 0, non-tab padchar) applied to a whole buffer.

    A cell is text terminated by a tab; the text after a line's last tab is not
    part of any column and is never padded. A column is only as wide as its
    widest cell within a *block* of consecutive lines that have that column, so a
    line without tabs (``Conditions:``) restarts the alignment below it — that is
    why kubectl's describe output aligns section by section.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[int] = []
    out: list[str] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            parts: list[str] = []
            for j, cell in enumerate(lines[i]):
                parts.append(cell)
                if j < len(widths):
                    parts.append(padchar * (widths[j] - len(cell)))
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out)


def tabulate(headers: list[str], rows: list[list[str]]) -> str:
    """A kubectl table: header row then data rows, newline-terminated.

    Cells are tab-joined and fed through kubectl's tabwriter settings, so every
    column is max(widest cell + 3, 6) wide and the last column is not padded.
    With ``headers=[]`` only the rows are printed (``--no-headers``).
    """
    all_rows = ([headers] if headers else []) + rows
    if not all_rows:
        return ""
    text = "".join("\t".join(str(c) for c in row) + "\n" for row in all_rows)
    return tabwrite(text, minwidth=6, padding=3)


# --------------------------------------------------------------------------- helpers


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: sorted ``k=v,k2=v2``, ``<none>`` when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_label_selector(selector: Mapping | None) -> str:
    """``metav1.FormatLabelSelector``: like the selector string but ``<none>`` when empty."""
    s = selectors.to_string(selector)
    return s if s else NONE


def _layout_containers(workload_spec: Mapping) -> tuple[str, str]:
    """``layoutContainerCells`` of the pod template: CONTAINERS and IMAGES, comma-joined."""
    cs = ((workload_spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _replicas(spec: Mapping, default: int = 0) -> int:
    """``ptr.Deref(spec.replicas, 0)`` — the API defaults replicas to 1 before we see it."""
    r = spec.get("replicas")
    return default if r is None else to_int(r)


def _is_terminal(phase: str) -> bool:
    return phase in ("Succeeded", "Failed")


def _is_restartable_init(container: Mapping | None) -> bool:
    return bool(container) and container.get("restartPolicy") == "Always"


def _later(a: str | None, b: str | None) -> str | None:
    """The later of two RFC3339 stamps (None is the zero time)."""
    ta, tb = parse_rfc3339(a), parse_rfc3339(b)
    if tb is None:
        return a
    if ta is None or ta < tb:
        return b
    return a


def pod_ready_restarts_status(pod: Mapping, now: datetime) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS of ``printPod``, including kubectl's reason precedence.

    Order matters and mirrors upstream: status.reason, SchedulingGated, init
    containers (``Init:2/3``, ``Init:CrashLoopBackOff``), then app containers walked
    last-to-first (waiting/terminated reasons, ``ExitCode:N``), ``Completed`` turned
    back into ``Running``/``NotReady`` while a container still runs, and finally
    ``Terminating`` / ``Unknown`` (NodeLost) when a deletion timestamp is set.
    """
    spec, status, meta = spec_of(pod), status_of(pod), meta_of(pod)
    restarts = 0
    restartable_restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart: str | None = None
    last_restartable_restart: str | None = None

    phase = status.get("phase") or ""
    reason = phase
    if status.get("reason"):
        reason = status["reason"]
    conditions = status.get("conditions") or []
    for c in conditions:
        if c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    for c in spec.get("initContainers") or []:
        if _is_restartable_init(c):
            total += 1

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    n_init = len(spec.get("initContainers") or [])
    for i, cs in enumerate(init_statuses):
        restarts += to_int(cs.get("restartCount"))
        last_term = (cs.get("lastState") or {}).get("terminated")
        if last_term is not None:
            last_restart = _later(last_restart, last_term.get("finishedAt"))
        restartable = _is_restartable_init(init_specs.get(cs.get("name")))
        if restartable:
            restartable_restarts += to_int(cs.get("restartCount"))
            if last_term is not None:
                last_restartable_restart = _later(
                    last_restartable_restart, last_term.get("finishedAt")
                )
        state = cs.get("state") or {}
        term = state.get("terminated")
        waiting = state.get("waiting")
        if term is not None and to_int(term.get("exitCode")) == 0:
            continue
        if restartable and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if term is not None:
            if not term.get("reason"):
                if to_int(term.get("signal")) != 0:
                    reason = f"Init:Signal:{to_int(term.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{to_int(term.get('exitCode'))}"
            else:
                reason = "Init:" + term["reason"]
            initializing = True
        elif (
            waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing"
        ):
            reason = "Init:" + waiting["reason"]
            initializing = True
        else:
            reason = f"Init:{i}/{n_init}"
            initializing = True
        break

    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True" for c in conditions
    )
    if not initializing or initialized:
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += to_int(cs.get("restartCount"))
            last_term = (cs.get("lastState") or {}).get("terminated")
            if last_term is not None:
                last_restart = _later(last_restart, last_term.get("finishedAt"))
            state = cs.get("state") or {}
            waiting, term = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif term is not None and term.get("reason"):
                reason = term["reason"]
            elif term is not None:
                if to_int(term.get("signal")) != 0:
                    reason = f"Signal:{to_int(term.get('signal'))}"
                else:
                    reason = f"ExitCode:{to_int(term.get('exitCode'))}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
            )
            reason = "Running" if pod_ready else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and not _is_terminal(phase):
        reason = "Terminating"

    restarts_str = str(restarts)
    if restarts != 0 and last_restart:
        restarts_str = f"{restarts} ({age(last_restart, now)} ago)"
    return f"{ready}/{total}", reason, restarts_str


# --------------------------------------------------------------------------- row builders
# Each returns (columns, wide_columns, row_fn); row_fn(obj, now) returns base + wide cells.


def _pod_row(pod: Mapping, now: datetime) -> list[str]:
    spec, status, meta = spec_of(pod), status_of(pod), meta_of(pod)
    ready, reason, restarts = pod_ready_restarts_status(pod, now)
    pod_ip = ""
    ips = status.get("podIPs") or []
    if ips:
        pod_ip = ips[0].get("ip", "")
    if not pod_ip:
        pod_ip = status.get("podIP") or ""
    gates = NONE
    if spec.get("readinessGates"):
        true_count = 0
        conds = status.get("conditions") or []
        for g in spec["readinessGates"]:
            for c in conds:
                if c.get("type") == g.get("conditionType"):
                    if c.get("status") == "True":
                        true_count += 1
                    break
        gates = f"{true_count}/{len(spec['readinessGates'])}"
    return [
        meta.get("name", ""),
        ready,
        reason,
        restarts,
        age(meta.get("creationTimestamp"), now),
        pod_ip or NONE,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        gates,
    ]


def _node_address(node: Mapping, kind: str) -> str:
    for a in status_of(node).get("addresses") or []:
        if a.get("type") == kind:
            return a.get("address", "")
    return NONE


def _node_row(node: Mapping, now: datetime) -> list[str]:
    status, spec, meta = status_of(node), spec_of(node), meta_of(node)
    states: list[str] = []
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            states = ["Ready" if c.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if spec.get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    return [
        meta.get("name", ""),
        ",".join(states),
        ",".join(node_roles(node)) or NONE,
        age(meta.get("creationTimestamp"), now),
        info.get("kubeletVersion", ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _namespace_row(ns: Mapping, now: datetime) -> list[str]:
    return [
        meta_of(ns).get("name", ""),
        status_of(ns).get("phase", ""),
        age(meta_of(ns).get("creationTimestamp"), now),
    ]


def _deployment_row(d: Mapping, now: datetime) -> list[str]:
    spec, status, meta = spec_of(d), status_of(d), meta_of(d)
    names, images = _layout_containers(spec)
    return [
        meta.get("name", ""),
        f"{to_int(status.get('readyReplicas'))}/{_replicas(spec)}",
        str(to_int(status.get("updatedReplicas"))),
        str(to_int(status.get("availableReplicas"))),
        age(meta.get("creationTimestamp"), now),
        names,
        images,
        selectors.to_string(spec.get("selector")),
    ]


def _replicaset_row(rs: Mapping, now: datetime) -> list[str]:
    spec, status, meta = spec_of(rs), status_of(rs), meta_of(rs)
    names, images = _layout_containers(spec)
    return [
        meta.get("name", ""),
        str(_replicas(spec)),
        str(to_int(status.get("replicas"))),
        str(to_int(status.get("readyReplicas"))),
        age(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _service_external_ip(svc: Mapping) -> str:
    spec = spec_of(svc)
    typ = spec.get("type") or "ClusterIP"
    ext = spec.get("externalIPs") or []
    if typ in ("ClusterIP", "NodePort"):
        return ",".join(ext) if ext else NONE
    if typ == "LoadBalancer":
        lb = lb_status_string(status_of(svc).get("loadBalancer"))
        if ext:
            parts = (lb.split(",") if lb else []) + list(ext)
            return ",".join(parts)
        return lb or "<pending>"
    if typ == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service_ports(ports: Iterable[Mapping]) -> str:
    pieces = []
    for p in ports or []:
        proto = p.get("protocol") or "TCP"
        if to_int(p.get("nodePort")) > 0:
            pieces.append(f"{p.get('port')}:{p.get('nodePort')}/{proto}")
        else:
            pieces.append(f"{p.get('port')}/{proto}")
    return ",".join(pieces)


def _service_row(svc: Mapping, now: datetime) -> list[str]:
    spec, meta = spec_of(svc), meta_of(svc)
    return [
        meta.get("name", ""),
        spec.get("type") or "ClusterIP",
        cluster_ip(spec),
        _service_external_ip(svc),
        _service_ports(spec.get("ports")) or NONE,
        age(meta.get("creationTimestamp"), now),
        format_labels(spec.get("selector")),
    ]


def format_endpoints(ep: Mapping, port_names: set[str] | None = None) -> str:
    """``formatEndpoints``: up to 3 ``ip:port`` then `` + N more...``; ``<none>`` if no subsets.

    ``port_names`` restricts to ports with those names (describe svc passes the
    service port's name); None means every port.
    """
    subsets = ep.get("subsets") or []
    if not subsets:
        return NONE
    out: list[str] = []
    maximum, more, count = 3, False, 0
    for ss in subsets:
        addrs = ss.get("addresses") or []
        ports = ss.get("ports") or []
        if not ports:
            count += len(addrs)
            for a in addrs:
                if len(out) == maximum:
                    more = True
                    break
                out.append(a.get("ip", ""))
            continue
        for port in ports:
            if port_names is None or (port.get("name") or "") in port_names:
                count += len(addrs)
                for a in addrs:
                    if len(out) == maximum:
                        more = True
                        break
                    out.append(join_host_port(a.get("ip", ""), port.get("port")))
    ret = ",".join(out)
    if more:
        return f"{ret} + {count - maximum} more..."
    return ret


def _endpoints_row(ep: Mapping, now: datetime) -> list[str]:
    return [
        meta_of(ep).get("name", ""),
        format_endpoints(ep),
        age(meta_of(ep).get("creationTimestamp"), now),
    ]


def _list_with_more(items: list[str], more: bool, count: int, maximum: int) -> str:
    ret = ",".join(items)
    if more:
        return f"{ret} + {count - maximum} more..."
    return ret or "<unset>"


def _endpointslice_row(eps: Mapping, now: datetime) -> list[str]:
    maximum = 3
    ports, pmore, pcount = [], False, 0
    for p in eps.get("ports") or []:
        if len(ports) < maximum:
            if p.get("port") is not None:
                ports.append(str(p["port"]))
            elif p.get("name") is not None:
                ports.append(p["name"])
            else:
                ports.append("*")
        elif len(ports) == maximum:
            pmore = True
        pcount += 1
    addrs, amore, acount = [], False, 0
    for e in eps.get("endpoints") or []:
        for a in e.get("addresses") or []:
            if len(addrs) < maximum:
                addrs.append(a)
            elif len(addrs) == maximum:
                amore = True
            acount += 1
    return [
        meta_of(eps).get("name", ""),
        eps.get("addressType", ""),
        _list_with_more(ports, pmore, pcount, maximum),
        _list_with_more(addrs, amore, acount, maximum),
        age(meta_of(eps).get("creationTimestamp"), now),
    ]


def _configmap_row(cm: Mapping, now: datetime) -> list[str]:
    n = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [meta_of(cm).get("name", ""), str(n), age(meta_of(cm).get("creationTimestamp"), now)]


def _serviceaccount_row(sa: Mapping, now: datetime) -> list[str]:
    md = meta_of(sa)
    return [md.get("name", ""), str(len(sa.get("secrets") or [])),
            age(md.get("creationTimestamp"), now)]


def _secret_row(s: Mapping, now: datetime) -> list[str]:
    return [
        meta_of(s).get("name", ""),
        s.get("type") or "Opaque",
        str(len(s.get("data") or {})),
        age(meta_of(s).get("creationTimestamp"), now),
    ]


def _event_row(e: Mapping, now: datetime) -> list[str]:
    first = age(e.get("firstTimestamp"), now)
    if not e.get("firstTimestamp"):
        first = age(e.get("eventTime"), now)
    last = age(e.get("lastTimestamp"), now)
    if not e.get("lastTimestamp"):
        last = first
    count = to_int(e.get("count"))
    series = e.get("series")
    if series:
        last = age(series.get("lastObservedTime"), now)
        count = to_int(series.get("count"))
    elif count == 0:
        count = 1
    inv = e.get("involvedObject") or {}
    kind = (inv.get("kind") or "").lower()
    target = f"{kind}/{inv['name']}" if inv.get("name") else kind
    src = e.get("source") or {}
    component = src.get("component") or e.get("reportingComponent") or ""
    instance = src.get("host") or e.get("reportingInstance") or ""
    source = f"{component}, {instance}" if instance else component
    return [
        last,
        e.get("type", ""),
        e.get("reason", ""),
        target,
        inv.get("fieldPath", ""),
        source,
        (e.get("message") or "").strip(),
        first,
        str(count),
        meta_of(e).get("name", ""),
    ]


def _ingress_hosts(rules: list[Mapping]) -> str:
    out: list[str] = []
    maximum, more = 3, False
    for r in rules:
        if len(out) == maximum:
            more = True
        if not more and r.get("host"):
            out.append(r["host"])
    if not out:
        return "*"
    ret = ",".join(out)
    if more:
        return f"{ret} + {len(rules) - maximum} more..."
    return ret


def _ingress_row(ing: Mapping, now: datetime) -> list[str]:
    spec, meta = spec_of(ing), meta_of(ing)
    return [
        meta.get("name", ""),
        spec.get("ingressClassName") or NONE,
        _ingress_hosts(spec.get("rules") or []),
        lb_status_string(status_of(ing).get("loadBalancer")),
        "80, 443" if spec.get("tls") else "80",
        age(meta.get("creationTimestamp"), now),
    ]


def _ingressclass_row(ic: Mapping, now: datetime) -> list[str]:
    spec, meta = spec_of(ic), meta_of(ic)
    params = NONE
    p = spec.get("parameters")
    if p:
        params = p.get("kind", "")
        if p.get("apiGroup"):
            params += "." + p["apiGroup"]
        params += "/" + p.get("name", "")
    return [
        meta.get("name", ""),
        spec.get("controller", ""),
        params,
        age(meta.get("creationTimestamp"), now),
    ]


def _networkpolicy_row(np: Mapping, now: datetime) -> list[str]:
    """printNetworkPolicy: NAME, POD-SELECTOR (FormatLabelSelector), AGE."""
    meta = meta_of(np)
    return [meta.get("name", ""), format_label_selector(spec_of(np).get("podSelector")),
            age(meta.get("creationTimestamp"), now)]


def _pdb_row(pdb: Mapping, now: datetime) -> list[str]:
    """printPodDisruptionBudget: MIN AVAILABLE / MAX UNAVAILABLE (N/A when unset),
    ALLOWED DISRUPTIONS."""
    meta, spec = meta_of(pdb), spec_of(pdb)
    lo, hi = spec.get("minAvailable"), spec.get("maxUnavailable")
    return [meta.get("name", ""), "N/A" if lo is None else str(lo),
            "N/A" if hi is None else str(hi),
            str(to_int(status_of(pdb).get("disruptionsAllowed"))),
            age(meta.get("creationTimestamp"), now)]


def _daemonset_row(ds: Mapping, now: datetime) -> list[str]:
    """printDaemonSet: the scheduled/ready/updated/available counts and NODE SELECTOR."""
    spec, status, meta = spec_of(ds), status_of(ds), meta_of(ds)
    names, images = _layout_containers(spec)
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector")
    return [
        meta.get("name", ""),
        str(to_int(status.get("desiredNumberScheduled"))),
        str(to_int(status.get("currentNumberScheduled"))),
        str(to_int(status.get("numberReady"))),
        str(to_int(status.get("updatedNumberScheduled"))),
        str(to_int(status.get("numberAvailable"))),
        format_labels(node_selector),
        age(meta.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(spec.get("selector")),
    ]


def _statefulset_row(sts: Mapping, now: datetime) -> list[str]:
    """printStatefulSet: READY is ready/spec.replicas."""
    spec, status, meta = spec_of(sts), status_of(sts), meta_of(sts)
    names, images = _layout_containers(spec)
    return [
        meta.get("name", ""),
        f"{to_int(status.get('readyReplicas'))}/{_replicas(spec)}",
        age(meta.get("creationTimestamp"), now),
        names,
        images,
    ]


def _controllerrevision_row(cr: Mapping, now: datetime) -> list[str]:
    """printControllerRevision: CONTROLLER is `kind.group/name` of the controller ref."""
    meta = meta_of(cr)
    ref = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    controller = NONE
    if ref is not None:
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        kind = str(ref.get("kind", "")) + (f".{group}" if group else "")
        controller = f"{kind.lower()}/{ref.get('name', '')}"
    return [meta.get("name", ""), controller, str(to_int(cr.get("revision"))),
            age(meta.get("creationTimestamp"), now)]


# name, columns (normal), columns (wide only), row builder, namespaced
_Table = tuple[list[str], list[str], Callable[[Mapping, datetime], list[str]], bool]

_TABLES: dict[str, _Table] = {
    "pods": (
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        _pod_row,
        True,
    ),
    "nodes": (
        ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
        _node_row,
        False,
    ),
    "namespaces": (["NAME", "STATUS", "AGE"], [], _namespace_row, False),
    "deployments": (
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
        _deployment_row,
        True,
    ),
    "replicasets": (
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
        _replicaset_row,
        True,
    ),
    "services": (
        ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        ["SELECTOR"],
        _service_row,
        True,
    ),
    "endpoints": (["NAME", "ENDPOINTS", "AGE"], [], _endpoints_row, True),
    "endpointslices": (
        ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
        [],
        _endpointslice_row,
        True,
    ),
    "configmaps": (["NAME", "DATA", "AGE"], [], _configmap_row, True),
    "secrets": (["NAME", "TYPE", "DATA", "AGE"], [], _secret_row, True),
    "persistentvolumeclaims": (storage.PVC_COLUMNS, storage.WIDE_COLUMNS, storage.pvc_row, True),
    "persistentvolumes": (storage.PV_COLUMNS, storage.WIDE_COLUMNS, storage.pv_row, False),
    "storageclasses": (storage.SC_COLUMNS, [], storage.sc_row, False),
    "serviceaccounts": (["NAME", "SECRETS", "AGE"], [], _serviceaccount_row, True),
    "ingresses": (
        ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
        [],
        _ingress_row,
        True,
    ),
    "ingressclasses": (["NAME", "CONTROLLER", "PARAMETERS", "AGE"], [], _ingressclass_row, False),
    "networkpolicies": (["NAME", "POD-SELECTOR", "AGE"], [], _networkpolicy_row, True),
    "poddisruptionbudgets": (["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS",
                              "AGE"], [], _pdb_row, True),
    "jobs": (batch.JOB_COLUMNS, batch.WIDE_COLUMNS, batch.job_row, True),
    "cronjobs": (batch.CRONJOB_COLUMNS, batch.WIDE_COLUMNS, batch.cronjob_row, True),
    "daemonsets": (
        ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"],
        ["CONTAINERS", "IMAGES", "SELECTOR"],
        _daemonset_row,
        True,
    ),
    "statefulsets": (["NAME", "READY", "AGE"], ["CONTAINERS", "IMAGES"], _statefulset_row, True),
    "controllerrevisions": (["NAME", "CONTROLLER", "REVISION", "AGE"], [],
                            _controllerrevision_row, True),
}

# Events interleave wide columns with normal ones, so they get an explicit order.
_EVENT_COLUMNS = [
    ("LAST SEEN", False),
    ("TYPE", False),
    ("REASON", False),
    ("OBJECT", False),
    ("SUBOBJECT", True),
    ("SOURCE", True),
    ("MESSAGE", False),
    ("FIRST SEEN", True),
    ("COUNT", True),
    ("NAME", True),
]


def has_columns(resource: str) -> bool:
    return resource == "events" or resource in _TABLES


def columns(resource: str) -> tuple[list[tuple[str, bool]], Callable[[Mapping, datetime], list[str]]]:
    """Every column of `resource`'s table as (header, wide only), and the row builder that
    makes one cell per column. The one place columns are defined: `netsim get` prints
    them and the API server serves them as Tables (netsim.api.tables) for kubectl."""
    if resource == "events":
        return list(_EVENT_COLUMNS), _event_row
    if resource not in _TABLES:
        raise KeyError(f"no table printer for resource {resource!r}")
    cols, wide_cols, fn, _ = _TABLES[resource]
    return [(c, False) for c in cols] + [(c, True) for c in wide_cols], fn


def _columns_for(resource: str, wide: bool) -> tuple[list[str], Callable, bool, list[int]]:
    """Headers, row builder, namespaced flag and the indexes of the row cells to keep."""
    cols, fn = columns(resource)
    namespaced = True if resource == "events" else _TABLES[resource][3]
    keep = [i for i, (_, w) in enumerate(cols) if wide or not w]
    return [cols[i][0] for i in keep], fn, namespaced, keep


def print_table(
    resource: str,
    objs: list[dict],
    *,
    now: datetime,
    wide: bool = False,
    show_labels: bool = False,
    all_namespaces: bool = False,
    extra: dict | None = None,
) -> str:
    """The text ``kubectl get <resource>`` prints for ``objs`` (newline-terminated).

    ``resource`` is the lower-case plural (``pods``, ``deployments``, …). ``-A`` adds
    NAMESPACE first for namespaced kinds; ``--show-labels`` adds LABELS last.
    ``extra`` takes optional kubectl flags: ``no_headers`` (bool) and
    ``label_columns`` (list of label keys, ``-L``), printed as upper-cased columns
    after the regular ones, and ``with_kind`` (a ``deployment.apps`` style prefix for
    NAME, as kubectl prints when one ``get`` shows several kinds). Objects are printed in
    the order given (kubectl keeps the server's order, which is by namespace then name).
    """
    extra = extra or {}
    headers, fn, namespaced, keep = _columns_for(resource, wide)
    label_columns: list[str] = list(extra.get("label_columns") or [])
    show_ns = all_namespaces and namespaced
    out_headers = (["NAMESPACE"] if show_ns else []) + headers
    out_headers += [k.rsplit("/", 1)[-1].upper() for k in label_columns]
    if show_labels:
        out_headers.append("LABELS")
    rows: list[list[str]] = []
    with_kind = extra.get("with_kind")
    name_at = headers.index("NAME") if with_kind and "NAME" in headers else None
    for obj in objs:
        cells = fn(obj, now)
        row = [cells[i] for i in keep]
        if name_at is not None:
            row[name_at] = f"{with_kind}/{row[name_at]}"
        labels = meta_of(obj).get("labels") or {}
        if show_ns:
            row.insert(0, meta_of(obj).get("namespace", ""))
        row += [labels.get(k, "") for k in label_columns]
        if show_labels:
            row.append(format_labels(labels))
        rows.append(row)
    return tabulate([] if extra.get("no_headers") else out_headers, rows)


# --------------------------------------------------------------------------- -o name

_NAME_PREFIX = {
    "pods": "pod",
    "nodes": "node",
    "namespaces": "namespace",
    "deployments": "deployment.apps",
    "replicasets": "replicaset.apps",
    "daemonsets": "daemonset.apps",
    "statefulsets": "statefulset.apps",
    "controllerrevisions": "controllerrevision.apps",
    "jobs": "job.batch",
    "cronjobs": "cronjob.batch",
    "services": "service",
    "endpoints": "endpoints",
    "endpointslices": "endpointslice.discovery.k8s.io",
    "configmaps": "configmap",
    "secrets": "secret",
    "persistentvolumeclaims": "persistentvolumeclaim",
    "persistentvolumes": "persistentvolume",
    "storageclasses": "storageclass.storage.k8s.io",
    "events": "event",
    "ingresses": "ingress.networking.k8s.io",
    "ingressclasses": "ingressclass.networking.k8s.io",
    "networkpolicies": "networkpolicy.networking.k8s.io",
    "poddisruptionbudgets": "poddisruptionbudget.policy",
    "serviceaccounts": "serviceaccount",
    "leases": "lease.coordination.k8s.io",
}


def _name_prefix_from_obj(obj: Mapping) -> str:
    kind = (obj.get("kind") or "").lower()
    api_version = obj.get("apiVersion") or ""
    group = api_version.split("/")[0] if "/" in api_version else ""
    return f"{kind}.{group}" if group else kind


def print_name(resource: str, objs: list[dict]) -> str:
    """``-o name`` output: one ``<kind>[.<group>]/<name>`` per line (``deployment.apps/ublog``)."""
    lines = []
    for obj in objs:
        prefix = _NAME_PREFIX.get(resource) or _name_prefix_from_obj(obj)
        lines.append(f"{prefix}/{meta_of(obj).get('name', '')}\n")
    return "".join(lines)


def no_resources_message(namespace: str | None) -> str:
    """What kubectl writes to stderr for an empty list (no trailing newline).

    ``None`` means all namespaces or a cluster-scoped resource.
    """
    if namespace:
        return f"No resources found in {namespace} namespace."
    return "No resources found"
