"""MySQL-like greeter: sends a real protocol v10 handshake, so clients and `curl :3306` see it.

No SQL behind it: a client's login gets an ERR packet, garbage gets MySQL's "Bad handshake",
silence gets the connection closed after --timeout seconds (default 3).
Usage: python -m netsim.images.mysql [--port P ...] [--version TAG] [--bind ADDR] [--timeout S]
The version is the image tag: `5.7` -> server version `5.7.44-netsim`.
"""

import os
import sys
import threading

try:
    from . import _common as c
except ImportError:  # run as a script: python -S .../netsim/images/mysql.py
    import _common as c

# last release of each series, so `5.7` greets like the mysql:5.7 image does
SERIES = {"5.5": "5.5.62", "5.6": "5.6.51", "5.7": "5.7.44", "8.0": "8.0.40",
          "8.4": "8.4.3", "9.0": "9.0.1", "9.1": "9.1.0"}
MAJOR = {"5": "5.7.44", "8": "8.4.3", "9": "9.1.0"}
LATEST = "9.1.0"


def server_version(tag: str) -> str:
    """Image tag -> server version string: '5.7' -> '5.7.44-netsim', '8.0.36-oracle' -> '8.0.36-netsim'."""
    nums = []
    for part in tag.split("-")[0].split("."):
        if not part.isdigit():
            break
        nums.append(part)
    if len(nums) >= 3:
        base = ".".join(nums[:3])
    elif len(nums) == 2:
        base = SERIES.get(".".join(nums), ".".join(nums) + ".0")
    elif len(nums) == 1:
        base = MAJOR.get(nums[0], nums[0] + ".0.0")
    else:
        base = LATEST
    return base + "-netsim"


def packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def greeting(version: str, conn_id: int, salt: bytes) -> bytes:
    """Protocol::HandshakeV10, as mysqld sends it first on every connection."""
    old = version.split(".")[0] in ("5", "4")
    plugin = b"mysql_native_password" if old else b"caching_sha2_password"
    caps = 0x81FF_F7FF  # 5.7's set minus CLIENT_SSL: clients then log in without TLS
    payload = (
        b"\x0a" + version.encode() + b"\x00"
        + (conn_id & 0xFFFFFFFF).to_bytes(4, "little")
        + salt[:8] + b"\x00"
        + (caps & 0xFFFF).to_bytes(2, "little")
        + bytes([0x21 if old else 0xFF])  # utf8_general_ci / utf8mb4_0900_ai_ci
        + (0x0002).to_bytes(2, "little")  # SERVER_STATUS_AUTOCOMMIT
        + (caps >> 16).to_bytes(2, "little")
        + bytes([len(salt) + 1])
        + b"\x00" * 10
        + salt[8:] + b"\x00"
        + plugin + b"\x00"
    )
    return packet(0, payload)


def error(seq: int, code: int, state: str, msg: str) -> bytes:
    return packet(seq, b"\xff" + code.to_bytes(2, "little") + b"#" + state.encode()
                  + msg.encode("utf-8", "replace"))


def make_handler(version: str, timeout: float):
    counter = [0]
    lock = threading.Lock()

    def handle(conn, peer) -> None:
        with lock:
            counter[0] += 1
            conn_id = counter[0]
        salt = bytes(0x21 + b % 0x5E for b in os.urandom(20))  # printable, never NUL
        conn.sendall(greeting(version, conn_id, salt))
        conn.settimeout(timeout)
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        who = c.addr(peer)
        if not data:
            c.log(f"{c.now_iso()} {conn_id} [Note] {who}: closed without login")
            return
        user = None
        if len(data) >= 4 + 32 and data[3] == 1:
            payload = data[4:]
            caps = int.from_bytes(payload[:4], "little")
            end = payload.find(b"\x00", 32)
            if caps & 0x200 and end > 32:  # CLIENT_PROTOCOL_41 and a user name
                user = payload[32:end].decode("utf-8", "replace")
        if user is None:
            conn.sendall(error(1, 1043, "08S01", "Bad handshake"))
            c.log(f"{c.now_iso()} {conn_id} [Note] {who}: bad handshake")
            return
        host = peer[0]
        conn.sendall(error(2, 1045, "28000",
                           f"Access denied for user '{user}'@'{host}' "
                           "(netsim mysql greeter: no SQL server behind this handshake)"))
        c.log(f"{c.now_iso()} {conn_id} [Note] Access denied for user '{user}'@'{host}'")

    return handle


def main(argv: list[str] | None = None) -> None:
    c.install_signals()
    opts = c.parse_args(sys.argv[1:] if argv is None else argv, 3306)
    try:
        timeout = float(opts.get("timeout", 3.0))
    except ValueError:
        timeout = 3.0
    version = server_version(opts["version"])
    socks = c.listen(opts["bind"], opts["ports"])
    c.log(f"{c.now_iso()} 0 [System] mysqld (netsim greeter) {version} ready for connections. "
          + " ".join(f"port: {p}" for p in opts["ports"]))
    c.serve(socks, make_handler(version, timeout), timeout=timeout)


if __name__ == "__main__":
    main()
