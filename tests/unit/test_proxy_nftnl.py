"""netsim's nf_tables batch encoder against the batch nft 1.0.6 itself sent for the same text
(tests/unit/recorded/nftnl-batch.*): same messages, same attributes, byte for byte, so the
kernel holds the same rules and `nft list ruleset` prints the same text either way."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from netsim.proxy import nftables, nftnl
from tests.bench.bench_proxy_sync import snap

REC = Path(__file__).parent / "recorded"


def _messages(buf: bytes) -> list[tuple[int, int, int, bytes]]:
    out, i = [], 0
    while i < len(buf):
        ln, typ, flags, _seq, _pid = struct.unpack_from("<IHHII", buf, i)
        fam = buf[i + 16]
        out.append((typ, flags, fam, buf[i + 20:i + ln]))
        i += (ln + 3) & ~3
    return out


def _attrs(b: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(b):
        ln, typ = struct.unpack_from("<HH", b, i)
        out.append((typ, b[i:i + ((ln + 3) & ~3)]))
        i += (ln + 3) & ~3
    return out


def _strip_named_set_id(typ: int, attrs: bytes) -> bytes:
    """nft names a known set and also gives the id of its cache entry (NFTA_SET_ELEM_LIST_
    SET_ID); the kernel looks a set up by name first, so the encoder leaves the id out."""
    if typ & 0xFF != nftnl.MSG_NEWSETELEM:
        return attrs
    parts = _attrs(attrs)
    if any(t == 2 and b"__map%d" in raw for t, raw in parts):
        return attrs
    return b"".join(raw for t, raw in parts if t != 4)


def test_batch_is_nft_1_0_6s():
    text = (REC / "nftnl-batch.nft").read_text()
    theirs = _messages(bytes.fromhex((REC / "nftnl-batch.hex").read_text().replace("\n", "")))
    first_set = next(a for t, _f, _fam, a in theirs if t & 0xFF == nftnl.MSG_NEWSET)
    # nft numbers the anonymous maps of a batch on from its cache's count; start there too
    start = struct.unpack(">I", dict(_attrs(first_set))[10][4:8])[0]
    batch = nftnl.Batch(next_set_id=start)
    for line in text.splitlines():
        nftnl._line(batch, line)
    ours = _messages(batch.encode(ack=False))
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a[:3] == b[:3], (k, batch.lines[k - 1] if k else "begin")
        assert a[3] == _strip_named_set_id(b[0], b[3]), (k, batch.lines[k - 1])


def test_ack_flag_on_the_last_message():
    batch = nftnl.encode("flush chain ip kube-proxy service-X-a/b/tcp/p\n"
                         "delete chain ip kube-proxy service-X-a/b/tcp/p\n")
    msgs = _messages(batch.encode(seq=100))
    assert [f & nftnl.NLM_F_ACK for _t, f, _fam, _a in msgs] == [0, 0, nftnl.NLM_F_ACK, 0]


@pytest.mark.parametrize("line", [
    'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
    "add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }",
    "add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check",
    "add rule ip kube-proxy service-X-a/b/tcp/p ip saddr @affinity-Y goto endpoint-Y",
    "add rule ip kube-proxy endpoint-Y update @affinity-Y { ip saddr }",
    "add rule ip kube-proxy firewall-X ip saddr != { 1.2.3.0/24 , 5.6.7.8 } drop",
    "add set ip kube-proxy affinity-Y { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }",
    "add element ip netsim-netpol pods-X { 10.244.1.2 }",
    "add element ip kube-proxy service-ips { 10.96.0.1 . tcp . 80 }",
    "add element ip kube-proxy cluster-ips { 10.96.0.1 , 10.96.0.2 }",
    "flush map ip kube-proxy service-ips",
    "add rule ip kube-proxy service-X ip daddr 10.96.0.0/0 drop",
    "add rule ip kube-proxy service-X ip saddr !=",
    "add rule ip kube-proxy service-X meta l4proto tcp dnat to 10.1.1.1:99999",
    "add element ip kube-proxy service-ips { 10.96.0.1 . tcp . 80 : accept }",
])
def test_unknown_lines_go_to_nft(line):
    with pytest.raises(nftnl.Unsupported):
        nftnl.encode(line + "\n")


def test_partial_syncs_are_encoded():
    """What a one-service partial sync and the stale-chain cleanup write is all known."""
    opts = nftables.NftOptions(service_cidrs=("10.96.0.0/12",))
    full = nftables.render(snap(20), opts)
    part = nftables.render(snap(20, shift=1), opts, changed={"bench/svc-19"},
                           existing=full.state)
    assert "add rule" in part.text
    assert len(set(nftnl.encode(part.text).lines)) == part.text.count("\n")
    gone = nftables.render(snap(19), opts, changed={"bench/svc-19"}, existing=part.state)
    assert "delete element" in gone.text and gone.stale_chains
    nftnl.encode(gone.text)
    nftnl.encode(nftables.render_delete_chains(gone.stale_chains))
    with pytest.raises(nftnl.Unsupported):  # a full sync starts with the table
        nftnl.encode(full.text)
