"""Kubernetes' field validators (k8s.io/apimachinery/pkg/util/validation and friends).

One implementation for every kind: each `is_*` returns upstream's detail messages (empty
when valid), each helper that takes a path returns whole causes in kubectl's form
(`spec.ports[0].name: Invalid value: "http\\n": ...`). Every pattern is matched with
re.fullmatch: `re.match(...$)` would accept a trailing newline, which Go's `$` does not.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re

# ---- patterns and messages (upstream's constants) --------------------------------------------
DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
WILDCARD_SUBDOMAIN_FMT = "\\*\\." + DNS1123_SUBDOMAIN_FMT
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"

_LABEL = re.compile(DNS1123_LABEL_FMT)
_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
_DNS1035 = re.compile(DNS1035_LABEL_FMT)
_WILDCARD = re.compile(WILDCARD_SUBDOMAIN_FMT)
_QUALIFIED = re.compile(QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(LABEL_VALUE_FMT)
_CONFIG_KEY = re.compile(CONFIG_KEY_FMT)
_PORT_NAME_CHARS = re.compile("[-a-z0-9]+")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: `<msg> (e.g. 'a',  or 'b', regex used for validation is '<fmt>')`."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, ex in enumerate(examples):
        if i:
            out += " or "
        out += f"'{ex}', "
    return out + f"regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


LABEL_MSG = regex_error("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                        "characters or '-', and must start and end with an alphanumeric "
                        "character", DNS1123_LABEL_FMT, "my-name", "123-abc")
SUBDOMAIN_MSG = regex_error("a lowercase RFC 1123 subdomain must consist of lower case "
                            "alphanumeric characters, '-' or '.', and must start and end with "
                            "an alphanumeric character", DNS1123_SUBDOMAIN_FMT, "example.com")
DNS1035_MSG = regex_error("a DNS-1035 label must consist of lower case alphanumeric characters "
                          "or '-', start with an alphabetic character, and end with an "
                          "alphanumeric character", DNS1035_LABEL_FMT, "my-name", "abc-123")
WILDCARD_MSG = regex_error("a wildcard DNS-1123 subdomain must start with '*.', followed by a "
                           "valid DNS subdomain, which must consist of lower case alphanumeric "
                           "characters, '-' or '.' and end with an alphanumeric character",
                           WILDCARD_SUBDOMAIN_FMT, "*.example.com")
_QUALIFIED_MSG = regex_error("must consist of alphanumeric characters, '-', '_' or '.', and "
                             "must start and end with an alphanumeric character",
                             QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
LABEL_VALUE_MSG = regex_error("a valid label must be an empty string or consist of alphanumeric "
                              "characters, '-', '_' or '.', and must start and end with an "
                              "alphanumeric character", LABEL_VALUE_FMT,
                              "MyValue", "my_value", "12345")
CONFIG_KEY_MSG = regex_error("a valid config key must consist of alphanumeric characters, '-', "
                             "'_' or '.'", CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name")
PORT_RANGE_MSG = inclusive_range_error(1, 65535)
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
TOTAL_ANNOTATION_SIZE = 256 * 1024


# ---- Go value rendering (what field.Error prints) ----------------------------------------
def go_quote(s: str) -> str:
    """Go's %q of a string: `"web\\n"` (control characters escaped, as kubectl shows them)."""
    return json.dumps(s, ensure_ascii=False)


def go_value(v) -> str:
    """field.Error's rendering of a bad value: %q for strings, %v for numbers and bools."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v is None:
        return "null"
    return go_quote(str(v))


def invalid(path: str, value, detail: str) -> str:
    return f"{path}: Invalid value: {go_value(value)}: {detail}"


def required(path: str, detail: str = "") -> str:
    return f"{path}: Required value: {detail}" if detail else f"{path}: Required value"


def forbidden(path: str, detail: str) -> str:
    return f"{path}: Forbidden: {detail}"


def duplicate(path: str, value) -> str:
    return f"{path}: Duplicate value: {go_value(value)}"


def unsupported(path: str, value, supported) -> str:
    return (f"{path}: Unsupported value: {go_value(value)}: supported values: "
            + ", ".join(go_quote(s) for s in supported))


def too_long(path: str, n: int) -> str:
    return f"{path}: Too long: must have at most {n} bytes"


def too_many(path: str, actual: int, n: int) -> str:
    return f"{path}: Too many: {actual}: must have at most {n} items"


# ---- IsX: detail messages ------------------------------------------------------------------
def is_dns1123_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL.fullmatch(value):
        errs.append("must not contain dots" if _SUBDOMAIN.fullmatch(value) else LABEL_MSG)
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _SUBDOMAIN.fullmatch(value):
        errs.append(SUBDOMAIN_MSG)
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035.fullmatch(value):
        errs.append(DNS1035_MSG)
    return errs


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _WILDCARD.fullmatch(value):
        errs.append(WILDCARD_MSG)
    return errs


def is_qualified_name(value: str) -> list[str]:
    """IsQualifiedName: a label key / annotation key (`[prefix/]name`)."""
    errs = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + _QUALIFIED_MSG + " with an optional DNS subdomain prefix "
                "and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QUALIFIED.fullmatch(name):
        errs.append("name part " + _QUALIFIED_MSG)
    return errs


def is_label_value(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE.fullmatch(value):
        errs.append(LABEL_VALUE_MSG)
    return errs


def is_valid_port_name(name: str) -> list[str]:
    """IsValidPortName (an IANA_SVC_NAME): container ports, named targetPorts, Ingress ports."""
    errs = []
    if len(name) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARS.fullmatch(name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_port_num(n) -> list[str]:
    if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 65535:
        return []
    return [PORT_RANGE_MSG]


def is_config_map_key(key: str) -> list[str]:
    errs = []
    if len(key) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_KEY.fullmatch(key):
        errs.append(CONFIG_KEY_MSG)
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def parse_ip(value) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """netutils.ParseIPSloppy: a plain address, nothing around it (no zone, no spaces)."""
    if not isinstance(value, str) or value != value.strip() or "%" in value:
        return None
    return _parse_ip_text(value)


@functools.lru_cache(maxsize=1 << 16)
def _parse_ip_text(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The parse, remembered: every write of an Endpoints or EndpointSlice re-checks each
    of its addresses (hundreds for a large Service, on every pod change)."""
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


