"""The node's image server ("zygote"): one interpreter that has imported every built-in image
and forks each container of one (runs as a script: stdlib only, as the images themselves).

A fresh `python3 -S echo.py` costs ~30 ms of CPU and ~5 MB of private memory per pod. Forked
from here, a container shares the interpreter, the images' modules and their objects with
every other container of the node (gc.freeze() keeps the collector from writing to them),
and starts in a millisecond. It is still one real process per container: it has its own
pid, session, cgroup, network/UTS/mount namespaces, environment, working directory and
log file, `ps` shows the container's argv, `netsim exec` enters it, signals reach it, and
its exit status is what the image's main() ended with.

Usage: python3 -S zygote.py SOCKET. The kubelet (netsim.kubelet.zygote) sends one JSON line
per container on the unix socket:
    {"argv": [python, "-S", ".../images/echo.py", ...], "env": {...}, "cwd": "/",
     "log": LOG, "exit_file": FILE, "cgroup": DIR, "netns": NAME, "hostname": H,
     "etc_dir": DIR, "binds": FILE, "mount_ns": "/proc/<holder>/ns/mnt"}
and reads back {"pid": N} (the child is in its cgroup by then) or {"error": why} (the
kubelet then starts the container the usual way). The child sets itself up exactly as the
launcher of netsim.kubelet.runtime does (`nsenter --mount --root`, `ip netns exec`,
`unshare --uts --mount --propagation private`, the bind mounts of its volumes); a failure
there ends it with 125, a runtime error, its reason in the container's log. When a child
ends, its exit status (128+N for signal N) is written to its exit_file: the child is not
the kubelet's, so the kubelet reads its exit code there, as kubelet reads it from the
runtime's shim, the process that is a container's parent on a real node.
"""

import gc

if __name__ == "__main__":  # until the fork: a collection leaves holes children fill (and copy)
    gc.disable()

import ctypes  # noqa: E402
import json  # noqa: E402
import marshal  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402
from time import monotonic as time_now  # noqa: E402

try:  # preloaded: shared by every child
    from netsim.kubelet import mounter

    from . import _common, blog, echo, mysql, sleep, tcp_echo
except ImportError:  # run as a script: python -S .../netsim/images/zygote.py
    sys.path.append(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "kubelet"))
    import _common
    import blog
    import echo
    import mounter  # the pods' holders (netsim.kubelet.volumes) are forked here too
    import mysql
    import sleep
    import tcp_echo

_HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = {"echo.py": echo, "tcp_echo.py": tcp_echo, "mysql.py": mysql, "blog.py": blog,
            "sleep.py": sleep}
MAX_REQUEST = 1 << 20


# sleep by its path, looked up once: each holder then execs it at once instead of trying
# every folder of PATH before it (0.1-0.3 ms of a holder's ~3 ms here)
SLEEP = shutil.which("sleep") or ""

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWNET = 0x00020000, 0x04000000, 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE = 1, 32, 4096, 16384, 1 << 18, 1 << 19
MNT_DETACH = 2
ST_RDONLY = 1
PR_SET_PDEATHSIG, PR_SET_MM, PR_SET_MM_ARG_END, PR_SET_MM_ENV_END = 1, 35, 9, 11

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.clearenv.argtypes = []
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong]


class SetupError(Exception):
    """The container's namespaces or mounts could not be made (exit 125)."""


def program(argv: list) -> object:
    """The preloaded module an argv runs (`python -S <images>/X.py ...`), else None."""
    if len(argv) < 3 or argv[1] != "-S" or os.path.dirname(os.path.abspath(argv[2])) != _HERE:
        return None
    return PROGRAMS.get(os.path.basename(argv[2]))


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _blocks() -> tuple[int, int, int, int]:
    """(start, size) of this process's argv block, then of its environment block.

    /proc/<pid>/cmdline and /proc/<pid>/environ (what `ps`, `ps e` and `netsim exec` read)
    are these two blocks of the process's first stack page(s): a child writes its own argv
    and environment over the server's (os.environ and libc keep copies of their own). The
    kubelet starts the server with room in both (netsim.kubelet.zygote: a padding argument
    and variable)."""
    try:
        with open("/proc/self/stat") as f:
            a0, a1, e0, e1 = map(int, f.read().rsplit(")", 1)[1].split()[45:49])
    except (OSError, ValueError):
        return 0, 0, 0, 0
    return a0, a1 - a0, e0, e1 - e0


