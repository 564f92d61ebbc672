"""The Go types behind each kind's JSON, for the fields netsim reads.

The apiserver decodes a body into Go structs before anything validates it, so a string
where an int32 belongs never reaches validation: it is a 400 with encoding/json's words,
`Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string into
Go struct field ServiceSpec.spec.healthCheckNodePort of type int32`. `decode_errors` walks an
object against these shapes and reports the first mismatch the same way. Unknown fields
pass (the decoder ignores them too); null is every type's zero value.
"""

from __future__ import annotations

import json

from netsim.api import errors, quantity


class Scalar:
    def __init__(self, go: str, accepts):
        self.go, self.accepts = go, accepts


class Whole(str):
    """A decoder complaint that is not encoding/json's (a Quantity's own UnmarshalJSON)."""


class List:
    def __init__(self, elem):
        self.elem = elem

    @property
    def go(self) -> str:
        return "[]" + self.elem.go


class Map:
    def __init__(self, elem):
        self.elem = elem

    @property
    def go(self) -> str:
        return "map[string]" + self.elem.go


class Struct:
    def __init__(self, go_name: str, /, **fields):
        self.pkg = fields.pop("_pkg", "v1")
        self.name, self.fields = go_name, fields

    @property
    def go(self) -> str:
        return f"{self.pkg}.{self.name}"


def _int_range(bits: int):
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def ok(v) -> bool | str:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return False
        if isinstance(v, float) and not v.is_integer() or not lo <= v <= hi:
            return "number " + json.dumps(v)
        return True
    return ok


STR = Scalar("string", lambda v: isinstance(v, str))
BOOL = Scalar("bool", lambda v: isinstance(v, bool))
I32 = Scalar("int32", _int_range(32))
I64 = Scalar("int64", _int_range(64))
INTSTR = Scalar("intstr.IntOrString",
                lambda v: isinstance(v, str) or (_int_range(32)(v) is True))


def _quantity(v) -> bool | str:
    """resource.Quantity's UnmarshalJSON: a number, or a string ParseQuantity reads."""
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    if not isinstance(v, str):
        return False
    try:
        quantity.parse_exact(v)
    except ValueError:
        return Whole(quantity.FORMAT_MSG)
    return True


QUANTITY = Scalar("resource.Quantity", _quantity)
BYTES = Scalar("[]uint8", lambda v: isinstance(v, str))
STRINGS = List(STR)
STRMAP = Map(STR)

OWNER_REF = Struct("OwnerReference", apiVersion=STR, kind=STR, name=STR, uid=STR,
                   controller=BOOL, blockOwnerDeletion=BOOL)
OBJECT_META = Struct("ObjectMeta", name=STR, generateName=STR, namespace=STR,
                     labels=STRMAP, annotations=STRMAP, finalizers=STRINGS,
                     ownerReferences=List(OWNER_REF), resourceVersion=STR)
OBJECT_REF = Struct("ObjectReference", kind=STR, namespace=STR, name=STR, uid=STR,
                    apiVersion=STR, resourceVersion=STR)
LABEL_SELECTOR = Struct("LabelSelector", matchLabels=STRMAP, matchExpressions=List(
    Struct("LabelSelectorRequirement", key=STR, operator=STR, values=STRINGS)))

CONTAINER_PORT = Struct("ContainerPort", name=STR, hostPort=I32, containerPort=I32,
                        protocol=STR, hostIP=STR)
RESOURCES = Struct("ResourceRequirements", limits=Map(QUANTITY), requests=Map(QUANTITY))
HTTP_GET = Struct("HTTPGetAction", path=STR, port=INTSTR, host=STR, scheme=STR,
                  httpHeaders=List(Struct("HTTPHeader", name=STR, value=STR)))