_LINK_LOCAL_MCAST = {4: ipaddress.ip_network("224.0.0.0/24"), 6: ipaddress.ip_network("ff02::/16")}


_IPV4_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_TEXT = re.compile(_IPV4_OCTET + "(\\." + _IPV4_OCTET + "){3}")


def is_ipv4_text(value) -> bool:
    """Whether `value` is a dotted quad parse_ip accepts, in its canonical text (decimal
    octets, no leading zeros), without building an address: for consumers that check every
    address of every object often (kube-proxy's snapshot); anything else may still be an
    address parse_ip reads."""
    return isinstance(value, str) and _IPV4_TEXT.fullmatch(value) is not None


# ---- path-taking helpers (whole causes) ----------------------------------------------------
def named(check, value, path: str) -> list[str]:
    """An `is_*` check on a field of an object nobody decoded (a consumer re-checking what
    the store holds): a value that is no string is refused as no name, not passed in."""
    if not isinstance(value, str):
        return [invalid(path, value, "must be a string")]
    return [invalid(path, value, m) for m in check(value)]


def _each(path: str, value, msgs: list[str]) -> list[str]:
    return [invalid(path, value, m) for m in msgs]


def dns1123_label(value: str, path: str) -> list[str]:
    return _each(path, value, is_dns1123_label(value))


def dns1123_subdomain(value: str, path: str) -> list[str]:
    return _each(path, value, is_dns1123_subdomain(value))


def qualified_name(value: str, path: str) -> list[str]:
    return _each(path, value, is_qualified_name(value))


def port_name(value: str, path: str) -> list[str]:
    return _each(path, value, is_valid_port_name(value))


def port_num(value, path: str) -> list[str]:
    return _each(path, value, is_valid_port_num(value))


PROTOCOLS = ("SCTP", "TCP", "UDP")


def protocol(value, path: str) -> list[str]:
    """A port's protocol: Required if empty, else one of supportedPortProtocols (containers'
    ports, Endpoints' ports)."""
    if not value:
        return [required(path)]
    if value not in PROTOCOLS:
        return [unsupported(path, value, PROTOCOLS)]
    return []


def port_num_or_name(value, path: str) -> list[str]:
    """ValidatePortNumOrName (a targetPort): 1-65535, or an IANA_SVC_NAME."""
    if isinstance(value, str):
        return port_name(value, path)
    return port_num(value, path)


def ip_address(value, path: str) -> list[str]:
    """validation.IsValidIP."""
    return [] if parse_ip(value) is not None else [invalid(path, value, IP_MSG)]


