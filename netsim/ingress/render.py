"""Render one self-contained nginx.conf from Ingresses, Services, EndpointSlices and Secrets.

`render_nginx_conf` is pure: objects in, text and file contents out (the controller writes
the files, runs `nginx -t` through `validate`, then reloads; `generate_default_certificate`
runs `openssl`). The shapes follow ingress-nginx's nginx.tmpl so that what a user
reads here is what they would read inside an ingress-nginx pod, minus the Lua: upstreams
list the ready pod endpoints directly (a graceful reload keeps connections in flight), and
canaries are `map`/`split_clients` variables that stock nginx understands.

Semantics (the Kubernetes Ingress concept page, ingress-nginx's nginx.tmpl and user guide,
ingress-controller-conformance's features/*.feature): class filtering, one `server` per
host (wildcards as one-label regexes), a catch-all `_` default server (404 or the
defaultBackend), Exact/Prefix/ImplementationSpecific locations sorted by descending length,
the oldest Ingress winning a host+path, TLS from `kubernetes.io/tls` Secrets with a 308
redirect, canary, rewrite-target, use-regex and app-root annotations.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

from netsim.ingress.model import ingress_field_errors, invalid_message, normalize_ingress
from netsim.proxy.model import (
    endpoint_slice_errors,
    is_port_number,
    parse_ip,
    service_errors,
)
from netsim.proxy.model import invalid_message as object_invalid_message

ANN = "nginx.ingress.kubernetes.io/"
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
FILE_MODE = 0o600
DEFAULT_CERT_FILE = "default-fake-certificate.pem"
KEEPALIVE = 32

_TYPE_RANK = {"Exact": 0, "Prefix": 1, "ImplementationSpecific": 2}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NEEDS_QUOTES = re.compile(r"[\s;{}\"'#\\$]")
_TOKEN = re.compile(r"^[A-Za-z0-9-]+$")


@dataclass
class RenderResult:
    """`conf` is nginx.conf; `files` maps absolute paths to contents to write with FILE_MODE
    (certificate+key PEMs); `errors` names Ingresses left out because they would break the
    config ("ns/name" -> message); `warnings` are problems served around (missing Secret ->
    default certificate, lost path conflicts, canaries without a main Ingress); `invalid`
    names Services and EndpointSlices left out because the apiserver would refuse them
    (("services"|"endpointslices", "ns/name") -> message)."""

    conf: str
    files: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    invalid: dict[tuple[str, str], str] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)


@dataclass(frozen=True)
class Route:
    """One `location` of one `server` block, in nginx.conf's order (servers as written,
    locations as _loc_order sorts them: nginx tries regex locations in that order): the
    data `netsim trace ingress/HOST/path` matches a request against, so it never parses
    the text. `modifier`: "=" exact, "~" regex, "~=" anchored exact regex, "" prefix;
    `status`: a direct `return` (the 404 default) or 0; `canary`: the canary Ingress
    that may take the request instead ("" for none)."""

    host: str  # the Ingress host ("" for the default server `_`)
    server_name: str  # as written in nginx.conf
    modifier: str
    match: str
    ingress: str  # "ns/name" ("" for the fallback)
    path: str
    path_type: str  # Exact, Prefix, ImplementationSpecific, or Fallback
    service: str  # "ns/name" ("" for none)
    upstream: str | None  # the upstream block's name; None: answers 503 (or `status`)
    endpoints: tuple[str, ...]  # the upstream's servers (ip:port)
    status: int = 0
    canary: str = ""
    canary_service: str = ""
    canary_upstream: str | None = None


# --------------------------------------------------------------------------- helpers


class _Unrenderable(ValueError):
    """An Ingress value that cannot be put into nginx.conf safely."""


def _nq(value: str) -> str:
    """Quote a string for nginx.conf; nginx unescapes \\" \\' \\\\ \\t \\r \\n in quotes."""
    if _CONTROL.search(value):
        raise _Unrenderable(f"control character in {value!r}")
    value = re.sub(r"\\(?=[\"'\\trn]|$)", r"\\\\", value)
    return '"' + value.replace('"', '\\"') + '"'


def _comment(value: str) -> str:
    """Text for a `#` line: a newline in it would start a directive."""
    return _CONTROL.sub("?", str(value))


def _arg(value: str) -> str:
    """A bare nginx argument when safe, quoted otherwise (keeps common output readable)."""
    if _CONTROL.search(value):
        raise _Unrenderable(f"control character in {value!r}")
    return _nq(value) if not value or _NEEDS_QUOTES.search(value) else value


def _re_escape(literal: str) -> str:
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", literal)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def _meta(obj: dict) -> dict:
    md = obj.get("metadata") if isinstance(obj, dict) else None
    return md if isinstance(md, dict) else {}


def _key(obj: dict) -> str:
    m = _meta(obj)
    return f"{m.get('namespace') or 'default'}/{m.get('name') or ''}"