TCP_SOCKET = Struct("TCPSocketAction", port=INTSTR, host=STR)
EXEC = Struct("ExecAction", command=STRINGS)
PROBE = Struct("Probe", httpGet=HTTP_GET, tcpSocket=TCP_SOCKET, exec=EXEC,
               grpc=Struct("GRPCAction", port=I32, service=STR),
               initialDelaySeconds=I32, timeoutSeconds=I32, periodSeconds=I32,
               successThreshold=I32, failureThreshold=I32,
               terminationGracePeriodSeconds=I64)
HANDLER = Struct("LifecycleHandler", httpGet=HTTP_GET, tcpSocket=TCP_SOCKET, exec=EXEC,
                 sleep=Struct("SleepAction", seconds=I64))
KEY_SELECTOR = dict(name=STR, key=STR, optional=BOOL)
ENV_VAR = Struct("EnvVar", name=STR, value=STR, valueFrom=Struct(
    "EnvVarSource",
    fieldRef=Struct("ObjectFieldSelector", apiVersion=STR, fieldPath=STR),
    resourceFieldRef=Struct("ResourceFieldSelector", containerName=STR, resource=STR,
                            divisor=QUANTITY),
    configMapKeyRef=Struct("ConfigMapKeySelector", **KEY_SELECTOR),
    secretKeyRef=Struct("SecretKeySelector", **KEY_SELECTOR)))
ENV_FROM = Struct("EnvFromSource", prefix=STR,
                  configMapRef=Struct("ConfigMapEnvSource", name=STR, optional=BOOL),
                  secretRef=Struct("SecretEnvSource", name=STR, optional=BOOL))
CONTAINER = Struct("Container", name=STR, image=STR, command=STRINGS, args=STRINGS,
                   workingDir=STR, ports=List(CONTAINER_PORT), env=List(ENV_VAR),
                   envFrom=List(ENV_FROM), resources=RESOURCES, imagePullPolicy=STR,
                   livenessProbe=PROBE, readinessProbe=PROBE, startupProbe=PROBE,
                   lifecycle=Struct("Lifecycle", postStart=HANDLER, preStop=HANDLER),
                   restartPolicy=STR, terminationMessagePath=STR,
                   terminationMessagePolicy=STR, stdin=BOOL, tty=BOOL,
                   volumeMounts=List(Struct("VolumeMount", name=STR, mountPath=STR,
                                            readOnly=BOOL, subPath=STR,
                                            mountPropagation=STR)))
KEY_TO_PATH = List(Struct("KeyToPath", key=STR, path=STR, mode=I32))
VOLUME = Struct("Volume", name=STR,
                emptyDir=Struct("EmptyDirVolumeSource", medium=STR, sizeLimit=QUANTITY),
                hostPath=Struct("HostPathVolumeSource", path=STR, type=STR),
                configMap=Struct("ConfigMapVolumeSource", name=STR, items=KEY_TO_PATH,
                                 defaultMode=I32, optional=BOOL),
                secret=Struct("SecretVolumeSource", secretName=STR, items=KEY_TO_PATH,
                              defaultMode=I32, optional=BOOL),
                persistentVolumeClaim=Struct("PersistentVolumeClaimVolumeSource",
                                             claimName=STR, readOnly=BOOL))
TOLERATION = Struct("Toleration", key=STR, operator=STR, value=STR, effect=STR,
                    tolerationSeconds=I64)
POD_SPEC = Struct("PodSpec", containers=List(CONTAINER), initContainers=List(CONTAINER),
                  restartPolicy=STR, terminationGracePeriodSeconds=I64,
                  activeDeadlineSeconds=I64, dnsPolicy=STR, nodeSelector=STRMAP,
                  serviceAccountName=STR, nodeName=STR, hostNetwork=BOOL,
                  hostname=STR, subdomain=STR, schedulerName=STR,
                  tolerations=List(TOLERATION), priority=I32,
                  enableServiceLinks=BOOL, volumes=List(VOLUME))
