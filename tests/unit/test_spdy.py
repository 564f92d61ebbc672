"""The SPDY/3.1 codec (netsim/api/streams/spdy.py) against the bytes the spec lays out and
Go's spdystream framer writes: what kubectl port-forward sends and expects back."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest

from netsim.api.streams import spdy


def test_dictionary_is_spdystreams():
    # sha256 of moby/spdystream spdy/dictionary.go's headerDictionary (1423 bytes), which
    # kubectl's framer primes both zlib streams with
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == \
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert spdy.DICTIONARY.endswith(b",*,enq=0.")


@pytest.mark.parametrize("frame,wire", [
    # control bit + version 3, type, flags|length, body (draft-mbelshe-httpbis-spdy-00 2.6)
    (spdy.Ping(1), "80030006 00000004 00000001"),
    (spdy.RstStream(3, spdy.CANCEL), "80030003 00000008 00000003 00000005"),
    (spdy.GoAway(7, 0), "80030007 00000008 00000007 00000000"),
    (spdy.WindowUpdate(5, 65536), "80030009 00000008 00000005 00010000"),
    (spdy.Settings([(0, 7, 65536)]), "80030004 0000000c 00000001 00000007 00010000"),
    (spdy.Settings([(1, 4, 100)], clear=True), "80030004 0100000c 00000001 01000004 00000064"),
    # data: stream id (control bit clear), flags|length, payload
    (spdy.Data(1, b"hello"), "00000001 00000005 68656c6c6f"),
    (spdy.Data(3, b"", fin=True), "00000003 01000000"),
])
def test_fixed_frames_have_the_spec_layout(frame, wire):
    raw = bytes.fromhex(wire.replace(" ", ""))
    assert spdy.Framer().encode(frame) == raw
    assert spdy.Framer().feed(raw) == [frame]


def test_syn_stream_layout_and_header_block():
    raw = spdy.Framer().encode(spdy.SynStream(1, {"streamtype": "error", "port": "80"},
                                              priority=0, fin=False))
    ctrl, ftype, fl = struct.unpack(">HHI", raw[:8])
    assert (ctrl, ftype, fl >> 24, fl & 0xFFFFFF) == (0x8003, 1, 0, len(raw) - 8)
    sid, assoc, pri, slot = struct.unpack(">IIBB", raw[8:18])
    assert (sid, assoc, pri, slot) == (1, 0, 0, 0)
    # the block is a zlib stream primed with the dictionary, sync-flushed
    block = zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(raw[18:])
    assert block == (b"\x00\x00\x00\x02" b"\x00\x00\x00\x0astreamtype\x00\x00\x00\x05error"
                     b"\x00\x00\x00\x04port\x00\x00\x00\x0280")
    assert raw.endswith(b"\x00\x00\xff\xff")  # Z_SYNC_FLUSH's empty stored block


def test_header_blocks_share_one_zlib_stream_per_direction():
    client, server = spdy.Framer(), spdy.Framer()
    frames = [spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}),
              spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"}),
              spdy.Data(3, b"GET / HTTP/1.1\r\n\r\n"),
              spdy.SynStream(5, {"streamtype": "error", "port": "80", "requestid": "1"},
                             priority=2, unidirectional=True),
              spdy.HeadersFrame(5, {"x": "a\0b"}, fin=True)]
    wire = b"".join(client.encode(f) for f in frames)
    # later blocks are back-references into the stream: much shorter than the first
    assert len(client.encode(spdy.SynStream(7, frames[0].headers))) < \
        len(spdy.Framer().encode(spdy.SynStream(7, frames[0].headers)))
    got = []
    for i in range(0, len(wire), 7):  # arriving in arbitrary pieces
        got += server.feed(wire[i:i + 7])
    assert got == frames
    # and the other direction has its own stream
    reply = server.encode(spdy.SynReply(1, {}))
    assert client.feed(reply) == [spdy.SynReply(1, {})]


def test_a_block_from_another_compressor_decodes():
    """Go's compress/zlib at BestCompression is not Python's zlib: decoding must not
    depend on how the peer compressed, only on the dictionary."""
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, spdy.DICTIONARY)
    blocks = []
    for sid, hdrs in ((1, {"streamtype": "error"}), (3, {"streamtype": "data", "port": "8080"})):
        block = z.compress(spdy.encode_header_block(hdrs)) + z.flush(zlib.Z_SYNC_FLUSH)
        body = struct.pack(">IIBB", sid, 0, 0, 0) + block
        blocks.append(struct.pack(">HHI", 0x8003, 1, len(body)) + body)
    f = spdy.Framer()
    assert f.feed(b"".join(blocks)) == [spdy.SynStream(1, {"streamtype": "error"}),
                                        spdy.SynStream(3, {"streamtype": "data", "port": "8080"})]


def test_repeated_names_and_first_value():
    raw = (b"\x00\x00\x00\x02" b"\x00\x00\x00\x04Port\x00\x00\x00\x0280"
           b"\x00\x00\x00\x04port\x00\x00\x00\x0281")
    h = spdy.decode_header_block(raw)
    assert h == {"port": "80\x0081"}
    assert spdy.first(h, "port") == "80" and spdy.first(h, "requestid") == ""


def test_unknown_control_frames_are_skipped_bad_input_refused():
    f = spdy.Framer()
    unknown = struct.pack(">HHI", 0x8003, 0x0A, 4) + b"abcd"
    assert f.feed(unknown + spdy.Framer().encode(spdy.Ping(2))) == [spdy.Ping(2)]
    with pytest.raises(spdy.SpdyError, match="version 2"):
        spdy.Framer().feed(struct.pack(">HHI", 0x8002, 6, 4) + b"\x00\x00\x00\x01")
    with pytest.raises(spdy.SpdyError, match="stream id zero"):
        spdy.Framer().feed(struct.pack(">II", 0, 0))
    with pytest.raises(spdy.SpdyError):
        spdy.Framer().feed(struct.pack(">HHI", 0x8003, 1, 12) + b"\x00" * 10 + b"xx")
    with pytest.raises(spdy.SpdyError, match="truncated"):
        spdy.decode_header_block(b"\x00\x00\x00\x01\x00\x00\x00\x09port")


def test_a_partial_frame_waits_for_the_rest():
    f = spdy.Framer()
    raw = spdy.Framer().encode(spdy.Data(1, b"x" * 100))
    assert f.feed(raw[:50]) == []
    assert f.feed(raw[50:]) == [spdy.Data(1, b"x" * 100)]


# What kubectl 1.37.1 sent on a plain SPDY port-forward session for one connection that
# wrote "ping" and closed (recorded at netsim's server): Go's compress/zlib header blocks.
KUBECTL_137_CONNECTION = bytes.fromhex(
    "800300010000003d0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a080"
    "8614cb45a024cc6461c0c0c0c0590489c44c50e2663400000000ffff0000000101000000800300010000"
    "001800000003000000000000c2aa15540a2512d209000000ffff000000030000000470696e6700000003"
    "01000000")


def test_kubectls_own_frames_decode():
    headers = {"streamtype": "error", "port": "80", "requestid": "0"}
    assert spdy.Framer().feed(KUBECTL_137_CONNECTION) == [
        spdy.SynStream(1, headers),
        spdy.Data(1, b"", fin=True),  # kubectl closes its side of the error stream at once
        spdy.SynStream(3, {**headers, "streamtype": "data"}),
        spdy.Data(3, b"ping"),
        spdy.Data(3, b"", fin=True),
    ]
