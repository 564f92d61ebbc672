"""The pod's mount namespace, made by its holder process (runs as a script: stdlib only).

`unshare --mount --propagation slave python -I -S mounter.py <plan>`: the kubelet
starts this once per pod that mounts volumes, with the pod's cgroup.procs as stdin. In the
new namespace it mounts the pod's memory-backed volumes (secret, projected, emptyDir with
medium Memory) as tmpfs over their folders, makes every disk-backed volume folder a bind
mount of itself (so a view from another mount always reaches the real folder), and makes
the mountPaths that do not exist on the host: the deepest existing folder above one is
mimicked by a tmpfs holding a bind mount of each of its entries (symlinks copied), so the
new folder exists only in this namespace and everything else is still the host's own
files. A mimicked `/` becomes the namespace's root through pivot_root. Then it becomes the
pod's pause process (`sleep infinity`): the namespace, and every tmpfs in it, lives as
long as it does. Nothing is ever mounted in the host's namespace, so a SIGKILLed cluster
leaves no mount behind: killing the holder (the pod's cgroup, or its network namespace's
processes) frees it all.

Containers enter this namespace (nsenter --mount=/proc/<holder>/ns/mnt), then make their
own private copy where their volumes are bind-mounted at their mountPaths; the kubelet
writes the tmpfs volumes through /proc/<holder>/root.

Plan: lines of tab-separated fields, `tmpfs DIR OPTIONS`, `selfbind DIR`, `scratch DIR`,
`mimic DIR`, `placeholder PATH dir|file`, `netns NAME` (the pod's network namespace: the
only one its /run/netns keeps, own_netns_only) (no json, re or platform import: every pod's start
waits for this interpreter).
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # asm/unistd_64.h, asm-generic/unistd.h
OLD_ROOT = ".netsim-oldroot"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(_libc.mount(src.encode() if src else None, dst.encode(),
                       fstype.encode() if fstype else None, flags,
                       data.encode() if data else None), f"mount {src or fstype} on {dst}")


def umount(path: str) -> None:
    _check(_libc.umount2(path.encode(), MNT_DETACH), f"umount {path}")


def bind(src: str, dst: str) -> None:
    mount(src, dst, None, MS_BIND | MS_REC)


def _copy_entry(entry: os.DirEntry, dst: str) -> None:
    """One entry of a mimicked folder: a symlink copied, anything else bind-mounted. Its
    kind comes from the directory listing (no stat per entry: two of them for each of the
    ~15 entries of /run were a tenth of a pod holder's CPU)."""
    if entry.is_symlink():
        os.symlink(os.readlink(entry.path), dst)
        return
    if entry.is_dir():
        os.mkdir(dst)
    else:
        with open(dst, "w"):
            pass
    bind(entry.path, dst)


def _tmpfs_like(path: str, dst: str) -> None:
    st = os.stat(path)
    mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={st.st_mode & 0o7777:o}")
    os.chown(dst, st.st_uid, st.st_gid)


def mimic(folder: str, scratch: str, n: int) -> str | None:
    """Cover `folder` with a tmpfs holding its entries (bind mounts, symlinks): new names
    can then be made below it in this namespace only. For `/` the new tree is returned
    (the caller pivots into it)."""
    if folder == "/":
        root = os.path.join(scratch, "root")
        os.mkdir(root)
        _tmpfs_like("/", root)
        with os.scandir("/") as entries:
            for e in entries:
                _copy_entry(e, os.path.join(root, e.name))
        return root
    stash = os.path.join(scratch, f"stash{n}")
    os.mkdir(stash)
    bind(folder, stash)
    # Reached through a descriptor: the scratch folder may lie below `folder` (a mountPath
    # under /var/lib, where the pod's state is), hidden once `folder` is covered.
    fd = os.open(stash, os.O_RDONLY | os.O_DIRECTORY)
    try:
        here = f"/proc/self/fd/{fd}"
        _tmpfs_like(folder, folder)
        with os.scandir(here) as entries:
            for e in entries:
                _copy_entry(e, os.path.join(folder, e.name))
        umount(here)
    finally:
        os.close(fd)
    return None


def pivot(root: str) -> None:
    """Make `root` this namespace's `/` (every process here follows), the old root gone."""
    nr = PIVOT_ROOT.get(os.uname().machine)
    if nr is None:
        raise OSError(f"pivot_root: unknown syscall number on {os.uname().machine}")
    old = os.path.join(root, OLD_ROOT)
    os.mkdir(old)
    _check(_libc.syscall(nr, root.encode(), old.encode()), f"pivot_root {root}")
    os.chdir("/")
    umount("/" + OLD_ROOT)
    os.rmdir("/" + OLD_ROOT)
    # The bind of /var carried a view of the new root's own tmpfs along: drop it.
    inner = root
    if os.path.ismount(inner):
        umount(inner)


def placeholder(path: str, kind: str) -> None:
    """A missing mountPath, made in this namespace's tmpfs (its parents too)."""
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if kind == "file":
        with open(path, "w"):
            pass
    else:
        os.mkdir(path)


def read_plan(text: str) -> dict:
    plan: dict = {"tmpfs": [], "selfbind": [], "mimic": [], "placeholders": [], "scratch": "",
                  "netns": ""}
    for line in text.splitlines():
        kind, *args = line.split("\t")
        if kind == "tmpfs":
            plan["tmpfs"].append([args[0], args[1] if len(args) > 1 else ""])
        elif kind == "selfbind":
            plan["selfbind"].append(args[0])
        elif kind == "mimic":
            plan["mimic"].append(args[0])
        elif kind == "placeholder":
            plan["placeholders"].append([args[0], args[1]])
        elif kind == "scratch":
            plan["scratch"] = args[0]
        elif kind == "netns":
            plan["netns"] = args[0]
    return plan


def write_plan(plan: dict) -> str:
    lines = [f"tmpfs\t{d}\t{o}" for d, o in plan["tmpfs"]]
    lines += [f"selfbind\t{d}" for d in plan["selfbind"]]
    lines += [f"scratch\t{plan['scratch']}"] + [f"mimic\t{d}" for d in plan["mimic"]]
    lines += [f"placeholder\t{p}\t{k}" for p, k in plan["placeholders"]]
    lines += [f"netns\t{plan['netns']}"] if plan.get("netns") else []
    return "\n".join(lines) + "\n"


NETNS_DIR = "/run/netns"
# The node's /run/netns, opened before a process left the node's mount namespace for one
# without it (netsim.images.zygote's template): the pods' network namespaces are opened
# through it. None: the node's own /run/netns is in this namespace.
HOST_NETNS: int | None = None


def open_netns(netns: str) -> int:
    """A pod's network namespace (an fd for setns or a bind mount)."""
    if HOST_NETNS is not None:
        return os.open(netns, os.O_RDONLY | os.O_CLOEXEC, dir_fd=HOST_NETNS)
    return os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY | os.O_CLOEXEC)