POD_TEMPLATE = Struct("PodTemplateSpec", metadata=OBJECT_META, spec=POD_SPEC)

SERVICE_PORT = Struct("ServicePort", name=STR, protocol=STR, appProtocol=STR, port=I32,
                      targetPort=INTSTR, nodePort=I32)
SERVICE_SPEC = Struct(
    "ServiceSpec", ports=List(SERVICE_PORT), selector=STRMAP, clusterIP=STR,
    clusterIPs=STRINGS, type=STR, externalIPs=STRINGS, sessionAffinity=STR,
    loadBalancerIP=STR, loadBalancerSourceRanges=STRINGS, externalName=STR,
    externalTrafficPolicy=STR, healthCheckNodePort=I32, publishNotReadyAddresses=BOOL,
    sessionAffinityConfig=Struct("SessionAffinityConfig", clientIP=Struct(
        "ClientIPConfig", timeoutSeconds=I32)),
    ipFamilies=STRINGS, ipFamilyPolicy=STR, allocateLoadBalancerNodePorts=BOOL,
    internalTrafficPolicy=STR)

ENDPOINT_ADDRESS = Struct("EndpointAddress", ip=STR, hostname=STR, nodeName=STR,
                          targetRef=OBJECT_REF)
ENDPOINTS_PORT = Struct("EndpointPort", name=STR, port=I32, protocol=STR, appProtocol=STR)
SLICE_ENDPOINT = Struct(
    "Endpoint", addresses=STRINGS, hostname=STR, nodeName=STR, zone=STR,
    targetRef=OBJECT_REF, deprecatedTopology=STRMAP,
    conditions=Struct("EndpointConditions", ready=BOOL, serving=BOOL, terminating=BOOL))
SLICE_PORT = Struct("EndpointPort", name=STR, protocol=STR, port=I32, appProtocol=STR)

BACKEND = Struct("IngressBackend", _pkg="networking",
                 service=Struct("IngressServiceBackend", _pkg="networking", name=STR,
                                port=Struct("ServiceBackendPort", _pkg="networking",
                                            name=STR, number=I32)),
                 resource=Struct("TypedLocalObjectReference", apiGroup=STR, kind=STR,
                                 name=STR),
                 serviceName=STR, servicePort=INTSTR)
INGRESS_SPEC = Struct(
    "IngressSpec", _pkg="networking", ingressClassName=STR, defaultBackend=BACKEND,
    backend=BACKEND,
    tls=List(Struct("IngressTLS", _pkg="networking", hosts=STRINGS, secretName=STR)),
    rules=List(Struct("IngressRule", _pkg="networking", host=STR, http=Struct(
        "HTTPIngressRuleValue", _pkg="networking", paths=List(Struct(
            "HTTPIngressPath", _pkg="networking", path=STR, pathType=STR,
            backend=BACKEND))))))

NETPOL_PORT = Struct("NetworkPolicyPort", _pkg="networking", protocol=STR, port=INTSTR,
                     endPort=I32)
NETPOL_PEER = Struct("NetworkPolicyPeer", _pkg="networking", podSelector=LABEL_SELECTOR,
                     namespaceSelector=LABEL_SELECTOR,
                     ipBlock=Struct("IPBlock", _pkg="networking", cidr=STR, **{"except": STRINGS}))
NETPOL_SPEC = Struct(
    "NetworkPolicySpec", _pkg="networking", podSelector=LABEL_SELECTOR, policyTypes=STRINGS,
    ingress=List(Struct("NetworkPolicyIngressRule", _pkg="networking",
                        ports=List(NETPOL_PORT), **{"from": List(NETPOL_PEER)})),
    egress=List(Struct("NetworkPolicyEgressRule", _pkg="networking",
                       ports=List(NETPOL_PORT), to=List(NETPOL_PEER))))

