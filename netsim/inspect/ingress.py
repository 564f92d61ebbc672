"""`netsim trace FROM ingress/HOST[/path]`: a request through the ingress controller.

Three legs, each confirmed by something real:
1. FROM -> the ingress node's nginx (the controller pod is hostNetwork, nginx listens on
   the node's address, port 80): the usual trace (rules walked on each node, routing),
   with an HTTP request as the probe — `GET /path` with `Host: HOST` and a User-Agent
   that names this trace alone (`netsim-trace/<random id>`).
2. nginx: the server and location the request matches, chosen from the renderer's own
   data (netsim.ingress.render.Route, the controller's render of the API objects, no
   parsing of nginx.conf), then the access log line of that request (found by its
   User-Agent): the Ingress and Service nginx used, the upstream it connected to, the
   status it answered.
3. the ingress node -> the upstream pod nginx chose: the rules walked from the node to the
   pod's IP and port (nginx's own connection is the probe: the log says it answered).

The pure parts (the target, nginx's server/location choice, the access log line) are unit
tested; `run_ingress_trace` does the live work.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass

from netsim.ingress.render import Route
from netsim.inspect.trace import TraceUsageError

CONTROLLER_NAMESPACE = "ingress-nginx"
CONTROLLER_LABEL = ("app.kubernetes.io/name", "ingress-nginx")


@dataclass(frozen=True)
class Target:
    host: str
    path: str  # the request's URI path, "/" by default

    @property
    def label(self) -> str:
        return f"ingress/{self.host}{self.path if self.path != '/' else ''}"


def parse_target(spec: str) -> Target | None:
    """`ingress/HOST[/path]` (also `ing/`, `ingress.networking.k8s.io/`); None for other
    kinds. A HOST with a port (`web.test:80`) keeps only the name (nginx matches names)."""
    kind, sep, rest = spec.partition("/")
    if not sep or kind.lower() not in ("ingress", "ingresses", "ing",
                                       "ingress.networking.k8s.io"):
        return None
    host, slash, path = rest.partition("/")
    host = host.split(":", 1)[0].lower()
    if not host:
        raise TraceUsageError("error: ingress/HOST needs a host name (ingress/web.example.com/path)")
    return Target(host, "/" + path if slash else "/")


def _server_matches(route_host: str, host: str) -> bool:
    if route_host.startswith("*."):
        return re.fullmatch(r"[^.]+" + re.escape(route_host[1:]), host) is not None
    return route_host == host


def server_routes(routes: list[Route], host: str) -> list[Route]:
    """The locations of the server nginx picks for `host`: the exact name, else a wildcard
    (`*.example.com`: one label), else the default server (`_`), as nginx orders names."""
    hosts = list(dict.fromkeys(r.host for r in routes))
    chosen = next((h for h in hosts if h and not h.startswith("*.") and h == host), None)
    if chosen is None:
        chosen = next((h for h in hosts if h.startswith("*.") and _server_matches(h, host)), "")
    return [r for r in routes if r.host == chosen]


def match_location(routes: list[Route], path: str) -> Route | None:
    """nginx's location choice among one server's locations: an exact (`=`) match wins at
    once; else the longest prefix is remembered, the regexes are tried in order and the
    first that matches wins; else the longest prefix."""
    for r in routes:
        if r.modifier == "=" and r.match == path:
            return r
    prefixes = [r for r in routes if r.modifier == "" and path.startswith(r.match)]
    for r in routes:
        if r.modifier in ("~", "~=") and re.search(r.match, path):
            return r
    return max(prefixes, key=lambda r: len(r.match), default=None)


def location_text(r: Route) -> str:
    """The location's head as nginx.conf writes it."""
    if r.modifier in ("~", "~="):
        return f'location ~ "{r.match}"'
    if r.modifier == "=":
        return f"location = {r.match}"
    return f"location {r.match}"


_LOG = re.compile(
    r'^(?P<remote>\S+) - \S+ \[(?P<time>[^\]]*)\] "(?P<request>[^"]*)" (?P<status>\d{3}) '
    r'(?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)" host=(?P<host>\S*) '
    r"ingress=(?P<ingress>\S*) service=(?P<service>\S*) upstream=(?P<upstream>.*)$")