def own_netns_only(netns: str) -> None:
    """/run/netns of the pod's namespace holds the pod's own network namespace only (a
    tmpfs over the host's folder; `ip netns exec` of the containers' launcher finds it).

    A copy of the host's /run/netns in every pod's mount namespace would receive every
    `ip netns add` and delete of the node (slave propagation: each new pod's netns mount
    went to every other pod's namespace, O(pods) per pod), and each container's private
    copy of it would pin every network namespace that existed when it started."""
    if not netns:
        return
    fd = open_netns(netns)
    try:
        # (os.path.ismount cannot tell: the host's /run/netns is a bind mount of a folder
        # on the same filesystem)
        if _libc.umount2(NETNS_DIR.encode(), MNT_DETACH) != 0:
            if ctypes.get_errno() != errno.EINVAL:
                _check(-1, f"umount {NETNS_DIR}")
            if HOST_NETNS is None:
                return  # not a mount point here: nothing propagates into it
            # (detached already, by the template this holder was forked from: the folder
            # below shows every pod's name, none of them mounted)
        mount("tmpfs", NETNS_DIR, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16k")
        own = os.path.join(NETNS_DIR, netns)
        os.close(os.open(own, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))
        mount(f"/proc/self/fd/{fd}", own, None, MS_BIND)
    finally:
        os.close(fd)


def apply(plan: dict) -> None:
    own_netns_only(plan.get("netns") or "")
    for d, opts in plan.get("tmpfs", []):
        mount("tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV, opts or "")
    for d in plan.get("selfbind", []):
        mount(d, d, None, MS_BIND)
    mimics = sorted(plan.get("mimic", []), key=lambda p: 0 if p == "/" else p.count("/"),
                    reverse=True)  # the deepest first, `/` last
    if mimics:
        scratch = plan["scratch"]
        mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700")
        root = None
        for n, folder in enumerate(mimics):
            root = mimic(folder, scratch, n) or root
        if root:
            pivot(root)
    for path, kind in plan.get("placeholders", []):
        placeholder(path, kind)


def main(argv: list[str]) -> int:
    try:
        os.write(0, str(os.getpid()).encode())  # join the pod's cgroup (stdin: its procs)
    except OSError:
        pass
    try:
        with open(argv[1]) as f:
            plan = read_plan(f.read())
        apply(plan)
    except (OSError, ValueError, IndexError) as e:
        print(f"netsim: cannot make the pod's mounts: {e}", file=sys.stderr, flush=True)
        return 1
    fd = os.open("/dev/null", os.O_RDONLY)
    os.dup2(fd, 0)
    os.execvp("sleep", ["sleep", "infinity"])
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
