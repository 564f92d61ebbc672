"""Persistent per-node IPAM (like CNI host-local): sequential, never hands out an IP in use.

State is a JSON file guarded by flock, so it survives agent restarts and crashes.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os


class IpamExhausted(Exception):
    pass


class Ipam:
    def __init__(self, path: str, cidr: str):
        self.path = path
        self.net = ipaddress.ip_network(cidr)
        os.makedirs(os.path.dirname(path), exist_ok=True)

    @contextlib.contextmanager
    def _locked(self):
        with open(self.path + ".lock", "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)
            try:
                state = {"last": None, "allocated": {}}
                if os.path.exists(self.path):
                    with open(self.path) as f:
                        state = json.load(f)
                yield state
                tmp = self.path + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(state, f)
                os.replace(tmp, self.path)
            finally:
                fcntl.flock(lk, fcntl.LOCK_UN)

    def allocate(self, owner: str) -> str:
        """The IP for `owner` (the same one again if it already has one)."""
        with self._locked() as st:
            for ip, who in st["allocated"].items():
                if who == owner:
                    return ip
            # hosts() without the first (.1 is the bridge gateway), by arithmetic
            first = int(self.net.network_address) + 2
            n = max(self.net.num_addresses - 3, 0)
            start = 0
            if st["last"]:
                with contextlib.suppress(ValueError):
                    k = int(ipaddress.ip_address(st["last"])) - first
                    if 0 <= k < n:
                        start = k + 1
            for i in range(n):
                ip = str(ipaddress.ip_address(first + (start + i) % n))
                if ip not in st["allocated"]:
                    st["allocated"][ip] = owner
                    st["last"] = ip
                    return ip
        raise IpamExhausted(f"no IP addresses available in range set: {self.net}")

    def release(self, owner: str) -> None:
        with self._locked() as st:
            st["allocated"] = {ip: o for ip, o in st["allocated"].items() if o != owner}

    def allocated(self) -> dict[str, str]:
        with self._locked() as st:
            return dict(st["allocated"])
