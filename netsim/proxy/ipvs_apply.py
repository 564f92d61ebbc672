"""The IPVS-mode applier: the thin, impure half of `netsim/proxy/ipvs.py`.

One sync (upstream `syncProxyRules`, in the same order):
1. first sync of the process: sysctls (net.ipv4.vs.conntrack=1, expire_nodest_conn=1,
   expire_quiescent_template=1, ip_forward=1, arp_ignore=1, arp_announce=2, one `sysctl`
   call), the dummy device `kube-ipvs0`, and the jump rules from the built-in chains that
   `iptables-save` does not show (inserted by the restore of step 5, `-I CHAIN 1`);
2. render with the node's own addresses (every local IPv4 address not on kube-ipvs0, not
   loopback) as NodePort addresses, like upstream (one rtnetlink address dump);
3. `ipset restore` of the sets whose entries changed: each is created (-exist), filled as
   a temporary set and swapped in (`swap` is atomic; a set referenced by iptables can't be
   destroyed, but can be swapped);
4. missing ClusterIPs bound on kube-ipvs0 (rtnetlink);
5. one `iptables-restore --noflush --counters` (the constant rules) when they changed;
6. IPVS: the table as the last sync left it (read with `ipvsadm -Sn` on the first sync,
   after a failure and every RECHECK_SECONDS) diffed with the render, the difference
   (-A/-E/-D, -a/-e/-d) fed to one `ipvsadm -R`; a failed diff falls back to `ipvsadm -C` +
   the full state; a TCP real server that leaves while IPVS counts connections to it is
   set to weight 0 instead of deleted, and deleted by a later sync once they are gone
   (graceful termination, netsim.proxy.ipvs_graceful; the counts read from /proc/net/ip_vs
   only when the diff deletes a TCP real server). While one drains, the agent syncs again
   every few seconds; a sync with nothing changed then only re-checks the IPVS table;
7. addresses no longer wanted removed from kube-ipvs0.

So a sync with nothing changed starts no process, and one endpoint change starts two
(`ipset restore` of KUBE-LOOP-BACK when the endpoint is local, `ipvsadm -R`): under
emulation each start costs about a second, and upstream does these steps over netlink.

Every command runs in the current netns (the node agent lives in its node's netns) or in a
named one via `ip netns exec`; both refuse the root netns (`check_not_root`), so neither
the machine's IPVS table, its ipsets nor its firewall are ever touched.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

from netsim.proxy import ipvs
from netsim.proxy.apply import Iptables, RestoreError, check_not_root
from netsim.proxy.ipvs_graceful import (
    CHECK_INTERVAL,
    GracefulTermination,
    parse_ipvsadm_list,
    parse_proc_ip_vs,
)
from netsim.proxy.model import ProxySnapshot

log = logging.getLogger("netsim.proxy")

_FLAG_PROTO = {"-t": "TCP", "-u": "UDP", "--sctp-service": "SCTP"}


class IpvsError(RuntimeError):
    """A kernel-side step of an IPVS sync failed (the caller retries with a full sync)."""


def unsupported_reason(netns: str | None = None) -> str | None:
    """Why IPVS mode can't run here (None: it can). Checked in the target netns: /proc/net
    is per netns, and ip_vs creates /proc/net/ip_vs in every netns once it is loaded."""
    missing = [t for t in ("ipvsadm", "ipset", "ip") if not shutil.which(t)]
    if missing:
        return f"missing tools: {', '.join(missing)} (apt-get install ipvsadm ipset iproute2)"
    if netns is None:
        ok = os.path.exists("/proc/net/ip_vs")
    else:
        ok = subprocess.run(["ip", "netns", "exec", netns, "test", "-e", "/proc/net/ip_vs"],
                            capture_output=True, timeout=30).returncode == 0
    if not ok:
        return "the kernel has no IP_VS (/proc/net/ip_vs is missing)"
    return None


def parse_ipvsadm_save(text: str) -> dict[tuple[str, str, int], tuple[str, dict[str, int]]]:
    """`ipvsadm -Sn` -> {(PROTO, ip, port): (service args after the address, {rs: weight})}.
    fwmark services (-f) are not kube-proxy's and are skipped."""
    out: dict[tuple[str, str, int], tuple[str, dict[str, int]]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0] not in ("-A", "-a") or parts[1] not in _FLAG_PROTO:
            continue
        host, _, port = parts[2].rpartition(":")
        key = (_FLAG_PROTO[parts[1]], host.strip("[]"), int(port))
        rest = parts[3:]
        if parts[0] == "-A":
            out[key] = (" ".join(rest), out.get(key, ("", {}))[1])
            continue
        if key not in out or "-r" not in rest:
            continue
        rs = rest[rest.index("-r") + 1]
        weight = int(rest[rest.index("-w") + 1]) if "-w" in rest else 1
        out[key][1][rs] = weight
    return out


