"""SPDY/3.1 framing, the wire format kubectl's port-forward speaks (plain, after
`Upgrade: SPDY/3.1`, or tunnelled inside WebSocket binary messages).

Hand-written on purpose: there is no maintained Python SPDY library (the protocol was
retired in favour of HTTP/2 and only Kubernetes' streams still use it, through Go's
moby/spdystream). This is only the framing layer of draft-mbelshe-httpbis-spdy-00 §2.6 —
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE and DATA,
name/value header blocks compressed with the stdlib's zlib and SPDY/3's fixed dictionary —
as spdystream's framer reads and writes it. Sessions, streams and flow control belong to
the caller (spdystream does no flow control: WINDOW_UPDATE and SETTINGS are parsed, never
required)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3

# control frame types
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_SETTINGS_CLEAR = 0x01

# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL = 1, 2, 3, 4, 5
INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED = 6, 7, 8, 9

MAX_DATA_LENGTH = (1 << 24) - 1

# SPDY/3's zlib dictionary (§2.6.10.1): the common header names as length-prefixed
# strings, then status lines, dates and media types as they are. 1423 bytes.
_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding "
    "accept-language accept-ranges age allow authorization cache-control connection "
    "content-base content-encoding content-language content-length content-location "
    "content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive",
             "origin"]
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivate"
    "max-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) + \
    _DICT_TAIL.encode()


class SpdyError(Exception):
    """A frame this codec cannot accept (the session should send GOAWAY and end)."""


# A header block: lower-case names; several values of one name joined by NUL, as on the wire.
Headers = dict


@dataclass
class Data:
    stream_id: int
    data: bytes = b""
    fin: bool = False


@dataclass
class SynStream:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    associated_to: int = 0
    priority: int = 0
    slot: int = 0
    fin: bool = False
    unidirectional: bool = False


@dataclass
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass
class RstStream:
    stream_id: int
    status: int = CANCEL


@dataclass
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)
    clear: bool = False


@dataclass
class Ping:
    id: int


@dataclass
class GoAway:
    last_good_stream_id: int = 0
    status: int = 0


@dataclass
class HeadersFrame:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


Frame = (Data | SynStream | SynReply | RstStream | Settings | Ping | GoAway | HeadersFrame
         | WindowUpdate)


def encode_header_block(headers: Headers) -> bytes:
    """The uncompressed name/value block: a count, then each length-prefixed name and value."""
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), str(value).encode()
        out.append(struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v)
    return b"".join(out)


def decode_header_block(raw: bytes) -> Headers:
    """Inverse of encode_header_block; names lower-cased, a repeated name's values joined
    by NUL (spdystream's framer reports those as errors but keeps them)."""
    try:
        (count,), pos = struct.unpack_from(">I", raw), 4
        headers: Headers = {}
        for _ in range(count):
            name, pos = _string(raw, pos)
            value, pos = _string(raw, pos)
            name = name.lower()
            headers[name] = headers[name] + "\0" + value if name in headers else value
    except struct.error as e:
        raise SpdyError("header block truncated") from e
    if pos != len(raw):
        raise SpdyError("header block has trailing bytes")
    return headers


def _string(raw: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from(">I", raw, pos)
    end = pos + 4 + n
    if end > len(raw):
        raise SpdyError("header block truncated")
    return raw[pos + 4:end].decode("utf-8", "replace"), end


def first(headers: Headers, name: str) -> str:
    """The first value of `name` ("" when absent), as Go's http.Header.Get."""
    return headers.get(name, "").split("\0", 1)[0]


class Framer:
    """One end of a SPDY session: encodes the frames it sends and decodes the bytes it
    receives. Each direction's header blocks share one zlib stream (the dictionary is set
    once, each block sync-flushed), so frames must be encoded in the order they are sent
    and fed in the order they arrived. Not thread-safe."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._unz = zlib.decompressobj(zdict=DICTIONARY)
        self._buf = bytearray()

    # ---- sending ----------------------------------------------------------------------
    def _compress(self, headers: Headers) -> bytes:
        return self._z.compress(encode_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control(ftype: int, flags: int, body: bytes) -> bytes:
        if len(body) > MAX_DATA_LENGTH:
            raise SpdyError("frame too large")
        return struct.pack(">HHI", 0x8000 | VERSION, ftype, (flags << 24) | len(body)) + body

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, Data):
            if not 0 < frame.stream_id < 1 << 31:
                raise SpdyError("stream id zero is disallowed")
            if len(frame.data) > MAX_DATA_LENGTH:
                raise SpdyError("invalid data frame")
            return struct.pack(">II", frame.stream_id,
                               (FLAG_FIN if frame.fin else 0) << 24 | len(frame.data)) + frame.data
        if isinstance(frame, SynStream):
            flags = (FLAG_FIN if frame.fin else 0) | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
            body = struct.pack(">IIBB", frame.stream_id, frame.associated_to,
                               (frame.priority & 7) << 5, frame.slot) + self._compress(frame.headers)
            return self._control(SYN_STREAM, flags, body)
        if isinstance(frame, SynReply | HeadersFrame):
            ftype = SYN_REPLY if isinstance(frame, SynReply) else HEADERS
            body = struct.pack(">I", frame.stream_id) + self._compress(frame.headers)
            return self._control(ftype, FLAG_FIN if frame.fin else 0, body)
        if isinstance(frame, RstStream):
            return self._control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Settings):
            body = struct.pack(">I", len(frame.entries)) + b"".join(
                struct.pack(">II", (f << 24) | i, v) for f, i, v in frame.entries)
            return self._control(SETTINGS, FLAG_SETTINGS_CLEAR if frame.clear else 0, body)
        if isinstance(frame, Ping):
            return self._control(PING, 0, struct.pack(">I", frame.id))
        if isinstance(frame, GoAway):
            return self._control(GOAWAY, 0, struct.pack(">II", frame.last_good_stream_id,
                                                        frame.status))
        if isinstance(frame, WindowUpdate):
            return self._control(WINDOW_UPDATE, 0, struct.pack(">II", frame.stream_id, frame.delta))
        raise TypeError(f"not a SPDY frame: {frame!r}")

    # ---- receiving --------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        """Take bytes as they arrive (any split); returns the frames now complete. Control
        frames of unknown types are skipped, as the spec asks."""
        self._buf += data
        frames: list[Frame] = []
        while len(self._buf) >= 8:
            w1, w2 = struct.unpack_from(">II", self._buf)
            length = w2 & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            body = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            flags = w2 >> 24
            if not w1 & 0x80000000:
                sid = w1 & 0x7FFFFFFF
                if sid == 0:
                    raise SpdyError("stream id zero is disallowed")
                frames.append(Data(sid, body, bool(flags & FLAG_FIN)))
                continue
            version, ftype = (w1 >> 16) & 0x7FFF, w1 & 0xFFFF
            if version != VERSION:
                raise SpdyError(f"unsupported SPDY version {version}")
            frame = self._control_frame(ftype, flags, body)
            if frame is not None:
                frames.append(frame)
        return frames

    def _decompress(self, block: bytes) -> Headers:
        try:
            raw = self._unz.decompress(block)
        except zlib.error as e:
            raise SpdyError(f"header block: {e}") from e
        if self._unz.unconsumed_tail:
            raise SpdyError("compressed payload size was incorrect")
        return decode_header_block(raw)

    def _control_frame(self, ftype: int, flags: int, body: bytes) -> Frame | None:
        fin = bool(flags & FLAG_FIN)
        try:
            if ftype == SYN_STREAM:
                sid, assoc, pri, slot = struct.unpack_from(">IIBB", body)
                sid &= 0x7FFFFFFF
                if sid == 0:
                    raise SpdyError("stream id zero is disallowed")
                return SynStream(sid, self._decompress(body[10:]), assoc & 0x7FFFFFFF, pri >> 5,
                                 slot, fin, bool(flags & FLAG_UNIDIRECTIONAL))
            if ftype in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", body)
                sid &= 0x7FFFFFFF
                cls = SynReply if ftype == SYN_REPLY else HeadersFrame
                return cls(sid, self._decompress(body[4:]), fin)
            if ftype == RST_STREAM:
                sid, status = struct.unpack(">II", body)
                return RstStream(sid & 0x7FFFFFFF, status)
            if ftype == SETTINGS:
                (n,) = struct.unpack_from(">I", body)
                if len(body) != 4 + 8 * n:
                    raise SpdyError("invalid control frame")
                entries = []
                for k in range(n):
                    fid, value = struct.unpack_from(">II", body, 4 + 8 * k)
                    entries.append((fid >> 24, fid & 0xFFFFFF, value))
                return Settings(entries, bool(flags & FLAG_SETTINGS_CLEAR))
            if ftype == PING:
                (pid,) = struct.unpack(">I", body)
                return Ping(pid)
            if ftype == GOAWAY:
                last, status = struct.unpack(">II", body)
                return GoAway(last & 0x7FFFFFFF, status)
            if ftype == WINDOW_UPDATE:
                sid, delta = struct.unpack(">II", body)
                return WindowUpdate(sid & 0x7FFFFFFF, delta & 0x7FFFFFFF)
        except struct.error as e:
            raise SpdyError("invalid control frame") from e
        return None  # an unknown type: ignored (§2.2)


__all__ = ["Framer", "SpdyError", "DICTIONARY", "Data", "SynStream", "SynReply", "RstStream",
           "Settings", "Ping", "GoAway", "HeadersFrame", "WindowUpdate", "first"]
