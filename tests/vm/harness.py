"""A throw-away qemu VM with a stock Debian kernel, for what this machine's kernel lacks
(IP_VS, dummy links). The recipe is below.

- packages: qemu-system-x86 busybox-static cpio kmod (installed with apt-get when
  `install=True`, else their absence is a skip reason);
- kernel: the package behind `linux-image-amd64`, `apt-get download`ed into
  /var/cache/netsim-vm/ and unpacked there with `dpkg-deb -x` (never installed); `depmod -b`
  makes its modules.dep, `modprobe --show-depends` gives the insmod order;
- initramfs: static busybox; /init loads the modules, mounts the host's `/` read-only over
  9p with a tmpfs overlay on top, chroots into it and runs
  `python3 <script> <args...>` (paths given on the kernel command line), then writes the
  exit code to the isa-debug-exit port and powers off;
- qemu: TCG (KVM hangs here), no network, wrapped in a timeout. qemu exits with
  (code << 1) | 1.

The guest can't write to the host: its only outputs are the serial console and the exit
code. Also usable by hand: `python3 tests/vm/harness.py [--timeout S] [--memory MB] SCRIPT
[ARGS...]` (prints the guest's console and exits with the script's exit code), and
`python3 tests/vm/harness.py --prepare` (what vagrant/provision.sh runs: download and cache
the kernel, build the initramfs, say what it did).

Defaults (TIMEOUT, MEMORY_MB) are what a whole `netsim cluster up` needs under emulation.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("NETSIM_VM_CACHE", "/var/cache/netsim-vm"))
PACKAGES = {"qemu-system-x86": "qemu-system-x86_64", "busybox-static": None, "cpio": "cpio",
            "kmod": "depmod"}
BUSYBOX = "/bin/busybox"
TIMEOUT = 1200.0  # s: a whole cluster under TCG takes minutes
MEMORY_MB = 2048

# boot essentials first, then what netsim's IPVS mode needs (modprobe adds dependencies)
MODULES = (
    "virtio_pci", "9pnet_virtio", "9p", "overlay",
    "veth", "dummy", "bridge", "br_netfilter",
    "nf_conntrack", "nf_conntrack_netlink", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh",
    "ip_set", "ip_set_hash_ip", "ip_set_hash_ipport", "ip_set_hash_ipportip",
    "ip_set_hash_ipportnet", "ip_set_bitmap_port", "xt_set",
    "ip_tables", "iptable_nat", "iptable_filter", "xt_comment", "xt_mark", "xt_addrtype",
    "xt_conntrack", "xt_MASQUERADE", "ipt_REJECT", "xt_physdev", "xt_ipvs",
    "iptable_mangle", "xt_nat", "xt_statistic", "xt_recent", "xt_multiport", "xt_tcpudp",  # iptables mode
    "sch_prio", "sch_netem", "sch_tbf", "cls_u32",  # netsim link impair
)

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r m; do insmod "/mods/$m" 2>/dev/null || echo "netsim-vm: insmod $m failed"; done < /mods/order
mkdir -p /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /lower || echo "netsim-vm: 9p mount failed"
mount -t tmpfs tmpfs /upper
mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot
for d in proc sys dev run tmp; do mkdir -p /newroot/$d; done
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mount -t tmpfs tmpfs /newroot/run
# the host's netsim clusters are not the guest's: every `cluster up` would read their
# ledgers (hundreds of KB of JSON, seconds under emulation) and avoid their names and LANs
[ -d /newroot/var/lib/netsim ] && mount -t tmpfs tmpfs /newroot/var/lib/netsim
# no tmpfs over /tmp: the tree under test may live there (CI clones anywhere); the overlay's
# tmpfs upper layer already makes /tmp writable
args=$(sed -n 's/.*netsim.run=\([^ ]*\).*/\1/p' /proc/cmdline | tr ',' ' ')
echo "netsim-vm: booted in $(cut -d' ' -f1 /proc/uptime) s, running python3 $args"
chroot /newroot /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root /usr/bin/python3 $args
rc=$?
echo "netsim-vm: exit $rc after $(cut -d' ' -f1 /proc/uptime) s"
printf "$(printf '\\%03o' $rc)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
"""


class Unavailable(Exception):
    """The VM can't be built here (missing package, no kernel): a skip reason."""