PVC_SPEC = Struct(
    "PersistentVolumeClaimSpec", accessModes=STRINGS, selector=LABEL_SELECTOR,
    resources=Struct("VolumeResourceRequirements", limits=Map(QUANTITY), requests=Map(QUANTITY)),
    volumeName=STR, storageClassName=STR, volumeMode=STR, volumeAttributesClassName=STR)
NODE_SELECTOR = Struct("NodeSelector", nodeSelectorTerms=List(Struct(
    "NodeSelectorTerm", matchExpressions=List(Struct(
        "NodeSelectorRequirement", key=STR, operator=STR, values=STRINGS)))))
PV_SPEC = Struct(
    "PersistentVolumeSpec", capacity=Map(QUANTITY), accessModes=STRINGS, claimRef=OBJECT_REF,
    persistentVolumeReclaimPolicy=STR, storageClassName=STR, mountOptions=STRINGS,
    volumeMode=STR, nodeAffinity=Struct("VolumeNodeAffinity", required=NODE_SELECTOR),
    hostPath=Struct("HostPathVolumeSource", path=STR, type=STR),
    local=Struct("LocalVolumeSource", path=STR, fsType=STR))

_WORKLOAD = dict(replicas=I32, selector=LABEL_SELECTOR, template=POD_TEMPLATE,
                 minReadySeconds=I32, revisionHistoryLimit=I32)
STRATEGY = Struct("DeploymentStrategy", type=STR, rollingUpdate=Struct(
    "RollingUpdateDeployment", maxUnavailable=INTSTR, maxSurge=INTSTR))

JOB_SPEC = Struct("JobSpec", template=POD_TEMPLATE, selector=LABEL_SELECTOR,
                  manualSelector=BOOL, parallelism=I32, completions=I32, backoffLimit=I32,
                  activeDeadlineSeconds=I64, ttlSecondsAfterFinished=I32,
                  completionMode=STR, suspend=BOOL)