def _ns_name(obj: dict) -> tuple[str, str]:
    m = _meta(obj)
    return (m.get("namespace") or "default", m.get("name") or "")


def _age_key(obj: dict) -> tuple[str, str, str]:
    m = _meta(obj)
    return tuple(str(m.get(f) or d) for f, d in  # type: ignore[return-value]
                 (("creationTimestamp", ""), ("namespace", "default"), ("name", "")))


def _ip_sort(addr: str) -> tuple[int, Any]:
    try:
        ip = ipaddress.ip_address(addr)
        return (ip.version, int(ip))
    except ValueError:
        return (9, addr)


def ingress_class_matches(ing: dict, class_name: str, is_default_class: bool) -> bool:
    """The annotation wins over spec.ingressClassName (as in ingress-nginx); an Ingress with
    neither belongs to the default class."""
    annotation = (_meta(ing).get("annotations") or {}).get(CLASS_ANNOTATION)
    if annotation is not None:
        return annotation == class_name
    spec_class = (ing.get("spec") or {}).get("ingressClassName")
    if spec_class is not None:
        return spec_class == class_name
    return is_default_class


# --------------------------------------------------------------------------- model


@dataclass
class _Ing:
    key: str
    ns: str
    name: str
    obj: dict
    order: int
    ann: dict[str, str]

    @property
    def regex(self) -> bool:
        return _truthy(self.ann.get(ANN + "use-regex")) or bool(self.ann.get(ANN + "rewrite-target"))


@dataclass
class _Backend:
    ingress: str  # "ns/name"
    service: str  # "ns/svc" ("" for the 404 default)
    upstream: str | None  # None: no ready endpoints -> 503
    status: int = 0  # direct return (404 default server)


@dataclass
class _Canary:
    ing: _Ing
    backend: _Backend
    weight: int
    total: int
    header: str
    header_value: str
    cookie: str
    path: str = ""


@dataclass
class _Loc:
    modifier: str  # "=", "~", "~=" (anchored exact regex) or "" (prefix)
    match: str
    rank: tuple
    ing: _Ing | None
    path: str
    path_type: str
    backend: _Backend
    rewrite: tuple[str, str] | None = None
    canary: _Canary | None = None


@dataclass
class _Server:
    host: str
    entries: list[tuple[_Ing, int, int, dict]] = field(default_factory=list)
    fallback: _Backend | None = None
    cert: str | None = None  # path to PEM
    tls: bool = False
    app_root: str | None = None
    locations: dict[tuple[str, str], _Loc] = field(default_factory=dict)

    @property
    def regex(self) -> bool:
        return any(ing.regex for ing, _, _, _ in self.entries)