def missing_packages() -> list[str]:
    out = []
    for pkg, tool in PACKAGES.items():
        if (tool and not shutil.which(tool)) or (pkg == "busybox-static" and not _static_busybox()):
            out.append(pkg)
    return out


def _static_busybox() -> bool:
    if not os.path.exists(BUSYBOX):
        return False
    p = subprocess.run(["file", "-L", BUSYBOX], capture_output=True, text=True) \
        if shutil.which("file") else None
    return p is None or "statically linked" in p.stdout or "static-pie" in p.stdout


def ensure_packages(install: bool) -> None:
    missing = missing_packages()
    if not missing:
        return
    if not install:
        raise Unavailable(f"packages not installed: {' '.join(missing)} "
                          "(NETSIM_VM_TESTS=1 installs them)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300, env=env)
    p = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       capture_output=True, text=True, timeout=900, env=env)
    if p.returncode != 0 or missing_packages():
        raise Unavailable(f"apt-get install {' '.join(missing)} failed: {p.stderr.strip()[-300:]}")


@dataclass
class Kernel:
    root: Path  # the unpacked package
    version: str

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"


def cached_kernel() -> Kernel | None:
    for vmlinuz in sorted(glob.glob(str(CACHE / "kernel" / "boot" / "vmlinuz-*"))):
        version = os.path.basename(vmlinuz)[len("vmlinuz-"):]
        root = CACHE / "kernel"
        if (root / "lib" / "modules" / version / "modules.dep").exists():
            return Kernel(root, version)
    return None


def ensure_kernel(download: bool) -> Kernel:
    k = cached_kernel()
    if k:
        return k
    if not download:
        raise Unavailable(f"no kernel cached in {CACHE} (NETSIM_VM_TESTS=1 downloads one)")
    CACHE.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True,
                       text=True, timeout=60)
    m = re.search(r"Depends: (linux-image-\S+)", p.stdout)
    if not m:
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
        p = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True,
                           text=True, timeout=60)
        m = re.search(r"Depends: (linux-image-\S+)", p.stdout)
    if not m:
        raise Unavailable("apt-cache knows no linux-image-amd64")
    pkg = m.group(1)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        d = subprocess.run(["apt-get", "download", pkg], cwd=tmp, capture_output=True,
                           text=True, timeout=600)
        debs = glob.glob(os.path.join(tmp, "*.deb"))
        if d.returncode != 0 or not debs:
            raise Unavailable(f"apt-get download {pkg} failed: {d.stderr.strip()[-300:]}")
        staging = Path(tmp) / "kernel"
        subprocess.run(["dpkg-deb", "-x", debs[0], str(staging)], check=True, timeout=300)
        version = os.path.basename(glob.glob(str(staging / "boot" / "vmlinuz-*"))[0])[8:]
        subprocess.run(["depmod", "-b", str(staging), version], check=True, timeout=300)
        shutil.rmtree(CACHE / "kernel", ignore_errors=True)
        os.rename(staging, CACHE / "kernel")
    k = cached_kernel()
    if not k:
        raise Unavailable("kernel unpacked but not usable")
    return k


def module_order(k: Kernel, modules=MODULES) -> list[str]:
    """Paths of the .ko files to insmod, dependencies first, each once."""
    order: list[str] = []
    for mod in modules:
        p = subprocess.run(["modprobe", "-d", str(k.root), "-S", k.version, "--show-depends",
                            mod], capture_output=True, text=True, timeout=60)
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "insmod" and parts[1] not in order:
                order.append(parts[1])
    return order


def build_initramfs(k: Kernel) -> Path:
    """initramfs.cpio.gz next to the kernel; rebuilt when this file or the kernel changes."""
    out = CACHE / f"initramfs-{k.version}.cpio.gz"
    stamp = max(os.path.getmtime(__file__), os.path.getmtime(k.vmlinuz))
    if out.exists() and out.stat().st_mtime >= stamp:
        return out
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("bin", "mods", "proc", "sys", "dev", "lower", "upper", "newroot"):
            (root / d).mkdir()
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        names = []
        for i, path in enumerate(module_order(k)):
            name = f"{i:03d}-{os.path.basename(path)}"
            if name.endswith(".xz"):
                with open(root / "mods" / name[:-3], "wb") as f:
                    subprocess.run(["xz", "-dc", path], stdout=f, check=True)
                name = name[:-3]
            elif name.endswith(".zst"):
                with open(root / "mods" / name[:-4], "wb") as f:
                    subprocess.run(["zstd", "-dcq", path], stdout=f, check=True)
                name = name[:-4]
            else:
                shutil.copy2(path, root / "mods" / name)
            names.append(name)
        (root / "mods" / "order").write_text("\n".join(names) + "\n")
        (root / "init").write_text(INIT)
        os.chmod(root / "init", 0o755)
        tmp_out = out.with_suffix(".tmp")
        subprocess.run(f"find . | cpio -o -H newc --quiet | gzip -1 > {tmp_out}", shell=True,
                       cwd=root, check=True)
        os.replace(tmp_out, out)
    return out


