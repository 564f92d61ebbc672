"""`netsim capture`: tcpdump in the right network namespace, found by pod, node or Service.

A user names what to watch (`pod/x`, `node/k8s-slave-172`, `svc/web` = every endpoint's
pod); this module finds the netns and interface (a pod's eth0 in its sandbox netns, the
node netns' interfaces), runs one `tcpdump` per place and hands back pcap: streamed as it
comes for one place (so `-w - | wireshark -k -i -` shows packets live), merged in time
order for several (one pcap stream needs one file header, so each tcpdump writes a file of
its own and the merge comes at the end).

Every tcpdump is started by us in a new session and ended by its pid in a `finally`,
whether the capture stopped by count, timeout, Ctrl-C or an error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from netsim.kubelet import runtime, sandbox
from netsim.net.topology import ClusterConfig

NODE_DEFAULT_IFACE = "any"  # a node: every interface (eth0 on the LAN, cni0, the pods' veths)
POD_DEFAULT_IFACE = "eth0"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class CaptureError(RuntimeError):
    """Worded for the user (kubectl's words where kubectl has them)."""


@dataclass(frozen=True)
class Place:
    """Where one tcpdump runs: `label` says it to the user ("pod/default/web-1")."""

    label: str
    netns: str
    iface: str


def parse_target(target: str) -> tuple[str, str]:
    """`pod/x`, `po/x`, `node/x`, `no/x`, `svc/x`, `service/x` -> (kind, name); a bare name
    is a pod, as kubectl exec/logs take it."""
    kinds = {"pod": "pod", "pods": "pod", "po": "pod", "node": "node", "nodes": "node",
             "no": "node", "svc": "svc", "service": "svc", "services": "svc"}
    if "/" not in target:
        return "pod", target
    kind, _, name = target.partition("/")
    if kind.lower() not in kinds or not name:
        raise CaptureError(f'error: the server doesn\'t have a resource type "{kind}"'
                           if kind.lower() not in kinds else f"error: no name in {target!r}")
    return kinds[kind.lower()], name


def pod_netns(cfg: ClusterConfig, pod: dict) -> str:
    """The pod's network namespace: its node's for hostNetwork pods, else the sandbox netns
    the kubelet made (named from the uid, as netsim.kubelet.sandbox names it; the kubelet's
    record says so too once it has one)."""
    md, spec = pod["metadata"], pod.get("spec") or {}
    node = spec.get("nodeName")
    if not node:
        raise CaptureError(f'error: pod {md["name"]} is not scheduled yet')
    if spec.get("hostNetwork"):
        return cfg.node_netns(node)
    rec = runtime.PodRecord.load(runtime.pod_dir(runtime.node_root(cfg.name, node),
                                                 md["namespace"], md["name"], md["uid"]))
    if rec is not None and rec.netns:
        return rec.netns
    return sandbox.netns_name(cfg.name, md["uid"])


def places(client, cfg: ClusterConfig, kind: str, name: str, namespace: str,
           iface: str | None) -> list[Place]:
    """Where to capture for TARGET. Errors as kubectl words them (NotFound from the API)."""
    if kind == "node":
        try:
            cfg.node(name)
        except KeyError:
            raise CaptureError(f'Error from server (NotFound): nodes "{name}" not found') from None
        return [Place(f"node/{name}", cfg.node_netns(name), iface or NODE_DEFAULT_IFACE)]
    if kind == "pod":
        pod = client.get("pods", name, namespace)
        return [Place(f"pod/{namespace}/{name}", pod_netns(cfg, pod), iface or POD_DEFAULT_IFACE)]
    client.get("services", name, namespace)  # NotFound for a missing Service
    slices = client.list("endpointslices", namespace, f"{SERVICE_NAME_LABEL}={name}")
    pods: list[str] = []
    for sl in slices:
        for ep in sl.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            if ref.get("kind", "Pod") == "Pod" and ref.get("name") and ref["name"] not in pods:
                pods.append(ref["name"])
    if not pods:
        raise CaptureError(f'error: service "{name}" has no endpoints to capture on')
    out = []
    for p in sorted(pods):
        pod = client.get("pods", p, namespace)
        out.append(Place(f"pod/{namespace}/{p}", pod_netns(cfg, pod), iface or POD_DEFAULT_IFACE))
    return out


def tcpdump_argv(place: Place, write_to: str, count: int | None, bpf: list[str]) -> list[str]:
    """`ip netns exec NS tcpdump` (exec'd: the pid we hold is tcpdump's). --immediate-mode:
    the kernel hands each packet over at once (not in blocks, up to a second late); -U: it is
    written as it arrives. So a live reader sees it, and a stopped tcpdump lost nothing."""
    tcpdump = shutil.which("tcpdump") or "tcpdump"
    argv = ["ip", "netns", "exec", place.netns, tcpdump, "-i", place.iface, "--immediate-mode", "-U", "-n",
            "-w", write_to]
    if count:
        argv += ["-c", str(count)]
    return argv + list(bpf)


def _stop(procs: list[subprocess.Popen], grace: float = 2.0) -> None:
    """End our tcpdumps by pid: SIGTERM (tcpdump flushes and prints its counts), then
    SIGKILL for one that does not go within `grace` seconds."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.wait()


def _packets_in(path: str) -> int:
    """Packets tcpdump has written to a pcap so far (a cut-off last record not counted)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return 0
    if len(data) < 24:
        return 0
    little = data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
    n, off = 0, 24
    while off + 16 <= len(data):
        incl = int.from_bytes(data[off + 8:off + 12], "little" if little else "big")
        if off + 16 + incl > len(data):
            break
        off += 16 + incl
        n += 1
    return n


def merge_pcaps(paths: list[str], out: BinaryIO, count: int | None = None) -> int:
    """The packets of several pcaps in time order as one pcap on `out` (the first `count`
    when given). Returns how many were written. All inputs must share a link type."""
    from scapy.utils import RawPcapReader, RawPcapWriter  # noqa: PLC0415 - heavy import

    records: list[tuple[float, bytes, int]] = []
    linktype = None
    for path in paths:
        if os.path.getsize(path) < 24:
            continue
        reader = RawPcapReader(path)
        try:
            if linktype is None:
                linktype = reader.linktype
            elif reader.linktype != linktype:
                raise CaptureError("error: the captures have different link types; "
                                   "name one interface with -i")
            for data, meta in reader:
                ts = meta.sec + meta.usec / 1e6
                records.append((ts, data, meta.wirelen))
        finally:
            reader.close()
    records.sort(key=lambda r: r[0])
    if count:
        records = records[:count]
    writer = RawPcapWriter(out, linktype=linktype if linktype is not None else 1, sync=True)
    try:
        writer.write_header(None)  # raw records do not write it, and none may come
        for ts, data, wirelen in records:
            writer.write_packet(data, sec=int(ts), usec=int(round((ts - int(ts)) * 1e6)),
                                wirelen=wirelen)
    finally:
        writer.flush()
    return len(records)


def capture(targets: list[Place], out_fd: int, *, count: int | None = None,
            timeout: float | None = None, bpf: list[str] = (),  # type: ignore[assignment]
            on_start: Callable[[list[subprocess.Popen]], None] | None = None) -> int:
    """Run the capture; pcap goes to `out_fd`. Stops at `count` packets (in all), after
    `timeout` seconds, when every tcpdump ended, or on Ctrl-C (KeyboardInterrupt: the
    capture so far is still written). Returns tcpdump's exit status (0 when we stopped it)."""
    procs: list[subprocess.Popen] = []
    deadline = time.monotonic() + timeout if timeout else None
    if len(targets) == 1:
        try:
            procs.append(subprocess.Popen(tcpdump_argv(targets[0], "-", count, bpf),
                                          stdout=out_fd, stdin=subprocess.DEVNULL,
                                          start_new_session=True))
            if on_start:
                on_start(procs)
            p = procs[0]
            try:
                while p.poll() is None:
                    if deadline and time.monotonic() >= deadline:
                        break
                    time.sleep(0.05)
            except KeyboardInterrupt:  # Ctrl-C: the usual way to end a capture
                pass
            rc = p.poll()
            return 0 if rc is None else rc
        finally:
            _stop(procs)
    tmp = tempfile.mkdtemp(prefix="netsim-capture-")
    try:
        files = [os.path.join(tmp, f"{i}.pcap") for i in range(len(targets))]
        try:
            for place, path in zip(targets, files, strict=True):
                procs.append(subprocess.Popen(tcpdump_argv(place, path, count, bpf),
                                              stdout=subprocess.DEVNULL,
                                              stdin=subprocess.DEVNULL,
                                              start_new_session=True))
            if on_start:
                on_start(procs)
            try:
                while any(p.poll() is None for p in procs):
                    if deadline and time.monotonic() >= deadline:
                        break
                    if count and sum(_packets_in(f) for f in files) >= count:
                        break
                    time.sleep(0.1)
            except KeyboardInterrupt:  # Ctrl-C: stop, and still write what was captured
                pass
        finally:
            _stop(procs)
        failed = [p.returncode for p in procs if p.returncode not in (0, -signal.SIGTERM)]
        present = [f for f in files if os.path.exists(f)]
        with os.fdopen(os.dup(out_fd), "wb") as out:
            merge_pcaps(present, out, count)
        return failed[0] if failed and not present else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