def ipvs_diff(current: dict[tuple[str, str, int], tuple[str, dict[str, int]]],
              desired: list[ipvs.VirtualServer]) -> list[str]:
    """`ipvsadm -R` lines that turn `current` into `desired` (services deleted last, so a
    VIP being replaced never has a gap)."""
    lines: list[str] = []
    want_keys = set()
    for vs in desired:
        want_keys.add(vs.key)
        args = vs.service_args()
        cur = current.get(vs.key)
        if cur is None:
            lines.append(f"-A {vs.address} {args}")
            cur_rs: dict[str, int] = {}
        else:
            if cur[0] != args:
                lines.append(f"-E {vs.address} {args}")
            cur_rs = cur[1]
        want_rs = {str(rs): rs.weight for rs in vs.real_servers}
        for rs, w in want_rs.items():
            if rs not in cur_rs:
                lines.append(f"-a {vs.address} -r {rs} -m -w {w}")
            elif cur_rs[rs] != w:
                lines.append(f"-e {vs.address} -r {rs} -m -w {w}")
        for rs in cur_rs:
            if rs not in want_rs:
                lines.append(f"-d {vs.address} -r {rs}")
    for key in current:
        if key not in want_keys:
            proto, ip, port = key
            flag = next(f for f, p in _FLAG_PROTO.items() if p == proto)
            lines.append(f"-D {flag} {ip}:{port}")
    return lines