@dataclass
class VmResult:
    exit_code: int | None  # the guest's exit code (None: no clean exit, e.g. timeout)
    output: str
    seconds: float
    timed_out: bool = False


def compile_tree(python: str = sys.executable) -> None:
    """Byte-compile this tree's netsim and tests/vm for `python` on the host, where it takes
    a second: the guest sees the tree read-only (its writes go to a tmpfs that dies with
    it), so every boot would otherwise compile every module netsim imports, ten times
    slower, in each of its first processes. Stale or missing .pyc files only."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", str(root / "netsim"),
                    str(root / "tests" / "vm")], capture_output=True, timeout=600)


def run(script: str, *args: str, timeout: float = TIMEOUT, install: bool = False,
        memory_mb: int = MEMORY_MB, echo=None) -> VmResult:
    """Boot, run `python3 script args...` inside (absolute host paths), power off. `echo`,
    when given, is called with each console line as it comes (the whole output is in the
    result either way)."""
    ensure_packages(install)
    k = ensure_kernel(download=install)
    initrd = build_initramfs(k)
    compile_tree()
    run_arg = ",".join([script, *args])
    if " " in run_arg:
        raise ValueError("paths with spaces can't go on the kernel command line")
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", str(memory_mb),
            "-smp", "2", "-nographic", "-no-reboot", "-nic", "none",
            "-kernel", str(k.vmlinuz), "-initrd", str(initrd),
            "-append", f"console=ttyS0 quiet panic=-1 netsim.run={run_arg}",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,"
                       "multidevs=remap",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, errors="replace")
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        p.kill()
    timer = threading.Timer(timeout, expire)
    timer.start()
    lines: list[str] = []
    try:
        for line in p.stdout:
            lines.append(line)
            if echo:
                echo(line)
        p.wait()
    finally:
        timer.cancel()
        if p.poll() is None:
            p.kill()
            p.wait()
    dt = time.monotonic() - t0
    if expired.is_set():
        return VmResult(None, "".join(lines), dt, timed_out=True)
    code = (p.returncode >> 1) if p.returncode > 0 and p.returncode & 1 else None
    return VmResult(code, "".join(lines), dt)


def prepare() -> str:
    """Cache the kernel and build the initramfs (packages must be installed): one line saying
    what was done, for provision.sh's output."""
    missing = missing_packages()
    if missing:
        raise Unavailable(f"packages not installed: {' '.join(missing)}")
    had = cached_kernel()
    k = ensure_kernel(download=True)
    initrd = build_initramfs(k)
    how = "already cached" if had else "downloaded and unpacked"
    return f"kernel {k.version} {how} in {k.root}, initramfs {initrd.name}"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="harness.py", description="run a script in a qemu VM")
    ap.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds (default {TIMEOUT:.0f})")
    ap.add_argument("--memory", type=int, default=MEMORY_MB, help=f"MB (default {MEMORY_MB})")
    ap.add_argument("--prepare", action="store_true",
                    help="only cache the kernel and build the initramfs")
    ap.add_argument("script", nargs="?")
    ap.add_argument("args", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    try:
        if a.prepare:
            print(prepare())
            return 0
        if not a.script:
            ap.error("a SCRIPT is needed (or --prepare)")
        r = run(os.path.abspath(a.script), *a.args, timeout=a.timeout, memory_mb=a.memory,
                install=True, echo=lambda line: (sys.stdout.write(line), sys.stdout.flush()))
    except Unavailable as e:
        print(f"harness.py: {e}", file=sys.stderr)
        return 2
    print(f"[vm: exit {r.exit_code}, {r.seconds:.1f} s{', timed out' if r.timed_out else ''}]")
    if r.exit_code is None:
        return 124 if r.timed_out else 1
    return r.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
