"""Deployments, ReplicaSets, ConfigMaps and Secrets: API-server defaults and validation.

Defaults are the ones `kubectl get -o yaml` shows on a real cluster (strategy 25%/25%,
revisionHistoryLimit 10, progressDeadlineSeconds 600, `creationTimestamp: null` in the pod
template); errors use the apiserver's field paths and wording, including Go's `%#v`
rendering of the offending value (`map[string]string{"app":"x"}`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from netsim.api import errors
from netsim.api import validation as v
from netsim.api.kinds.base import ClusterSettings, Registry
from netsim.api.kinds.core import default_pod_spec, validate_pod_spec
from netsim.api.selectors import from_label_selector
from netsim.api.validation import go_value

QUANTITY_RE_MSG = ("quantities must match the regular expression "
                   "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
PERCENT_MSG = ("a valid percent string must be a numeric string followed by an ending '%' "
               "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")
NONNEG_MSG = "must be greater than or equal to 0"
IMMUTABLE_MSG = "field is immutable"


# ---- Go value rendering (what field.Invalid prints) -----------------------------------------
def go_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def go_map(m) -> str:
    if m is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{go_string(str(k))}:{go_string(str(v))}" for k, v in sorted(m.items()))
    return "map[string]string{" + items + "}"


def go_label_selector(sel: dict | None) -> str:
    sel = sel or {}
    exprs = sel.get("matchExpressions")
    if exprs is None:
        ex = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in exprs:
            vals = e.get("values")
            vs = "[]string(nil)" if vals is None else \
                "[]string{" + ", ".join(go_string(str(v)) for v in vals) + "}"
            parts.append(f"v1.LabelSelectorRequirement{{Key:{go_string(str(e.get('key', '')))}, "
                         f"Operator:{go_string(str(e.get('operator', '')))}, Values:{vs}}}")
        ex = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return f"v1.LabelSelector{{MatchLabels:{go_map(sel.get('matchLabels'))}, MatchExpressions:{ex}}}"


# ---- shared pieces --------------------------------------------------------------------------
def default_template(template: dict) -> None:
    md = template.get("metadata")
    if not isinstance(md, dict):
        md = template["metadata"] = {}
    md.setdefault("creationTimestamp", None)
    spec = template.get("spec")
    if not isinstance(spec, dict):
        spec = template["spec"] = {}
    default_pod_spec(spec)


def _nonneg(value, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [f"{path}: Invalid value: {go_value(value)}: must be an integer"]
    if value < 0:
        return [f"{path}: Invalid value: {value}: {NONNEG_MSG}"]
    return []


def validate_selector_and_template(kind: str, spec: dict) -> list[str]:
    """ValidateDeploymentSpec / ValidateReplicaSetSpec: the selector/template part."""
    causes = []
    sel = spec.get("selector")
    tmpl = spec.get("template")
    if sel is None:
        causes.append("spec.selector: Required value")
    elif not isinstance(sel, dict):
        causes.append(f"spec.selector: Invalid value: {go_value(sel)}: invalid label selector")
        sel = None
    else:
        causes += v.label_selector(sel, "spec.selector")
        if not (sel.get("matchLabels") or sel.get("matchExpressions")):
            causes.append(f"spec.selector: Invalid value: {go_label_selector(sel)}: "
                          f"empty selector is invalid for {kind.lower()}")
    if not isinstance(tmpl, dict):
        causes.append("spec.template: Required value")
        return causes
    tmeta = tmpl.get("metadata") or {}
    labels = tmeta.get("labels")
    causes += v.labels(labels, "spec.template.metadata.labels")
    causes += v.annotations(tmeta.get("annotations"), "spec.template.metadata.annotations")
    empty = isinstance(sel, dict) and not (sel.get("matchLabels") or sel.get("matchExpressions"))
    if not empty and not from_label_selector(sel)(labels or {}):
        causes.append(f"spec.template.metadata.labels: Invalid value: {go_map(labels)}: "
                      "`selector` does not match template `labels`")
    pod_spec = tmpl.get("spec") or {}
    causes += validate_pod_spec(pod_spec, "spec.template.spec")
    rp = pod_spec.get("restartPolicy")
    if rp in ("OnFailure", "Never"):
        causes.append(f'spec.template.spec.restartPolicy: Unsupported value: "{rp}": '
                      'supported values: "Always"')
    if pod_spec.get("activeDeadlineSeconds") is not None:
        causes.append("spec.template.spec.activeDeadlineSeconds: Forbidden: "
                      f"activeDeadlineSeconds in {kind} is not Supported")
    return causes


def selector_immutable(obj: dict, old: dict | None) -> list[str]:
    if old is None:
        return []
    new_sel = (obj.get("spec") or {}).get("selector")
    old_sel = (old.get("spec") or {}).get("selector")
    if _norm_sel(new_sel) != _norm_sel(old_sel):
        return [f"spec.selector: Invalid value: {go_label_selector(new_sel)}: {IMMUTABLE_MSG}"]
    return []


def _norm_sel(sel) -> tuple:
    sel = sel or {}
    ml = tuple(sorted((sel.get("matchLabels") or {}).items()))
    me = tuple(sorted(json.dumps(e, sort_keys=True) for e in sel.get("matchExpressions") or []))
    return ml, me


# ---- Deployment -----------------------------------------------------------------------------
def default_deployment(obj: dict, old: dict | None) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    spec.setdefault("replicas", 1)
    ru = _default_rolling_update(spec, "strategy")
    if ru is not None:
        ru.setdefault("maxUnavailable", "25%")
        ru.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        default_template(tmpl)


def _validate_int_or_percent(value, path: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return [f"{path}: Invalid value: {go_value(value)}: must be an integer or percentage "
                "(e.g '5%')"]
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]+%", value):
            return [f"{path}: Invalid value: {go_string(value)}: {PERCENT_MSG}"]
        return []
    return _nonneg(value, path)


def _int_or_percent_value(value) -> int:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value):
        return int(value[:-1])
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


def validate_strategy(spec: dict) -> list[str]:
    st = spec.get("strategy") or {}
    t = st.get("type")
    path = "spec.strategy"
    if t == "Recreate":
        if st.get("rollingUpdate") is not None:
            return [f"{path}.rollingUpdate: Forbidden: may not be specified when strategy "
                    "`type` is 'Recreate'"]
        return []
    if t != "RollingUpdate":
        return [f"{path}.type: Unsupported value: {go_value(t)}: supported values: "
                '"Recreate", "RollingUpdate"']
    ru = st.get("rollingUpdate") or {}
    p = f"{path}.rollingUpdate"
    mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
    causes = _validate_int_or_percent(mu, f"{p}.maxUnavailable")
    causes += _validate_int_or_percent(ms, f"{p}.maxSurge")
    if _int_or_percent_value(mu) == 0 and _int_or_percent_value(ms) == 0:
        causes.append(f"{p}.maxUnavailable: Invalid value: {go_value(mu)}: "
                      "may not be 0 when `maxSurge` is 0")
    if isinstance(mu, str) and re.fullmatch(r"[0-9]+%", mu) and int(mu[:-1]) > 100:
        causes.append(f"{p}.maxUnavailable: Invalid value: {go_string(mu)}: "
                      "must not be greater than 100%")
    return causes


def validate_deployment(obj: dict, old: dict | None) -> list[str]:
    spec = obj.get("spec") or {}
    causes = _nonneg(spec.get("replicas"), "spec.replicas")
    causes += validate_selector_and_template("Deployment", spec)
    causes += validate_strategy(spec)
    causes += _nonneg(spec.get("minReadySeconds"), "spec.minReadySeconds")
    causes += _nonneg(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    pds = spec.get("progressDeadlineSeconds")
    if pds is not None:
        bad = _nonneg(pds, "spec.progressDeadlineSeconds")
        causes += bad
        if not bad and pds <= (spec.get("minReadySeconds") or 0):
            causes.append(f"spec.progressDeadlineSeconds: Invalid value: {pds}: "
                          "must be greater than minReadySeconds")
    causes += selector_immutable(obj, old)
    return causes


# ---- ReplicaSet -----------------------------------------------------------------------------
def default_replicaset(obj: dict, old: dict | None) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    spec.setdefault("replicas", 1)
    tmpl = spec.get("template")
    if isinstance(tmpl, dict):
        default_template(tmpl)


def validate_replicaset(obj: dict, old: dict | None) -> list[str]:
    spec = obj.get("spec") or {}
    causes = _nonneg(spec.get("replicas"), "spec.replicas")
    causes += _nonneg(spec.get("minReadySeconds"), "spec.minReadySeconds")
    causes += validate_selector_and_template("ReplicaSet", spec)
    causes += selector_immutable(obj, old)
    return causes


# ---- ConfigMap and Secret -------------------------------------------------------------------
def _validate_keys(data: dict | None, field: str) -> list[str]:
    """IsConfigMapKey for every key of data / binaryData."""
    causes = []
    for k in sorted((data or {}).keys()):
        causes += [v.invalid(f"{field}[{k}]", k, m) for m in v.is_config_map_key(k)]
    return causes


def _validate_immutable_data(obj: dict, old: dict | None) -> list[str]:
    if old is None or not old.get("immutable"):
        return []
    causes = []
    if obj.get("immutable") is not True:
        causes.append("immutable: Forbidden: field is immutable when `immutable` is set")
    for f in ("data", "binaryData"):
        if (obj.get(f) or {}) != (old.get(f) or {}):
            causes.append(f"{f}: Forbidden: field is immutable when `immutable` is set")
    return causes


def validate_configmap(obj: dict, old: dict | None) -> list[str]:
    causes = _validate_keys(obj.get("data"), "data")
    causes += _validate_keys(obj.get("binaryData"), "binaryData")
    for k in sorted(set(obj.get("data") or {}) & set(obj.get("binaryData") or {})):
        causes.append(f"data[{k}]: Invalid value: {go_string(k)}: "
                      "duplicate of key present in binaryData")
    for _k, val in sorted((obj.get("data") or {}).items()):
        if not isinstance(val, str):
            raise errors.BadRequest(
                'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot '
                f"unmarshal {type(val).__name__ if val is not None else 'null'} into Go struct "
                f"field ConfigMap.data of type string")
    causes += _validate_immutable_data(obj, old)
    return causes


def default_secret(obj: dict, old: dict | None) -> None:
    """stringData is write-only: it is merged into base64 `data` and never stored."""
    obj.setdefault("type", "Opaque")
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise errors.BadRequest('Secret in version "v1" cannot be handled as a Secret: '
                                "json: cannot unmarshal into Go struct field Secret.data of "
                                "type map[string][]uint8")
    for val in (data or {}).values():
        try:
            base64.b64decode(str(val), validate=True)
        except (binascii.Error, ValueError):
            pos = _bad_b64_at(str(val))
            raise errors.BadRequest('Secret in version "v1" cannot be handled as a Secret: '
                                    f"illegal base64 data at input byte {pos}") from None
    sd = obj.pop("stringData", None)
    if sd:
        data = obj.setdefault("data", {})
        for k, v in sd.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


def _bad_b64_at(s: str) -> int:
    """Where Go's base64 decoder gives up: the first byte outside the alphabet."""
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    for i, ch in enumerate(s):
        if ch not in alphabet:
            return i
    return len(s) - len(s) % 4