# kind -> top-level shape (TypeMeta and status are left alone)
KINDS: dict[str, Struct] = {
    "Pod": Struct("Pod", metadata=OBJECT_META, spec=POD_SPEC),
    "Service": Struct("Service", metadata=OBJECT_META, spec=SERVICE_SPEC),
    "Namespace": Struct("Namespace", metadata=OBJECT_META,
                        spec=Struct("NamespaceSpec", finalizers=STRINGS)),
    "Node": Struct("Node", metadata=OBJECT_META, spec=Struct(
        "NodeSpec", podCIDR=STR, podCIDRs=STRINGS, unschedulable=BOOL,
        taints=List(Struct("Taint", key=STR, value=STR, effect=STR)))),
    "ConfigMap": Struct("ConfigMap", metadata=OBJECT_META, data=STRMAP,
                        binaryData=Map(BYTES), immutable=BOOL),
    "Secret": Struct("Secret", metadata=OBJECT_META, data=Map(BYTES), stringData=STRMAP,
                     type=STR, immutable=BOOL),
    "ServiceAccount": Struct("ServiceAccount", metadata=OBJECT_META),
    "Endpoints": Struct("Endpoints", metadata=OBJECT_META, subsets=List(Struct(
        "EndpointSubset", addresses=List(ENDPOINT_ADDRESS),
        notReadyAddresses=List(ENDPOINT_ADDRESS), ports=List(ENDPOINTS_PORT)))),
    "EndpointSlice": Struct("EndpointSlice", metadata=OBJECT_META, addressType=STR,
                            endpoints=List(SLICE_ENDPOINT), ports=List(SLICE_PORT)),
    "Deployment": Struct("Deployment", metadata=OBJECT_META, spec=Struct(
        "DeploymentSpec", strategy=STRATEGY, progressDeadlineSeconds=I32, paused=BOOL,
        **_WORKLOAD)),
    "ReplicaSet": Struct("ReplicaSet", metadata=OBJECT_META,
                         spec=Struct("ReplicaSetSpec", **_WORKLOAD)),
    "DaemonSet": Struct("DaemonSet", metadata=OBJECT_META,
                        spec=Struct("DaemonSetSpec", **_WORKLOAD)),
    "StatefulSet": Struct("StatefulSet", metadata=OBJECT_META, spec=Struct(
        "StatefulSetSpec", serviceName=STR, **_WORKLOAD)),
    "Job": Struct("Job", metadata=OBJECT_META, spec=JOB_SPEC),
    "CronJob": Struct("CronJob", metadata=OBJECT_META, spec=Struct(
        "CronJobSpec", schedule=STR, timeZone=STR, suspend=BOOL, concurrencyPolicy=STR,
        startingDeadlineSeconds=I64, successfulJobsHistoryLimit=I32,
        failedJobsHistoryLimit=I32, jobTemplate=Struct(
            "JobTemplateSpec", metadata=OBJECT_META, spec=JOB_SPEC))),
    "PersistentVolumeClaim": Struct("PersistentVolumeClaim", metadata=OBJECT_META,
                                    spec=PVC_SPEC),
    "PersistentVolume": Struct("PersistentVolume", metadata=OBJECT_META, spec=PV_SPEC),
    "StorageClass": Struct("StorageClass", _pkg="storage", metadata=OBJECT_META,
                           provisioner=STR, parameters=STRMAP, reclaimPolicy=STR,
                           mountOptions=STRINGS, allowVolumeExpansion=BOOL,
                           volumeBindingMode=STR),
    "Ingress": Struct("Ingress", metadata=OBJECT_META, spec=INGRESS_SPEC),
    "IngressClass": Struct("IngressClass", metadata=OBJECT_META, spec=Struct(
        "IngressClassSpec", _pkg="networking", controller=STR,
        parameters=Struct("IngressClassParametersReference", _pkg="networking",
                          apiGroup=STR, kind=STR, name=STR, scope=STR, namespace=STR))),
    "NetworkPolicy": Struct("NetworkPolicy", metadata=OBJECT_META, spec=NETPOL_SPEC),
    "PodDisruptionBudget": Struct("PodDisruptionBudget", metadata=OBJECT_META, spec=Struct(
        "PodDisruptionBudgetSpec", minAvailable=INTSTR, selector=LABEL_SELECTOR,
        maxUnavailable=INTSTR, unhealthyPodEvictionPolicy=STR)),
    "Event": Struct("Event", metadata=OBJECT_META, reason=STR, message=STR, type=STR,
                    count=I32, involvedObject=OBJECT_REF, reportingComponent=STR,
                    reportingInstance=STR, action=STR,
                    source=Struct("EventSource", component=STR, host=STR)),
    "ControllerRevision": Struct("ControllerRevision", metadata=OBJECT_META, revision=I64),
}

# status: only its shape is checked (an object), as a status PUT decodes the whole body too.
for _kind, _pkg in (("Pod", "v1"), ("Service", "v1"), ("Namespace", "v1"), ("Node", "v1"),
                    ("Deployment", "v1"), ("ReplicaSet", "v1"), ("DaemonSet", "v1"),
                    ("StatefulSet", "v1"), ("Job", "v1"), ("CronJob", "v1"),
                    ("Ingress", "networking"), ("PodDisruptionBudget", "v1")):
    KINDS[_kind].fields.setdefault("status", Struct(f"{_kind}Status", _pkg=_pkg))


def json_kind(v) -> str:
    """encoding/json's name for a JSON value's type (`string`, `number`, `array`, ...)."""
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, list):
        return "array"
    return "object"