@dataclass
class IpvsKernel:
    """ip / ipset / ipvsadm / sysctl in one netns (None: the current one), never the root.

    In the current netns (`native`: the node agent's case) the reads and the address
    changes are done in-process (an interface index, one rtnetlink address dump,
    /proc/net/ip_vs): under emulation every process start costs about a second, and upstream
    kube-proxy uses netlink for these as well. ipset and IPVS changes stay one
    `ipset restore` / one `ipvsadm -R` each (batched, only when something changed)."""

    netns: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    native: bool | None = None  # None: in-process when netns is None
    starts: int = 0  # processes started (for the sync log and the VM measurement)

    def __post_init__(self) -> None:
        check_not_root(self.netns, "ipvsadm")

    @property
    def in_process(self) -> bool:
        return self.netns is None if self.native is None else self.native

    def run(self, *argv: str, input: str | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess:
        full = list(argv)
        if self.netns and full[0] == "ip":
            full = ["ip", "-n", self.netns, *full[1:]]  # one exec instead of two
        elif self.netns:
            full = ["ip", "netns", "exec", self.netns, *full]
        self.starts += 1
        p = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise IpvsError(f"{' '.join(argv[:3])}: {(p.stderr or p.stdout).strip()[:2000]}")
        return p

    def _rtnl(self):
        """netsim's own rtnetlink socket (netsim.net.rtnl), opened once in this netns (the
        agent's sync thread's). Not pyroute2's IPRoute: in the qemu VM its first use (the
        import and its asyncio machinery) took 100-110 s of kube-proxy's first sync, and
        each address dump after that 0.4-2.9 s of every sync."""
        if getattr(self, "_ipr", None) is None:
            from netsim.net.rtnl import Rtnl  # noqa: PLC0415
            self._ipr = Rtnl()
        return self._ipr

    # ---- sysctls ---------------------------------------------------------------------------
    def set_sysctls(self) -> list[str]:
        """Set the IPVS-mode sysctls; returns the ones that could not be set."""
        failed = []
        if self.netns is not None:
            p = self.run("sysctl", "-qw", *(f"{k}={v}" for k, v in ipvs.SYSCTLS), check=False)
            if p.returncode == 0:
                return []
        for key, value in ipvs.SYSCTLS:
            if self.netns is None:
                try:
                    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                        f.write(value)
                except OSError:
                    failed.append(key)
            elif self.run("sysctl", "-qw", f"{key}={value}", check=False).returncode != 0:
                failed.append(key)
        return failed

    # ---- kube-ipvs0 ------------------------------------------------------------------------
    def dummy_exists(self) -> bool:
        if self.in_process:
            try:
                socket.if_nametoindex(ipvs.DUMMY_DEVICE)  # an ioctl in this netns
                return True
            except OSError:
                return False
        return self.run("ip", "link", "show", ipvs.DUMMY_DEVICE, check=False).returncode == 0

    def ensure_dummy(self) -> bool:
        """Create kube-ipvs0 (type dummy, left down as upstream: its addresses are local all
        the same). Returns True when it had to be created."""
        if self.dummy_exists():
            return False
        p = self.run("ip", "link", "add", ipvs.DUMMY_DEVICE, "type", "dummy", check=False)
        if p.returncode != 0:
            err = p.stderr.strip()
            if "Unknown device type" in err or "not supported" in err.lower():
                raise IpvsError(f"this kernel has no dummy links ({err}); "
                                "kube-proxy's IPVS mode needs them for kube-ipvs0")
            raise IpvsError(f"ip link add {ipvs.DUMMY_DEVICE}: {err}")
        return True

    def addresses(self, dev: str | None = None) -> list[tuple[str, str]]:
        """(device, IPv4 address) of every address, or of one device."""
        if self.in_process:
            try:
                out = self._rtnl().addresses()
            except OSError as e:
                raise IpvsError(f"rtnetlink address dump: {e}") from e
            return [(d.split(":")[0], ip) for d, ip in out if ip and (dev is None or
                                                                     d.split(":")[0] == dev)]
        argv = ["ip", "-4", "-o", "addr", "show"]
        if dev:
            argv += ["dev", dev]
        p = self.run(*argv, check=False)
        out = []
        for line in p.stdout.splitlines():
            parts = line.split()
            if "inet" in parts:
                out.append((parts[1].split("@")[0], parts[parts.index("inet") + 1].split("/")[0]))
        return out

    @staticmethod
    def node_addresses_of(addrs: list[tuple[str, str]]) -> list[str]:
        """upstream GetAllLocalAddressesExcept(kube-ipvs0), minus loopback / link-local."""
        seen: list[str] = []
        for dev, ip in addrs:
            if dev == ipvs.DUMMY_DEVICE or ip.startswith("127.") or ip.startswith("169.254."):
                continue
            if ip not in seen:
                seen.append(ip)
        return seen

    def node_addresses(self) -> list[str]:
        return self.node_addresses_of(self.addresses())

    def bound_addresses(self) -> set[str]:
        return {ip for _, ip in self.addresses(ipvs.DUMMY_DEVICE)}

    def change_addresses(self, add: list[str], remove: list[str]) -> None:
        if not add and not remove:
            return
        if self.in_process:
            self._change_addresses_netlink(add, remove)
            return
        batch = [f"addr add {a}/32 dev {ipvs.DUMMY_DEVICE}" for a in add]
        batch += [f"addr del {a}/32 dev {ipvs.DUMMY_DEVICE}" for a in remove]
        self.run("ip", "-force", "-batch", "-", input="\n".join(batch) + "\n")

    def _change_addresses_netlink(self, add: list[str], remove: list[str]) -> None:
        """As `ip -force -batch`: an address already there (or already gone) is fine."""
        try:
            index = socket.if_nametoindex(ipvs.DUMMY_DEVICE)
        except OSError as e:
            raise IpvsError(f"{ipvs.DUMMY_DEVICE} is gone: {e}") from e
        nl = self._rtnl()
        for verb, addrs, do in (("add", add, nl.add_addr), ("del", remove, nl.del_addr)):
            for a in addrs:
                try:
                    do(index, a, 32)  # EEXIST / EADDRNOTAVAIL are fine there
                except OSError as e:
                    raise IpvsError(f"address {verb} {a}/32 dev {ipvs.DUMMY_DEVICE}: {e}") from e

    # ---- ipset / ipvsadm -------------------------------------------------------------------
    def ipset_restore(self, text: str) -> None:
        t0 = time.perf_counter()
        self.run("ipset", "restore", input=text)
        self.timings["ipset"] = time.perf_counter() - t0

    def ipset_sets(self) -> dict[str, ipvs.IPSet]:
        """kube-proxy's sets as the kernel holds them (`ipset save`; {} if unreadable)."""
        p = self.run("ipset", "save", check=False)
        return ipvs.parse_ipset_save(p.stdout) if p.returncode == 0 else {}

    def ipvs_save(self) -> str:
        return self.run("ipvsadm", "-Sn").stdout

    def ipvs_list(self) -> str:
        """`ipvsadm -Ln`: the table with each real server's connection counts."""
        return self.run("ipvsadm", "-Ln").stdout

    def ipvs_stats(self) -> dict:
        """Each real server's weight and connection counts: /proc/net/ip_vs in-process (this
        thread's netns), else `ipvsadm -Ln`."""
        if self.in_process:
            try:
                with open("/proc/thread-self/net/ip_vs") as f:
                    return parse_proc_ip_vs(f.read())
            except OSError:
                pass
        return parse_ipvsadm_list(self.ipvs_list())

    def ipvs_restore(self, lines: list[str]) -> None:
        if not lines:
            return
        t0 = time.perf_counter()
        self.run("ipvsadm", "-R", input="\n".join(lines) + "\n")
        self.timings["ipvsadm"] = time.perf_counter() - t0

    def ipvs_clear(self) -> None:
        self.run("ipvsadm", "-C")


@dataclass
class IpvsSyncResult:
    full: bool
    seconds: float
    restore_seconds: float
    text_bytes: int
    fell_back: bool = False
    ipvs_changes: int = 0
    processes: int = 0  # processes the sync started (ipset, iptables-restore, ipvsadm)
    steps: dict[str, float] = field(default_factory=dict)  # s per step of a full sync

    def slow_steps(self, over: float = 1.0) -> str:
        """The steps of a sync slower than `over` s, for its log line ("" otherwise): where
        a slow machine's time went."""
        if self.seconds < over or not self.steps:
            return ""
        return ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in self.steps.items() if v >= 0.05)


