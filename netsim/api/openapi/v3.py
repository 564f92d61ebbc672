"""GET /openapi/v3 and /openapi/v3/<group-version>, as kube-apiserver serves them
(k8s.io/kube-openapi handler3), from the kinds netsim serves and upstream's schemas.

kubectl reads these before `create -f`, `apply -f` and `edit`: for each object's kind it looks
in the group-version's document for a PATCH operation carrying the kind's
x-kubernetes-group-version-kind and a `fieldValidation` query parameter; finding it, kubectl
sends `fieldValidation=Strict` and leaves the checking to the server (netsim.api.
fieldvalidation). `kubectl explain` renders components.schemas itself, so those are
upstream's schemas unchanged (the kind and everything it reaches).

The index names each document by its content hash (SHA-512, upper-case hex, as upstream);
a document asked for with that hash is immutable (Cache-Control: public, immutable, a year's
Expires), with another hash it redirects (301) to the current one, and every answer has the
ETag (If-None-Match gives 304). kubectl caches the documents on disk by that URL.

An old version netsim converts (extensions/v1beta1 Ingress) gets a document too, its kind's
schema free-form: kubectl then sends fieldValidation instead of falling back to /openapi/v2,
and the server checks no fields it cannot know.

/openapi/v2 is a document without definitions (swagger 2.0 and its info; protobuf, as
kubectl asks for it, or JSON): kubectl reads it only where v3 cannot answer (a `kind: List`
file, whose items it validates itself), finds no schema there and skips its own check; the
server's fieldValidation still checks each item. A 404 there fails such a file ("error
validating data: the server could not find the requested resource").
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from email.utils import formatdate

from netsim.api import discovery, errors, routes
from netsim.api.openapi import schema
from netsim.api.resources import ACCEPTED_VERSIONS, BY_KIND, RESOURCES, Resource

_REF = "#/components/schemas/"
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
                "application/merge-patch+json", "application/strategic-merge-patch+json")
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def gv_path(api_version: str) -> str:
    """"v1" -> "api/v1", "apps/v1" -> "apis/apps/v1" (the index's keys)."""
    return f"apis/{api_version}" if "/" in api_version else f"api/{api_version}"


def _camel_group(group: str) -> str:
    """Upstream's operationId spelling of a group: "" Core, networking.k8s.io Networking,
    rbac.authorization.k8s.io RbacAuthorization."""
    if not group:
        return "Core"
    return "".join(p[:1].upper() + p[1:] for p in group.removesuffix(".k8s.io").split("."))


def _param(name: str, where: str = "query", type_: str = "string") -> dict:
    p = {"in": where, "name": name, "schema": {"type": type_, "uniqueItems": True}}
    if where == "path":
        p["required"] = True
    return p


_WRITE_PARAMS = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]


