"""Pure encoder: a small kube-proxy `nft -f` transaction -> the nf_tables netlink batch that
nft 1.0.6 itself would send for it, byte for byte (sequence numbers and set ids aside).

Why: nft 1.0.6 (Debian 12's) fetches the chain, set, object and flowtable caches of the whole
ruleset for every transaction holding an `add rule`, `add element` or `delete ...`
(cache.c, evaluate_cache_add/del), and the kernel's chain dump restarts its walk over every
chain for each reply buffer (nf_tables_dump_chains). With 5,000 services (~60,000 chains)
that is ~0.4 s of CPU for a partial sync of one service, nearly all of it the dump; the
batch itself costs the kernel a few ms. Sending the batch ourselves skips the cache: the
text stays the truth (it is rendered as before, logged, and is what `nft -f` gets whenever
this encoder does not know a line), the kernel receives the same messages, so `nft list
ruleset` shows the same rules, and the batch is one transaction as `nft -f` makes it.

Only the forms kube-proxy writes into service/endpoint chains and its maps are known: chain
add/flush/delete, rules made of `ip saddr|daddr [!=] ADDR[/LEN]`, `fib saddr type local`,
`meta l4proto PROTO` matches ending in `jump`/`goto CHAIN`, `numgen random mod N vmap {...}`
or `dnat to IP:PORT` (optional `comment "..."`), and elements of kube-proxy's sets and maps.
Anything else (the table, base chains, affinity sets, firewall rules, other tables) raises
`Unsupported`, and the caller runs `nft -f` instead. Encodings were read off nft 1.0.6's
own batches (strace); tests/unit/test_proxy_nftnl.py holds those batches.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass, field

TABLE = "kube-proxy"
_PREFIX = "ip kube-proxy "

NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 16
NFNL_MSG_BATCH_END = 17
AF_INET = 2

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_APPEND = 0x800
NLM_F_CREATE = 0x400
NLA_F_NESTED = 0x8000

MSG_NEWCHAIN, MSG_DELCHAIN = 3, 5
MSG_NEWRULE, MSG_DELRULE = 6, 8
MSG_NEWSET, MSG_DELSET = 9, 11
MSG_NEWSETELEM, MSG_DELSETELEM = 12, 14

NFT_JUMP, NFT_GOTO = -3, -4
NF_DROP = 0
_VERDICT_DATA_TYPE = 0xFFFFFF00  # NFT_DATA_VERDICT
_INTEGER_TYPE = 4  # nft's TYPE_INTEGER (numgen's key)
# NFTA_SET_USERDATA nft 1.0.6 writes for `numgen ... vmap { ... }`: key byteorder host,
# data byteorder invalid, data typeof (a verdict), no data interval
_NUMGEN_VMAP_UDATA = bytes.fromhex("00040100000001040000000004080004010000000100060400000000")

PROTOS = {"tcp": 6, "udp": 17, "sctp": 132}

# kube-proxy's sets and maps, by key layout (kube-proxy creates them in the full sync)
_KEY_IP = ("ip",)
_KEY_IP_PROTO_PORT = ("ip", "proto", "port")
_KEY_PROTO_PORT = ("proto", "port")
SET_KEYS: dict[str, tuple[str, ...]] = {
    "cluster-ips": _KEY_IP,
    "nodeport-ips": _KEY_IP,
    "service-ips": _KEY_IP_PROTO_PORT,
    "no-endpoint-services": _KEY_IP_PROTO_PORT,
    "firewall-ips": _KEY_IP_PROTO_PORT,
    "service-nodeports": _KEY_PROTO_PORT,
    "no-endpoint-nodeports": _KEY_PROTO_PORT,
}


class Unsupported(ValueError):
    """A line this encoder does not know: send the text through `nft -f`."""


# --- attributes ---------------------------------------------------------------------------

def _attr(typ: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("<HH", n, typ) + payload + b"\0" * (-n % 4)


def _nest(typ: int, *parts: bytes) -> bytes:
    return _attr(typ | NLA_F_NESTED, b"".join(parts))


def _u32(typ: int, v: int) -> bytes:
    return _attr(typ, struct.pack(">I", v & 0xFFFFFFFF))


def _str(typ: int, s: str) -> bytes:
    return _attr(typ, s.encode() + b"\0")


def _value(typ: int, data: bytes) -> bytes:
    return _nest(typ, _attr(1, data))  # NFTA_DATA_VALUE


def _verdict(typ: int, code: int, chain: str | None = None) -> bytes:
    inner = _u32(1, code) + (_str(2, chain) if chain is not None else b"")
    return _nest(typ, _nest(2, inner))  # NFTA_DATA_VERDICT { CODE, CHAIN }


def _udata_comment(text: str) -> bytes:
    v = text.encode() + b"\0"
    if len(v) > 255:
        raise Unsupported("comment too long")
    return bytes((0, len(v))) + v  # NFTNL_UDATA_{RULE,SET_ELEM}_COMMENT


def _expr(name: str, *attrs: bytes) -> bytes:
    return _nest(1, _str(1, name), _nest(2, *attrs))  # NFTA_LIST_ELEM { NAME, DATA }


def _payload(offset: int, length: int) -> bytes:  # network header, into reg 1
    return _expr("payload", _u32(1, 1), _u32(2, 1), _u32(3, offset), _u32(4, length))


def _cmp(op: int, data: bytes) -> bytes:  # op 0 eq, 1 neq
    return _expr("cmp", _u32(1, 1), _u32(2, op), _value(3, data))


def _immediate_verdict(code: int, chain: str | None) -> bytes:
    return _expr("immediate", _u32(1, 0), _verdict(2, code, chain))


def _immediate_value(reg: int, data: bytes) -> bytes:
    return _expr("immediate", _u32(1, reg), _value(2, data))


# --- the batch ----------------------------------------------------------------------------

@dataclass
class Batch:
    """nf_tables messages (nlmsg type, flags, attributes) and the text line each came from."""

    messages: list[tuple[int, int, bytes]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # per message: its source line
    next_set_id: int = 1

    def add(self, msg: int, flags: int, attrs: bytes, line: str) -> None:
        self.messages.append(((NFNL_SUBSYS_NFTABLES << 8) | msg, flags, attrs))
        self.lines.append(line)

    def encode(self, seq: int = 0, ack: bool = True) -> bytes:
        """BATCH_BEGIN, the messages, BATCH_END; seq counts up from `seq` (message i has
        seq + 1 + i). `ack`: NLM_F_ACK on the last message, whose ack comes once the kernel
        decided about the whole batch (errors come whether asked for or not)."""
        out = [_nlmsg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES, b"")]
        last = len(self.messages) - 1
        for i, (typ, flags, attrs) in enumerate(self.messages):
            out.append(_nlmsg(typ, flags | (NLM_F_ACK if ack and i == last else 0),
                              seq + 1 + i, AF_INET, 0, attrs))
        out.append(_nlmsg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, seq + 1 + len(self.messages), 0,
                          NFNL_SUBSYS_NFTABLES, b""))
        return b"".join(out)


def _nlmsg(typ: int, flags: int, seq: int, family: int, res_id: int, attrs: bytes) -> bytes:
    body = struct.pack(">BBH", family, 0, res_id) + attrs  # nfgenmsg (res_id big-endian)
    return struct.pack("<IHHII", 16 + len(body), typ, flags, seq, 0) + body


_COMMENT = re.compile(r'^(.*?) comment "([^"]*)"$')
_NUMGEN = re.compile(r"^numgen random mod (\d+) vmap \{ (.*) \}$")
_VMAP_ENTRY = re.compile(r"^(\d+) : goto (\S+)$")
_DNAT = re.compile(r"^dnat to (\d+\.\d+\.\d+\.\d+):(\d+)$")


def encode(text: str) -> Batch:
    """The batch for `text`, or Unsupported at the first line this encoder does not know."""
    b = Batch()
    for line in text.splitlines():
        if line:
            try:
                _line(b, line)
            except (IndexError, KeyError, struct.error) as e:  # a form cut short
                raise Unsupported(line) from e
    return b


def _name(rest: str) -> str:
    if not rest or " " in rest or '"' in rest or "{" in rest:
        raise Unsupported(rest)
    return rest


def _line(b: Batch, line: str) -> None:
    verb, _, rest = line.partition(" ")
    obj, _, rest = rest.partition(" ")
    if not rest.startswith(_PREFIX):
        raise Unsupported(line)
    rest = rest[len(_PREFIX):]
    t = _str(1, TABLE)
    if obj == "chain":
        name = _name(rest)
        if verb == "add":
            b.add(MSG_NEWCHAIN, NLM_F_REQUEST | NLM_F_CREATE, t + _str(3, name), line)
        elif verb == "flush":
            b.add(MSG_DELRULE, NLM_F_REQUEST, t + _str(2, name), line)
        elif verb == "delete":
            b.add(MSG_DELCHAIN, NLM_F_REQUEST, t + _str(3, name), line)
        else:
            raise Unsupported(line)
    elif obj == "rule" and verb == "add":
        chain, _, rule = rest.partition(" ")
        _rule(b, _name(chain), rule, line)
    elif obj == "element" and verb in ("add", "delete"):
        _element(b, verb, rest, line)
    elif obj == "set" and verb == "delete":
        b.add(MSG_DELSET, NLM_F_REQUEST, t + _str(2, _name(rest)), line)
    else:
        raise Unsupported(line)


def _ip4(s: str) -> bytes:
    try:
        return ipaddress.IPv4Address(s).packed
    except ValueError as e:
        raise Unsupported(s) from e


def _addr_match(field_: str, neg: bool, addr: str) -> list[bytes]:
    offset = 12 if field_ == "saddr" else 16
    op = 1 if neg else 0
    if "/" not in addr:
        return [_payload(offset, 4), _cmp(op, _ip4(addr))]
    try:
        net = ipaddress.IPv4Network(addr, strict=True)
    except ValueError as e:
        raise Unsupported(addr) from e
    plen = net.prefixlen
    if plen == 32:
        return [_payload(offset, 4), _cmp(op, net.network_address.packed)]
    if plen == 0 or plen % 8:
        if plen == 0:
            raise Unsupported(addr)
        return [_payload(offset, 4),
                _expr("bitwise", _u32(1, 1), _u32(2, 1), _u32(3, 4),
                      _value(4, net.netmask.packed), _value(5, b"\0\0\0\0")),
                _cmp(op, net.network_address.packed)]
    n = plen // 8  # nft shortens a byte-aligned prefix to a shorter load
    return [_payload(offset, n), _cmp(op, net.network_address.packed[:n])]


def _rule(b: Batch, chain: str, rule: str, line: str) -> None:
    comment = None
    m = _COMMENT.match(rule)
    if m:
        rule, comment = m.group(1), m.group(2)
    words = rule.split(" ")
    exprs: list[bytes] = []
    pre: list[tuple[int, int, bytes]] = []  # the anonymous map and its elements go first
    i = 0
    while i < len(words):
        w = words[i:]
        if w[0] == "ip" and len(w) >= 3 and w[1] in ("saddr", "daddr"):
            neg = w[2] == "!="
            if neg and len(w) < 4:
                raise Unsupported(line)
            exprs += _addr_match(w[1], neg, w[3] if neg else w[2])
            i += 4 if neg else 3
        elif w[:4] == ["fib", "saddr", "type", "local"]:
            # fib flags saddr, result addrtype, into reg 1; == RTN_LOCAL (host order)
            exprs += [_expr("fib", _u32(3, 1), _u32(2, 3), _u32(1, 1)),
                      _cmp(0, struct.pack("=I", 2))]
            i += 4
        elif w[:2] == ["meta", "l4proto"] and len(w) >= 3 and w[2] in PROTOS:
            exprs += [_expr("meta", _u32(2, 16), _u32(1, 1)), _cmp(0, bytes((PROTOS[w[2]],)))]
            i += 3
        elif w[0] in ("jump", "goto") and len(w) == 2:
            exprs.append(_immediate_verdict(NFT_JUMP if w[0] == "jump" else NFT_GOTO,
                                            _name(w[1])))
            i += 2
        elif w[0] == "numgen":
            m = _NUMGEN.match(" ".join(w))
            if not m:
                raise Unsupported(line)
            exprs += _numgen_vmap(b, pre, int(m.group(1)), m.group(2), line)
            i = len(words)
        elif w[0] == "dnat":
            m = _DNAT.match(" ".join(w))
            if not m or not exprs:  # nft needs the l4proto match before a port
                raise Unsupported(line)
            port = int(m.group(2))
            if not 0 < port < 65536:
                raise Unsupported(line)
            exprs += [_immediate_value(1, _ip4(m.group(1))),
                      _immediate_value(2, struct.pack(">H", port)),
                      _expr("nat", _u32(1, 1), _u32(2, AF_INET), _u32(3, 1), _u32(5, 2),
                            _u32(7, 2))]
            i = len(words)
        else:
            raise Unsupported(line)
    if not exprs:
        raise Unsupported(line)
    for msg, flags, attrs in pre:
        b.add(msg, flags, attrs, line)
    attrs = _str(1, TABLE) + _str(2, chain) + _nest(4, *exprs)
    if comment is not None:
        attrs += _attr(7, _udata_comment(comment))
    b.add(MSG_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND, attrs, line)


def _numgen_vmap(b: Batch, pre: list, mod: int, body: str, line: str) -> list[bytes]:
    entries = []
    for part in body.split(" , "):
        m = _VMAP_ENTRY.match(part)
        if not m:
            raise Unsupported(line)
        entries.append((int(m.group(1)), _name(m.group(2))))
    if not 0 < mod < 2**31 or not entries:
        raise Unsupported(line)
    set_id = b.next_set_id
    b.next_set_id += 1
    t = _str(1, TABLE)
    name = _str(2, "__map%d")
    pre.append((MSG_NEWSET, NLM_F_REQUEST | NLM_F_CREATE,
                t + name + _u32(3, 0x0B)  # anonymous | constant | map
                + _u32(4, _INTEGER_TYPE) + _u32(5, 4) + _u32(6, _VERDICT_DATA_TYPE)
                + _u32(7, 0) + _u32(10, set_id) + _nest(9, _u32(1, len(entries)))
                + _attr(13, _NUMGEN_VMAP_UDATA)))
    # libnftnl numbers the elements of a list 1, 2, ... (not NFTA_LIST_ELEM each)
    elems = [_nest(i, _value(1, struct.pack("=I", k)), _verdict(2, NFT_GOTO, chain))
             for i, (k, chain) in enumerate(entries, 1)]
    pre.append((MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE,
                t + name + _u32(4, set_id) + _nest(3, *elems)))
    return [_expr("numgen", _u32(1, 1), _u32(2, mod), _u32(3, 1), _u32(4, 0)),
            _expr("lookup", _u32(2, 1), _u32(3, 0), _str(1, "__map%d"), _u32(4, set_id))]


def _key(layout: tuple[str, ...], text: str) -> bytes:
    parts = text.split(" . ")
    if len(parts) != len(layout):
        raise Unsupported(text)
    out = b""
    for kind, p in zip(layout, parts, strict=True):
        if kind == "ip":
            out += _ip4(p)
        elif kind == "proto":
            if p not in PROTOS:
                raise Unsupported(p)
            out += bytes((PROTOS[p], 0, 0, 0))
        else:
            if not p.isdigit() or not 0 <= int(p) < 65536:
                raise Unsupported(p)
            out += struct.pack(">H", int(p)) + b"\0\0"
    return out


_ELEMENT = re.compile(r'^(\S+) \{ (.*?)(?: comment "([^"]*)")?(?: : (.*))? \}$')


def _element(b: Batch, verb: str, rest: str, line: str) -> None:
    m = _ELEMENT.match(rest)
    if not m or m.group(1) not in SET_KEYS:
        raise Unsupported(line)
    name, key, comment, value = m.groups()
    if " , " in key or (verb == "delete" and (comment is not None or value is not None)):
        raise Unsupported(line)
    layout = SET_KEYS[name]
    elem = _value(1, _key(layout, key))
    if value is not None:
        if len(layout) == 1:
            raise Unsupported(line)  # a set has no values
        if value == "drop":
            elem += _verdict(2, NF_DROP)
        elif value.startswith("goto ") or value.startswith("jump "):
            elem += _verdict(2, NFT_GOTO if value[0] == "g" else NFT_JUMP, _name(value[5:]))
        else:
            raise Unsupported(line)
    elif len(layout) > 1 and verb == "add":
        raise Unsupported(line)  # a map element needs its value
    if comment is not None:
        elem += _attr(6, _udata_comment(comment))
    attrs = _str(1, TABLE) + _str(2, name) + _nest(3, _nest(1, elem))
    if verb == "add":
        b.add(MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE, attrs, line)
    else:
        b.add(MSG_DELSETELEM, NLM_F_REQUEST, attrs, line)