def validate_secret(obj: dict, old: dict | None) -> list[str]:
    data = obj.get("data") or {}
    causes = _validate_keys(data, "data")
    t = obj.get("type", "Opaque")
    if t == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                causes.append(f"data[{key}]: Required value")
    elif t == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in data:
            causes.append("data[.dockerconfigjson]: Required value")
    elif t == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            causes.append("data[username]: Required value")
    elif t == "kubernetes.io/ssh-auth":
        if "ssh-privatekey" not in data:
            causes.append("data[ssh-privatekey]: Required value")
    if old is not None and old.get("type", "Opaque") != t:
        causes.append(f"type: Invalid value: {go_string(t)}: {IMMUTABLE_MSG}")
    causes += _validate_immutable_data(obj, old)
    return causes


# ---- DaemonSet and StatefulSet (their pod templates are checked alike) ----------------------
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def _default_rolling_update(spec: dict, key: str = "updateStrategy") -> dict | None:
    """The strategy's type defaults to RollingUpdate (a Deployment's `strategy`, a DaemonSet's
    and a StatefulSet's `updateStrategy`); then its rollingUpdate block (made if missing) for
    the caller's defaults, None for another strategy type."""
    st = spec.get(key)
    if not isinstance(st, dict):
        st = spec[key] = {}
    st.setdefault("type", "RollingUpdate")
    if st["type"] != "RollingUpdate":
        return None
    ru = st.get("rollingUpdate")
    if not isinstance(ru, dict):
        ru = st["rollingUpdate"] = {}
    return ru