def _op(verb: str, action: str, res: Resource, gvk: dict, kind_ref: str,
        namespaced: bool, params: list[dict] | None = None, body: dict | None = None,
        codes: tuple[str, ...] = ("200",)) -> dict:
    group, version = gvk["group"], gvk["version"]
    op_id = (verb + _camel_group(group) + version[:1].upper() + version[1:]
             + ("Namespaced" if namespaced else "") + res.kind)
    content = {"application/json": {"schema": {"$ref": kind_ref}},
               "application/yaml": {"schema": {"$ref": kind_ref}}}
    op = {"description": f"{action} {res.kind}", "operationId": op_id,
          "responses": {c: {"content": content, "description": "OK" if c == "200" else
                            {"201": "Created", "202": "Accepted"}[c]} for c in codes},
          "tags": [f"{_camel_group(group).lower()}_{version}"],
          "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    return op


def _paths(res: Resource, gvk: dict, kind_ref: str, prefix: str) -> dict:
    """The collection and item paths of one kind, with upstream's verbs for it."""
    ns = res.namespaced
    base = f"/{prefix}/namespaces/{{namespace}}/{res.plural}" if ns else f"/{prefix}/{res.plural}"
    common = [_param("namespace", "path")] if ns else []
    body = {"content": {"*/*": {"schema": {"$ref": kind_ref}}}, "required": True}
    if res.plural in routes.VIRTUAL:  # created and answered, never stored
        return {base: {"parameters": common + [_param("pretty")],
                       "post": _op("create", "post", res, gvk, kind_ref, ns, _WRITE_PARAMS,
                                   body, ("200", "201", "202"))}}
    patch_body = {"content": {t: {"schema": {"$ref": _REF + _META + "Patch"}}
                              for t in _PATCH_TYPES}, "required": True}
    return {
        base: {
            "get": _op("list", "list", res, gvk, kind_ref, ns,
                       [_param("labelSelector"), _param("fieldSelector"),
                        _param("watch", type_="boolean")]),
            "parameters": common + [_param("pretty")],
            "post": _op("create", "post", res, gvk, kind_ref, ns, _WRITE_PARAMS, body,
                        ("200", "201", "202")),
        },
        base + "/{name}": {
            "delete": _op("delete", "delete", res, gvk, _REF + _META + "Status", ns,
                          [_param("dryRun"), _param("gracePeriodSeconds", type_="integer"),
                           _param("propagationPolicy")],
                          {"content": {"*/*": {"schema": {
                              "$ref": _REF + _META + "DeleteOptions"}}}}, ("200", "202")),
            "get": _op("read", "get", res, gvk, kind_ref, ns),
            "parameters": [_param("name", "path")] + common + [_param("pretty")],
            "patch": _op("patch", "patch", res, gvk, kind_ref, ns,
                         _WRITE_PARAMS + [_param("force", type_="boolean")], patch_body,
                         ("200", "201")),
            "put": _op("replace", "put", res, gvk, kind_ref, ns, _WRITE_PARAMS, body,
                       ("200", "201")),
        },
    }


def _reach(names: list[str], schemas: dict[str, dict]) -> list[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen or n not in schemas:
            continue
        seen.add(n)
        stack = [schemas[n]]
        while stack:
            o = stack.pop()
            if isinstance(o, dict):
                ref = o.get("$ref")
                if isinstance(ref, str) and ref.startswith(_REF):
                    todo.append(ref[len(_REF):])
                stack.extend(v for k, v in o.items() if k != "$ref")
            elif isinstance(o, list):
                stack.extend(o)
    return sorted(seen)


def _served() -> dict[str, list[tuple[Resource, str]]]:
    """"apps/v1" -> [(resource, api version it is written in)]: each group-version netsim
    serves, and each old version it converts (ACCEPTED_VERSIONS)."""
    out: dict[str, list[tuple[Resource, str]]] = {}
    for r in RESOURCES:
        out.setdefault(r.api_version, []).append((r, r.api_version))
    for kind, versions in sorted(ACCEPTED_VERSIONS.items()):
        r = BY_KIND.get(kind)
        for api in sorted(versions):
            if r is not None and api != r.api_version:
                out.setdefault(api, []).append((r, api))
    return out


def render(api_version: str) -> dict | None:
    """The OpenAPI v3 document of one group-version (None: nothing served there)."""
    entries = _served().get(api_version)
    if not entries:
        return None
    raw = schema.raw_schemas()
    kinds = schema.kinds().get(api_version) or {}
    group, _, version = api_version.rpartition("/")
    paths: dict[str, dict] = {}
    roots = [_META + "Patch", _META + "Status", _META + "DeleteOptions"]
    own: dict[str, dict] = {}
    for res, api in entries:
        gvk = {"group": group, "kind": res.kind, "version": version}
        name = kinds.get(res.kind)
        if name is None:  # an old version netsim converts (its fields are not v1's), or a
            # kind the schemas lack: take any field
            name = f"io.k8s.api.{(group or 'core').removesuffix('.k8s.io')}.{version}.{res.kind}"
            desc = (f"{res.kind} as {api} wrote it (netsim converts it to {res.api_version})."
                    if api != res.api_version else f"{res.kind} (no schema here).")
            own[name] = {"description": desc, "type": "object",
                         "x-kubernetes-group-version-kind": [gvk],
                         "x-kubernetes-preserve-unknown-fields": True}
        else:
            roots.append(name)
        paths.update(_paths(res, gvk, _REF + name, gv_path(api)))
    comps = {n: raw[n] for n in _reach(roots, raw)}
    comps.update(own)
    return {"components": {"schemas": dict(sorted(comps.items()))},
            "info": {"title": "Kubernetes", "version": discovery.KUBERNETES_VERSION},
            "openapi": "3.0.0", "paths": dict(sorted(paths.items()))}


class _Cache:
    """Rendered documents (bytes, ETag) per group-version, rebuilt when what is served
    changes (modules add resources and review kinds at import time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._docs: dict[str, tuple[bytes, str]] = {}
        self._index: bytes = b""

    @staticmethod
    def _served_key() -> tuple:
        return (tuple((r.plural, r.kind, r.api_version, r.namespaced) for r in RESOURCES),
                tuple(sorted(routes.VIRTUAL)))

    def get(self) -> tuple[bytes, dict[str, tuple[bytes, str]]]:
        key = self._served_key()
        with self._lock:
            if key != self._key:
                docs = {}
                for api in _served():
                    doc = render(api)
                    if doc is not None:
                        data = json.dumps(doc, separators=(",", ":")).encode()
                        docs[gv_path(api)] = (data, hashlib.sha512(data).hexdigest().upper())
                index = {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={etag}"}
                                   for gv, (_, etag) in sorted(docs.items())}}
                self._docs, self._key = docs, key
                self._index = json.dumps(index, separators=(",", ":")).encode()
            return self._index, self._docs


CACHE = _Cache()


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or f'"{etag}"' in tags


def serve_v3(req: routes.Request) -> None:
    if req.method != "GET":
        raise errors.method_not_allowed()
    path = urllib.parse.urlsplit(req.path).path.rstrip("/")
    index, docs = CACHE.get()
    if path == "/openapi/v3":
        return req.handler._send_raw(200, index)
    gv = path.removeprefix("/openapi/v3/")
    if gv not in docs:
        raise errors.NotFound("the server could not find the requested resource")
    data, etag = docs[gv]
    extra = b'Etag: "%s"\r\n' % etag.encode()
    want = req.query.get("hash")
    if want and want != etag:
        req.handler._send_raw(301, b"", b"Location: /openapi/v3/%s?hash=%s\r\n"
                              % (gv.encode(), etag.encode()))
        return
    if want:
        extra += (b"Vary: Accept\r\nCache-Control: public, immutable\r\nExpires: %s\r\n"
                  % formatdate(time.time() + 365 * 86400, usegmt=True).encode())
    if _etag_matches(req.headers.get("if-none-match"), etag):
        return req.handler._send_raw(304, b"", extra)
    req.handler._send_raw(200, data, extra)


# Asked for as ...spec.v2@v1.0+protobuf; answered with the dotted name (kube-openapi's: Go's
# mime parser refuses the "@")
_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _pb_string(field: int, data: bytes) -> bytes:
    """One length-delimited protobuf field (lengths here stay under 128: one-byte varint)."""
    assert len(data) < 128
    return bytes([field << 3 | 2, len(data)]) + data


def v2_document(protobuf: bool) -> bytes:
    """gnostic's openapi_v2.Document {swagger: "2.0" (1), info (2): {title (1), version (2)}}
    or the same as JSON."""
    if protobuf:
        info = _pb_string(1, b"Kubernetes") + _pb_string(2, discovery.KUBERNETES_VERSION.encode())
        return _pb_string(1, b"2.0") + _pb_string(2, info)
    return json.dumps({"swagger": "2.0", "info": {"title": "Kubernetes",
                                                  "version": discovery.KUBERNETES_VERSION},
                       "paths": {}, "definitions": {}}, separators=(",", ":")).encode()


def serve_v2(req: routes.Request) -> None:
    if req.method != "GET":
        raise errors.method_not_allowed()
    if urllib.parse.urlsplit(req.path).path.rstrip("/") != "/openapi/v2":
        raise errors.NotFound("the server could not find the requested resource")
    protobuf = "com.github.proto-openapi.spec.v2" in (req.headers.get("accept") or "")
    data = v2_document(protobuf)
    etag = hashlib.sha512(data).hexdigest().upper()
    extra = b'Etag: "%s"\r\nVary: Accept\r\n' % etag.encode()
    if _etag_matches(req.headers.get("if-none-match"), etag):
        return req.handler._send_raw(304, b"", extra)
    req.handler._send_raw(200, data, extra,
                          content_type=(_V2_PROTOBUF if protobuf else "application/json").encode())


routes.PATHS["/openapi/v3"] = serve_v3
routes.PATHS["/openapi/v2"] = serve_v2