def non_special_ip(value, path: str) -> list[str]:
    """ValidateNonSpecialIP: what Endpoints, EndpointSlices and externalIPs may not hold."""
    ip = parse_ip(value)
    if ip is None:
        return [invalid(path, value, "must be a valid IP address")]
    errs = []
    if ip.is_unspecified:
        errs.append(invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local:
        errs.append(invalid(path, value,
                            "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if ip in _LINK_LOCAL_MCAST[ip.version]:
        errs.append(invalid(path, value, "may not be in the link-local multicast range "
                                         "(224.0.0.0/24, ff02::/10)"))
    return errs


def fully_qualified_domain_name(value: str, path: str) -> list[str]:
    """IsFullyQualifiedDomainName (EndpointSlice FQDN addresses)."""
    if not value:
        return [required(path)]
    name = value.removesuffix(".")
    errs = is_dns1123_subdomain(name)
    if errs:
        return [invalid(path, name, ",".join(errs))]
    if len(name.split(".")) < 2:
        return [invalid(path, name, "should be a domain with at least two segments separated "
                                    "by dots")]
    for label in name.split("."):
        errs = is_dns1123_label(label)
        if errs:
            return [invalid(path, label, ",".join(errs))]
    return []


def labels(m: dict | None, path: str) -> list[str]:
    """ValidateLabels: every key a qualified name, every value a label value."""
    errs = []
    for k, v in (m or {}).items():
        errs.extend(qualified_name(k, path))
        errs.extend(_each(path, v, is_label_value(v)))
    return errs


def annotations(m: dict | None, path: str) -> list[str]:
    """ValidateAnnotations: qualified keys (any case), 256 KiB in all."""
    errs = []
    total = 0
    for k, v in (m or {}).items():
        errs.extend(_each(path, k, is_qualified_name(k.lower())))
        total += len(k.encode()) + len(str(v).encode())
    if total > TOTAL_ANNOTATION_SIZE:
        errs.append(too_long(path, TOTAL_ANNOTATION_SIZE))
    return errs


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def label_selector(sel: dict | None, path: str) -> list[str]:
    """ValidateLabelSelector (matchLabels + matchExpressions)."""
    if not isinstance(sel, dict):
        return []
    errs = labels(sel.get("matchLabels"), f"{path}.matchLabels")
    for i, e in enumerate(sel.get("matchExpressions") or []):
        ep = f"{path}.matchExpressions[{i}]"
        op, vals = e.get("operator"), e.get("values") or []
        if op in ("In", "NotIn"):
            if not vals:
                errs.append(required(f"{ep}.values",
                                     "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if vals:
                errs.append(forbidden(f"{ep}.values", "may not be specified when `operator` "
                                                      "is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(f"{ep}.operator", op or "", "not a valid selector operator"))
        errs.extend(qualified_name(e.get("key") or "", f"{ep}.key"))
        for j, v in enumerate(vals):
            errs.extend(_each(f"{ep}.values[{j}]", v, is_label_value(v)))
    return errs


# ---- object names ------------------------------------------------------------------------------
def _mask_trailing_dash(name: str) -> str:
    """A generateName may end in '-': the random suffix follows it."""
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


def name_is_dns_subdomain(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool = False) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool = False) -> list[str]:
    """IsValidPathSegmentName: what any name must be to sit in a URL (Events)."""
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# ---- more IsX and path helpers (pods, nodes) ---------------------------------------------------
ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
ENV_VAR_NAME_MSG = regex_error("a valid environment variable name must consist of alphabetic "
                               "characters, digits, '_', '-', or '.', and must not start with "
                               "a digit", ENV_VAR_NAME_FMT,
                               "my.env-name", "MY_ENV.NAME", "MyEnvName1")
HTTP_HEADER_NAME_FMT = "[-A-Za-z0-9]+"
HTTP_HEADER_NAME_MSG = regex_error("a valid HTTP header must consist of alphanumeric characters "
                                   "or '-'", HTTP_HEADER_NAME_FMT, "X-Header-Name")
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
NEGATIVE_MSG = "must be greater than or equal to 0"
_ENV_VAR_NAME = re.compile(ENV_VAR_NAME_FMT)
_HTTP_HEADER_NAME = re.compile(HTTP_HEADER_NAME_FMT)


def has_chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_env_var_name(value: str) -> list[str]:
    """IsEnvVarName (the strict form: RelaxedEnvironmentVariableValidation is off in 1.30)."""
    errs = [] if _ENV_VAR_NAME.fullmatch(value) else [ENV_VAR_NAME_MSG]
    return errs + has_chdir_prefix(value)


def is_http_header_name(value: str) -> list[str]:
    return [] if _HTTP_HEADER_NAME.fullmatch(value) else [HTTP_HEADER_NAME_MSG]


def not_found(path: str, value) -> str:
    return f"{path}: Not found: {go_value(value)}"


def nonnegative(value, path: str) -> list[str]:
    """ValidateNonnegativeField (for a set, decoded integer)."""
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, NEGATIVE_MSG)]
    return []


def cidr(value, path: str) -> list[str]:
    """validation.IsValidCIDR (ParseCIDRSloppy: host bits may be set)."""
    if isinstance(value, str) and value == value.strip() and "/" in value:
        try:
            ipaddress.ip_network(value, strict=False)
            return []
        except ValueError:
            pass
    return [invalid(path, value, CIDR_MSG)]


STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def kube_finalizer_name(value: str, path: str) -> list[str]:
    """validateKubeFinalizerName: an unqualified finalizer must be a standard one."""
    if "/" not in value and value not in STANDARD_FINALIZERS:
        return [invalid(path, value, "name is neither a standard finalizer name nor is it "
                                     "fully qualified")]
    return []