class _Renderer:
    def __init__(self, services, endpoint_slices, secrets, cert_dir, default_cert):
        self.services = {_ns_name(s): s for s in services}
        self.slices: dict[tuple[str, str], list[dict]] = {}
        for sl in endpoint_slices:
            m = _meta(sl)
            labels = m.get("labels")
            svc = labels.get("kubernetes.io/service-name") if isinstance(labels, dict) else None
            if svc and isinstance(svc, str):
                self.slices.setdefault((m.get("namespace") or "default", svc), []).append(sl)
        self.secrets = {_ns_name(s): s for s in secrets}
        # objects the apiserver would refuse: left out, reported once per render
        self.invalid: dict[tuple[str, str], str] = {}
        self._checked: dict[int, bool] = {}
        self.cert_dir = cert_dir
        self.default_cert = default_cert
        self.upstreams: dict[str, list[str]] = {}
        self.files: dict[str, bytes] = {}
        self.warnings: dict[str, list[str]] = {}

    def usable(self, resource: str, obj: dict) -> bool:
        """Whether a Service / EndpointSlice passes the apiserver's validation (cached per
        render); an invalid one is recorded in `invalid` and must not reach nginx.conf."""
        ok = self._checked.get(id(obj))
        if ok is None:
            kind = "Service" if resource == "services" else "EndpointSlice"
            check = service_errors if resource == "services" else endpoint_slice_errors
            try:
                causes = check(obj)
            except Exception as exc:  # noqa: BLE001 - unreadable is invalid
                causes = [f"could not be read: {exc!r}"]
            ok = not causes
            if causes:
                self.invalid[(resource, _key(obj))] = object_invalid_message(kind, obj, causes)
            self._checked[id(obj)] = ok
        return ok

    def warn(self, key: str, message: str) -> None:
        lst = self.warnings.setdefault(key, [])
        if message not in lst:
            lst.append(message)

    # ----------------------------------------------------------- backends and endpoints

    def backend(self, ing: _Ing, ref: dict) -> _Backend:
        svc = (ref or {}).get("service") or {}
        name = svc.get("name") or ""
        if not name:
            self.warn(ing.key, "resource backends are not supported; answering 503")
            return _Backend(ing.key, "", None)
        port = svc.get("port") or {}
        port_ref = port.get("number") or port.get("name") or ""
        upstream = f"{ing.ns}-{name}-{port_ref}"
        if upstream not in self.upstreams:
            self.upstreams[upstream] = self._endpoints(ing, name, port)
        return _Backend(ing.key, f"{ing.ns}/{name}", upstream if self.upstreams[upstream] else None)

    def _endpoints(self, ing: _Ing, svc_name: str, port: dict) -> list[str]:
        svc = self.services.get((ing.ns, svc_name))
        if svc is None:
            self.warn(ing.key, f'service "{ing.ns}/{svc_name}" not found; answering 503')
            return []
        if not self.usable("services", svc):
            self.warn(ing.key, f'service "{ing.ns}/{svc_name}" is invalid (see its events); '
                               "answering 503")
            return []
        svc_port = None
        for sp in (svc.get("spec") or {}).get("ports") or []:
            if port.get("number") and sp.get("port") == port.get("number"):
                svc_port = sp
            elif port.get("name") and sp.get("name") == port.get("name"):
                svc_port = sp
        if svc_port is None:
            ref = port.get("number") or port.get("name")
            self.warn(ing.key, f'service "{ing.ns}/{svc_name}" does not have port {ref}; answering 503')
            return []
        want = svc_port.get("name") or ""
        proto = svc_port.get("protocol") or "TCP"
        found: set[tuple[str, int]] = set()
        for sl in self.slices.get((ing.ns, svc_name), []):
            if not self.usable("endpointslices", sl):
                continue
            for p in sl.get("ports") or []:
                if (p.get("name") or "") != want or (p.get("protocol") or "TCP") != proto:
                    continue
                if not is_port_number(p.get("port")):
                    continue
                for ep in sl.get("endpoints") or []:
                    if (ep.get("conditions") or {}).get("ready") is False:
                        continue
                    for addr in ep.get("addresses") or []:
                        # only what parsed as an address goes into nginx.conf, canonical form
                        ip = parse_ip(addr)
                        if ip is not None:
                            found.add((ip, p["port"]))
        out = []
        for addr, num in sorted(found, key=lambda a: (_ip_sort(a[0]), a[1])):
            out.append(f"[{addr}]:{num}" if ":" in addr else f"{addr}:{num}")
        return out

    # ----------------------------------------------------------- TLS

    def certificate(self, ing: _Ing, secret_name: str) -> str | None:
        """PEM path for a TLS Secret, else the default certificate (with a warning)."""
        ref = f"{ing.ns}/{secret_name}"
        secret = self.secrets.get((ing.ns, secret_name))
        problem = None
        if secret is None:
            problem = f"local SSL certificate {ref} was not found"
        else:
            crt, key = _tls_pair(secret)
            if crt is None or key is None:
                problem = f"secret {ref} has no valid tls.crt/tls.key PEM data"
            else:
                path = os.path.join(self.cert_dir, f"{ing.ns}-{secret_name}.pem")
                self.files[path] = crt.rstrip(b"\n") + b"\n" + key.rstrip(b"\n") + b"\n"
                return path
        if self.default_cert is None:
            self.warn(ing.key, f'Error getting SSL certificate "{ref}": {problem}. '
                               "No default certificate; serving plain HTTP")
            return None
        self.warn(ing.key, f'Error getting SSL certificate "{ref}": {problem}. '
                           "Using default certificate")
        return self.default_cert


def _tls_pair(secret: dict) -> tuple[bytes | None, bytes | None]:
    def get(name: str) -> bytes | None:
        raw = (secret.get("data") or {}).get(name)
        if raw is not None:
            try:
                return base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                return None
        text = (secret.get("stringData") or {}).get(name)
        return text.encode() if isinstance(text, str) else None

    crt, key = get("tls.crt"), get("tls.key")
    if crt is None or b"-----BEGIN CERTIFICATE-----" not in crt:
        crt = None
    if key is None or not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----", key):
        key = None
    return crt, key


# --------------------------------------------------------------------------- paths


def _location_specs(path: str, path_type: str, regex_server: bool, regex_ing: bool
                    ) -> list[tuple[str, str]]:
    """nginx (modifier, match) pairs for one Ingress path."""
    if path_type == "Exact":
        if len(path) > 1 and path.endswith("/"):
            # `location = /foo/` would 301-redirect /foo to /foo/ (nginx auto_redirect for
            # proxied locations ending in a slash); Exact /foo/ must not match /foo at all.
            return [("~=", f"^{_re_escape(path)}$")]
        return [("=", path or "/")]
    if regex_server:
        if regex_ing:
            return [("~", "^" + (path or "/").removeprefix("^"))]
        if path_type == "Prefix":
            trimmed = path.rstrip("/")
            return [("~", "^/")] if not trimmed else [("~", f"^{_re_escape(trimmed)}(/|$)")]
        return [("~", "^" + _re_escape(path or "/"))]
    if path_type == "Prefix":
        trimmed = path.rstrip("/")
        if not trimmed:
            return [("", "/")]
        return [("", trimmed + "/"), ("=", trimmed)]
    return [("", path or "/")]


