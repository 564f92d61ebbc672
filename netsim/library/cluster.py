"""netsim as a library: a cluster for a test, its pods, nodes and LAN hosts, packets in and
out with scapy.

    from netsim import Cluster
    from scapy.all import IP, TCP

    with Cluster(nodes=2) as c:                      # up; down at the end, whatever happens
        c.apply("deploy.yaml")
        c.wait("deploy/echo")
        client = c.pod("client")
        print(client.exec(["curl", "-s", "echo"]).stdout)
        with c.pod("echo-0").capture(count=2, filter="tcp port 8080") as cap:
            answers = client.send(IP(dst=svc_ip) / TCP(dport=80, flags="S"))
        print(answers[0].summary(), cap.packets)

Everything goes through netsim's own code: `cluster up|down` is netsim.cluster.lifecycle,
reads are the API client, `exec` is the kubelet's exec path (the container's namespaces and
cgroup); `apply`, `delete`, `trace` and `node exec` run the `netsim` CLI, whose words and
all-or-nothing behaviour are the contract users know. Errors are NetsimError with kubectl's
message. Needs root, as netsim does.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import pickle
import re
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from netsim.library.errors import CommandError, NetsimError, NotFoundError, WaitTimeout, from_api

# Where a Cluster without `lan` looks for a free /24 (any network bigger than a /24 works
# as `lan=` too): 192.168.208.0-192.168.223.0, each checked against the host's routes and
# the other clusters' LANs before it is taken.
DEFAULT_LAN_POOL = "192.168.208.0/20"
DEFAULT_NAME_PREFIX = "t"
MAX_NAME = 10  # a cluster name: a DNS-1123 label of at most 10 characters (nsim-<name>)

# What `wait` waits for when no condition is given, per kind (kubectl wait --for=condition=...)
_DEFAULT_CONDITION = {"Pod": "Ready", "Deployment": "Available", "Job": "Complete",
                      "Service": "Serving"}

_SERVER_ERROR = re.compile(r"^Error from server \((\w+)\)")
_INVALID = re.compile(r'^The \S+ "[^"]*" is invalid')  # field errors: kubectl prints no prefix

Packet = Any  # a scapy packet (scapy is imported only where packets are made or read)


def unique_name(prefix: str = DEFAULT_NAME_PREFIX) -> str:
    """`prefix` and random hex, at most 10 characters (`t3fa9c1`), naming no cluster on
    this machine."""
    from netsim.net.ledger import state_dir  # noqa: PLC0415
    hexlen = min(6, MAX_NAME - len(prefix))
    if hexlen < 3:
        raise ValueError(f"cluster name prefix {prefix!r} is too long: at most "
                         f"{MAX_NAME - 3} characters leave room for a unique suffix")
    for _ in range(100):
        name = prefix + secrets.token_hex(3)[:hexlen]
        if not os.path.lexists(state_dir(name)):
            return name
    raise NetsimError(f"no free cluster name with prefix {prefix!r}")


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while the block runs (a teardown must finish: a second ^C
    must not leave half a cluster), then act on them: KeyboardInterrupt for SIGINT, the
    signal re-sent for SIGTERM. Outside the main thread signals cannot be caught: no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []

    def hold(signum, _frame):
        got.append(signum)
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, hold) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
        if signal.SIGINT in got:
            raise KeyboardInterrupt
        if got:
            os.kill(os.getpid(), got[0])


def _cli_failure(p: subprocess.CompletedProcess, what: str) -> NetsimError:
    """The error a failed `netsim` verb printed, as an exception of the right kind."""
    msg = (p.stderr or "").strip() or (p.stdout or "").strip() or f"{what} exited {p.returncode}"
    m = _SERVER_ERROR.match(msg)
    reason = m.group(1) if m else ("Invalid" if _INVALID.match(msg) else None)
    cls = NotFoundError if reason == "NotFound" else NetsimError
    return cls(msg, reason=reason)


class _Place:
    """Something that runs commands in namespaces of the cluster: a pod, a node, a LAN host.
    `exec` runs argv there; `send` and `capture` are scapy and tcpdump from there."""

    netns: str
    capture_iface = "eth0"

    def _argv(self, command: list[str],
              container: str | None = None) -> tuple[list[str], dict[str, str] | None]:
        """The argv (and environment; None: ours) that runs `command` in here."""
        raise NotImplementedError

    def exec(self, argv: Sequence[str] | str, *, input: str | bytes | None = None,
             timeout: float = 30, check: bool = False,
             text: bool = True, container: str | None = None) -> subprocess.CompletedProcess:
        """Run `argv` (a list; a string is a shell command line, `sh -c`) inside, wait for
        it, and return its CompletedProcess (stdout, stderr captured; text unless
        `text=False`). With `check=True` a non-zero exit raises CommandError
        (`command terminated with exit code N`, and its stderr). In a pod it is `netsim
        exec`: the container's namespaces, working directory, cgroup and environment
        (`container`: which one; the default one as kubectl picks it)."""
        command = ["sh", "-c", argv] if isinstance(argv, str) else list(argv)
        if not command:
            raise NetsimError("error: you must specify at least one command for the container")
        run_argv, env = self._argv(command, container)
        if text and isinstance(input, bytes):
            input = input.decode()
        try:
            p = subprocess.run(run_argv, input=input, capture_output=True, text=text, env=env,
                               timeout=timeout, cwd="/", stdin=None if input is not None
                               else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise CommandError(f"error: {' '.join(command)!r} did not end within {timeout}s",
                               returncode=-1, stdout=e.stdout or "", stderr=e.stderr or "") from e
        if check and p.returncode:
            err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode(errors="replace")
            raise CommandError(f"command terminated with exit code {p.returncode}"
                               + (f": {err.strip()}" if err.strip() else ""),
                               returncode=p.returncode, stdout=p.stdout, stderr=p.stderr)
        return p

    def send(self, packet: Packet | list[Packet], timeout: float = 2, *,
             iface: str | None = None, multi: bool = False, retry: int = 0,
             inter: float = 0) -> list[Packet]:
        """Send `packet` with scapy from in here and return the answers (scapy packets).

        scapy's `sr` (layer 3, routed by this place's own routes) or, for a packet that
        starts with Ether, `srp` on `iface` (eth0 by default). It runs in a child process
        entered into this place's namespaces (importing scapy there takes about a second);
        `timeout`, `multi`, `retry`, `inter` are sr's. The answers are the received packets
        in the order of the sent ones they answer; an empty list when nothing answered.
        The kernel here knows nothing of scapy's connections: it answers a SYN-ACK to a
        scapy SYN with a RST, as on any host."""
        argv = [sys.executable, "-m", "netsim.library._sr", str(timeout), iface or "",
                "1" if multi else "0", str(retry), str(inter)]
        budget = (timeout + inter) * (1 + max(retry, 0)) * max(1, _count(packet)) + 30
        from netsim.library._sr import unbuilt  # noqa: PLC0415
        wire = {"list": isinstance(packet, (list, tuple)), "packets": unbuilt(packet)}
        p = self.exec(argv, input=pickle.dumps(wire), timeout=budget, text=False)
        if p.returncode:
            err = p.stderr.decode(errors="replace").strip()
            raise CommandError(f"scapy sr failed (exit code {p.returncode}): {err}",
                               returncode=p.returncode, stdout=p.stdout, stderr=p.stderr)
        return pickle.loads(p.stdout)  # noqa: S301 - our own child's answer

    def capture(self, count: int = 10, timeout: float = 5, filter: str | None = None, *,
                iface: str | None = None) -> Capture:
        """A context manager capturing (tcpdump) on this place's eth0 (`iface` to choose
        another; a node's default is every interface, `any`) while its block runs:

            with pod.capture(count=3, filter="tcp port 8080") as cap:
                ...
            cap.packets  # scapy packets

        tcpdump is listening when the block starts. The capture ends after `count`
        packets, or once the block is over and `timeout` seconds have passed since it
        began (it always runs to the end of the block, and a moment after it, so answers
        in flight are in). `filter` is a tcpdump (BPF) expression."""
        return Capture(self.netns, iface or self.capture_iface, count, timeout, filter,
                       label=str(self))


def _count(packet) -> int:
    try:
        return len(packet) if isinstance(packet, list) else 1
    except TypeError:
        return 1


class Capture:
    """See `_Place.capture`. After the block: `packets` (a list of scapy packets), `pcap`
    (the bytes tcpdump wrote, for `wrpcap` or Wireshark)."""

    def __init__(self, netns: str, iface: str, count: int | None, timeout: float,
                 filter: str | None, label: str = ""):
        self.netns, self.iface, self.count, self.timeout = netns, iface, count, timeout
        self.filter, self.label = filter, label
        self.packets: list[Packet] = []
        self.pcap = b""
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._buf = bytearray()

    def __enter__(self) -> Capture:
        from netsim.inspect import capture as cap  # noqa: PLC0415
        place = cap.Place(self.label, self.netns, self.iface)
        argv = cap.tcpdump_argv(place, "-", self.count, [self.filter] if self.filter else [])
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self._wait_listening()
        except BaseException:
            self._stop()
            raise
        self._t0 = time.monotonic()
        return self

    def _read(self) -> None:
        out = self._proc.stdout  # type: ignore[union-attr]
        while True:
            chunk = out.read1(65536) if hasattr(out, "read1") else out.read(65536)
            if not chunk:
                return
            self._buf += chunk

    def _wait_listening(self, limit: float = 15.0) -> None:
        """Until tcpdump says `listening on` (its socket is open: nothing sent after this
        is missed), or fail with what it said."""
        p = self._proc
        err = p.stderr  # type: ignore[union-attr]
        said = b""
        deadline = time.monotonic() + limit
        while b"listening on" not in said:
            left = deadline - time.monotonic()
            if left <= 0:
                raise NetsimError(f"error: tcpdump on {self.label} ({self.iface}) did not start "
                                  f"within {limit:.0f}s: {said.decode(errors='replace').strip()}")
            ready, _, _ = select.select([err], [], [], min(left, 0.2))
            if ready:
                chunk = os.read(err.fileno(), 4096)
                if not chunk:  # tcpdump ended
                    p.wait()
                    raise NetsimError(f"error: tcpdump on {self.label} ({self.iface}) failed: "
                                      f"{said.decode(errors='replace').strip()}")
                said += chunk

    def __exit__(self, exc_type, exc, tb) -> None:
        p = self._proc
        try:
            if exc_type is None and p is not None:
                # to the end of `timeout` (counted from the start), and a short moment after
                # the block in any case, unless tcpdump got its `count` and ended
                deadline = max(self._t0 + self.timeout, time.monotonic() + 0.3)
                while p.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
        finally:
            self._stop()
        self.pcap = bytes(self._buf)
        if exc_type is None:
            self.packets = _read_pcap(self.pcap)

    def _stop(self) -> None:
        """End our tcpdump by its pid (SIGTERM: it flushes; SIGKILL after 2 s)."""
        p = self._proc
        if p is None:
            return
        with _signals_deferred():
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
                p.wait()
            if self._reader is not None:
                self._reader.join(5)
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()


def _read_pcap(data: bytes) -> list[Packet]:
    if len(data) < 24:
        return []
    import io  # noqa: PLC0415
    try:
        from scapy.utils import rdpcap  # noqa: PLC0415 - heavy import
    except ImportError as e:
        raise NetsimError("error: Capture.packets are scapy packets: install scapy "
                          "(pip install scapy, or netsim[test]); Capture.pcap holds the "
                          "bytes") from e
    return list(rdpcap(io.BytesIO(data)))


class Pod(_Place):
    """A pod of the cluster, read fresh from the API on each attribute access."""

    def __init__(self, cluster: Cluster, name: str, namespace: str = "default"):
        self.cluster, self.name, self.namespace = cluster, name, namespace

    def __repr__(self) -> str:
        return f"<Pod {self.namespace}/{self.name} of cluster {self.cluster.name}>"

    def __str__(self) -> str:
        return f"pod/{self.namespace}/{self.name}"

    @property
    def obj(self) -> dict:
        """The Pod as the API serves it now."""
        return self.cluster.get("pods", self.name, self.namespace)

    @property
    def ip(self) -> str | None:
        """status.podIP (None until the kubelet reported it)."""
        return (self.obj.get("status") or {}).get("podIP")

    @property
    def node(self) -> str | None:
        """spec.nodeName (None until scheduled)."""
        return (self.obj.get("spec") or {}).get("nodeName")

    @property
    def netns(self) -> str:  # type: ignore[override]
        """The pod's network namespace (`ip netns exec <netns> ...`); its node's for a
        hostNetwork pod."""
        from netsim.inspect import capture as cap  # noqa: PLC0415
        try:
            return cap.pod_netns(self.cluster.config, self.obj)
        except cap.CaptureError as e:
            raise NetsimError(str(e)) from e

    def _argv(self, command, container=None):
        from netsim.api.streams.backend import StreamError  # noqa: PLC0415
        from netsim.cli import pods  # noqa: PLC0415
        from netsim.cli.context import CliError  # noqa: PLC0415
        from netsim.kubelet.streams import NodeStreams  # noqa: PLC0415
        pod = self.obj
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            raise NetsimError("error: cannot exec into a container in a completed pod; current "
                              f"phase is {phase}")
        try:
            cname = pods._container(pod, container)
        except CliError as e:
            raise NetsimError(str(e)) from e
        streams = NodeStreams(self.cluster.name)
        try:
            crec = streams.running(pod, cname)
        except StreamError as e:
            raise NetsimError(f"error: Internal error occurred: {e}") from e
        return streams.exec_argv(crec, command), streams.exec_env(crec, None)


class Node(_Place):
    """A node: its network namespace, where the node agent (kubelet, kube-proxy) runs."""

    capture_iface = "any"

    def __init__(self, cluster: Cluster, name: str):
        self.cluster, self.name = cluster, name
        try:
            self._spec = cluster.config.node(name)
        except KeyError:
            raise NotFoundError(f'Error from server (NotFound): nodes "{name}" not found',
                                reason="NotFound", code=404) from None
        self.netns = cluster.config.node_netns(name)
        self.ip: str = self._spec.ip

    def __repr__(self) -> str:
        return f"<Node {self.name} ({self.ip}) of cluster {self.cluster.name}>"

    def __str__(self) -> str:
        return f"node/{self.name}"

    def _argv(self, command, container=None):
        # `netsim node exec`: the node's netns, its hostname, the iptables kube-proxy uses
        return ([sys.executable, "-m", "netsim.cli.main", "--cluster", self.cluster.name,
                 "node", "exec", self.name, "--", *command], None)


class LanHost(_Place):
    """A machine on the cluster's LAN (a netns with eth0 on the LAN bridge, like the host
    a user reaches NodePorts from), made by `Cluster.lan_host` and removed by `down`."""

    def __init__(self, cluster: Cluster, name: str, ip: str, netns: str):
        self.cluster, self.name, self.ip, self.netns = cluster, name, ip, netns

    def __repr__(self) -> str:
        return f"<LanHost {self.name} ({self.ip}) of cluster {self.cluster.name}>"

    def __str__(self) -> str:
        return f"host/{self.name}"

    def _argv(self, command, container=None):
        return ["ip", "netns", "exec", self.netns, *command], None


class Cluster:
    """A netsim cluster for a test: brought up by `up()` or `with`, always taken down by
    `down()` or the end of the `with` block (also on an exception or ^C).

    name: a cluster name (at most 10 characters); None: a unique one (`t` + hex).
    nodes, proxy_mode ("iptables", "nftables", "ipvs"): as `netsim cluster up` (nodes=1
        is the control-plane node alone, tainted as kubeadm does: pods need a toleration).
    lan: the LAN /24 (`192.168.90.0/24`); a bigger network is a pool whose first free /24
        is taken; None: the first free /24 of 192.168.208.0/20. "Free": no host route and
        no other cluster's networks overlap it.
    keep: leave the cluster up at the end of the `with` block (`down()` still removes it).
    kubeconfig: where the `netsim-<name>` context is written; None: a file of the
        cluster's own (`cluster.kubeconfig`), removed by `down`.
    quiet: False prints `cluster up`'s progress lines.
    """

    def __init__(self, name: str | None = None, nodes: int = 3, proxy_mode: str = "iptables",
                 lan: str | None = None, *, keep: bool = False, kubeconfig: str | None = None,
                 quiet: bool = True, timeout: float = 120.0,
                 name_prefix: str = DEFAULT_NAME_PREFIX):
        if name is not None:
            from netsim.net.topology import cluster_name_error  # noqa: PLC0415
            msg = cluster_name_error(name)
            if msg:
                raise NetsimError(f"error: {msg}")
        self.name = name or unique_name(name_prefix)
        self.nodes, self.proxy_mode, self.lan_request = nodes, proxy_mode, lan
        self.keep, self.quiet, self.timeout = keep, quiet, timeout
        self._kubeconfig = kubeconfig
        self._owned = True
        self._up = False
        self._client = None
        self._config = None
        self._hosts: dict[str, LanHost] = {}

    @classmethod
    def attach(cls, name: str) -> Cluster:
        """A cluster that is already up (`netsim cluster up`, a kept test cluster): leaving
        a `with` block leaves it up; `down()` still removes it."""
        from netsim.cluster import lifecycle  # noqa: PLC0415
        c = cls(name)
        if not lifecycle.is_up(name):
            raise NetsimError(f'error: cluster "{name}" is not up')
        c._owned, c._up, c.keep = False, True, True
        c.nodes, c.proxy_mode = len(c.config.nodes), c.config.proxy_mode
        led = [r for r in lifecycle.Ledger(name).records() if r["kind"] == "kubeconfig"]
        c._kubeconfig = led[-1]["path"] if led else None
        return c

    def __repr__(self) -> str:
        state = "up" if self._up else "down"
        return f"<Cluster {self.name} {state} nodes={self.nodes} proxy_mode={self.proxy_mode}>"

    # ---- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        self.up()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.keep:
            self.down()

    def up(self) -> Cluster:
        """Bring the cluster up (`netsim cluster up`): nodes Ready and the cluster DNS
        answering when it returns. Whatever fails or interrupts it, nothing is left behind."""
        if self._up:
            return self
        from netsim.cluster import lifecycle  # noqa: PLC0415
        from netsim.net.ledger import run_dir  # noqa: PLC0415
        from netsim.net.topology import ClusterConfig  # noqa: PLC0415
        if os.geteuid() != 0:
            raise NetsimError("netsim must run as root (it creates network namespaces): "
                              "run as root, e.g. with sudo")
        if lifecycle.is_up(self.name):
            raise NetsimError(f'error: cluster "{self.name}" is already up: '
                              f"Cluster.attach({self.name!r}) uses it as it is")
        if self.proxy_mode == "ipvs":
            from netsim.cli import extra_cmds  # noqa: PLC0415
            from netsim.cli.context import CliError  # noqa: PLC0415
            try:
                extra_cmds.check_ipvs()
            except CliError as e:
                raise NetsimError(str(e)) from e
        kubeconfig = self._kubeconfig or os.path.join(run_dir(self.name), "kubeconfig")
        candidates = self._lan_candidates()
        pool = len(candidates) > 1
        try:
            for lan in candidates:
                try:
                    cfg = ClusterConfig.make(name=self.name, nodes=self.nodes, lan=lan,
                                             proxy_mode=self.proxy_mode)
                except ValueError as e:
                    raise NetsimError(f"error: {e}") from e
                if pool and (lifecycle.cluster_conflict(cfg, lifecycle.other_clusters(self.name))
                             or lifecycle.host_route_conflict(cfg, lifecycle.host_routes(),
                                                              lifecycle.netsim_ledgers())):
                    continue
                try:
                    lifecycle.up(cfg, quiet=self.quiet, timeout=self.timeout,
                                 kubeconfig_path=kubeconfig)
                except lifecycle.ClusterError as e:
                    if pool and "overlaps" in str(e):  # taken in the meantime: the next one
                        continue
                    raise NetsimError(f"error: {e}") from e
                self._kubeconfig = kubeconfig
                self._wait_dns()
                self._up = True
                return self
        except BaseException:
            # lifecycle.up removed what it made; once more, undisturbed by a second ^C
            with _signals_deferred():
                lifecycle.down(self.name, quiet=True)
            raise
        raise NetsimError(f"error: no free /24 in {self.lan_request or DEFAULT_LAN_POOL} for the "
                          "cluster's LAN (each overlaps a host route or another cluster): pass lan=")

    def _lan_candidates(self) -> list[str]:
        try:
            net = ipaddress.ip_network(self.lan_request or DEFAULT_LAN_POOL, strict=False)
        except ValueError as e:
            raise NetsimError(f"error: invalid LAN {self.lan_request!r}: {e}") from e
        if net.prefixlen >= 24:
            return [str(net)]
        return [str(s) for s in net.subnets(new_prefix=24)]

    def _wait_dns(self) -> None:
        # `cluster up` returns at nodes Ready, as kubeadm's init; coredns starts after that.
        # A test's first lookup of a Service's name must not race it.
        self.wait("deploy/coredns", namespace="kube-system", timeout=self.timeout)
        self.wait("svc/kube-dns", namespace="kube-system", timeout=self.timeout)

    def down(self) -> None:
        """Take the cluster down (`netsim cluster down`): every netns, link, route, process
        and file it made. Not interrupted by ^C (that is raised when it is done)."""
        from netsim.cluster import lifecycle  # noqa: PLC0415
        with _signals_deferred():
            lifecycle.down(self.name, quiet=self.quiet)
            self._up = False
            self._client = None
            self._config = None
            self._hosts.clear()

    @property
    def is_up(self) -> bool:
        from netsim.cluster import lifecycle  # noqa: PLC0415
        return lifecycle.is_up(self.name)

    @property
    def kubeconfig(self) -> str:
        """The kubeconfig file with context `netsim-<name>` (current there): for kubectl
        (`KUBECONFIG=...`), the Python client (`config.load_kube_config(path)`), client-go."""
        if self._kubeconfig is None:
            raise NetsimError(f'error: cluster "{self.name}" is not up')
        return self._kubeconfig

    @property
    def config(self):
        """The cluster's netsim.net.topology.ClusterConfig (LAN, nodes, CIDRs)."""
        if self._config is None:
            from netsim.net.topology import ClusterConfig  # noqa: PLC0415
            self._config = ClusterConfig.load(self.name)
            if self._config is None:
                raise NetsimError(f'error: cluster "{self.name}" is not up')
        return self._config

    @property
    def lan(self) -> str:
        """The LAN the cluster got (`172.31.200.0/24`)."""
        return self.config.lan

    @property
    def client(self):
        """netsim's API client (netsim.api.client.HttpClient) on the cluster's socket."""
        if self._client is None:
            from netsim.api.client import HttpClient  # noqa: PLC0415
            self._client = HttpClient(self.name)
        return self._client

    # ---- the CLI -------------------------------------------------------------------------
    def netsim(self, *args: str, input: str | None = None, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `netsim --cluster NAME ARGS...` (any verb) and return its CompletedProcess
        (text). With `check` a non-zero exit raises NetsimError with what it printed."""
        argv = [sys.executable, "-m", "netsim.cli.main", *args]
        env = {**os.environ, "NETSIM_CLUSTER": self.name}
        p = subprocess.run(argv, input=input, capture_output=True, text=True, env=env,
                           timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode:
            raise _cli_failure(p, "netsim " + " ".join(args))
        return p

    def _manifest_args(self, source) -> tuple[list[str], str | None]:
        if isinstance(source, (dict, list)):
            docs = source if isinstance(source, list) else [source]
            return ["-f", "-"], "\n---\n".join(json.dumps(d) for d in docs)
        if isinstance(source, os.PathLike):
            return ["-f", os.fspath(source)], None
        if not isinstance(source, str):
            raise TypeError("a manifest is YAML/JSON text, a path, or an object (dict/list)")
        if "\n" not in source and (os.path.exists(source) or
                                   source.endswith((".yaml", ".yml", ".json"))):
            return ["-f", source], None
        return ["-f", "-"], source

    def apply(self, source, namespace: str | None = None) -> list[str]:
        """`netsim apply -f`: YAML or JSON text (several documents), a file or folder path,
        or objects (a dict or a list of dicts). All or nothing, as netsim apply is. Returns
        the lines it printed (`deployment.apps/echo created`); raises NetsimError with
        kubectl's message."""
        args, text = self._manifest_args(source)
        ns = ["-n", namespace] if namespace else []
        p = self.netsim("apply", *ns, *args, input=text)
        return p.stdout.splitlines()

    def delete(self, source, namespace: str | None = None, *, wait: bool = True,
               ignore_not_found: bool = False) -> list[str]:
        """`netsim delete -f` of what `apply` takes (waits until the objects are gone unless
        `wait=False`). Returns the printed lines (`service "echo" deleted from default
        namespace`)."""
        args, text = self._manifest_args(source)
        ns = ["-n", namespace] if namespace else []
        extra = (["--wait=false"] if not wait else []) + \
            (["--ignore-not-found"] if ignore_not_found else [])
        p = self.netsim("delete", *ns, *args, *extra, input=text)
        return p.stdout.splitlines()

    # ---- reads ---------------------------------------------------------------------------
    @staticmethod
    def _resource(kind: str):
        from netsim.api.resources import UnknownResource, lookup  # noqa: PLC0415
        try:
            return lookup(kind)
        except UnknownResource as e:
            raise NetsimError(f"error: {e}") from e

    def get(self, kind: str, name: str | None = None,
            namespace: str | None = "default") -> dict:
        """The object (`get("deploy", "echo")`, also `get("deploy/echo")`) as JSON, or with
        no name the List of them (`{"kind": "List", "items": [...]}`; namespace=None: all
        namespaces). Kinds as kubectl takes them: po, svc, deploy, Pod, deployments.apps."""
        from netsim.api import errors as api_errors  # noqa: PLC0415
        if name is None and "/" in kind:
            kind, name = kind.split("/", 1)
        res = self._resource(kind)
        ns = namespace if res.namespaced else None
        try:
            if name is not None:
                return self.client.get(res.plural, name, ns or "default")
            items = self.client.list(res.plural, ns)
        except api_errors.ApiError as e:
            raise from_api(e) from e
        for it in items:
            it.setdefault("apiVersion", res.api_version)
            it.setdefault("kind", res.kind)
        return {"apiVersion": "v1", "kind": "List", "items": items,
                "metadata": {"resourceVersion": ""}}

    def wait(self, ref: str, condition: str | None = None, timeout: float = 60,
             namespace: str = "default") -> dict:
        """`kubectl wait --for=condition=C TYPE/NAME`: until the object's condition C is
        True; returns the object. C defaults to Ready for a pod, Available for a
        Deployment, Complete for a Job (Ready otherwise); "delete" waits until it is gone
        (returns {}). A Service (`svc/NAME`) has no condition in Kubernetes; here it waits
        until the Service works as a test means it: a ready endpoint, and a connection to
        its ClusterIP from every node gets through (kube-proxy programs a change within its
        sync period, up to a second after the endpoint turned ready). Raises NotFoundError
        when it is not there (unless waiting for its deletion) and WaitTimeout (`error: timed out waiting for the condition on
        pods/x`) after `timeout` seconds."""
        from netsim.api import errors as api_errors  # noqa: PLC0415
        kind, sep, name = ref.partition("/")
        if not sep or not name:
            raise NetsimError(f"error: arguments in resource/name form must have a single "
                              f"resource and name: {ref!r}")
        res = self._resource(kind)
        cond = condition or _DEFAULT_CONDITION.get(res.kind, "Ready")
        ns = namespace if res.namespaced else None
        deadline = time.monotonic() + timeout
        while True:
            try:
                obj = self.client.get(res.plural, name, ns)
            except api_errors.ApiError as e:
                if e.reason == "NotFound" and cond.lower() == "delete":
                    return {}
                raise from_api(e) from e
            if cond.lower() == "serving" and res.kind == "Service":
                if self._serving(obj):
                    return obj
            elif cond.lower() != "delete" and _condition_true(obj, cond):
                return obj
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"error: timed out waiting for the condition on "
                                  f"{res.plural}/{name}", reason="Timeout")
            time.sleep(0.1)

    def _serving(self, svc: dict) -> bool:
        """A ready endpoint in the Service's EndpointSlices and, for a ClusterIP with a TCP
        port, a connection to it from every node's netns (through kube-proxy's rules)."""
        spec, meta = svc.get("spec") or {}, svc["metadata"]
        if spec.get("type") == "ExternalName":
            return True
        slices = self.client.list("endpointslices", meta.get("namespace", "default"),
                                  f"kubernetes.io/service-name={meta['name']}")
        if not any((e.get("conditions") or {}).get("ready") is not False
                   for s in slices for e in s.get("endpoints") or []):
            return False
        ip = spec.get("clusterIP")
        tcp = [p["port"] for p in spec.get("ports") or [] if p.get("protocol", "TCP") == "TCP"]
        if not ip or ip == "None" or not tcp:
            return True
        return all(_connects(self.config.node_netns(n.name), ip, tcp[0])
                   for n in self.config.nodes)

    def pod(self, name: str, namespace: str = "default") -> Pod:
        """The pod `name` (NotFoundError when there is none)."""
        p = Pod(self, name, namespace)
        p.obj  # noqa: B018 - NotFound now, not at the first use
        return p

    def pods(self, selector: str | None = None, namespace: str = "default") -> list[Pod]:
        """The pods matching a label selector (`app=echo`), by name."""
        from netsim.api import errors as api_errors  # noqa: PLC0415
        try:
            items = self.client.list("pods", namespace, selector)
        except api_errors.ApiError as e:
            raise from_api(e) from e
        return [Pod(self, it["metadata"]["name"], namespace)
                for it in sorted(items, key=lambda it: it["metadata"]["name"])]

    def node(self, name: str) -> Node:
        """A node by name (`k8s-slave-172`)."""
        return Node(self, name)

    @property
    def node_names(self) -> list[str]:
        return [n.name for n in self.config.nodes]

    def lan_host(self, name: str = "client", ip: str | None = None) -> LanHost:
        """A machine on the cluster's LAN, made now (or the one made before by that name):
        its own netns with eth0 on the LAN bridge at `ip` (None: the LAN's highest free
        address). NodePorts and hostNetwork pods are reached from it as from the host, and
        its traffic stays in namespaces the cluster made. Removed by `down`."""
        from netsim.net import netlink as nl  # noqa: PLC0415
        from netsim.net.ledger import Ledger  # noqa: PLC0415
        from netsim.net.topology import build_lan_client, cluster_name_error  # noqa: PLC0415
        if name in self._hosts:
            return self._hosts[name]
        if cluster_name_error(name) or name == "lan" or name in self.node_names:
            raise NetsimError(f"error: invalid LAN host name {name!r}: a DNS label of at most "
                              "10 characters that names no node")
        cfg = self.config
        net = ipaddress.ip_network(cfg.lan)
        taken = {cfg.host_ip, *(n.ip for n in cfg.nodes), *(h.ip for h in self._hosts.values())}
        if ip is None:
            ip = next((str(a) for a in reversed(list(net.hosts())) if str(a) not in taken), None)
            if ip is None:
                raise NetsimError(f"error: no free address left on the LAN {cfg.lan}")
        elif ipaddress.ip_address(ip) not in net or ip in taken:
            raise NetsimError(f"error: {ip} is not a free address of the LAN {cfg.lan}")
        netns = f"{cfg.name}-{name}"
        if nl.netns_exists(netns):  # made before (an attached cluster): that one, as it is
            out = subprocess.run(["ip", "-j", "-4", "-n", netns, "addr", "show", "dev", "eth0"],
                                 capture_output=True, text=True, timeout=10).stdout
            addrs = [a["local"] for i in json.loads(out or "[]") for a in i.get("addr_info", [])]
            if not addrs:
                raise NetsimError(f"error: {netns} exists but has no address on eth0")
            host = self._hosts[name] = LanHost(self, name, addrs[0], netns)
            return host
        build_lan_client(cfg, Ledger(cfg.name), name, ip)
        host = self._hosts[name] = LanHost(self, name, ip, netns)
        return host

    def trace(self, src: str, dst: str, port: int | None = None, *,
              namespace: str = "default", protocol: str | None = None) -> dict:
        """`netsim trace SRC DST -o json`: the rules a new connection matches on each node,
        the routing and a real probe. SRC: pod/NAME, node/NAME or host; DST: svc/NAME,
        pod/NAME, node/NAME (with port: a NodePort) or an IP."""
        args = ["trace", "-n", namespace, src, dst, "-o", "json"]
        if port is not None:
            args += ["--port", str(port)]
        if protocol:
            args += ["--protocol", protocol]
        return json.loads(self.netsim(*args).stdout)


def _connects(netns: str, ip: str, port: int) -> bool:
    """A TCP connection from `netns` to ip:port is accepted within a second (the socket is
    made with this thread in the netns: rtnl.in_netns switches the calling thread only)."""
    import socket  # noqa: PLC0415

    from netsim.net import netlink as nl  # noqa: PLC0415
    from netsim.net import rtnl  # noqa: PLC0415
    try:
        with rtnl.in_netns(os.path.join(nl.NETNS_DIR, netns)):
            sock = socket.socket()
        with sock:
            sock.settimeout(1)
            sock.connect((ip, port))
        return True
    except OSError:
        return False


def _condition_true(obj: dict, cond: str) -> bool:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if str(c.get("type", "")).lower() == cond.lower():
            return c.get("status") == "True"
    return False
