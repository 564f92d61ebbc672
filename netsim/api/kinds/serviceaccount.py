"""The ServiceAccount admission plugin (upstream plugin/pkg/admission/serviceaccount), on
pod creation:

- `spec.serviceAccountName` defaults to `default` (and the deprecated `serviceAccount`
  follows it, as the v1 conversion writes it);
- a ServiceAccount that does not exist refuses the pod:
  `pods "x" is forbidden: error looking up service account default/foo: serviceaccount "foo" not found`;
- unless the pod (first) or its ServiceAccount says `automountServiceAccountToken: false`,
  the projected volume `kube-api-access-<5 random>` (token for 3607 s, `ca.crt` from the
  `kube-root-ca.crt` ConfigMap, the namespace from the downward API) is added with a
  read-only mount at /var/run/secrets/kubernetes.io/serviceaccount in every init and app
  container that has no mount there yet;
- the ServiceAccount's imagePullSecrets become the pod's when it names none.

`default` is never refused: upstream retries the lookup while the ServiceAccount controller
creates it in a new namespace (about a second); here the controller's write may be behind
the pod's in the same instant, so the pod goes through as it would after that retry.
Registered only by the control plane's Admission (the kubelet then mounts the volume); the
in-memory renders and unit stores keep pods as written.
"""

from __future__ import annotations

import random

from netsim.api import errors
from netsim.api.kinds.base import ClusterSettings, Registry

DEFAULT_SA = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION = 3607  # serviceaccount.WarnOnlyBoundTokenExpirationSeconds
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # utilrand.String's


def token_volume(name: str) -> dict:
    """TokenVolumeSource(): the projected volume every pod's token lives in."""
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt",
                                                               "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1",
                                                 "fieldPath": "metadata.namespace"},
                                    "path": "namespace"}]}},
    ]}}


def _forbidden_name(md: dict) -> str:
    """The name admission.NewForbidden prints: the generateName before one was generated."""
    name, gen = md.get("name") or "", md.get("generateName") or ""
    if gen and name.startswith(gen) and len(name) == len(gen) + 5:
        return gen
    return name or "Unknown"


def admit(store, pod: dict, old: dict | None) -> None:
    if old is not None:  # only creations are mutated
        return
    md = pod.get("metadata") or {}
    if "kubernetes.io/config.mirror" in (md.get("annotations") or {}):
        return
    spec = pod.setdefault("spec", {})
    sa_name = spec.get("serviceAccountName") or spec.get("serviceAccount") or DEFAULT_SA
    spec["serviceAccountName"] = spec["serviceAccount"] = sa_name
    ns = md.get("namespace") or "default"
    try:
        sa = store.get("serviceaccounts", sa_name, ns)
    except errors.NotFound:
        if sa_name != DEFAULT_SA:
            raise errors.ApiError(
                f'pods "{_forbidden_name(md)}" is forbidden: error looking up service account '
                f'{ns}/{sa_name}: serviceaccount "{sa_name}" not found', code=403,
                reason="Forbidden",
                details={"name": _forbidden_name(md), "kind": "pods"}) from None
        sa = {"metadata": {"name": DEFAULT_SA, "namespace": ns}}
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = sa.get("automountServiceAccountToken")
    if automount is not False:
        _mount_token(spec)
    if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
        spec["imagePullSecrets"] = [{"name": s.get("name", "")}
                                    for s in sa["imagePullSecrets"]]


def _mount_token(spec: dict) -> None:
    volumes = spec.get("volumes") or []
    existing = next((v.get("name") for v in volumes
                     if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or VOLUME_PREFIX + "".join(random.choice(_ALPHABET) for _ in range(5))
    needed = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            mounts = c.get("volumeMounts") or []
            if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            c["volumeMounts"] = [*mounts, {"mountPath": MOUNT_PATH, "name": name,
                                           "readOnly": True}]
            needed = True
    if needed and existing is None:
        spec["volumes"] = [*volumes, token_volume(name)]


def keep(pod: dict, old: dict | None) -> None:
    """An update that leaves out what this plugin added at creation keeps it (the account's
    name, the kube-api-access volume and its mounts). kubectl's strategic merge never drops
    them; netsim's own `apply` replaces lists whole and would otherwise be refused for
    changing an immutable pod spec. A defaulter: it must run before validation."""
    if old is None:
        return
    spec, was = pod.get("spec"), old.get("spec") or {}
    if not isinstance(spec, dict):
        return
    for key in ("serviceAccountName", "serviceAccount"):
        if not spec.get(key) and was.get(key):
            spec[key] = was[key]
    vol = next((v for v in was.get("volumes") or []
                if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    if vol is None:
        return
    if not any(v.get("name") == vol["name"] for v in spec.get("volumes") or []):
        spec["volumes"] = [*(spec.get("volumes") or []), vol]
    for key in ("initContainers", "containers"):
        before = {c.get("name"): c for c in was.get(key) or []}
        for c in spec.get(key) or []:
            mine = [m for m in (before.get(c.get("name")) or {}).get("volumeMounts") or []
                    if m.get("name") == vol["name"] and m.get("mountPath") == MOUNT_PATH]
            mounts = c.get("volumeMounts") or []
            if mine and not any(m.get("mountPath") == MOUNT_PATH for m in mounts):
                c["volumeMounts"] = [*mounts, *mine]


def validate_secret(secret: dict, old: dict | None) -> list[str]:
    """ValidateSecret's service-account-token case: the account must be named (the rest
    is the tokens controller's to fill)."""
    if secret.get("type") != "kubernetes.io/service-account-token":
        return []
    anns = (secret.get("metadata") or {}).get("annotations") or {}
    if not anns.get("kubernetes.io/service-account.name"):
        return ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
    return []


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("Pod", defaulter=keep, allocator=admit)
    reg.add("Secret", validator=validate_secret)