def parse_access_line(line: str) -> dict | None:
    """One line of the `netsim` log_format (netsim.ingress.render): remote, request,
    status (int), agent, host, ingress, service, upstreams (every address nginx tried, in
    order: `proxy_next_upstream` may try several; [] when it proxied nowhere)."""
    m = _LOG.match(line.strip())
    if not m:
        return None
    d = m.groupdict()
    # "$upstream_addr": servers tried one after the other ", ", internal redirects " : "
    ups = re.split(r"\s*,\s*|\s+:\s+", d.pop("upstream").strip())
    d["upstreams"] = [u for u in ups if u and u != "-"]
    d["status"] = int(d["status"])
    return d


def find_log_line(text: str, agent: str) -> dict | None:
    """The last access log line of the request whose User-Agent is `agent`."""
    found = None
    for line in text.splitlines():
        if agent in line:
            d = parse_access_line(line)
            if d is not None and d["agent"] == agent:
                found = d
    return found


def controller_pods(pods: list[dict]) -> list[dict]:
    """Running ingress-nginx controller pods (hostNetwork, on a node), by name."""
    k, v = CONTROLLER_LABEL
    out = [p for p in pods if p["metadata"].get("namespace") == CONTROLLER_NAMESPACE
           and (p["metadata"].get("labels") or {}).get(k) == v
           and (p.get("spec") or {}).get("nodeName")
           and (p.get("status") or {}).get("phase") == "Running"
           and not p["metadata"].get("deletionTimestamp")]
    return sorted(out, key=lambda p: p["metadata"]["name"])


def choose_controller(pods: list[dict], ingresses: list[dict], host: str) -> dict | None:
    """The controller a client reaches for `host`: the one on the node whose address the
    Ingress of that host publishes (status.loadBalancer), else the first running one."""
    ctl = controller_pods(pods)
    published = []
    for ing in ingresses:
        hosts = [r.get("host") for r in (ing.get("spec") or {}).get("rules") or []]
        if host in hosts:
            published += [e.get("ip") for e in ((ing.get("status") or {}).get(
                "loadBalancer") or {}).get("ingress") or []]
    for ip in published:
        for p in ctl:
            if (p.get("status") or {}).get("hostIP") == ip:
                return p
    return ctl[0] if ctl else None


def controller_flags(pod: dict) -> dict:
    """IngressController's arguments from the controller pod's container args, read by the
    controller's own parser (netsim.ingress.__main__.parse): the same class filter, user
    and ports as the running controller."""
    from netsim.ingress.__main__ import parse  # noqa: PLC0415
    c = ((pod.get("spec") or {}).get("containers") or [{}])[0]
    argv = [a for a in (c.get("command") or []) + (c.get("args") or [])
            if a.startswith("--")]
    a = parse(argv)
    return {"class_name": a.ingress_class, "controller_class": a.controller_class,
            "watch_without_class": a.watch_ingress_without_class, "user": a.user,
            "http_port": a.http_port, "https_port": a.https_port, "state_dir": a.state_dir}


def new_agent() -> str:
    return f"netsim-trace/{secrets.token_hex(6)}"


# --- the live part -------------------------------------------------------------------------

def render_routes(client, cluster: str, pod: dict) -> tuple[list[Route], bool | None, str]:
    """The controller's render of the API objects now (its class filter, its renderer):
    (routes, whether the rendered nginx.conf is the one nginx serves (None if unknown),
    nginx's access log path)."""
    from netsim.ingress.controller import IngressController  # noqa: PLC0415
    name = pod["metadata"]["name"]
    ctl = IngressController(client, cluster=cluster, pod_name=name,
                            pod_namespace=pod["metadata"]["namespace"], create_class=False,
                            update_status=False, **controller_flags(pod))
    ingresses, classes, services, slices, secrets_ = (
        client.list(r) for r in ("ingresses", "ingressclasses", "services", "endpointslices",
                                 "secrets"))
    result = ctl.render(ctl._handled(ingresses, classes), services, slices, secrets_)
    try:
        with open(ctl.conf_path) as f:
            same = f.read() == result.conf
    except OSError:
        same = None
    return result.routes, same, os.path.join(ctl.log_dir, "access.log")