def _check_ingress(ing: _Ing) -> None:
    """Raise _Unrenderable for values that would make nginx reject the whole config."""
    spec = ing.obj.get("spec") or {}
    rewrite = ing.ann.get(ANN + "rewrite-target")
    for rule in spec.get("rules") or []:
        for p in (rule.get("http") or {}).get("paths") or []:
            path = p.get("path") or "/"
            _nq(path)
            if ing.regex and p.get("pathType") != "Exact":
                try:
                    re.compile("^" + path.removeprefix("^"))
                except re.error as exc:
                    raise _Unrenderable(
                        f'invalid regular expression in path "{path}" '
                        f"(use-regex/rewrite-target): {exc}"
                    ) from None
    for name in ("rewrite-target", "app-root"):
        value = ing.ann.get(ANN + name)
        if value is not None:
            _nq(value)
    if rewrite is not None and not rewrite:
        raise _Unrenderable("rewrite-target must not be empty")
    app_root = ing.ann.get(ANN + "app-root")
    if app_root is not None and not app_root.startswith("/"):
        raise _Unrenderable(f'app-root "{app_root}" must start with "/"')


def _canary_of(r: _Renderer, ing: _Ing, backend: _Backend, path: str) -> _Canary:
    ann = ing.ann

    def num(name: str, default: int, hi: int | None) -> int:
        raw = ann.get(ANN + name)
        if raw is None:
            return default
        try:
            value = int(str(raw).strip())
        except ValueError:
            r.warn(ing.key, f'canary annotation {name}="{raw}" is not an integer; using {default}')
            return default
        if value < 0 or (hi is not None and value > hi):
            r.warn(ing.key, f'canary annotation {name}="{raw}" is out of range; using {default}')
            return default
        return value

    total = num("canary-weight-total", 100, None) or 100
    weight = min(num("canary-weight", 0, None), total)
    header = ann.get(ANN + "canary-by-header") or ""
    cookie = ann.get(ANN + "canary-by-cookie") or ""
    if header and not _TOKEN.fullmatch(header):
        r.warn(ing.key, f'canary-by-header "{header}" is not a valid header name; ignored')
        header = ""
    if cookie and not re.fullmatch(r"[A-Za-z0-9_.-]+", cookie):
        r.warn(ing.key, f'canary-by-cookie "{cookie}" is not a valid cookie name; ignored')
        cookie = ""
    value = ann.get(ANN + "canary-by-header-value") or "" if header else ""
    return _Canary(ing, backend, weight, total, header, value, cookie, path)


# --------------------------------------------------------------------------- render