def _default_daemonset(spec: dict) -> None:
    """SetDefaults_DaemonSet: RollingUpdate 1 unavailable / 0 surge, history 10."""
    ru = _default_rolling_update(spec)
    if ru is not None:
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)


def _default_statefulset(spec: dict) -> None:
    """SetDefaults_StatefulSet: 1 replica, OrderedReady, RollingUpdate partition 0,
    history 10, PVCs retained."""
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    ru = _default_rolling_update(spec)
    if ru is not None:
        ru.setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    pol = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(pol, dict):
        pol = spec["persistentVolumeClaimRetentionPolicy"] = {}
    pol.setdefault("whenDeleted", "Retain")
    pol.setdefault("whenScaled", "Retain")


def _template_generation(obj: dict, old: dict | None) -> None:
    """The DaemonSet strategy's PrepareForCreate/Update: the template generation annotation
    starts at 1 and grows by one with each template change."""
    md = obj.get("metadata")
    if not isinstance(md, dict):
        return
    ann = md.get("annotations")
    if not isinstance(ann, dict):
        ann = md["annotations"] = {}
    if old is None:
        ann[TEMPLATE_GENERATION] = "1"
        return
    prev = ((old.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION, "0")
    try:
        n = int(prev)
    except ValueError:
        n = 0
    changed = (obj.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template")
    ann[TEMPLATE_GENERATION] = str(n + 1 if changed else max(n, 1))


def _default_template_owner(kind: str):
    def default(obj: dict, old: dict | None) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("template"), dict):
            default_template(spec["template"])
        if isinstance(spec, dict):
            if kind == "DaemonSet":
                _default_daemonset(spec)
                _template_generation(obj, old)
            else:
                _default_statefulset(spec)
    return default


def _with_claim_volumes(spec: dict) -> dict:
    """The spec as its pods will be: each volumeClaimTemplate a persistentVolumeClaim volume
    (upstream does not check the template's mounts against its volumes alone)."""
    claims = spec.get("volumeClaimTemplates")
    tmpl = spec.get("template")
    if not isinstance(claims, list) or not isinstance(tmpl, dict) or \
            not isinstance(tmpl.get("spec"), dict):
        return spec
    vols = list(tmpl["spec"].get("volumes") or [])
    have = {v.get("name") for v in vols if isinstance(v, dict)}
    for c in claims:
        name = ((c if isinstance(c, dict) else {}).get("metadata") or {}).get("name")
        if isinstance(name, str) and name and name not in have:
            vols.append({"name": name, "persistentVolumeClaim": {"claimName": name}})
    return {**spec, "template": {**tmpl, "spec": {**tmpl["spec"], "volumes": vols}}}


def _percent_over_100(value, path: str) -> list[str]:
    if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value) and int(value[:-1]) > 100:
        return [f"{path}: Invalid value: {go_string(value)}: must not be greater than 100%"]
    return []


