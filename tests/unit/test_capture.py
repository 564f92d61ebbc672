"""netsim.inspect.capture's pure parts: target parsing, tcpdump's command line, the pcap
merge of several captures (svc/NAME)."""

from __future__ import annotations

import io
import struct

import pytest

from netsim.inspect import capture as cap


def test_capture_targets():
    assert cap.parse_target("pod/x") == ("pod", "x")
    assert cap.parse_target("x") == ("pod", "x")
    assert cap.parse_target("no/k8s-slave-172") == ("node", "k8s-slave-172")
    assert cap.parse_target("service/web") == ("svc", "web")
    with pytest.raises(cap.CaptureError, match='resource type "deploy"'):
        cap.parse_target("deploy/x")
    argv = cap.tcpdump_argv(cap.Place("pod/d/x", "tt-pod-1", "eth0"), "-", 5, ["tcp", "port", "80"])
    assert argv[:4] == ["ip", "netns", "exec", "tt-pod-1"]
    assert argv[5:] == ["-i", "eth0", "--immediate-mode", "-U", "-n", "-w", "-", "-c", "5", "tcp", "port", "80"]


def _pcap(path, records: list[tuple[int, bytes]]) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for sec, data in records:
            f.write(struct.pack("<IIII", sec, 0, len(data), len(data)) + data)


def test_pcap_merge_in_time_order(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    _pcap(a, [(1, b"\x01" * 20), (3, b"\x03" * 20)])
    _pcap(b, [(2, b"\x02" * 20)])
    assert cap._packets_in(str(a)) == 2
    out = io.BytesIO()
    assert cap.merge_pcaps([str(a), str(b)], out) == 3
    merged = tmp_path / "m.pcap"
    merged.write_bytes(out.getvalue())
    from scapy.utils import RawPcapReader
    assert [d[:1] for d, _ in RawPcapReader(str(merged))] == [b"\x01", b"\x02", b"\x03"]
    out = io.BytesIO()
    assert cap.merge_pcaps([str(a), str(b)], out, count=2) == 2
    out = io.BytesIO()
    assert cap.merge_pcaps([], out) == 0 and len(out.getvalue()) == 24  # a header, no packets


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="the CLI wants root first")
@pytest.mark.parametrize("verb,words", [("capture", "[-w WRITE]"), ("trace", "FROM TO")])
def test_help_is_the_verbs_own(verb, words, capsys):
    from netsim.cli.main import main
    with pytest.raises(SystemExit) as e:
        main([verb, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: netsim {verb} ") and words in out
