"""The resource registry: kinds, plurals, API groups and kubectl's short names."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str
    version: str
    namespaced: bool = True
    short: tuple[str, ...] = field(default_factory=tuple)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def qualified(self) -> str:
        """`deployments.apps` style name used in messages; core resources stay bare."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def type_name(self) -> str:
        """`deployment.apps` as kubectl prints before `/name`."""
        return f"{self.singular}.{self.group}" if self.group else self.singular

    def base_path(self, namespace: str | None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"


RESOURCES: list[Resource] = [
    Resource("namespaces", "Namespace", "", "v1", False, ("ns",)),
    Resource("nodes", "Node", "", "v1", False, ("no",)),
    Resource("pods", "Pod", "", "v1", True, ("po",)),
    Resource("services", "Service", "", "v1", True, ("svc",)),
    Resource("endpoints", "Endpoints", "", "v1", True, ("ep",)),
    Resource("configmaps", "ConfigMap", "", "v1", True, ("cm",)),
    Resource("secrets", "Secret", "", "v1", True, ()),
    Resource("events", "Event", "", "v1", True, ("ev",)),
    Resource("bindings", "Binding", "", "v1", True, ()),  # create-only (netsim.api.binding)
    Resource("serviceaccounts", "ServiceAccount", "", "v1", True, ("sa",)),
    Resource("persistentvolumeclaims", "PersistentVolumeClaim", "", "v1", True, ("pvc",)),
    Resource("persistentvolumes", "PersistentVolume", "", "v1", False, ("pv",)),
    Resource("deployments", "Deployment", "apps", "v1", True, ("deploy",)),
    Resource("replicasets", "ReplicaSet", "apps", "v1", True, ("rs",)),
    Resource("daemonsets", "DaemonSet", "apps", "v1", True, ("ds",)),
    Resource("statefulsets", "StatefulSet", "apps", "v1", True, ("sts",)),
    Resource("controllerrevisions", "ControllerRevision", "apps", "v1", True, ()),
    Resource("jobs", "Job", "batch", "v1", True, ("job",)),
    Resource("cronjobs", "CronJob", "batch", "v1", True, ("cj",)),
    Resource("endpointslices", "EndpointSlice", "discovery.k8s.io", "v1", True, ()),
    Resource("ingresses", "Ingress", "networking.k8s.io", "v1", True, ("ing",)),
    Resource("ingressclasses", "IngressClass", "networking.k8s.io", "v1", False, ()),
    Resource("networkpolicies", "NetworkPolicy", "networking.k8s.io", "v1", True, ("netpol",)),
    Resource("poddisruptionbudgets", "PodDisruptionBudget", "policy", "v1", True, ("pdb",)),
    Resource("storageclasses", "StorageClass", "storage.k8s.io", "v1", False, ("sc",)),
    # create-only reviews (netsim.api.authz): answered, never stored
    Resource("selfsubjectaccessreviews", "SelfSubjectAccessReview", "authorization.k8s.io", "v1",
             False, ()),
    Resource("selfsubjectrulesreviews", "SelfSubjectRulesReview", "authorization.k8s.io", "v1",
             False, ()),
    # create-only reviews (netsim.api.authn, netsim.api.satoken): `kubectl auth whoami`, TokenReview
    Resource("selfsubjectreviews", "SelfSubjectReview", "authentication.k8s.io", "v1", False, ()),
    Resource("tokenreviews", "TokenReview", "authentication.k8s.io", "v1", False, ()),
]

BY_PLURAL = {r.plural: r for r in RESOURCES}
BY_KIND = {r.kind: r for r in RESOURCES}
_ALIASES: dict[str, Resource] = {}
for _r in RESOURCES:
    for _name in (_r.plural, _r.singular, _r.kind, *_r.short, _r.qualified,
                  f"{_r.singular}.{_r.group}" if _r.group else _r.singular):
        _ALIASES[_name.lower()] = _r


class UnknownResource(Exception):
    pass


def lookup(name: str) -> Resource:
    """Resolve what a user typed (`po`, `deploy`, `deployments.apps`, `Pod`) to a Resource."""
    r = _ALIASES.get(name.lower())
    if r is None:
        raise UnknownResource(f'the server doesn\'t have a resource type "{name}"')
    return r


def for_object(obj: dict) -> Resource:
    """The Resource an object belongs to, judged by its kind (apiVersion may be an old alias)."""
    kind = obj.get("kind", "")
    r = BY_KIND.get(kind)
    if r is None:
        api = obj.get("apiVersion", "")
        raise UnknownResource(
            f'no matches for kind "{kind}" in version "{api}"')
    return r


# Old API versions served, converted to the stored version (the seed's `extensions/v1beta1`
# Ingress): discovery lists them beside the preferred one so the real kubectl sends them, and
# each request to one gets the apiserver's deprecation Warning (DEPRECATED).
ACCEPTED_VERSIONS: dict[str, set[str]] = {
    "Ingress": {"networking.k8s.io/v1", "networking.k8s.io/v1beta1", "extensions/v1beta1"},
    "Deployment": {"apps/v1"},
    "ReplicaSet": {"apps/v1"},
    "DaemonSet": {"apps/v1"},
    "StatefulSet": {"apps/v1"},
    "EndpointSlice": {"discovery.k8s.io/v1"},
    "IngressClass": {"networking.k8s.io/v1"},
    "NetworkPolicy": {"networking.k8s.io/v1"},
    "PodDisruptionBudget": {"policy/v1"},
    "StorageClass": {"storage.k8s.io/v1"},
    "Job": {"batch/v1"},
    "CronJob": {"batch/v1"},
}


# (apiVersion, kind) -> the apiserver's deprecation warning for requests in that version,
# as kube-apiserver 1.19-1.21 sent it (a Warning header; kubectl prints "Warning: <text>").
DEPRECATED: dict[tuple[str, str], str] = {
    ("extensions/v1beta1", "Ingress"): "extensions/v1beta1 Ingress is deprecated in v1.14+, "
    "unavailable in v1.22+; use networking.k8s.io/v1 Ingress",
    ("networking.k8s.io/v1beta1", "Ingress"): "networking.k8s.io/v1beta1 Ingress is deprecated "
    "in v1.19+, unavailable in v1.22+; use networking.k8s.io/v1 Ingress",
}