def validate_daemonset_strategy(spec: dict) -> list[str]:
    """ValidateDaemonSetUpdateStrategy / ValidateRollingUpdateDaemonSet: exactly one of
    maxUnavailable and maxSurge is non-zero."""
    st = spec.get("updateStrategy") or {}
    t = st.get("type")
    path = "spec.updateStrategy"
    if t == "OnDelete":
        return []
    if t != "RollingUpdate":
        return [f"{path}.type: Unsupported value: {go_value(t)}: supported values: "
                '"OnDelete", "RollingUpdate"']
    ru = st.get("rollingUpdate")
    if not isinstance(ru, dict):
        return [f"{path}.rollingUpdate: Required value"]
    p = f"{path}.rollingUpdate"
    mu, ms = ru.get("maxUnavailable"), ru.get("maxSurge")
    causes = _validate_int_or_percent(mu, f"{p}.maxUnavailable")
    causes += _validate_int_or_percent(ms, f"{p}.maxSurge")
    causes += _percent_over_100(mu, f"{p}.maxUnavailable") + _percent_over_100(ms, f"{p}.maxSurge")
    has_u, has_s = _int_or_percent_value(mu) != 0, _int_or_percent_value(ms) != 0
    if has_u and has_s:
        causes.append(f"{p}.maxSurge: Invalid value: {go_value(ms)}: "
                      "may not be set when maxUnavailable is non-zero")
    elif not has_u and not has_s:
        causes.append(f"{p}.maxUnavailable: Required value: cannot be 0 when maxSurge is 0")
    return causes


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def validate_statefulset_spec(spec: dict, old: dict | None) -> list[str]:
    """ValidateStatefulSetSpec's policy and strategy checks, and ValidateStatefulSetUpdate's
    rule that only some fields of the spec may change."""
    causes = []
    pmp = spec.get("podManagementPolicy")
    if pmp not in ("OrderedReady", "Parallel"):
        causes.append(f"spec.podManagementPolicy: Unsupported value: {go_value(pmp)}: "
                      'supported values: "OrderedReady", "Parallel"')
    st = spec.get("updateStrategy") or {}
    t = st.get("type")
    if t == "OnDelete":
        if st.get("rollingUpdate") is not None:
            causes.append("spec.updateStrategy.rollingUpdate: Invalid value: "
                          f"{go_value(st.get('rollingUpdate'))}: only allowed for "
                          "updateStrategy 'RollingUpdate'")
    elif t == "RollingUpdate":
        causes += _nonneg((st.get("rollingUpdate") or {}).get("partition"),
                          "spec.updateStrategy.rollingUpdate.partition")
    else:
        causes.append(f"spec.updateStrategy.type: Unsupported value: {go_value(t)}: "
                      'supported values: "OnDelete", "RollingUpdate"')
    causes += _nonneg(spec.get("minReadySeconds"), "spec.minReadySeconds")
    if old is not None:
        old_spec = old.get("spec") or {}
        rest = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        old_rest = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        if rest != old_rest:
            causes.append("spec: Forbidden: updates to statefulset spec for fields other than "
                          "'replicas', 'ordinals', 'template', 'updateStrategy', "
                          "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                          "are forbidden")
    return causes


def _validate_template_owner(kind: str):
    def validate(obj: dict, old: dict | None) -> list[str]:
        spec = obj.get("spec") or {}
        causes = _nonneg(spec.get("replicas"), "spec.replicas") if kind == "StatefulSet" else []
        if kind == "StatefulSet":
            causes += validate_statefulset_spec(spec, old)
            spec = _with_claim_volumes(spec)
        else:
            causes += validate_daemonset_strategy(spec)
            causes += _nonneg(spec.get("minReadySeconds"), "spec.minReadySeconds")
        causes += _nonneg(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
        causes += validate_selector_and_template(kind, spec)
        causes += selector_immutable(obj, old)
        return causes
    return validate


def register(reg: Registry, settings: ClusterSettings) -> None:
    reg.add("Deployment", defaulter=default_deployment, validator=validate_deployment)
    reg.add("ReplicaSet", defaulter=default_replicaset, validator=validate_replicaset)
    for kind in ("DaemonSet", "StatefulSet"):
        reg.add(kind, defaulter=_default_template_owner(kind),
                validator=_validate_template_owner(kind))
    reg.add("ConfigMap", validator=validate_configmap)
    reg.add("Secret", defaulter=default_secret, validator=validate_secret)
