"""Go struct field order for the objects kubectl's imperative verbs print as JSON.

`kubectl create deployment ... -o json` prints a typed object (k8s.io/api structs through
encoding/json), so its keys come in the structs' field order: kind, apiVersion, metadata,
spec, ..., status, and inside each struct its fields as declared upstream — not sorted (as
for YAML) nor in the order netsim built the dict. `ordered(obj)` rebuilds a dict in that
order for the kinds the create/run/expose verbs make; a key no struct here names keeps its
place after the known ones, and a Go map's keys (labels, data, selectors) are sorted.
"""

from __future__ import annotations

import json

MAP = "map"  # a Go map: encoding/json writes its keys sorted
# struct -> [(json field, struct of its value or of each list element, MAP, or None)]
_S: dict[str, list[tuple[str, str | None]]] = {
    "ObjectMeta": [(f, {"ownerReferences": "OwnerReference", "labels": MAP,
                        "annotations": MAP}.get(f)) for f in (
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
        "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
        "labels", "annotations", "ownerReferences", "finalizers", "managedFields")],
    "OwnerReference": [(f, None) for f in ("apiVersion", "kind", "name", "uid", "controller",
                                          "blockOwnerDeletion")],
    "LabelSelector": [("matchLabels", MAP), ("matchExpressions", None)],
    "PodTemplateSpec": [("metadata", "ObjectMeta"), ("spec", "PodSpec")],
    "PodSpec": [(f, "Container" if f in ("initContainers", "containers") else
                 MAP if f == "nodeSelector" else None) for f in (
        "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
        "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
        "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
        "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext",
        "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName",
        "tolerations", "hostAliases", "priorityClassName", "priority", "dnsConfig",
        "readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy",
        "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers",
        "schedulingGates", "resourceClaims", "resources")],
    "Container": [(f, {"ports": "ContainerPort", "env": "EnvVar"}.get(f)) for f in (
        "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env",
        "resources", "resizePolicy", "restartPolicy", "restartPolicyRules", "volumeMounts",
        "volumeDevices", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
        "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy",
        "securityContext", "stdin", "stdinOnce", "tty")],
    "ContainerPort": [(f, None) for f in ("name", "hostPort", "containerPort", "protocol",
                                         "hostIP")],
    "EnvVar": [("name", None), ("value", None), ("valueFrom", None)],
    "DeploymentSpec": [("replicas", None), ("selector", "LabelSelector"),
                       ("template", "PodTemplateSpec"), ("strategy", None),
                       ("minReadySeconds", None), ("revisionHistoryLimit", None),
                       ("paused", None), ("progressDeadlineSeconds", None)],
    "ServiceSpec": [(f, "ServicePort" if f == "ports" else MAP if f == "selector" else None)
                    for f in (
        "ports", "selector", "clusterIP", "clusterIPs", "type", "externalIPs",
        "sessionAffinity", "loadBalancerIP", "loadBalancerSourceRanges", "externalName",
        "externalTrafficPolicy", "healthCheckNodePort", "publishNotReadyAddresses",
        "sessionAffinityConfig", "ipFamilies", "ipFamilyPolicy",
        "allocateLoadBalancerNodePorts", "loadBalancerClass", "internalTrafficPolicy",
        "trafficDistribution")],
    "ServicePort": [(f, None) for f in ("name", "protocol", "appProtocol", "port",
                                       "targetPort", "nodePort")],
    "JobSpec": [(f, {"selector": "LabelSelector", "template": "PodTemplateSpec"}.get(f))
                for f in ("parallelism", "completions", "activeDeadlineSeconds",
                          "podFailurePolicy", "successPolicy", "backoffLimit",
                          "backoffLimitPerIndex", "maxFailedIndexes", "selector",
                          "manualSelector", "template", "ttlSecondsAfterFinished",
                          "completionMode", "suspend", "podReplacementPolicy", "managedBy")],
    "JobTemplateSpec": [("metadata", "ObjectMeta"), ("spec", "JobSpec")],
    "CronJobSpec": [(f, "JobTemplateSpec" if f == "jobTemplate" else None) for f in (
        "schedule", "timeZone", "startingDeadlineSeconds", "concurrencyPolicy", "suspend",
        "jobTemplate", "successfulJobsHistoryLimit", "failedJobsHistoryLimit")],
    "PodDisruptionBudgetSpec": [("minAvailable", None), ("selector", "LabelSelector"),
                                ("maxUnavailable", None),
                                ("unhealthyPodEvictionPolicy", None)],
    "PodDisruptionBudgetStatus": [(f, None) for f in (
        "observedGeneration", "disruptedPods", "disruptionsAllowed", "currentHealthy",
        "desiredHealthy", "expectedPods", "conditions")],
}
_HEAD = [("kind", None), ("apiVersion", None), ("metadata", "ObjectMeta")]
# kind -> the fields after TypeMeta and ObjectMeta
_KINDS: dict[str, list[tuple[str, str | None]]] = {
    "Deployment": [("spec", "DeploymentSpec"), ("status", None)],
    "Service": [("spec", "ServiceSpec"), ("status", None)],
    "Pod": [("spec", "PodSpec"), ("status", None)],
    "Job": [("spec", "JobSpec"), ("status", None)],
    "CronJob": [("spec", "CronJobSpec"), ("status", None)],
    "Namespace": [("spec", None), ("status", None)],
    "PodDisruptionBudget": [("spec", "PodDisruptionBudgetSpec"),
                            ("status", "PodDisruptionBudgetStatus")],
    "ConfigMap": [("immutable", None), ("data", MAP), ("binaryData", MAP)],
    "Secret": [("immutable", None), ("data", MAP), ("stringData", MAP), ("type", None)],
}


def _order(value, fields: list[tuple[str, str | None]]):
    if not isinstance(value, dict):
        return value
    out = {}
    for name, struct in fields:
        if name in value:
            out[name] = _sub(value[name], struct)
    out.update((k, v) for k, v in value.items() if k not in out)
    return out


def _sub(value, struct: str | None):
    if struct is None:
        return value
    if struct == MAP:
        return dict(sorted(value.items())) if isinstance(value, dict) else value
    if isinstance(value, list):
        return [_order(v, _S[struct]) for v in value]
    return _order(value, _S[struct])


def ordered(obj: dict) -> dict:
    """`obj` with its keys in the Go structs' order (kinds outside the table: TypeMeta and
    ObjectMeta first, the rest as they were)."""
    return _order(obj, _HEAD + _KINDS.get(obj.get("kind", ""), []))


_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
         "\u2029": "\\u2029"}


def go_json(obj: dict) -> str:
    """json.MarshalIndent(obj, "", "    ") of the typed object: struct order, UTF-8 kept,
    and encoding/json's HTML-safe escapes (<, >, & as \\u003c ...; they occur in strings only)."""
    text = json.dumps(ordered(obj), indent=4, ensure_ascii=False)
    for ch, esc in _HTML.items():
        text = text.replace(ch, esc)
    return text