def _first_error(value, typ, owner: str, path: str) -> str | None:
    """The first `json: cannot unmarshal X into Go struct field Owner.path of type T`
    (or a Quantity's own complaint), or None."""
    if value is None:
        return None
    if isinstance(typ, Scalar):
        ok = typ.accepts(value)
        if ok is True:
            return None
        if isinstance(ok, Whole):
            return str(ok)
        what = ok if isinstance(ok, str) else json_kind(value)
        return f"json: cannot unmarshal {what} into Go struct field {owner}.{path} of type {typ.go}"
    if isinstance(typ, List):
        if not isinstance(value, list):
            return (f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                    f"{owner}.{path} of type {typ.go}")
        for item in value:
            err = _first_error(item, typ.elem, owner, path)
            if err:
                return err
        return None
    if isinstance(typ, Map):
        if not isinstance(value, dict):
            return (f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                    f"{owner}.{path} of type {typ.go}")
        for item in value.values():
            err = _first_error(item, typ.elem, owner, path)
            if err:
                return err
        return None
    if not isinstance(value, dict):
        return (f"json: cannot unmarshal {json_kind(value)} into Go struct field "
                f"{owner}.{path} of type {typ.go}")
    for key, item in value.items():
        sub = typ.fields.get(key)
        if sub is not None:
            err = _first_error(item, sub, typ.name, f"{path}.{key}" if path else key)
            if err:
                return err
    return None


def _fits(typ):
    """A check `value -> bool`: whether `_first_error(value, typ, ...)` is None, without
    building a field path for every value walked (every write walks its whole object: a
    1,000-address Endpoints took ~10 ms). Only a value that does not fit is walked again
    by _first_error, for the words."""
    if isinstance(typ, Scalar):
        if typ is STR or typ is BYTES:
            return lambda v: v is None or isinstance(v, str)
        acc = typ.accepts
        return lambda v: v is None or acc(v) is True
    if isinstance(typ, List):
        elem = _checker(typ.elem)
        if typ.elem is STR:
            return lambda v: v is None or (isinstance(v, list) and all(
                x is None or isinstance(x, str) for x in v))
        return lambda v: v is None or (isinstance(v, list) and all(map(elem, v)))
    if isinstance(typ, Map):
        elem = _checker(typ.elem)
        if typ.elem is STR:
            return lambda v: v is None or (isinstance(v, dict) and all(
                x is None or isinstance(x, str) for x in v.values()))
        return lambda v: v is None or (isinstance(v, dict) and all(map(elem, v.values())))
    # A struct: string fields checked inline (most fields), the others by their checker.
    fields = {k: (None if t is STR else _checker(t)) for k, t in typ.fields.items()}
    get = fields.get
    missing = object()

    def fits(v) -> bool:
        if v is None:
            return True
        if not isinstance(v, dict):
            return False
        for key, item in v.items():
            check = get(key, missing)
            if check is missing or item is None:
                continue
            if check is None:
                if not isinstance(item, str):
                    return False
            elif not check(item):
                return False
        return True
    return fits


_CHECKERS: dict[int, object] = {}


def _checker(typ):
    """_fits(typ), made once per type (the shapes are fixed once this module is loaded)."""
    check = _CHECKERS.get(id(typ))
    if check is None:
        check = _CHECKERS[id(typ)] = _fits(typ)
    return check


def decode_errors(obj: dict) -> str | None:
    """The decoder's complaint about a wrongly typed field of a known kind, or None."""
    shape = KINDS.get(obj.get("kind", "")) if isinstance(obj, dict) else None
    if shape is None:
        return None
    if _checker(shape)(obj):
        return None
    return _first_error(obj, shape, shape.name, "")


def check_decodes(obj: dict, version: str | None = None) -> None:
    """Raise the 400 the apiserver gives for a body its Go types cannot hold. The store
    calls this first on every write (create, update, status, patch), before it or
    admission reads a field, so a malformed body is a 400 in these words, never a 500."""
    err = decode_errors(obj)
    if err:
        kind = obj.get("kind", "")
        if version is None:
            version = str(obj.get("apiVersion") or "v1").rsplit("/", 1)[-1]
        raise errors.BadRequest(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                                f"{err}")