def render_nginx_conf(
    ingresses: list[dict],
    services: list[dict],
    endpoint_slices: list[dict],
    secrets: list[dict],
    *,
    class_name: str = "nginx",
    is_default_class: bool = True,
    cert_dir: str,
    listen_http: int = 80,
    listen_https: int = 443,
    pid_path: str,
    log_dir: str,
    state_dir: str | None = None,
    daemon: bool | None = None,
    default_certificate: tuple[bytes, bytes] | None = None,
    listen_address: str | None = None,
    ipv6: bool = False,
    user: str | None = None,
    worker_connections: int = 1024,
) -> RenderResult:
    """Render nginx.conf for the Ingresses of `class_name`.

    `default_certificate` is (cert PEM, key PEM) served for HTTPS requests to hosts without
    a usable Secret (ingress-nginx's "fake certificate"; see generate_default_certificate);
    without it only hosts with a valid TLS Secret listen on `listen_https`. Temp paths go
    under `state_dir` (default: the directory of `pid_path`). `daemon` None omits the
    directive, True/False writes `daemon on|off;`.
    """
    state_dir = state_dir or os.path.dirname(pid_path) or "."
    default_cert_path = None
    r = _Renderer(services, endpoint_slices, secrets, cert_dir, None)
    if default_certificate is not None:
        default_cert_path = os.path.join(cert_dir, DEFAULT_CERT_FILE)
        crt, key = default_certificate
        r.files[default_cert_path] = crt.rstrip(b"\n") + b"\n" + key.rstrip(b"\n") + b"\n"
        r.default_cert = default_cert_path
    errors: dict[str, str] = {}

    # 1. accept, validate, order (oldest first).
    accepted: list[_Ing] = []
    for raw in sorted(ingresses, key=_age_key):
        key = _key(raw)
        try:
            obj, _ = normalize_ingress(raw)
            if not ingress_class_matches(obj, class_name, is_default_class):
                continue
            key = _key(obj)
            causes = ingress_field_errors(obj)
        except Exception as exc:  # noqa: BLE001 - an unreadable Ingress is skipped, not fatal
            causes = [f"could not be read: {exc!r}"]
        if causes:
            errors[key] = invalid_message(str(_meta(raw).get("name") or ""), causes)
            continue
        m = _meta(obj)
        try:
            ann = {str(k): str(v) for k, v in (m.get("annotations") or {}).items()}
            ing = _Ing(key, m.get("namespace") or "default", m.get("name"), obj, len(accepted),
                       ann)
            _check_ingress(ing)
        except _Unrenderable as exc:
            errors[key] = f'Ingress "{key}" skipped: {exc}'
            continue
        except Exception as exc:  # noqa: BLE001
            errors[key] = f'Ingress "{key}" skipped: could not be read: {exc!r}'
            continue
        accepted.append(ing)
    mains = [i for i in accepted if not _truthy(i.ann.get(ANN + "canary"))]
    canaries = [i for i in accepted if _truthy(i.ann.get(ANN + "canary"))]

    # 2. servers and their path entries.
    servers: dict[str, _Server] = {"": _Server("")}
    global_default: _Backend | None = None
    for ing in mains:
        spec = ing.obj.get("spec") or {}
        own_default = None
        if spec.get("defaultBackend"):
            own_default = r.backend(ing, spec["defaultBackend"])
            if global_default is None:
                global_default = own_default
        for ri, rule in enumerate(spec.get("rules") or []):
            srv = servers.setdefault(rule.get("host") or "", _Server(rule.get("host") or ""))
            if own_default is not None and srv.fallback is None and srv.host:
                srv.fallback = own_default
            for pi, p in enumerate((rule.get("http") or {}).get("paths") or []):
                srv.entries.append((ing, ri, pi, p))
            app_root = ing.ann.get(ANN + "app-root")
            if app_root and srv.host and srv.app_root is None:
                srv.app_root = app_root
    if global_default is not None:
        servers[""].fallback = global_default

    # 3. locations, conflicts decided by path type (Exact first) then age.
    for srv in servers.values():
        candidates: list[_Loc] = []
        for ing, ri, pi, p in srv.entries:
            path, ptype = p.get("path") or "", p.get("pathType") or "ImplementationSpecific"
            backend = r.backend(ing, p.get("backend") or {})
            rewrite = None
            target = ing.ann.get(ANN + "rewrite-target")
            if target:
                src = "^" + path.removeprefix("^") if ing.regex and ptype != "Exact" \
                    else "^" + _re_escape(path or "/")
                rewrite = (src, target)
            for mod, match in _location_specs(path, ptype, srv.regex, ing.regex):
                rank = (_TYPE_RANK.get(ptype, 3), ing.order, ri, pi)
                candidates.append(_Loc(mod, match, rank, ing, path, ptype, backend, rewrite))
        for loc in sorted(candidates, key=lambda c: c.rank):
            spec_key = (loc.modifier, loc.match)
            winner = srv.locations.get(spec_key)
            if winner is None:
                srv.locations[spec_key] = loc
            elif winner.ing is not loc.ing and winner.path_type == loc.path_type:
                r.warn(loc.ing.key, f'path "{loc.path}" ({loc.path_type}) on host '
                       f'"{srv.host or "*"}" is already defined by Ingress "{winner.ing.key}" '
                       "(older wins); ignored")
        if ("", "/") not in srv.locations:
            fb = srv.fallback or servers[""].fallback or _Backend("", "", None, status=404)
            srv.locations[("", "/")] = _Loc("", "/", (9,), None, "/", "Fallback", fb)

    # 4. canaries attach to the main location they shadow.
    for ing in canaries:
        spec = ing.obj.get("spec") or {}
        for rule in spec.get("rules") or []:
            host = rule.get("host") or ""
            srv = servers.get(host)
            for p in (rule.get("http") or {}).get("paths") or []:
                path, ptype = p.get("path") or "", p.get("pathType") or "ImplementationSpecific"
                targets = []
                if srv is not None:
                    for spec_key in _location_specs(path, ptype, srv.regex, ing.regex):
                        loc = srv.locations.get(spec_key)
                        if loc is not None and loc.ing is not None:
                            targets.append(loc)
                if not targets:
                    r.warn(ing.key, f'canary path "{path}" on host "{host or "*"}" has no main '
                                    "Ingress to shadow; ignored")
                    continue
                canary = _canary_of(r, ing, r.backend(ing, p.get("backend") or {}), path)
                for loc in targets:
                    if loc.canary is None:
                        loc.canary = canary
                    elif loc.canary.ing is not ing:
                        r.warn(ing.key, f'path "{path}" on host "{host or "*"}" already has '
                                        f'canary "{loc.canary.ing.key}"; ignored')

    # 5. TLS (oldest Ingress naming a host wins) and certificates.
    for ing in mains:
        spec = ing.obj.get("spec") or {}
        rule_hosts = [ru.get("host") for ru in spec.get("rules") or [] if ru.get("host")]
        for tls in spec.get("tls") or []:
            for host in tls.get("hosts") or rule_hosts:
                srv = servers.get(host)
                if srv is None or srv.tls or not host:
                    continue
                secret = tls.get("secretName")
                cert = r.certificate(ing, secret) if secret else default_cert_path
                if cert is not None:
                    srv.tls, srv.cert = True, cert

    try:
        conf = _emit(r, servers, accepted, errors, class_name=class_name,
                     listen_http=listen_http, listen_https=listen_https, pid_path=pid_path,
                     log_dir=log_dir, state_dir=state_dir, daemon=daemon,
                     default_cert=default_cert_path, listen_address=listen_address,
                     ipv6=ipv6, user=user, worker_connections=worker_connections)
    except _Unrenderable as exc:  # pragma: no cover - _check_ingress should catch all
        raise ValueError(str(exc)) from None
    return RenderResult(conf, dict(sorted(r.files.items())), dict(sorted(errors.items())),
                        {k: v for k, v in sorted(r.warnings.items())},
                        dict(sorted(r.invalid.items())), _routes(r, servers))