def _can_set_mm() -> bool:
    """CAP_SYS_RESOURCE: PR_SET_MM may then end both blocks where the child's data ends."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> 24 & 1)
    except (OSError, ValueError):
        pass
    return False


ARGS, ARGS_ROOM, ENVS, ENVS_ROOM = _blocks()
SET_MM = _can_set_mm()


class NoRoom(Exception):
    """The container's argv or environment does not fit the server's blocks: exec it."""


def plan(req: dict) -> dict:
    """Everything the child does, worked out here before the fork: the child runs as little
    Python as it can, since every page it touches (refcounts, bytecode caches) is copied."""
    if req.get("holder"):  # a pod's mount namespace holder (netsim.kubelet.mounter's plan)
        return {"holder": _b(req["holder"]), "log": _b(req["log"]),
                "cgroup": _b(req.get("cgroup") or ""), "exit": b""}
    netns, mount_ns = req.get("netns") or "", req.get("mount_ns") or ""
    mounts = [(b"none", b"/", None, MS_REC | MS_PRIVATE, "")]  # unshare --propagation private
    if netns:  # ip netns exec: the netns's own /sys, /etc/netns/<netns>/* over /etc
        mounts.append((_b(netns), b"/sys", b"sysfs", -1, ""))
        etc = f"/etc/netns/{netns}"
        for name in sorted(os.listdir(etc)) if os.path.isdir(etc) else ():
            mounts.append((_b(f"{etc}/{name}"), _b(f"/etc/{name}"), None, MS_BIND,
                           f"Bind {etc}/{name} -> /etc/{name} failed"))
    d = req.get("etc_dir") or ""
    for name in ("resolv.conf", "hosts") if d else ():
        if os.path.isfile(f"{d}/{name}"):
            mounts.append((_b(f"{d}/{name}"), _b(f"/etc/{name}"), None, MS_BIND, ""))
    binds = req.get("binds") or ""
    if binds and os.path.isfile(binds):
        with open(binds) as f:
            lines = f.read().splitlines()
        for line in lines:
            src, _, rest = line.partition("\t")
            dst, _, ro = rest.partition("\t")
            why = f"netsim: cannot mount {src} on {dst}"
            mounts.append((_b(src), _b(dst), None, MS_BIND, why))
            if ro:
                mounts.append((b"none", _b(dst), None, MS_REMOUNT | MS_BIND | MS_RDONLY, why))
    argv = [str(a) for a in req["argv"]]
    title = b"".join(_b(a) + b"\0" for a in argv)
    env = {_b(str(k)): _b(str(v)) for k, v in (req.get("env") or {}).items()}
    environ = b"".join(k + b"=" + v + b"\0" for k, v in env.items())
    if len(title) > ARGS_ROOM or len(environ) > ENVS_ROOM:
        raise NoRoom(f"argv of {len(title)} bytes or environment of {len(environ)} bytes does "
                     f"not fit the server's {ARGS_ROOM} and {ENVS_ROOM}")
    return {"log": _b(req["log"]), "net": netns,
            "mnt": _b(mount_ns), "root": _b(os.path.dirname(os.path.dirname(mount_ns)) + "/root")
            if mount_ns else b"", "mounts": mounts, "hostname": _b(req.get("hostname") or ""),
            "cwd": _b(req.get("cwd") or "/"), "env": env, "argv": argv[2:], "title": title,
            "environ": environ,
            "program": os.path.basename(argv[2]), "cgroup": _b(req.get("cgroup") or ""),
            "exit": _b(req.get("exit_file") or "")}


def _fail(what: str) -> None:
    raise SetupError(f"{what}: {os.strerror(ctypes.get_errno())}")


def _enter(p: dict) -> None:
    """The namespaces and mounts of the container, as runtime.start's launcher makes them:
    nsenter --mount=<holder's> --root=<holder's root> (the pod's namespace; its root may be a
    pivoted tmpfs), ip netns exec, unshare --uts --mount --propagation private (one new
    namespace for both), the bind mounts of its volumes."""
    libc = _libc
    net_fd = mounter.open_netns(p["net"]) if p["net"] else -1
    if p["mnt"]:
        mnt_fd = os.open(p["mnt"], os.O_RDONLY)
        root_fd = os.open(p["root"], os.O_RDONLY)
        if libc.setns(mnt_fd, CLONE_NEWNS):
            _fail("setns mnt")
        os.fchdir(root_fd)
        os.chroot(".")
        os.close(mnt_fd)
        os.close(root_fd)
    if net_fd >= 0:
        if libc.setns(net_fd, CLONE_NEWNET):
            _fail("setns net")
        os.close(net_fd)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWUTS):
        _fail("unshare")
    # no copy of the node's /run/netns (it would pin every netns it lists: netsim.kubelet.
    # mounter.own_netns_only); the container is in its netns already
    libc.umount2(mounter.NETNS_DIR.encode(), MNT_DETACH)
    for src, dst, fstype, flags, why in p["mounts"]:
        if flags == -1:  # sysfs; ip's rule: a read-only /sys is shadowed by a read-only one
            flags = 0
            if libc.umount2(b"/sys", MNT_DETACH) and os.path.exists(b"/sys"):
                flags = os.statvfs(b"/sys").f_flag & ST_RDONLY
        if libc.mount(src, dst, fstype, flags, None):
            if not why:
                _fail(f"mount {src.decode(errors='replace')} on {dst.decode(errors='replace')}")
            _common.warn(why)
    if p["hostname"]:
        libc.sethostname(p["hostname"], len(p["hostname"]))
    try:
        os.chdir(p["cwd"])
    except OSError:
        os.chdir(b"/")


def _become(p: dict) -> None:
    """The environment (Python's, libc's, /proc's) and argv (Python's and /proc's)."""
    env = p["env"]
    _libc.clearenv()
    for k, v in env.items():
        os.putenv(k, v)
    os.environ._data = env  # what os.environ wraps on POSIX: bytes -> bytes
    sys.argv = p["argv"]
    title, environ = p["title"], p["environ"]
    if ARGS:  # the rest of each block is NULs (the template cleared it): empty entries
        ctypes.memmove(ARGS, title, len(title))
        ctypes.memset(ARGS + len(title), 0, ARGS_ROOM - len(title))
        ctypes.memmove(ENVS, environ, len(environ))
    if SET_MM:  # (the environment block first: the argv block must end before it starts)
        _libc.prctl(PR_SET_MM, PR_SET_MM_ENV_END, ENVS + len(environ), 0, 0)
        _libc.prctl(PR_SET_MM, PR_SET_MM_ARG_END, ARGS + len(title), 0, 0)


def _hold(p: dict) -> None:
    """Become a pod's holder, as `unshare --mount --propagation slave python mounter.py
    PLAN` does: the pod's mounts in a namespace of its own, then `sleep infinity`."""
    try:
        if _libc.unshare(CLONE_NEWNS):
            _fail("unshare")
        if _libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None):
            _fail("mount --make-rslave /")
        with open(p["holder"]) as f:
            mounter.apply(mounter.read_plan(f.read()))
        if SLEEP:
            os.execv(SLEEP, ["sleep", "infinity"])
        os.execvp("sleep", ["sleep", "infinity"])
    except (OSError, ValueError, IndexError, SetupError) as e:
        _common.warn(f"netsim: cannot make the pod's mounts: {e}")
    os._exit(1)