def wait_log_line(path: str, agent: str, timeout: float = 5.0) -> dict | None:
    """nginx writes the line when the request ends; wait for it (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, errors="replace") as f:
                f.seek(max(0, os.path.getsize(path) - (1 << 20)))
                found = find_log_line(f.read(), agent)
        except OSError:
            found = None
        if found is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def nginx_hops(at: str, route: Route | None, log: dict | None, same_conf: bool | None,
               target: Target) -> list:
    """The hops inside nginx: the server/location matched (the renderer's data), then what
    the access log says it did with the request."""
    from netsim.inspect.trace import Hop  # noqa: PLC0415
    hops = []
    conf = "nginx.conf" if same_conf is not False else "nginx.conf (as rendered now)"
    if route is None:
        hops.append(Hop(at, "eth0", "nginx", "server ?", "", "no server block (no Ingress)"))
    else:
        srv = f"server {route.server_name}"
        if route.status:
            action = f"return {route.status} (no Ingress rule for {target.host}{target.path})"
        elif route.upstream:
            action = (f"proxy_pass http://{route.upstream} (ingress {route.ingress}, service "
                      f"{route.service}: {', '.join(route.endpoints)})")
            if route.canary:
                action += f"; canary {route.canary} -> {route.canary_service}"
        else:
            action = f"return 503 (service {route.service} has no ready endpoints)"
        hops.append(Hop(at, "eth0", conf, srv, f"{location_text(route)} "
                        f"({route.path_type} {route.path!r} of ingress {route.ingress})"
                        if route.ingress else location_text(route), action))
    if log is None:
        hops.append(Hop(at, "", "", "", "access.log", "no line for this request"))
    else:
        ups = log["upstreams"]
        action = (f"proxied to {' then '.join(ups)}: {log['status']}" if ups
                  else f"answered {log['status']} itself")
        hops.append(Hop(at, "", "", "", f'access.log: "{log["request"]}" {log["status"]} '
                        f"host={log['host']} ingress={log['ingress']} service={log['service']} "
                        f"upstream={', '.join(ups) or '-'}", action))
    return hops


def run_ingress_trace(client, cfg, from_spec: str, target: Target, namespace: str,
                      port: int | None = None):
    """The three legs (module docstring) as one trace.Result."""
    from netsim.inspect import trace as tr  # noqa: PLC0415
    pods = client.list("pods")
    ingresses = client.list("ingresses")
    pod = choose_controller(pods, ingresses, target.host)
    if pod is None:
        raise tr.TraceUsageError(
            "error: no running ingress controller (ingress-nginx runs on nodes labelled "
            "ingress=true: netsim label node NODE ingress=true)")
    node = pod["spec"]["nodeName"]
    node_ip = (pod.get("status") or {}).get("hostIP") or next(
        (n.ip for n in tr.nodes_of(client.list("nodes"), cfg) if n.name == node), "")
    http_port = port or 80
    routes, same, log_path = render_routes(client, cfg.name, pod)
    route = match_location(server_routes(routes, target.host), target.path)
    agent = new_agent()
    first = tr.run_trace(client, cfg, from_spec, node_ip, namespace, http_port, "tcp",
                         http=(target.host, target.path, agent))
    ctl_at = f"pod/{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    hops = list(first.hops)
    if hops and hops[0].action.startswith("send"):
        h = hops[0]
        hops[0] = tr.Hop(h.at, h.interface, h.table, h.chain, h.rule,
                         f"{h.action}: GET {target.path} Host: {target.host} "
                         f"(the ingress controller on node/{node})")
    result = tr.Result(first.from_, target.label, first.verdict, None, hops, first.packet,
                       first.conntrack, first.probe)
    if first.verdict != "delivered":
        return result
    log = wait_log_line(log_path, agent)
    hops += nginx_hops(ctl_at, route, log, same, target)
    ups = log["upstreams"] if log else []
    status = log["status"] if log else first.probe.get("http_status", 0)
    if not ups:
        result.verdict = "delivered" if status and status < 400 else "rejected"
        if result.verdict == "rejected":
            hops.append(tr.Hop(ctl_at, "", "", "", "", f"HTTP {status or 'no answer'}"))
        return result
    upstream = ups[-1]  # the one that answered (the others failed: proxy_next_upstream)
    ip, _, up_port = upstream.rpartition(":")
    answered = status not in (0, 502, 504)
    second = tr.run_trace(client, cfg, f"node/{node}", ip, namespace, int(up_port), "tcp",
                          probe={"result": "connected" if answered else "timeout",
                                 "sport": 0})
    leg = list(second.hops)
    if leg:
        h = leg[0]
        leg[0] = tr.Hop(ctl_at, h.interface, "", "", "",
                        f"nginx connects to the upstream {upstream} (from {node_ip})")
    hops += leg
    result.verdict, result.delivered_to = second.verdict, second.delivered_to
    if result.verdict == "delivered" and status >= 500:
        result.verdict = "rejected"
    if second.conntrack:
        result.conntrack = second.conntrack
    return result