def _ordered_servers(servers: dict[str, _Server]) -> list[_Server]:
    """The default server, then named hosts sorted, then wildcards: nginx.conf's order."""
    return [servers[""]] + [
        servers[h] for h in sorted(h for h in servers if h and not h.startswith("*."))
    ] + [servers[h] for h in sorted(h for h in servers if h.startswith("*."))]


def _routes(r: _Renderer, servers: dict[str, _Server]) -> list[Route]:
    out = []
    for srv in _ordered_servers(servers):
        for loc in sorted(srv.locations.values(), key=_loc_order):
            be, c = loc.backend, loc.canary
            out.append(Route(
                srv.host, _server_name(srv.host), loc.modifier, loc.match, be.ingress,
                loc.path, loc.path_type, be.service, be.upstream,
                tuple(r.upstreams.get(be.upstream or "", ())), be.status,
                c.ing.key if c else "", c.backend.service if c else "",
                c.backend.upstream if c else None))
    return out


# --------------------------------------------------------------------------- emit


def _listen(addr: str | None, port: int, extra: str = "") -> str:
    where = f"{addr}:{port}" if addr else str(port)
    return f"listen {where}{extra};"


def _server_name(host: str) -> str:
    if not host:
        return "_"
    if host.startswith("*."):
        return "~^[^.]+" + _re_escape(host[1:]) + "$"
    return host


def _loc_order(loc: _Loc) -> tuple:
    """Descending length; anchored exact regexes first (nginx tries regexes in order)."""
    if loc.modifier == "~=":
        return (0, -len(loc.match), loc.match)
    rank = {"=": 0, "~": 1, "": 2}[loc.modifier]
    return (1, -len(loc.match.removeprefix("^")), rank, loc.match)