def _child(p: dict, go: int) -> None:
    """Become the container (never returns)."""
    code = 125
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        log = os.open(p["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        if os.read(go, 1) != b"1":  # the server could not put us in our cgroup
            os._exit(125)
        os.close(go)
        if p.get("holder"):
            _hold(p)
        _enter(p)
        if mounter.HOST_NETNS is not None:  # the container keeps no handle on the node's
            os.close(mounter.HOST_NETNS)
        _become(p)
        gc.enable()
        code = 1
        PROGRAMS[p["program"]].main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            _common.warn(str(e.code))
    except (SetupError, OSError) as e:
        if code == 125:
            _common.warn(f"netsim: cannot start the container: {e}")
        else:
            traceback.print_exc()
    except BaseException:  # noqa: BLE001 - an image's crash is the container's exit 1
        traceback.print_exc()
    finally:
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:  # noqa: BLE001
                pass
        os._exit(code & 0xFF)


def _read_msg(fd: int):
    """One length-prefixed marshal message from a pipe; None at EOF."""
    head = b""
    while len(head) < 4:
        chunk = os.read(fd, 4 - len(head))
        if not chunk:
            return None
        head += chunk
    n = int.from_bytes(head, "big")
    data = b""
    while len(data) < n:
        chunk = os.read(fd, min(n - len(data), 1 << 16))
        if not chunk:
            return None
        data += chunk
    return marshal.loads(data)


def _write_msg(fd: int, obj) -> None:
    data = marshal.dumps(obj)
    data = len(data).to_bytes(4, "big") + data
    while data:
        data = data[os.write(fd, data):]


def _wakeup_pipe() -> tuple[int, int]:
    """SIGCHLD wakes select() through this pipe."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    return r, w


class Template:
    """The pristine copy of the interpreter every container is forked from, and their parent.

    It does nothing but fork, reap and write exit files, so its pages stay as they were at
    the fork that made it: whatever a process writes after a fork stops being shared with
    the children forked before, and the server's own work (JSON, sockets, plans) happens in
    the other process. Plans come marshalled on a pipe; EOF there (the server is gone) ends it.
    """

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        self.exits: dict[int, bytes] = {}  # child pid -> its exit file
        _leave_node_netns_dir()
        self.wake_r, self.wake_w = _wakeup_pipe()

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            path = self.exits.pop(pid, b"")
            if path:
                try:
                    fd = os.open(path + b".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                    os.write(fd, b"%d\n" % (128 - code if code < 0 else code))
                    os.close(fd)
                    os.replace(path + b".tmp", path)
                except OSError:
                    pass  # the pod's folder is gone: nobody waits for this code

    def fork(self, p: dict) -> tuple[int, str]:
        go_r, go_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            signal.set_wakeup_fd(-1)
            for fd in (self.rfd, self.wfd, self.wake_r, self.wake_w):
                os.close(fd)
            _child(p, go_r)
        os.close(go_r)
        try:
            if p["cgroup"]:  # in its cgroup before it runs a line of its own
                fd = os.open(p["cgroup"] + b"/cgroup.procs", os.O_WRONLY)
                try:
                    os.write(fd, b"%d" % pid)
                finally:
                    os.close(fd)
            os.write(go_w, b"1")
        except OSError as e:  # the child ends (125) without a word: the kubelet falls back
            return 0, f"cgroup {p['cgroup'].decode(errors='replace')}: {e.strerror or e}"
        finally:
            os.close(go_w)
        if p["exit"]:
            self.exits[pid] = p["exit"]
        return pid, ""

    def run(self) -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() == 1:
            os._exit(0)
        while True:
            ready = select.select([self.rfd, self.wake_r], [], [])[0]
            if self.wake_r in ready:
                try:
                    os.read(self.wake_r, 4096)
                except BlockingIOError:
                    pass
            self.reap()
            if self.rfd in ready:
                p = _read_msg(self.rfd)
                if p is None:
                    os._exit(0)
                _write_msg(self.wfd, self.fork(p))


def _leave_node_netns_dir() -> None:
    """Move the template into a mount namespace of its own (a slave of the node's) without
    the node's /run/netns, kept open as mounter.HOST_NETNS. Each pod's holder and container
    makes a new mount namespace, a copy of its parent's: a copy of the node's held a mount
    per pod of the node (their network namespaces), O(pods) per pod; the holder detached
    them again at once (mounter.own_netns_only). When this cannot be done, the template
    stays where it is, as before."""
    try:
        fd = os.open(mounter.NETNS_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    if _libc.unshare(CLONE_NEWNS):
        os.close(fd)
        return
    _libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None)  # the node's new mounts reach it
    _libc.umount2(mounter.NETNS_DIR.encode(), MNT_DETACH)
    mounter.HOST_NETNS = fd


class Server:
    """The socket the kubelet talks to: requests become plans for the template."""

    def __init__(self, path: str) -> None:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        gc.freeze()  # what is here now is shared with every child: never written by the gc
        sys.stdout.flush()
        sys.stderr.flush()
        self.template = os.fork()
        if self.template == 0:
            os.close(to_w)
            os.close(from_r)
            Template(to_r, from_w).run()
            os._exit(0)
        os.close(to_r)
        os.close(from_w)
        self.to_t, self.from_t = to_w, from_r
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o600)
        self.sock.listen(256)  # connects succeed from now on: the server is ready

    def handle(self, conn: socket.socket) -> dict:
        conn.settimeout(5.0)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk or len(data) > MAX_REQUEST:
                return {"error": "incomplete request"}
            data += chunk
        req = json.loads(data)
        if not req.get("holder") and program(req.get("argv") or []) is None:
            return {"error": "not a built-in image"}
        try:
            p = plan(req)
        except NoRoom as e:
            return {"error": str(e)}
        _write_msg(self.to_t, p)
        reply = _read_msg(self.from_t)
        if reply is None:  # the template is gone: so is the server (the kubelet starts both)
            os._exit(1)
        pid, err = reply
        return {"error": err} if err else {"pid": pid}

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    reply = self.handle(conn)
                except (OSError, ValueError, KeyError, TypeError) as e:
                    reply = {"error": f"{type(e).__name__}: {e}"}
                try:
                    conn.sendall(json.dumps(reply).encode() + b"\n")
                except OSError:
                    pass


WARM_ROUNDS = 10  # more than the 8 calls after which CPython 3.11 quickens a function
WARM_REQUEST = b"GET /warm-up HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def warm_up(rounds: int = WARM_ROUNDS, deadline: float = 2.0) -> None:
    """Run echo's serving code here once, before anything is forked: its flags, its app,
    and the real accept loop on a loopback listener of its own, given probes (connect,
    close) and HTTP requests as a pod's first minutes bring (answered in the loop, as
    echo answers them: _common.answer_at_once).

    CPython 3.11 writes to a function's code object on each of its first calls (then
    rewrites its bytecode, specialised) and fills the interpreter's type-attribute cache
    on first lookups: done here, those pages are shared by every container instead of
    copied into each (measured on 200 idle echo pods: 422 -> 396 private pages each).
    Nothing stays: the listener, the connections and any handler thread are gone when it
    returns, the access log lines went to /dev/null. A failure only means a colder start."""
    try:
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(4 * rounds)
    except OSError:
        return
    out = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    clients: list[socket.socket] = []
    done: list[int] = []
    others = set(threading.enumerate())  # (none in the server; a test's own, say)
    try:
        for _ in range(rounds):
            opts = _common.parse_args(["--port", "8080"], 8080)
            app = echo.make_app(opts)
        echo.json = json  # as echo.main sets it, after its listen()
        port = lsock.getsockname()[1]
        for _ in range(2 * rounds):  # the kubelet's tcpSocket probes
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
        for _ in range(rounds):
            cl = socket.create_connection(("127.0.0.1", port), timeout=1.0)
            cl.sendall(WARM_REQUEST)
            clients.append(cl)

        def counted(conn: socket.socket, req):
            done.append(1)
            return app(conn, req)

        end = time_now() + deadline
        _common.serve_http([lsock], counted, "netsim-echo", at_once=True,
                           until=lambda: len(done) >= len(clients) or time_now() > end)
    except Exception:  # noqa: BLE001 - a colder start, never a broken server
        pass
    finally:
        for cl in clients:
            cl.close()
        lsock.close()
        for t in set(threading.enumerate()) - others:  # the handler threads it started
            t.join(deadline)
        os.dup2(out, 1)
        os.close(out)
        os.close(null)


def _clear_blocks() -> None:
    """The server's own argv without the room (`ps` trims the NULs after it), and an empty
    environment block: the children write theirs over it, and the rest must read as nothing."""
    if not ARGS:
        return
    with open("/proc/self/cmdline", "rb") as f:
        title = b"".join(a + b"\0" for a in f.read().split(b"\0")[:4])
    ctypes.memmove(ARGS, title, len(title))
    ctypes.memset(ARGS + len(title), 0, ARGS_ROOM - len(title))
    ctypes.memset(ENVS, 0, ENVS_ROOM)


def main() -> None:
    if len(sys.argv) not in (2, 3):
        _common.warn("usage: zygote.py SOCKET [ROOM]")
        sys.exit(2)
    _clear_blocks()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    warm_up()
    Server(sys.argv[1]).serve()


if __name__ == "__main__":
    main()
