"""`application/vnd.kubernetes.protobuf` request bodies, decoded to the JSON objects the rest
of the API works on.

kubectl sends protobuf for `create configmap|secret|deployment|namespace|service|job|token`,
`auth can-i` and helm for its release Secrets and DeleteOptions; a 415 is final for them. The
body is `k8s\\0` + runtime.Unknown {1 TypeMeta {1 apiVersion, 2 kind}, 2 raw}, raw being the
kind's message. Replies stay JSON (the clients accept it).

The wire format is read by Google's `protobuf` library (a well-kept, fast C implementation;
a hand-written varint/length decoder would be ours to keep correct), with message
descriptors built at first use from the field table in netsim.api.protobuf_fields (upstream's
field numbers; no .proto compilation step). Go's JSON rules are then applied: a non-pointer
field at its zero value is absent (Go's marshaller writes those unconditionally), a pointer
one is kept (`replicas: 0`), embedded structs are inlined, and upstream's special messages
become their JSON forms (Time as RFC 3339, Quantity and IntOrString as scalars, bytes as
base64, RawExtension as the embedded JSON).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

from netsim.api import errors, routes
from netsim.api.protobuf_fields import MESSAGES

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
PREFIX = b"k8s\x00"

# Messages with a JSON form of their own (upstream's custom marshallers).
_SPECIAL = {
    "Time": "seconds=1:i64 nanos=2:i32",
    "Duration": "duration=1:i64",
    "Quantity": "string=1:s",
    "IntOrString": "type=1:i64 intVal=2:i32 strVal=3:s",
    "Raw": "raw=1:b",
    "ExtraValue": "items=1:s*",
    "Unknown": "typeMeta=1:TypeMeta raw=2:b contentEncoding=3:s contentType=4:s",
    "TypeMeta": "apiVersion=1:s kind=2:s",
}
_SCALARS = {"s": 9, "b": 12, "bool": 8, "i32": 5, "i64": 3, "f64": 1, "u32": 13, "u64": 4}
_ZERO = {"s": "", "b": b"", "bool": False, "i32": 0, "i64": 0, "f64": 0.0, "u32": 0, "u64": 0,
         "IntOrString": 0}
# apiVersion -> the table's package; DeleteOptions is registered in every group version.
_PACKAGES = {"v1": "core", "apps/v1": "apps", "batch/v1": "batch",
             "networking.k8s.io/v1": "networking", "discovery.k8s.io/v1": "discovery",
             "authorization.k8s.io/v1": "authorization",
             "authentication.k8s.io/v1": "authentication", "autoscaling/v1": "autoscaling",
             "policy/v1": "policy", "storage.k8s.io/v1": "storage"}
_EVERYWHERE = {"DeleteOptions": "meta.DeleteOptions"}


class _Field:
    __slots__ = ("json", "attr", "number", "type", "repeated", "map", "pointer")

    def __init__(self, spec: str, index: int):
        name, rest = spec.split("=", 1)
        number, typ = rest.split(":", 1)
        self.json, self.number = name, int(number)
        self.repeated, self.map, self.pointer = typ.endswith("*"), typ.endswith("{}"), \
            typ.endswith("?")
        self.type = typ.rstrip("*?{}")
        # an inlined embedded struct has no JSON name; the descriptor needs one
        self.attr = name or f"inline_{index}"


def _fields(message: str) -> list[_Field]:
    spec = _SPECIAL.get(message) or MESSAGES[message]
    return [_Field(s, i) for i, s in enumerate(spec.split())]


def _proto_name(message: str) -> str:
    return message.replace(".", "_")


class _Schema:
    """The descriptors of every message in the table, built once, on the first body."""

    def __init__(self) -> None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        fdp = descriptor_pb2.FileDescriptorProto(name="netsim_k8s.proto", package="netsim",
                                                 syntax="proto2")
        self.fields: dict[str, list[_Field]] = {}
        maps: set[str] = set()
        for message in [*_SPECIAL, *MESSAGES]:
            fields = self.fields[message] = _fields(message)
            mdp = fdp.message_type.add(name=_proto_name(message))
            for f in fields:
                label = 3 if (f.repeated or f.map) else 1
                fd = mdp.field.add(name=f.attr, number=f.number, label=label)
                if f.map:  # on the wire a map is a repeated {1 key, 2 value} message
                    entry = "Map_" + _proto_name(f.type)
                    maps.add(f.type)
                    fd.type, fd.type_name = 11, ".netsim." + entry
                elif f.type in _SCALARS:
                    fd.type = _SCALARS[f.type]
                else:
                    fd.type, fd.type_name = 11, ".netsim." + _proto_name(f.type)
        for value in sorted(maps):
            mdp = fdp.message_type.add(name="Map_" + _proto_name(value))
            mdp.field.add(name="key", number=1, label=1, type=9)
            vd = mdp.field.add(name="value", number=2, label=1)
            if value in _SCALARS:
                vd.type = _SCALARS[value]
            else:
                vd.type, vd.type_name = 11, ".netsim." + _proto_name(value)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(fdp)
        self._classes = {}
        for message in self.fields:
            desc = pool.FindMessageTypeByName("netsim." + _proto_name(message))
            self._classes[message] = message_factory.GetMessageClass(desc)

    def parse(self, message: str, data: bytes):
        from google.protobuf.message import DecodeError
        msg = self._classes[message]()
        try:
            msg.ParseFromString(data)
        except (DecodeError, ValueError, RuntimeError) as e:
            raise _WireError("unexpected EOF") from e
        return msg

    def to_json(self, message: str, msg) -> Any:
        """Go's JSON for a decoded message (None: the zero value, left out)."""
        special = _JSON_FORMS.get(message)
        if special is not None:
            return special(msg)
        out: dict = {}
        for f in self.fields[message]:
            if f.repeated:
                values = [self._value(f.type, v) for v in getattr(msg, f.attr)]
                if values:
                    out[f.json] = [{} if v is None else v for v in values]
                continue
            if f.map:
                entries = getattr(msg, f.attr)
                if entries:
                    out[f.json] = {e.key: _or_empty(self._value(f.type, e.value), f.type)
                                   for e in entries}
                continue
            if not msg.HasField(f.attr):
                continue
            value = self._value(f.type, getattr(msg, f.attr))
            if f.pointer:  # set means set, zero or not (an empty message too: emptyDir {})
                value = _or_empty(value, f.type)
                if value is not None:
                    out[f.json] = value
            elif not f.json:  # embedded struct: its fields are the parent's
                out.update(value or {})
            elif value is not None and value != _ZERO.get(f.type) and value != {}:
                out[f.json] = value
        return out

    def _value(self, typ: str, v) -> Any:
        if typ == "b":
            return base64.b64encode(v).decode()
        if typ in _SCALARS:
            return v
        return self.to_json(typ, v)