RECHECK_SECONDS = 30.0  # the kernel's IPVS table re-read, ipsets and rules re-applied (upstream
# re-applies everything every syncPeriod, 30 s by default)


def apply_lines(table: dict[tuple[str, str, int], tuple[str, dict[str, int]]],
                lines: list[str]) -> dict[tuple[str, str, int], tuple[str, dict[str, int]]]:
    """The table (as `parse_ipvsadm_save` reads it) after `ipvsadm -R` of `lines` succeeded:
    what the kernel holds now, without reading it back."""
    out = {k: (args, dict(rss)) for k, (args, rss) in table.items()}
    for line in lines:
        parts = line.split()
        if len(parts) < 3 or parts[1] not in _FLAG_PROTO:
            continue
        host, _, port = parts[2].rpartition(":")
        key = (_FLAG_PROTO[parts[1]], host.strip("[]"), int(port))
        op, rest = parts[0], parts[3:]
        if op in ("-A", "-E"):
            out[key] = (" ".join(rest), out.get(key, ("", {}))[1])
        elif op == "-D":
            out.pop(key, None)
        elif op in ("-a", "-e") and key in out and "-r" in rest:
            w = int(rest[rest.index("-w") + 1]) if "-w" in rest else 1
            out[key][1][rest[rest.index("-r") + 1]] = w
        elif op == "-d" and key in out and "-r" in rest:
            out[key][1].pop(rest[rest.index("-r") + 1], None)
    return out


