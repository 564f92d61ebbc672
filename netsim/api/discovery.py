"""`/version` and API discovery (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`).

kubectl asks for aggregated discovery first (`Accept: application/json;g=apidiscovery.k8s.io;
v=v2;as=APIGroupDiscoveryList,...,application/json`); it takes the legacy documents served
here as plain `application/json` and then fetches each group-version's resource list, as it
does against any apiserver without aggregated discovery. The lists come from the one
resource registry (netsim.api.resources), so a kind netsim serves is a kind kubectl knows.
"""

from __future__ import annotations

from netsim.api import routes
from netsim.api.resources import ACCEPTED_VERSIONS, RESOURCES, Resource

# The Kubernetes release whose behaviour netsim implements (kubectl 1.37 is what users
# install today); `netsim version` and GET /version report it.
KUBERNETES_VERSION = "v1.37.0"
_MAJOR, _MINOR = KUBERNETES_VERSION[1:].split(".")[:2]

# What every resource serves here (no deletecollection yet).
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]
# Upstream's "all" category (`kubectl get all`): workloads and services.
CATEGORY_ALL = {"pods", "services", "daemonsets", "deployments", "replicasets",
                "statefulsets", "jobs", "cronjobs"}
# Kinds with a /status subresource (the server's PUT/PATCH .../status).
WITH_STATUS = {"pods", "services", "nodes", "namespaces", "deployments", "replicasets",
               "daemonsets", "statefulsets", "jobs", "cronjobs", "ingresses",
               "poddisruptionbudgets", "persistentvolumes", "persistentvolumeclaims"}
# Short names netsim's CLI accepts that upstream's discovery does not list.
_NOT_UPSTREAM_SHORT = {"job"}
# Subresources a feature module serves, as discovery lists them: plural -> entries
# ({"name": "deployments/scale", "group": "autoscaling", "version": "v1", "kind": "Scale",
# "verbs": [...]}); the module registers them beside its routes.SUBRESOURCES handler.
SUBRESOURCE_ENTRIES: dict[str, list[dict]] = {}


def version_info() -> dict:
    """GET /version, shaped as kube-apiserver's version.Info."""
    return {"major": _MAJOR, "minor": _MINOR,
            "emulationMajor": _MAJOR, "emulationMinor": _MINOR,
            "minCompatibilityMajor": _MAJOR, "minCompatibilityMinor": str(int(_MINOR) - 1),
            "gitVersion": KUBERNETES_VERSION, "gitCommit": "netsim", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
            "platform": "linux/amd64"}


def group_versions() -> list[tuple[str, str]]:
    """(group, version) pairs in registry order, the core group ("") first."""
    seen: list[tuple[str, str]] = []
    for r in RESOURCES:
        gv = (r.group, r.version)
        if gv not in seen:
            seen.append(gv)
    return sorted(seen, key=lambda gv: gv[0] != "")


def api_versions(server_address: str | None = None) -> dict:
    """GET /api: the core group's versions."""
    doc: dict = {"kind": "APIVersions", "versions": ["v1"]}
    if server_address:
        doc["serverAddressByClientCIDRs"] = [{"clientCIDR": "0.0.0.0/0",
                                              "serverAddress": server_address}]
    return doc


def _old_versions(group: str) -> list[str]:
    """Older versions of `group` netsim still serves by conversion (ACCEPTED_VERSIONS), as
    kube-apiserver listed extensions/v1beta1 beside networking.k8s.io/v1 until 1.22."""
    out: list[str] = []
    for r in RESOURCES:
        for api in sorted(ACCEPTED_VERSIONS.get(r.kind, ())):
            g, _, v = api.rpartition("/")
            if g == group and api != r.api_version and v not in out:
                out.append(v)
    return out


def _group(g: str, preferred: str | None) -> dict:
    versions = ([preferred] if preferred else []) + _old_versions(g)
    gvs = [{"groupVersion": f"{g}/{v}", "version": v} for v in versions]
    return {"name": g, "versions": gvs, "preferredVersion": gvs[0]}


def _group_names() -> list[tuple[str, str | None]]:
    """(group, preferred version) of every named group, groups served only in old
    versions (extensions) after the others."""
    named = [(g, v) for g, v in group_versions() if g]
    seen = {g for g, _ in named}
    for r in RESOURCES:
        for api in sorted(ACCEPTED_VERSIONS.get(r.kind, ())):
            g = api.rpartition("/")[0]
            if g and g not in seen:
                seen.add(g)
                named.append((g, None))
    return named


def api_group_list() -> dict:
    """GET /apis: every named group, its preferred version first."""
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, v) for g, v in _group_names()]}


def api_group(group: str) -> dict | None:
    """GET /apis/<group>."""
    for g, v in _group_names():
        if g == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(g, v)}
    return None


def _resource_entry(r: Resource) -> dict:
    # create-only kinds (reviews) list only create, as upstream's
    verbs = ["create"] if r.plural in routes.VIRTUAL else list(VERBS)
    entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
             "kind": r.kind, "verbs": verbs}
    short = [s for s in r.short if s not in _NOT_UPSTREAM_SHORT]
    if short:
        entry["shortNames"] = short
    if r.plural in CATEGORY_ALL:
        entry["categories"] = ["all"]
    return entry


def resource_list(group: str, version: str) -> dict | None:
    """GET /api/v1 or /apis/<group>/<version>: the APIResourceList (None: not served)."""
    resources = []
    gv = f"{group}/{version}" if group else version
    for r in RESOURCES:
        if (r.group == group and r.version == version) or \
                gv in ACCEPTED_VERSIONS.get(r.kind, ()):
            resources.append(_resource_entry(r))
            if r.plural in WITH_STATUS:
                resources.append({"name": f"{r.plural}/status", "singularName": "",
                                  "namespaced": r.namespaced, "kind": r.kind,
                                  "verbs": list(STATUS_VERBS)})
            for sub in SUBRESOURCE_ENTRIES.get(r.plural, ()):
                resources.append({"singularName": "", "namespaced": r.namespaced, **sub})
    if not resources:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
            "resources": resources}


def document(path: str, server_address: str | None = None) -> dict | None:
    """The discovery or version document for a request path (None: not a discovery path)."""
    path = path.rstrip("/") or "/"
    if path == "/version":
        return version_info()
    if path == "/api":
        return api_versions(server_address)
    if path == "/apis":
        return api_group_list()
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) == 2:
        return resource_list("", parts[1])
    if parts[0] == "apis" and len(parts) == 2:
        return api_group(parts[1])
    if parts[0] == "apis" and len(parts) == 3:
        return resource_list(parts[1], parts[2])
    return None