def _emit(r: _Renderer, servers: dict[str, _Server], accepted: list[_Ing],
          errors: dict[str, str], **o: Any) -> str:
    out: list[str] = []
    w = out.append
    https_port = o["listen_https"]
    redirect_port = "" if https_port == 443 else f":{https_port}"

    w("# Generated by netsim from the Ingresses below; do not edit.")
    w(f"# class: {_comment(o['class_name'])}")
    for ing in sorted(accepted, key=lambda i: i.key):
        w(f"# ingress {_comment(ing.key)}")
    for key in sorted(errors):
        w(f"# skipped {_comment(key)}")  # the key of a skipped Ingress may hold anything
    w("")
    if o["user"]:
        w(f"user {o['user']};")
    if o["daemon"] is not None:
        w(f"daemon {'on' if o['daemon'] else 'off'};")
    w("worker_processes 1;")
    w(f"pid {_arg(o['pid_path'])};")
    w(f"lock_file {_arg(os.path.join(o['state_dir'], 'nginx.lock'))};")
    w(f"error_log {_arg(os.path.join(o['log_dir'], 'error.log'))} notice;")
    w("")
    w("events {")
    w(f"    worker_connections {o['worker_connections']};")
    w("}")
    w("")
    w("http {")
    body: list[str] = []
    b = body.append
    sd = o["state_dir"]
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        b(f"{name}_temp_path {_arg(os.path.join(sd, name + '_temp'))};")
    b("default_type application/octet-stream;")
    b("sendfile on;")
    b("tcp_nodelay on;")
    b("keepalive_timeout 75s;")
    b("server_tokens off;")
    b("server_names_hash_bucket_size 128;")
    b("server_names_hash_max_size 4096;")
    b("map_hash_bucket_size 128;")
    b("variables_hash_bucket_size 128;")
    b("log_format netsim '$remote_addr - $remote_user [$time_local] \"$request\" $status "
      "$body_bytes_sent \"$http_referer\" \"$http_user_agent\" host=$host "
      "ingress=$netsim_ingress service=$netsim_service upstream=$upstream_addr';")
    b(f"access_log {_arg(os.path.join(o['log_dir'], 'access.log'))} netsim;")
    if o["default_cert"]:
        b(f"ssl_certificate {_arg(o['default_cert'])};")
        b(f"ssl_certificate_key {_arg(o['default_cert'])};")
    b("ssl_protocols TLSv1.2 TLSv1.3;")
    b("ssl_session_cache shared:netsim_ssl:1m;")
    b("")
    b("proxy_http_version 1.1;")
    b("proxy_connect_timeout 5s;")
    b("proxy_send_timeout 60s;")
    b("proxy_read_timeout 60s;")
    b("proxy_next_upstream error timeout;")
    b("proxy_set_header Host $host;")
    b("proxy_set_header X-Real-IP $remote_addr;")
    b("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")
    b("proxy_set_header X-Forwarded-Proto $scheme;")
    b("proxy_set_header X-Forwarded-Host $host;")
    b("proxy_set_header X-Forwarded-Port $server_port;")
    b("proxy_set_header X-Netsim-Ingress $netsim_ingress;")
    b("proxy_set_header X-Netsim-Service $netsim_service;")
    b("proxy_set_header Upgrade $http_upgrade;")
    b("proxy_set_header Connection $netsim_connection_upgrade;")
    b("add_header X-Netsim-Ingress $netsim_ingress always;")
    b("add_header X-Netsim-Service $netsim_service always;")
    b("")
    b("# keep upstream connections alive unless the client asks for an upgrade (websocket)")
    b("map $http_upgrade $netsim_connection_upgrade {")
    b("    default upgrade;")
    b('    "" "";')
    b("}")

    ordered = _ordered_servers(servers)

    # canary decision variables
    n = 0
    canary_vars: dict[int, str] = {}
    for srv in ordered:
        for loc in sorted(srv.locations.values(), key=_loc_order):
            c = loc.canary
            if c is None or id(c) in canary_vars:
                continue
            n += 1
            canary_vars[id(c)] = f"$netsim_canary_{n}"
            b("")
            b(f'# canary {_comment(c.ing.key)} for {srv.host or "_"} path "{_comment(c.path)}": '
              f"header > cookie > weight {c.weight}/{c.total}")
            parts = []
            if c.header:
                var = "$http_" + c.header.lower().replace("-", "_")
                b(f"map {var} $netsim_canary_{n}_header {{")
                b('    default "";')
                if c.header_value:
                    b(f"    {_nq('~^' + _re_escape(c.header_value) + '$')} 1;")
                else:
                    b("    always 1;")
                    b("    never 0;")
                b("}")
                parts.append(f"$netsim_canary_{n}_header")
            else:
                parts.append("")
            if c.cookie:
                ck = _re_escape(c.cookie)
                b(f"map $http_cookie $netsim_canary_{n}_cookie {{")
                b('    default "";')
                always = _nq("~(^|;\\s*)" + ck + "=always(;|$)")
                never = _nq("~(^|;\\s*)" + ck + "=never(;|$)")
                b(f"    {always} 1;")
                b(f"    {never} 0;")
                b("}")
                parts.append(f"$netsim_canary_{n}_cookie")
            else:
                parts.append("")
            if 0 < c.weight < c.total:
                pct = f"{c.weight * 100 / c.total:.2f}".rstrip("0").rstrip(".")
                b(f'split_clients "${{request_id}}" $netsim_canary_{n}_weight {{')
                b(f"    {pct}% 1;")
                b("    * 0;")
                b("}")
                parts.append(f"$netsim_canary_{n}_weight")
            else:
                parts.append("1" if c.weight >= c.total else "0")
            b(f'map "{":".join(parts)}" $netsim_canary_{n} {{')
            b("    default 0;")
            b('    "~^1" 1;')
            b('    "~^0" 0;')
            b('    "~^:1" 1;')
            b('    "~^:0" 0;')
            b('    "~^::1" 1;')
            b("}")

    used = set()
    for srv in ordered:
        for loc in srv.locations.values():
            for be in (loc.backend, loc.canary.backend if loc.canary else None):
                if be is not None and be.upstream:
                    used.add(be.upstream)
    for name in sorted(used):
        b("")
        b(f"upstream {name} {{")
        for ep in r.upstreams[name]:
            b(f"    server {ep};")
        b(f"    keepalive {KEEPALIVE};")
        b("}")

    addr = o["listen_address"]
    for srv in ordered:
        b("")
        default = " default_server" if not srv.host else ""
        b("server {")
        s: list[str] = []
        s.append(f"server_name {_server_name(srv.host)};")
        s.append(_listen(addr, o["listen_http"], default))
        if o["ipv6"]:
            s.append(f"listen [::]:{o['listen_http']}{default};")
        if srv.tls or o["default_cert"]:
            s.append(_listen(addr, https_port, f" ssl http2{default}"))
            if o["ipv6"]:
                s.append(f"listen [::]:{https_port} ssl http2{default};")
        if srv.tls and srv.cert and srv.cert != o["default_cert"]:
            s.append(f"ssl_certificate {_arg(srv.cert)};")
            s.append(f"ssl_certificate_key {_arg(srv.cert)};")
        if srv.app_root:
            s.append("if ($uri = /) {")
            s.append(f"    return 302 {_nq('$scheme://$http_host' + srv.app_root)};")
            s.append("}")
        for loc in sorted(srv.locations.values(), key=_loc_order):
            s.append("")
            var = canary_vars.get(id(loc.canary)) if loc.canary else None
            s.extend(_location(loc, srv, var, redirect_port))
        body.extend("    " + line if line else "" for line in s)
        b("}")

    out.extend("    " + line if line else "" for line in body)
    out.append("}")
    return "\n".join(out) + "\n"