@dataclass
class IpvsSyncer:
    """kube-proxy IPVS mode for one node netns (the agent's `syncer` for mode ipvs).

    What the kernel holds is remembered from the last good sync (the IPVS table as the
    `ipvsadm -R` left it, the ipsets and iptables text last restored), so a sync starts a
    process only for what changed: `ipset restore` of the changed entries, `iptables-restore`
    when the rules differ, one `ipvsadm -R` of the difference. The kernel's own state is
    read again (and the difference re-applied, the rules restored) on the first sync, after
    a failure and at least every RECHECK_SECONDS."""

    kernel: IpvsKernel
    ipt: Iptables
    options: ipvs.IpvsOptions = field(default_factory=ipvs.IpvsOptions)
    need_setup: bool = True
    last: ipvs.IpvsRender | None = None
    last_text: str = ""
    _jumps: dict[str, list[str]] = field(default_factory=dict)  # table -> `-I` lines to add
    graceful: GracefulTermination = field(default_factory=GracefulTermination)
    _table: dict | None = None  # the IPVS table as the last good sync left it
    _sets: dict[str, ipvs.IPSet] = field(default_factory=dict)  # as last restored
    _iptables: str = ""  # as last restored
    _checked_at: float = 0.0  # when the kernel's state was last read / re-applied

    @property
    def stale_pending(self) -> bool:
        """Real servers drain at weight 0: the agent syncs again in `pending_delay` s."""
        return bool(self.graceful.pending)

    pending_delay = CHECK_INTERVAL

    def _forget(self) -> None:
        """Trust nothing remembered: the next sync reads the kernel and re-applies all."""
        self._table = None
        self._sets = {}
        self._iptables = ""

    def setup(self) -> None:
        self._forget()
        failed = self.kernel.set_sysctls()
        if failed:
            log.warning("ipvs: could not set sysctls %s", ", ".join(failed))
        self.kernel.ensure_dummy()
        saved = self.ipt.save()
        self._jumps = {}
        for table, chain, args in ipvs.jump_rules():
            line = f'{chain} -m comment --comment "{args[3]}" -j {args[5]}'
            if f"-A {line}" not in saved:
                self._jumps.setdefault(table, []).append(f"-I {chain} 1 -m comment --comment "
                                                         f'"{args[3]}" -j {args[5]}')

    def _with_jumps(self, text: str) -> str:
        """Put the missing jump rules into the restore, after each table's chain lines."""
        if not self._jumps:
            return text
        out: list[str] = []
        table = ""
        for line in text.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif table and not line.startswith(":"):
                out += self._jumps.get(table, [])
                table = ""
            out.append(line)
        return "\n".join(out) + "\n"

    def _recheck_due(self) -> bool:
        """Counted from the end of the last check, as upstream's sync timer: on a machine where
        one check outlasts RECHECK_SECONDS (1,000 services under emulation: 20-45 s) a count
        from its start made every sync a check, a one-endpoint change as dear as a full one."""
        return time.monotonic() - self._checked_at >= RECHECK_SECONDS

    def _apply_ipvs(self, desired: list[ipvs.VirtualServer]) -> int:
        """The kernel's table (remembered, or read) turned into `desired` by one
        `ipvsadm -R`, graceful termination applied; returns the number of changes."""
        if self._table is None:
            self._table = parse_ipvsadm_save(self.kernel.ipvs_save())
        lines = ipvs_diff(self._table, desired)
        needs = self.graceful.needs_stats(lines)
        if needs or self.graceful.pending:
            lines = self.graceful.apply(lines, self.kernel.ipvs_stats() if needs else {},
                                        time.monotonic())
        try:
            self.kernel.ipvs_restore(lines)
        except IpvsError:
            self._table = None
            raise
        self._table = apply_lines(self._table, lines)
        return len(lines)

    def sync(self, snapshot: ProxySnapshot, changed: set[str] | None = None) -> IpvsSyncResult:
        """A full sync (IPVS mode has no partial one upstream: the kernel diff is cheap);
        with nothing `changed` while real servers drain, only the IPVS table is re-checked."""
        t0 = time.perf_counter()
        starts0 = self.kernel.starts
        if changed is not None and not changed and self.graceful.pending \
                and self.last is not None and not self.need_setup:
            try:
                n = self._apply_ipvs(self.last.virtual_servers)
            except IpvsError:
                self.need_setup = True
                self.graceful.clear()
                raise
            return IpvsSyncResult(False, time.perf_counter() - t0, 0.0, 0, False, n,
                                  self.kernel.starts - starts0)
        restore_s = 0.0
        ipt_runs = 0
        steps: dict[str, float] = {}
        at = [t0]

        def step(name: str) -> None:
            now = time.perf_counter()
            steps[name] = steps.get(name, 0.0) + now - at[0]
            at[0] = now
        try:
            if self.need_setup:
                self.setup()
                ipt_runs += 1  # iptables-save
                step("setup")
            else:
                self.kernel.ensure_dummy()
                step("kube-ipvs0")
            rechecked = self._recheck_due()
            if rechecked:
                self._forget()
            addrs = self.kernel.addresses()
            step("addresses")
            bound = {ip for dev, ip in addrs if dev == ipvs.DUMMY_DEVICE}
            node_ips = self.options.node_ips
            if node_ips is None and any(sp.node_port for sp in snapshot.service_ports):
                node_ips = tuple(self.kernel.node_addresses_of(addrs))
            opts = self.options if node_ips is None else _with_node_ips(self.options, node_ips)
            r = ipvs.render(snapshot, opts)
            step("render")
            if not self._sets:  # a check, a restart or a failure: diff against the kernel's
                self._sets = self.kernel.ipset_sets()
            sets = [(self._sets.get(st.name), st) for st in r.ipsets.values()
                    if self._sets.get(st.name) != st]
            if sets:
                self._sets = {}  # unknown until the restore succeeded
                self.kernel.ipset_restore(ipvs.ipset_update_text(sets))
            self._sets = dict(r.ipsets)
            step("ipset")
            self.kernel.change_addresses([a for a in r.bind_addresses if a not in bound], [])
            step("addresses")
            if r.iptables != self._iptables:
                self._iptables = ""
                ipt_runs += 1
                restore_s = self.ipt.restore(self._with_jumps(r.iptables))
                self._iptables = r.iptables
            step("iptables-restore")
            self.need_setup = False
            self._jumps = {}
            fell_back = False
            try:
                n = self._apply_ipvs(r.virtual_servers)
            except IpvsError as e:
                log.warning("ipvsadm -R failed (%s); reloading the whole table", e)
                self.kernel.ipvs_clear()
                self.graceful.clear()
                self._table = {}
                n = self._apply_ipvs(r.virtual_servers)
                fell_back = True
            step("ipvsadm")
            want = set(r.bind_addresses)
            self.kernel.change_addresses([], sorted(bound - want))
            step("addresses")
        except (IpvsError, RestoreError):
            self.need_setup = True
            raise
        if rechecked:
            self._checked_at = time.monotonic()
        self.last = r
        text = r.ipvsadm_text()
        self.last_text = text
        return IpvsSyncResult(True, time.perf_counter() - t0, restore_s,
                              len(text) + len(r.iptables), fell_back, n,
                              self.kernel.starts - starts0 + ipt_runs, steps)

    def lost_state(self) -> bool:
        """True when kube-ipvs0 is gone (someone deleted it): resync fully."""
        return self.last is not None and not self.kernel.dummy_exists()

    def reset(self) -> None:
        self.need_setup = True


def _with_node_ips(opts: ipvs.IpvsOptions, node_ips: tuple[str, ...]) -> ipvs.IpvsOptions:
    return dataclasses.replace(opts, node_ips=tuple(node_ips))
