"""Node agents forked from one parent that imported them once.

`python -m netsim.cluster.agents --cluster C --node N [--node N2 ...]` imports the node
agent (kubelet, kube-proxy, NetworkPolicy agent: ~0.35 s of CPU), waits for the API
server, then forks one agent per node. Each child enters its node's network namespace
(as `nsenter --net` did), starts its own session with its log as stdout and stderr, shows
`python -m netsim.kubelet --cluster C --node N` in `ps` and runs netsim.kubelet's main:
the same process a separate `python -m netsim.kubelet` would be, without paying the
imports ten times over on a machine with two cores (a 10-node `cluster up` spent ~4 s of
CPU importing its agents). The children share the parent's pages until they write them.

The ledger guarantee holds throughout: the launcher is itself recorded (by `cluster up`,
before it runs), and it records each child before that child does anything (the child
waits on a pipe for its record; a launcher killed in between leaves a child that reads
EOF and exits). Its last act is to forget its own record; it then exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import sys
import time

from netsim.cluster import procs
from netsim.net.ledger import Ledger, state_dir

MODULE = "netsim.cluster.agents"
ROLE = "agents"  # the launcher's role in the ledger (its children are agent/<node>)
LOG = "agents.log"
_CLONE_NEWNET = 0x40000000


def argv(cluster: str, nodes: list[str]) -> list[str]:
    """The launcher's command line (`cluster up`, `node add` and `node start` run it)."""
    return procs.python_module(MODULE, "--cluster", cluster,
                               *[a for n in nodes for a in ("--node", n)])


def agent_argv(cluster: str, node: str) -> list[str]:
    """What `ps` shows for a node's agent: the command that would start it on its own."""
    return [sys.executable, "-m", "netsim.kubelet", "--cluster", cluster, "--node", node]


def set_cmdline(args: list[str]) -> bool:
    """Show `args` as this process's command line (/proc/<pid>/cmdline, `ps`, `pgrep -f`)
    by writing them over the original argument area, as setproctitle does; False (nothing
    changed) when they do not fit in it. No dependency and no capability needed."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (proc(5) 48, 49)
    except (OSError, IndexError, ValueError):
        return False
    data = b"\0".join(a.encode() for a in args) + b"\0"
    if not start or len(data) > end - start:
        return False
    ctypes.memmove(start, data.ljust(end - start, b"\0"), end - start)
    return True


def _wait_for_api(cluster: str, timeout: float) -> bool:
    """The agents register their Node at once: wait until the API answers (the control
    plane boots while the launcher imports). The connection is closed before any fork."""
    from netsim.api.client import HttpClient, socket_path
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(socket_path(cluster)):
            client = HttpClient(cluster, timeout=5.0)
            try:
                client.list("namespaces")
                return True
            except Exception:  # noqa: BLE001 - not serving yet (any error): try again
                pass
            finally:
                conn = getattr(client._local, "conn", None)
                if conn is not None:
                    conn.close()
        time.sleep(0.02)
    return False


def _child(cluster: str, node: str, netns: str, log_path: str, go: int) -> int:
    """In the forked child: wait for the record, then become the node's agent."""
    if os.read(go, 1) != b"1":  # the launcher died before it recorded us
        return 1
    os.close(go)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join("/var/run/netns", netns), os.O_RDONLY | os.O_CLOEXEC)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        print(f"setns {netns}: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    os.close(fd)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    os.chdir("/")
    set_cmdline(agent_argv(cluster, node))
    from netsim.kubelet.__main__ import main
    return main(["--cluster", cluster, "--node", node])


def launch(cluster: str, nodes: list[str], api_timeout: float = 600.0) -> int:
    """Fork and record one agent per node (see the module's docstring)."""
    # everything the agents import, once, before any fork
    import netsim.kubelet.__main__  # noqa: F401
    import netsim.kubelet.agent  # noqa: F401
    import netsim.machinery  # noqa: F401
    import netsim.netpol.agent  # noqa: F401
    import netsim.proxy.agent  # noqa: F401
    from netsim.net.topology import ClusterConfig
    cfg = ClusterConfig.load(cluster)
    if cfg is None:
        print(f"cluster {cluster} has no configuration", file=sys.stderr)
        return 1
    if not _wait_for_api(cluster, api_timeout):
        print(f"the API server of {cluster} did not answer within {api_timeout:.0f}s",
              file=sys.stderr)
        return 1
    ledger = Ledger(cluster)
    logs = os.path.join(state_dir(cluster), "logs")
    sys.stdout.flush()
    sys.stderr.flush()
    # every child first, then their records in one write (one fsync), then they go on
    children: list[tuple[str, int, int]] = []
    for node in nodes:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            for _, _, other in children:
                os.close(other)
            os.setsid()
            code = 1
            try:
                code = _child(cluster, node, cfg.node_netns(node),
                              os.path.join(logs, f"agent-{node}.log"), r)
            except BaseException:  # noqa: BLE001 - the traceback goes to the agent's log
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 1)
        os.close(r)
        children.append((node, pid, w))
    ledger.add_all([{"kind": "process", "role": f"agent/{node}", "pid": pid,
                     "starttime": procs.proc_starttime(pid)} for node, pid, _ in children])
    for _, _, w in children:
        os.write(w, b"1")
        os.close(w)
    me = os.getpid()
    ledger.forget("process", pid=me, role=ROLE, starttime=procs.proc_starttime(me))
    return 0


def main(args: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="netsim-agents")
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--node", action="append", required=True)
    a = ap.parse_args(args)
    with contextlib.suppress(KeyboardInterrupt):
        return launch(a.cluster, a.node)
    return 1


if __name__ == "__main__":
    sys.exit(main())
