"""IPVS graceful termination (netsim.proxy.ipvs_graceful, in netsim.proxy.ipvs_apply's syncer),
against a fake ipvsadm that keeps the table and its connection counts in memory.

As upstream's graceful_termination.go: a TCP real server that leaves with connections goes
to weight 0 (new connections avoid it, established ones keep flowing) and is deleted when
they are gone (or after the timeout); UDP goes at once; one wanted again gets its weight
back."""

from __future__ import annotations

import subprocess

from netsim.proxy import ipvs, ipvs_apply
from netsim.proxy.ipvs_apply import IpvsKernel, IpvsSyncer, apply_lines, parse_ipvsadm_save
from netsim.proxy.ipvs_graceful import (
    GracefulTermination,
    RealServerStats,
    parse_ipvsadm_list,
    parse_proc_ip_vs,
)
from tests.proxy_fixtures import ep, eps, port, svc
from tests.proxy_fixtures import snap as fixtures_snap

VIP = "10.96.0.20"
FLAG = {"TCP": "-t", "UDP": "-u"}


class FakeIpvsadm(IpvsKernel):
    """ipvsadm -Sn / -Ln / -R / -C, ip and ipset as a node netns would answer them."""

    def __post_init__(self) -> None:  # no netns: nothing real is touched
        self.native = False  # every read through run(), below
        self.table: dict[tuple[str, str], tuple[str, dict[str, list[int]]]] = {}
        self.addrs: set[str] = set()
        self.restores: list[list[str]] = []
        self.ipset_inputs: list[list[str]] = []
        self.sets: dict[str, tuple[str, set[str]]] = {}  # name -> (type, entries)
        self.calls: list[str] = []

    def run(self, *argv, input=None, check=True, timeout=120):
        self.calls.append(" ".join(argv[:2]))
        if argv[:2] not in (("ip", "-4"), ("ipvsadm", "-Ln")):
            self.starts += 1  # those two are read in-process by the agent (rtnetlink, /proc)
        out = ""
        if argv[:2] == ("ipvsadm", "-Sn"):
            for (flag, addr), (args, rss) in self.table.items():
                out += f"-A {flag} {addr} {args}\n"
                out += "".join(f"-a {flag} {addr} -r {rs} -m -w {w}\n" for rs, (w, _, _) in rss.items())
        elif argv[:2] == ("ipvsadm", "-Ln"):
            out = ("IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler "
                   "Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
            for (flag, addr), (args, rss) in self.table.items():
                proto = {"-t": "TCP", "-u": "UDP"}[flag]
                out += f"{proto}  {addr} {args.split()[1]}\n"
                out += "".join(f"  -> {rs:<28} Masq    {w:<6} {a:<10} {i}\n"
                               for rs, (w, a, i) in rss.items())
        elif argv[:2] == ("ipvsadm", "-R"):
            lines = input.splitlines()
            self.restores.append(lines)
            for line in lines:
                self._apply(line.split())
        elif argv[:2] == ("ipset", "restore"):
            self.ipset_inputs.append(input.splitlines())
            for line in input.splitlines():
                self._ipset(line.split())
        elif argv[:2] == ("ipset", "save"):
            for name, (typ, entries) in self.sets.items():
                out += f"create {name} {typ} family inet hashsize 1024 maxelem 65536\n"
                out += "".join(f"add {name} {e}\n" for e in sorted(entries))
        elif argv[:2] == ("ipvsadm", "-C"):
            self.table.clear()
        elif argv[0] == "ip" and "addr" in argv and "show" in argv:
            out = "".join(f"9: kube-ipvs0    inet {a}/32 scope global kube-ipvs0\n"
                          for a in sorted(self.addrs))
            if "dev" not in argv:
                out += "2: eth0    inet 192.168.3.171/24 scope global eth0\n"
        elif argv[0] == "ip" and "-batch" in argv:
            for line in input.splitlines():
                verb, addr = line.split()[1], line.split()[2].split("/")[0]
                (self.addrs.add if verb == "add" else self.addrs.discard)(addr)
        return subprocess.CompletedProcess(argv, 0, out, "")

    def set_sysctls(self) -> list[str]:
        return []  # never this machine's /proc/sys

    def dummy_exists(self) -> bool:
        return True

    def _apply(self, p: list[str]) -> None:
        key = (p[1], p[2])
        if p[0] in ("-A", "-E"):
            self.table[key] = (" ".join(p[3:]), self.table.get(key, ("", {}))[1])
        elif p[0] == "-D":
            del self.table[key]
        elif p[0] == "-a":
            self.table[key][1][p[4]] = [int(p[7]), 0, 0]
        elif p[0] == "-e":
            self.table[key][1][p[4]][0] = int(p[7])
        elif p[0] == "-d":
            del self.table[key][1][p[4]]

    def _ipset(self, w: list[str]) -> None:
        if w[0] == "create":
            self.sets.setdefault(w[1], (w[2], set()))
        elif w[0] == "flush":
            self.sets[w[1]][1].clear()
        elif w[0] in ("add", "del"):
            (self.sets[w[1]][1].add if w[0] == "add" else self.sets[w[1]][1].discard)(w[2])
        elif w[0] == "swap":
            self.sets[w[1]], self.sets[w[2]] = self.sets[w[2]], self.sets[w[1]]
        elif w[0] == "destroy":
            del self.sets[w[1]]

    def connections(self, proto: str, rs: str, active: int, inactive: int = 0) -> None:
        for (flag, _), (_, rss) in self.table.items():
            if flag == FLAG[proto] and rs in rss:
                rss[rs][1:] = [active, inactive]

    def weights(self, proto: str = "TCP") -> dict[str, int]:
        return {rs: w for rs, (w, _, _) in self.table[(FLAG[proto], f"{VIP}:80")][1].items()}


class FakeIptables:
    def save(self) -> str:
        return ""

    def restore(self, text: str) -> float:
        return 0.0


def snapshot(ips: list[str], proto: str = "TCP"):
    s = svc("default", "web", clusterIP=VIP, ports=[port("http", 80, proto)])
    return fixtures_snap([s], [eps("default", "web", [ep(ip) for ip in ips],
                                   [port("http", 8080, proto)])],
                         node_name="n1", node_ips=["192.168.3.171"], cluster_cidr="10.244.0.0/16")


def syncer(timeout: float = 900.0) -> tuple[IpvsSyncer, FakeIpvsadm]:
    k = FakeIpvsadm()
    return IpvsSyncer(k, FakeIptables(), graceful=GracefulTermination(timeout=timeout)), k


A, B = "10.244.1.2:8080", "10.244.1.3:8080"


def test_a_removed_tcp_real_server_with_connections_drains_at_weight_0_then_goes():
    s, k = syncer()
    s.sync(snapshot(["10.244.1.2", "10.244.1.3"]))
    assert k.weights() == {A: 1, B: 1}
    k.connections("TCP", A, active=1)
    s.sync(snapshot(["10.244.1.3"]))
    assert k.weights() == {A: 0, B: 1}  # no new connection picks A; its own keeps flowing
    assert f"-e -t {VIP}:80 -r {A} -m -w 0" in k.restores[-1]
    assert s.stale_pending and s.pending_delay > 0  # the agent comes back for it
    # nothing changed, still connected: the agent's re-check leaves it, without a full sync
    k.calls.clear()
    s.sync(snapshot(["10.244.1.3"]), changed=set())
    assert k.weights() == {A: 0, B: 1}
    assert not any(c.startswith(("ipset", "ip ")) for c in k.calls)  # only ipvsadm ran
    k.connections("TCP", A, active=0, inactive=1)  # FIN_WAIT / TIME_WAIT counts too
    s.sync(snapshot(["10.244.1.3"]), changed=set())
    assert k.weights() == {A: 0, B: 1}
    k.connections("TCP", A, active=0, inactive=0)
    s.sync(snapshot(["10.244.1.3"]), changed=set())
    assert k.weights() == {B: 1}
    assert not s.stale_pending


def test_without_connections_a_tcp_real_server_is_deleted_at_once():
    s, k = syncer()
    s.sync(snapshot(["10.244.1.2", "10.244.1.3"]))
    s.sync(snapshot(["10.244.1.3"]))
    assert k.weights() == {B: 1} and not s.stale_pending


def test_udp_real_servers_are_deleted_at_once_even_with_connections():
    s, k = syncer()
    s.sync(snapshot(["10.244.1.2", "10.244.1.3"], "UDP"))
    k.connections("UDP", A, active=0, inactive=5)
    s.sync(snapshot(["10.244.1.3"], "UDP"))
    assert k.weights("UDP") == {B: 1} and not s.stale_pending


def test_a_draining_real_server_wanted_again_gets_its_weight_back():
    s, k = syncer()
    s.sync(snapshot(["10.244.1.2", "10.244.1.3"]))
    k.connections("TCP", A, active=2)
    s.sync(snapshot(["10.244.1.3"]))
    assert k.weights()[A] == 0
    s.sync(snapshot(["10.244.1.2", "10.244.1.3"]), changed={"default/web"})
    assert k.weights() == {A: 1, B: 1} and not s.stale_pending


def test_after_the_timeout_a_real_server_goes_with_its_connections(monkeypatch):
    s, k = syncer(timeout=30)
    clock = [1000.0]
    monkeypatch.setattr("netsim.proxy.ipvs_apply.time.monotonic", lambda: clock[0])
    s.sync(snapshot(["10.244.1.2", "10.244.1.3"]))
    k.connections("TCP", A, active=1)
    s.sync(snapshot(["10.244.1.3"]))
    clock[0] += 29
    s.sync(snapshot(["10.244.1.3"]), changed=set())
    assert k.weights()[A] == 0
    clock[0] += 2
    s.sync(snapshot(["10.244.1.3"]), changed=set())
    assert k.weights() == {B: 1} and not s.stale_pending


def test_a_deleted_service_takes_its_draining_real_servers_with_it():
    s, k = syncer()
    s.sync(snapshot(["10.244.1.2", "10.244.1.3"]))
    k.connections("TCP", A, active=1)
    s.sync(snapshot(["10.244.1.3"]))
    s.sync(fixtures_snap([], [], node_name="n1", node_ips=["192.168.3.171"],
                         cluster_cidr="10.244.0.0/16"))
    assert k.table == {} and not s.stale_pending


IPVSADM_LN = """IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.1:443 rr
  -> 192.168.3.171:6443           Masq    1      3          1
UDP  10.96.0.10:53 rr persistent 10800
  -> 10.244.1.5:53                Masq    0      0          7
FWM  12 rr
  -> 10.244.1.9:80                Masq    1      0          0
"""
# the same table as the kernel's /proc/net/ip_vs has it (hex; its lines end in blanks)
PROC_NET_IP_VS = "\n".join(
    ["IP Virtual Server version 1.2.1 (size=4096)", "Prot LocalAddress:Port Scheduler Flags",
     "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn",
     "TCP  0A600001:01BB rr ", "  -> C0A803AB:192B      Masq    1      3          1         ",
     "UDP  0A60000A:0035 rr persistent 2700000 FFFFFFFF",
     "  -> 0AF40105:0035      Masq    0      0          7         ",
     "FWM  0000000C rr ", "  -> 0AF40109:0050      Masq    1      0          0         "])
TABLE_STATS = {("TCP", "10.96.0.1", 443): {"192.168.3.171:6443": RealServerStats(1, 3, 1)},
               ("UDP", "10.96.0.10", 53): {"10.244.1.5:53": RealServerStats(0, 0, 7)}}


def test_parse_ipvsadm_list():
    assert parse_ipvsadm_list(IPVSADM_LN) == TABLE_STATS


def test_parse_proc_net_ip_vs_reads_what_ipvsadm_ln_shows():
    """read in-process by the agent instead of starting ipvsadm -Ln"""
    assert parse_proc_ip_vs(PROC_NET_IP_VS) == TABLE_STATS


def test_apply_lines_is_the_table_ipvsadm_restore_leaves():
    table = parse_ipvsadm_save(f"-A -t {VIP}:80 -s rr\n-a -t {VIP}:80 -r {A} -m -w 1\n"
                               f"-A -u 10.96.0.10:53 -s rr\n")
    after = apply_lines(table, [f"-a -t {VIP}:80 -r {B} -m -w 1", f"-e -t {VIP}:80 -r {A} -m -w 0",
                                "-D -u 10.96.0.10:53", "-A -t 10.96.0.30:80 -s rr -p 10800"])
    assert after == {("TCP", VIP, 80): ("-s rr", {A: 0, B: 1}),
                     ("TCP", "10.96.0.30", 80): ("-s rr -p 10800", {})}
    assert table[("TCP", VIP, 80)][1] == {A: 1}  # the input is left as it was


def test_a_sync_starts_a_process_only_for_what_changed():
    """Under emulation every process start costs ~1 s: with nothing changed a sync starts
    none; an endpoint change is one `ipvsadm -R` (and one `ipset restore` of the sets that
    changed); the kernel's table is not read back after each restore."""
    s, k = syncer()
    first = s.sync(snapshot(["10.244.1.2", "10.244.1.3"]))
    assert "ipvsadm -Sn" in k.calls and first.processes >= 3
    # (`ip -4 addr show` is the fake's stand-in for the in-process rtnetlink dump, and
    # `ipvsadm -Ln` for reading /proc/net/ip_vs)
    k.calls.clear()
    again = s.sync(snapshot(["10.244.1.2", "10.244.1.3"]))
    assert k.calls == ["ip -4"] and again.processes == 0
    k.calls.clear()
    one = s.sync(snapshot(["10.244.1.3"]))
    assert one.processes == 1
    # the connection counts: `ipvsadm -Ln` here, /proc/net/ip_vs in the agent's own netns
    assert k.calls == ["ip -4", "ipvsadm -Ln", "ipvsadm -R"] and k.weights() == {B: 1}


def test_an_endpoint_change_restores_only_the_set_entries_that_differ():
    """upstream's syncIPSetEntries: a local endpoint gone is one `del` from KUBE-LOOP-BACK,
    not the whole set refilled and swapped in (at 1,000 services x 5 endpoints in the
    emulated VM that refill was 18-23 s of every one-endpoint sync)."""
    s, k = syncer()
    s.sync(local_snapshot(["10.244.1.2", "10.244.1.3", "10.244.1.4"]))
    first = k.ipset_inputs[-1]
    assert f"swap {ipvs.SWAP_PREFIX}00 {ipvs.LOOP_BACK}" in "\n".join(first)
    s.sync(local_snapshot(["10.244.1.3", "10.244.1.4", "10.244.1.5"]))
    assert k.ipset_inputs[-1] == [f"del {ipvs.LOOP_BACK} 10.244.1.2,tcp:8080,10.244.1.2 -exist",
                                  f"add {ipvs.LOOP_BACK} 10.244.1.5,tcp:8080,10.244.1.5 -exist"]


def test_the_periodic_check_mends_the_kernels_sets_and_counts_from_its_end(monkeypatch):
    """Every RECHECK_SECONDS the kernel's sets are read again (`ipset save`) and what
    differs from the wanted sets restored (here: a set someone flushed), the wait counted
    from the end of the last check: in the VM one check outlasted 30 s, and a count from
    its start made every sync a check."""
    clock = [1000.0]
    monkeypatch.setattr(ipvs_apply.time, "monotonic", lambda: clock[0])
    s, k = syncer()
    restore = k.ipset_restore

    def slow_restore(text: str) -> None:  # the first check outlasts RECHECK_SECONDS
        clock[0] += ipvs_apply.RECHECK_SECONDS + 10
        restore(text)
    k.ipset_restore = slow_restore
    s.sync(local_snapshot(["10.244.1.2"]))
    k.ipset_restore = restore
    entry = "10.244.1.2,tcp:8080,10.244.1.2"
    assert k.sets[ipvs.LOOP_BACK][1] == {entry}
    k.sets[ipvs.LOOP_BACK][1].clear()  # `ipset flush KUBE-LOOP-BACK` by hand
    clock[0] += ipvs_apply.RECHECK_SECONDS - 1
    n = len(k.ipset_inputs)
    s.sync(local_snapshot(["10.244.1.2"]))
    assert len(k.ipset_inputs) == n and "ipset save" not in k.calls[-3:]  # not yet checked
    clock[0] += 2
    s.sync(local_snapshot(["10.244.1.2"]))
    assert k.ipset_inputs[-1] == [f"add {ipvs.LOOP_BACK} {entry} -exist"]
    assert k.sets[ipvs.LOOP_BACK][1] == {entry}


def local_snapshot(ips: list[str]):
    """`snapshot` with the endpoints on this node (n1): KUBE-LOOP-BACK holds them."""
    s = svc("default", "web", clusterIP=VIP, ports=[port("http", 80)])
    return fixtures_snap([s], [eps("default", "web", [ep(ip, "n1") for ip in ips],
                                   [port("http", 8080)])],
                         node_name="n1", node_ips=["192.168.3.171"], cluster_cidr="10.244.0.0/16")


def test_a_slow_sync_says_where_its_time_went(monkeypatch):
    """A full sync's log line ends with the steps of a sync over a second (in the qemu VM
    the first sync took 104-119 s; its line said nothing of where)."""
    s, _ = syncer()
    res = s.sync(snapshot(["10.244.1.2", "10.244.1.3"]))
    assert set(res.steps) >= {"setup", "addresses", "render", "ipset", "iptables-restore",
                              "ipvsadm"}
    assert res.slow_steps() == ""  # fast: nothing added to the log line
    res.seconds, res.steps = 9.1, {"setup": 3.1, "addresses": 0.01, "ipset": 2.1,
                                   "ipvsadm": 2.4}
    assert res.slow_steps() == "setup 3100 ms, ipset 2100 ms, ipvsadm 2400 ms"
