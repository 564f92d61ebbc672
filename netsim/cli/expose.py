"""`netsim expose` and `netsim create service`: the Service kubectl's expose and create-service
commands build (pkg/cmd/expose, pkg/cmd/create/create_service.go, polymorphichelpers), so a
tutorial's `kubectl expose deployment x --port 80` works with `netsim` in its place."""

from __future__ import annotations

import copy
import re

from netsim.api import errors
from netsim.api.resources import Resource, for_object, lookup
from netsim.api.validation import is_dns1123_subdomain, is_valid_port_name
from netsim.cli.context import CliError, Ctx, server_error
from netsim.cli.pflags import Parsed, apply_globals, fetch, parse_flags, split_targets

EXPOSE_FLAGS = {"port", "target-port", "protocol", "type", "name", "selector", "labels",
                "external-ip", "cluster-ip", "session-affinity", "load-balancer-ip",
                "output", "dry-run", "filename", "overrides", "field-manager"}

_EXPOSABLE = {("", "Pod"), ("", "Service"), ("", "ReplicationController"),
              ("apps", "Deployment"), ("apps", "ReplicaSet")}
_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")


class ExposeError(ValueError):
    """One of kubectl's expose/create-service refusals, in its words (without `error: `)."""


# ---- introspection (polymorphichelpers), pure -------------------------------------------

def _kind_label(kind: str, group: str) -> str:
    return f"{kind}.{group}" if group else kind


def selector_for(obj: dict) -> str:
    """MapBasedSelectorForObject: the pod selector of the exposed object, as `k=v,...`."""
    kind = obj.get("kind", "")
    md, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    if kind == "Pod":
        labels = md.get("labels") or {}
        if not labels:
            raise ExposeError("the pod has no labels and cannot be exposed")
        return _join(labels)
    if kind in ("Service", "ReplicationController"):
        sel = spec.get("selector") or {}
        if not sel:
            raise ExposeError("the service has no pod selector set" if kind == "Service"
                              else "the replication controller has no selector and cannot be "
                                   "exposed")
        return _join(sel)
    sel = spec.get("selector") or {}
    what = "deployment" if kind == "Deployment" else "replicaset"
    if sel.get("matchExpressions"):
        raise ExposeError('couldn\'t convert expressions - "' + _go_exprs(sel["matchExpressions"])
                          + '" to map-based selector format')
    if not sel.get("matchLabels"):
        raise ExposeError(f"invalid {what}: no selectors, therefore cannot be exposed")
    return _join(sel["matchLabels"])


def _go_exprs(exprs: list[dict]) -> str:
    """%+v of []LabelSelectorRequirement, as kubectl's message prints it."""
    return "[" + " ".join(
        f"{{Key:{e.get('key', '')} Operator:{e.get('operator', '')} "
        f"Values:[{' '.join(e.get('values') or [])}]}}" for e in exprs) + "]"