def _location(loc: _Loc, srv: _Server, canary_var: str | None, redirect_port: str) -> list[str]:
    head = "location "
    if loc.modifier in ("~", "~="):
        head += f"~ {_nq(loc.match)}"
    elif loc.modifier == "=":
        head += f"= {_arg(loc.match)}"
    else:
        head += _arg(loc.match)
    lines = [head + " {"]
    i = lines.append
    be = loc.backend
    i(f"    set $netsim_ingress {_nq(be.ingress)};")
    i(f"    set $netsim_service {_nq(be.service)};")
    c = loc.canary
    if c is not None:
        i(f"    set $netsim_upstream {_nq(be.upstream or '')};")
        i(f"    if ({canary_var}) {{")
        i(f"        set $netsim_ingress {_nq(c.backend.ingress)};")
        i(f"        set $netsim_service {_nq(c.backend.service)};")
        i(f"        set $netsim_upstream {_nq(c.backend.upstream or '')};")
        i("    }")
    ing = loc.ing
    if ing is not None and (
        (srv.tls and _truthy_default(ing.ann.get(ANN + "ssl-redirect"), True))
        or _truthy(ing.ann.get(ANN + "force-ssl-redirect"))
    ):
        i("    if ($scheme = http) {")
        i(f"        return 308 https://$host{redirect_port}$request_uri;")
        i("    }")
    if be.status:
        i(f"    return {be.status};")
    else:
        if loc.rewrite is not None:
            src, target = loc.rewrite
            i(f"    rewrite {_nq(src)} {_arg(target)} break;")
        if c is not None:
            i('    if ($netsim_upstream = "") {')
            i("        return 503;")
            i("    }")
            i("    proxy_pass http://$netsim_upstream;")
        elif be.upstream:
            i(f"    proxy_pass http://{be.upstream};")
        else:
            i("    return 503;")
    i("}")
    return lines


def _truthy_default(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() != "false"


# --------------------------------------------------------------------------- I/O helpers


def generate_default_certificate() -> tuple[bytes, bytes]:
    """A self-signed certificate like ingress-nginx's fake one (runs `openssl`)."""
    with tempfile.TemporaryDirectory(prefix="netsim-cert-") as tmp:
        crt, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-nodes", "-days", "3650", "-newkey", "rsa:2048",
             "-keyout", key, "-out", crt,
             "-subj", "/O=Acme Co/CN=Kubernetes Ingress Controller Fake Certificate"],
            check=True, capture_output=True,
        )
        with open(crt, "rb") as fc, open(key, "rb") as fk:
            return fc.read(), fk.read()


_PATH_DIRECTIVES = re.compile(
    r"^(\s*(?:pid|lock_file|error_log|access_log|client_body_temp_path|proxy_temp_path|"
    r"fastcgi_temp_path|uwsgi_temp_path|scgi_temp_path)\s+)(\"[^\"]*\"|\S+?)(?=[\s;])",
    re.M,
)


def validate(conf_text: str, files: dict[str, bytes], nginx: str | None = None
             ) -> tuple[bool, str]:
    """Run `nginx -t` on a rendered config inside a temp dir (the real paths untouched):
    `files` and every pid/log/temp path are redirected there. Returns (ok, nginx output)."""
    binary = nginx or shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        return False, f"nginx not found ({binary})"
    with tempfile.TemporaryDirectory(prefix="netsim-nginx-t-") as tmp:
        text = conf_text
        for i, (path, data) in enumerate(sorted(files.items())):
            local = os.path.join(tmp, f"file{i}-{os.path.basename(path)}")
            fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            text = text.replace(path, local)
        counter = iter(range(1_000_000))

        def redirect(m: re.Match) -> str:
            value = m.group(2).strip('"')
            if value in ("stderr", "off") or value.startswith("syslog:"):
                return m.group(0)
            return f"{m.group(1)}{os.path.join(tmp, f'p{next(counter)}-' + os.path.basename(value))}"

        text = _PATH_DIRECTIVES.sub(redirect, text)
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as fh:
            fh.write(text)
        proc = subprocess.run([binary, "-t", "-q", "-p", tmp, "-c", conf],
                              capture_output=True, text=True)
        message = (proc.stderr + proc.stdout).replace(tmp, "<tmp>").strip()
        return proc.returncode == 0, message or "ok"