def _or_empty(value, typ: str):
    if value is None:
        return {} if typ not in _SCALARS and typ not in ("Time", "Quantity", "IntOrString",
                                                          "Raw", "Duration") else None
    return value


def _time(msg) -> str | None:
    if not msg.seconds and not msg.nanos:
        return None
    return datetime.fromtimestamp(msg.seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(msg) -> str | None:
    """Go's time.Duration.String() for whole seconds and up (what clients set)."""
    ns = msg.duration
    if not ns:
        return None
    s, sign = abs(ns) / 1e9, "-" if ns < 0 else ""
    h, rem = divmod(int(s), 3600)
    m, sec = divmod(rem, 60)
    frac = s - int(s)
    sec_text = f"{sec + frac:g}s"
    if h:
        return f"{sign}{h}h{m}m{sec_text}"
    if m:
        return f"{sign}{m}m{sec_text}"
    return sign + sec_text


def _int_or_string(msg):
    return msg.strVal if msg.type == 1 else msg.intVal


def _raw(msg):
    if not msg.raw:
        return None
    try:
        return json.loads(msg.raw)
    except (ValueError, UnicodeDecodeError):
        return base64.b64encode(msg.raw).decode()


_JSON_FORMS = {
    "Time": _time,
    "Duration": _duration,
    "Quantity": lambda m: m.string or None,
    "IntOrString": _int_or_string,
    "Raw": _raw,
    "ExtraValue": lambda m: list(m.items),
}


class _WireError(Exception):
    pass


_schema: _Schema | None = None


def schema() -> _Schema:
    global _schema
    if _schema is None:
        _schema = _Schema()
    return _schema


def message_for(api_version: str, kind: str) -> str | None:
    """The table's message for a kind in an API version (None: not one netsim decodes)."""
    if kind in _EVERYWHERE:
        return _EVERYWHERE[kind]
    pkg = _PACKAGES.get(api_version)
    name = f"{pkg}.{kind}"
    return name if pkg and name in MESSAGES else None


def decode(data: bytes, default_api: str = "", default_kind: str = "") -> dict:
    """A protobuf body to its JSON object. Raises _WireError with Go's words."""
    if not data.startswith(PREFIX):
        raise _WireError("provided data does not appear to be a protobuf message, expected "
                         "prefix [107 56 115 0]")
    s = schema()
    unknown = s.parse("Unknown", data[len(PREFIX):])
    api = unknown.typeMeta.apiVersion or default_api
    kind = unknown.typeMeta.kind or default_kind
    message = message_for(api, kind)
    if message is None:  # the caller's kind checks answer in the apiserver's words
        return {"apiVersion": api, "kind": kind}
    obj = s.to_json(message, s.parse(message, unknown.raw))
    if message != "meta.DeleteOptions":
        obj = {"apiVersion": api, "kind": kind, **obj}
    else:
        obj = {"kind": "DeleteOptions", "apiVersion": api, **obj}
    return obj


def encode(obj: dict, message: str | None = None) -> bytes:
    """The protobuf body for a JSON object (tests build clients' bodies with it)."""
    s = schema()
    message = message or message_for(obj.get("apiVersion", ""), obj.get("kind", ""))
    if message is None:
        raise ValueError(f"no protobuf message for {obj.get('apiVersion')} {obj.get('kind')}")
    inner = s._classes[message]()
    _fill(s, message, inner, obj)
    unknown = s._classes["Unknown"]()
    unknown.typeMeta.apiVersion = obj.get("apiVersion", "")
    unknown.typeMeta.kind = obj.get("kind", "")
    unknown.raw = inner.SerializeToString()
    return PREFIX + unknown.SerializeToString()


def _fill(s: _Schema, message: str, msg, obj) -> None:
    if message == "Time":
        t = datetime.strptime(obj, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        msg.seconds = int(t.timestamp())
        return
    if message == "Quantity":
        msg.string = str(obj)
        return
    if message == "IntOrString":
        if isinstance(obj, str):
            msg.type, msg.strVal = 1, obj
        else:
            msg.intVal = obj
        return
    if message == "Raw":
        msg.raw = json.dumps(obj).encode()
        return
    if message == "ExtraValue":
        msg.items.extend(obj)
        return
    for f in s.fields[message]:
        value = obj if not f.json else obj.get(f.json)
        if value is None:
            continue
        if f.repeated:
            for v in value:
                if f.type in _SCALARS:
                    getattr(msg, f.attr).append(base64.b64decode(v) if f.type == "b" else v)
                else:
                    _fill(s, f.type, getattr(msg, f.attr).add(), v)
        elif f.map:
            for k, v in value.items():
                e = getattr(msg, f.attr).add(key=k)
                if f.type in _SCALARS:
                    e.value = base64.b64decode(v) if f.type == "b" else v
                else:
                    _fill(s, f.type, e.value, v)
        elif f.type in _SCALARS:
            setattr(msg, f.attr, base64.b64decode(value) if f.type == "b" else value)
        else:
            sub = getattr(msg, f.attr)
            sub.SetInParent()
            _fill(s, f.type, sub, value)


def _summary(raw: bytes, n: int = 30) -> str:
    """The apiserver's summarizeData for a body that is no JSON."""
    if not raw:
        return "<empty>"
    return raw[:n].hex() + (" ..." if len(raw) > n else "")


# The kind a subresource's body is (the URL's resource is the parent's).
_SUBRESOURCE_KINDS = {"token": ("authentication.k8s.io/v1", "TokenRequest"),
                      "scale": ("autoscaling/v1", "Scale"),
                      "eviction": ("policy/v1", "Eviction"),
                      "binding": ("v1", "Binding")}


def decode_body(raw: bytes, req: routes.Request) -> dict:
    """routes.BODY_DECODERS entry: the body as an object, or the apiserver's 400 (its
    transformDecodeError: with the body's kind when one was read, else a summary)."""
    res = req.res
    want = res.kind if res is not None else "Object"
    default_api = req.url_api or (res.api_version if res is not None else "")
    if req.subresource in _SUBRESOURCE_KINDS:
        default_api, want = _SUBRESOURCE_KINDS[req.subresource]
    try:
        return decode(raw, default_api, want)
    except _WireError as e:
        if raw.startswith(PREFIX):
            raise errors.BadRequest(f'{want} in version "{default_api.rsplit("/", 1)[-1]}" '
                                    f"cannot be handled as a {want}: {e}") from None
        raise errors.BadRequest(f"the object provided is unrecognized (must be of type "
                                f"{want}): {e} ({_summary(raw)})") from None


routes.BODY_DECODERS[CONTENT_TYPE] = decode_body