def _join(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _pod_spec(obj: dict) -> dict:
    spec = obj.get("spec") or {}
    return spec if obj.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec") or {})


def ports_for(obj: dict) -> list[str]:
    """PortsForObject: the containers' ports (or a Service's ports), duplicates removed."""
    seen: list[str] = []
    if obj.get("kind") == "Service":
        nums = [p.get("port") for p in (obj.get("spec") or {}).get("ports") or []]
    else:
        nums = [p.get("containerPort") for c in _pod_spec(obj).get("containers") or []
                for p in c.get("ports") or []]
    for n in nums:
        if n is not None and str(n) not in seen:
            seen.append(str(n))
    return seen


def protocols_for(obj: dict) -> dict[str, list[str]]:
    """ProtocolsForObject: port -> the protocols it is declared with."""
    out_: dict[str, list[str]] = {}
    if obj.get("kind") == "Service":
        items = [(p.get("port"), p.get("protocol")) for p in (obj.get("spec") or {}).get("ports") or []]
    else:
        items = [(p.get("containerPort"), p.get("protocol"))
                 for c in _pod_spec(obj).get("containers") or [] for p in c.get("ports") or []]
    for port, proto in items:
        if port is None:
            continue
        lst = out_.setdefault(str(port), [])
        proto = proto or "TCP"
        if proto not in lst:
            lst.append(proto)
    return out_


def parse_labels(spec: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in spec.split(","):
        kv = item.split("=")
        if len(kv) != 2:
            raise ExposeError(f"unexpected label spec: {item}")
        if not kv[0]:
            raise ExposeError("unexpected empty label key")
        labels[kv[0]] = kv[1]
    return labels


def _target(s: str) -> int | str:
    return int(s) if re.fullmatch(r"-?[0-9]+", s) else s


def expose_service(obj: dict, p: Parsed) -> dict:
    """The Service `kubectl expose` makes for `obj` with the flags in `p` (createService)."""
    md = obj.get("metadata") or {}
    selector = p.get("selector") or selector_for(obj)
    headless = p.get("cluster-ip") == "None"
    port, ports = p.get("port") or "", ""
    if not port:
        found = ports_for(obj)
        if not found and not headless:
            raise ExposeError("couldn't find port via --port flag or introspection")
        if len(found) == 1:
            port = found[0]
        elif found:
            ports = ",".join(found)
    proto_map = protocols_for(obj)
    labels_spec = p.get("labels") or _join(md.get("labels") or {})
    sel = parse_labels(selector)
    labels = parse_labels(labels_spec) if labels_spec else None
    name = p.get("name") or md.get("name", "")[:63]
    words = (ports or port).split(",") if (ports or port) else []
    out_ports: list[dict] = []
    flag_proto = p.get("protocol") or ""
    for i, w in enumerate(words):
        if not re.fullmatch(r"[0-9]+", w):
            raise ExposeError(f'strconv.Atoi: parsing "{w}": invalid syntax')
        pname = f"port-{i + 1}" if len(words) > 1 else ""
        proto = flag_proto
        if not proto:
            got = proto_map.get(w) or []
            if len(got) > 1:
                for pr in got:
                    out_ports.append({"name": f"port-{i + 1}-{pr.lower()}", "port": int(w),
                                      "protocol": pr})
                continue
            proto = got[0] if got else "TCP"
        sp = {"port": int(w), "protocol": proto}
        if pname:
            sp = {"name": pname, **sp}
        out_ports.append(sp)
    tp = p.get("target-port")
    for sp in out_ports:
        sp["targetPort"] = _target(tp) if tp else sp["port"]
    spec: dict = {"ports": out_ports, "selector": sel}
    if p.get("external-ip"):
        spec["externalIPs"] = [p.get("external-ip")]
    if p.get("type"):
        spec["type"] = p.get("type")
    if spec.get("type") == "LoadBalancer" and p.get("load-balancer-ip"):
        spec["loadBalancerIP"] = p.get("load-balancer-ip")
    aff = p.get("session-affinity")
    if aff:
        if aff not in ("None", "ClientIP"):
            raise ExposeError(f"unknown session affinity: {aff}")
        spec["sessionAffinity"] = aff
    if p.get("cluster-ip"):
        spec["clusterIP"] = p.get("cluster-ip")
    meta: dict = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec,
            "status": {"loadBalancer": {}}}


def create_service(kind: str, name: str, tcp: list[str], *, cluster_ip: str = "",
                   node_port: int = 0, external_name: str = "") -> dict:
    """The Service `kubectl create service KIND NAME --tcp=...` makes (createService)."""
    stype = {"clusterip": "ClusterIP", "nodeport": "NodePort", "loadbalancer": "LoadBalancer",
             "externalname": "ExternalName"}[kind]
    if cluster_ip == "None" and stype != "ClusterIP":
        raise ExposeError("ClusterIP=None can only be used with ClusterIP service type")
    if cluster_ip != "None" and not tcp and stype != "ExternalName":
        raise ExposeError("at least one tcp port specifier must be provided")
    if stype == "ExternalName" and is_dns1123_subdomain(external_name):
        raise ExposeError(f"invalid service external name {external_name}")
    ports = []
    for t in (x for s in tcp for x in s.split(",")):
        parts = t.split(":")
        if not re.fullmatch(r"[0-9]+", parts[0]) or not 0 < int(parts[0]) < 65536:
            raise ExposeError(f'invalid port "{parts[0]}"' if re.fullmatch(r"[0-9]+", parts[0])
                              else f'strconv.ParseUint: parsing "{parts[0]}": invalid syntax')
        port = int(parts[0])
        target: int | str = port
        if len(parts) > 1:
            if re.fullmatch(r"[0-9]+", parts[1]):
                target = int(parts[1])
                if not 0 < target < 65536:
                    raise ExposeError("must be between 1 and 65535, inclusive")
            else:
                errs = is_valid_port_name(parts[1])
                if errs:
                    raise ExposeError(",".join(errs))
                target = parts[1]
        sp: dict = {"name": t.replace(":", "-"), "port": port, "protocol": "TCP",
                    "targetPort": target}
        if node_port:
            sp["nodePort"] = node_port
        ports.append(sp)
    spec: dict = {"type": stype, "selector": {"app": name}}
    if ports:
        spec["ports"] = ports
    if external_name:
        spec["externalName"] = external_name
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": spec, "status": {"loadBalancer": {}}}


# ---- the verb ------------------------------------------------------------------------------

def _send(ctx: Ctx, svc: dict, res: Resource, output: str | None, dry: str | None,
          verb: str) -> None:
    from netsim.cli.create_cmds import _print_result
    if dry not in (None, "none", "client", "server", "unchanged", "true", "false"):
        raise CliError(f'error: Invalid dry-run value ({dry}). Must be "none", "server", or '
                       '"client".')
    if dry in ("client", "unchanged", "true"):
        _print_result(svc, res, output, f"{verb} (dry run)")
        return
    send = copy.deepcopy(svc)
    send["metadata"]["namespace"] = ctx.ns
    send.pop("status", None)
    try:
        made = ctx.client.create(send, dry_run=dry == "server")
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    _print_result(made, res, output, f"{verb} (server dry run)" if dry == "server" else verb)


def run(ctx: Ctx, args: list[str]) -> int:
    """`netsim expose (-f FILENAME | TYPE NAME) [--port] [--target-port] [--type] ...`."""
    # expose's -l is --labels (the Service's own labels), not a selector
    args = ["--labels" if a == "-l" else "--labels=" + a[2:] if a.startswith("-l") and
            not a.startswith("--") else a for a in args]
    p = parse_flags(args, EXPOSE_FLAGS, verb="expose")
    apply_globals(ctx, p)
    t = p.get("type")
    if t and t not in _TYPES:
        raise CliError(f"error: invalid service type: {t}")
    objs: list[tuple[Resource, dict]] = []
    if p.all("filename"):
        from netsim.cli.manifests import ManifestError, load
        try:
            docs = load(p.all("filename"))
        except ManifestError as e:
            raise CliError(f"error: {e}") from e
        for d in docs:
            res = for_object(d.obj)
            objs.extend(fetch(ctx, [(res, [d.obj["metadata"]["name"]])]))
    else:
        targets = split_targets(p.positional)
        if not targets:
            raise CliError("error: You must provide one or more resources by argument or "
                           "filename.\nExample resource specifications include:\n"
                           "   '-f rsrc.yaml'\n   '--filename=rsrc.json'\n"
                           "   '<resource> <name>'\n   '<resource>'")
        objs = fetch(ctx, targets)
    svc_res = lookup("services")
    for res, obj in objs:
        if (res.group, res.kind) not in _EXPOSABLE:
            raise CliError(f"error: cannot expose a {_kind_label(res.kind, res.group)}")
        try:
            svc = expose_service(obj, p)
        except ExposeError as e:
            msg = str(e)
            if "selector" in msg or "cannot be exposed" in msg or "expressions" in msg:
                if not msg.startswith("couldn't find port"):
                    msg = f"couldn't retrieve selectors via --selector flag or introspection: {msg}"
            raise CliError(f"error: {msg}") from e
        _send(ctx, svc, svc_res, p.get("output"), p.get("dry-run"), "exposed")
    return 0


def create_service_cmd(ctx: Ctx, kind: str, name: str, p: Parsed) -> int:
    """`netsim create service clusterip|nodeport|loadbalancer|externalname NAME ...`."""
    np = p.get("node-port") or "0"
    if not re.fullmatch(r"[0-9]+", np):
        raise CliError(f'error: invalid argument "{np}" for "--node-port" flag: '
                       f'strconv.ParseInt: parsing "{np}": invalid syntax')
    try:
        svc = create_service(kind, name, p.all("tcp"), cluster_ip=p.get("clusterip") or "",
                             node_port=int(np), external_name=p.get("external-name") or "")
    except ExposeError as e:
        raise CliError(f"error: {e}") from e
    _send(ctx, svc, lookup("services"), p.get("output"), p.get("dry-run"), "created")
    return 0
