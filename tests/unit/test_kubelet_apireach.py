"""netsim.kubelet.apireach: the kubelet's heartbeat needs the API server's node over the LAN
(a `netsim link partition` from it makes the node stop posting status: NotReady)."""

from __future__ import annotations

import errno
import socket

from netsim.kubelet import apireach
from netsim.net.topology import ClusterConfig


def _cfg():
    cfg = ClusterConfig.make("t", nodes=2, lan="192.168.3.0/24")
    return cfg, cfg.nodes[0], cfg.nodes[1]


def _connect_raising(exc):
    def connect(self, addr):
        assert addr == ("192.168.3.171", 6443)
        if exc:
            raise exc
    return connect


def test_no_answer_is_unreachable_any_answer_is_reachable(monkeypatch):
    cfg, master, worker = _cfg()
    monkeypatch.setattr(socket.socket, "connect", _connect_raising(TimeoutError()))
    assert apireach.api_reachable(cfg, worker, timeout=0.1) is False
    monkeypatch.setattr(socket.socket, "connect",
                        _connect_raising(OSError(errno.EHOSTUNREACH, "No route to host")))
    assert apireach.api_reachable(cfg, worker) is False
    # a refusal is an answer: the link works (whatever listens or not)
    monkeypatch.setattr(socket.socket, "connect", _connect_raising(ConnectionRefusedError()))
    assert apireach.api_reachable(cfg, worker) is True
    monkeypatch.setattr(socket.socket, "connect", _connect_raising(None))
    assert apireach.api_reachable(cfg, worker) is True


def test_the_control_plane_node_itself_is_never_cut_off(monkeypatch):
    cfg, master, _ = _cfg()
    monkeypatch.setattr(socket.socket, "connect", _connect_raising(TimeoutError()))
    assert apireach.api_reachable(cfg, master) is True
