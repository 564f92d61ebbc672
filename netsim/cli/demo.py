"""`netsim demo`: the seed tutorial's blog app, end to end, printed as a transcript.

Every step is a real `netsim ...` or `curl` command whose real output is shown, so the
demo doubles as a tour: copy any line and run it yourself.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from netsim.cli.context import CliError, Ctx
from netsim.cluster import lifecycle
from netsim.net.topology import ClusterConfig

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def examples_dir() -> str:
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for cand in (os.path.join(here, "examples"), "/opt/netsim/examples", "examples"):
        if os.path.isdir(cand):
            return cand
    raise CliError("error: cannot find the examples/ folder of netsim")


class Demo:
    def __init__(self, ctx: Ctx):
        self.ctx = ctx
        self.env = {**os.environ, "NETSIM_CLUSTER": ctx.cluster}
        self.ex = examples_dir()

    def say(self, text: str) -> None:
        print(f"\n{BOLD}# {text}{RESET}", flush=True)

    def run(self, *argv: str, netns: str | None = None, check: bool = False) -> str:
        shown = " ".join(shlex.quote(a) for a in argv)
        print(f"{DIM}${RESET} {shown}", flush=True)
        cmd = list(argv)
        if argv[0] == "netsim":
            cmd = [sys.executable, "-m", "netsim.cli.main", *argv[1:]]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        p = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=120)
        out = (p.stdout + p.stderr).rstrip()
        if out:
            print(out, flush=True)
        if check and p.returncode != 0:
            raise CliError(f"error: demo step failed: {shown}")
        return p.stdout

    def wait_ready(self, ns: str, selector: str, count: int, timeout: float = 90) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pods = [p for p in self.ctx.client.list("pods", ns, selector)
                    if not p["metadata"].get("deletionTimestamp")]
            ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in p.get("status", {}).get("conditions", []))]
            if len(ready) >= count:
                return True
            time.sleep(0.2)
        print(f"(still waiting for {count} ready pods {selector} in {ns}; continuing)")
        return False

    def file(self, *parts: str) -> str | None:
        p = os.path.join(self.ex, *parts)
        return p if os.path.exists(p) else None


def _apply_text(d: Demo, text: str) -> None:
    print(f"{DIM}${RESET} netsim apply -f - <<EOF\n{text}EOF", flush=True)
    p = subprocess.run([sys.executable, "-m", "netsim.cli.main", "apply", "-f", "-"], input=text,
                       capture_output=True, text=True, env=d.env, timeout=60)
    print((p.stdout + p.stderr).rstrip(), flush=True)


def _wait_http(curl_args: list[str], timeout: float = 60) -> bool:
    """Until the URL answers 200 (a freshly reloaded ingress, a restarted pod)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                            *curl_args], capture_output=True, text=True)
        if r.stdout == "200":
            return True
        time.sleep(0.5)
    return False


def run(ctx: Ctx, args) -> int:
    cfg = ClusterConfig.load(ctx.cluster)
    if cfg is None or not lifecycle.is_up(ctx.cluster):
        cfg = ClusterConfig.make(name=ctx.cluster)
        lifecycle.up(cfg)
    d = Demo(ctx)
    uit = d.file("uit")
    if not uit:
        raise CliError("error: examples/uit is missing")
    nodes = [n.name for n in cfg.nodes]
    worker = nodes[1] if len(nodes) > 1 else nodes[0]
    d.say("1. Deployments (seed section 1): mysql runs with hostNetwork on the node labelled component=zz")
    for f in ("namespace.yaml", "secret.yaml", "configmap.yaml"):
        if d.file("uit", f):
            d.run("netsim", "apply", "-f", os.path.join(uit, f))
    d.run("netsim", "label", "node", worker, "component=zz", "--overwrite")
    for f in ("mysql.yaml", "ublog.yaml"):
        if d.file("uit", f):
            d.run("netsim", "create", "-f", os.path.join(uit, f))
    d.wait_ready("uit", "app=mysql", 1)
    d.wait_ready("uit", "app=myblog", 1)
    d.run("netsim", "-n", "uit", "get", "deploy")
    d.run("netsim", "-n", "uit", "get", "rs")
    d.run("netsim", "-n", "uit", "get", "po", "-o", "wide")

    d.say("2. Services (seed section 2): a ClusterIP for mysql, a NodePort 32333 for the blog")
    for f in ("svc-mysql.yaml", "svc-ublog.yaml", "svc-np-ublog.yaml"):
        if d.file("uit", f):
            d.run("netsim", "apply", "-f", os.path.join(uit, f))
    d.run("netsim", "-n", "uit", "scale", "deploy", "ublog", "--replicas=3")
    d.wait_ready("uit", "app=myblog", 3)
    d.run("netsim", "-n", "uit", "get", "svc")
    d.run("netsim", "-n", "uit", "get", "endpoints")
    for n in cfg.nodes:
        d.run("curl", "-s", "-m", "3", f"http://{n.ip}:32333/blog/index/")
    d.run("netsim", "node", "exec", worker, "--", "sh", "-c", "iptables-save | grep svc-np-ublog")

    d.say("2.2 Service discovery: pods resolve Services by name through kube-dns 10.96.0.10")
    blog = next((p["metadata"]["name"] for p in ctx.client.list("pods", "uit", "app=myblog")
                 if p.get("status", {}).get("phase") == "Running"), None)
    d.run("netsim", "get", "svc", "--all-namespaces")
    d.run("netsim", "-n", "kube-system", "get", "po", "-l", "k8s-app=kube-dns", "-o", "wide")
    if blog:
        d.run("netsim", "-n", "uit", "exec", blog, "--", "cat", "/etc/resolv.conf")
        d.run("netsim", "-n", "uit", "exec", blog, "--", "getent", "hosts", "svc-mysql")
    d.say("    ... so the ConfigMap names svc-mysql instead of a node IP, and the blog follows")
    _apply_text(d, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ublog\n  namespace: uit\n"
                   "data:\n  MYSQL_HOST: svc-mysql\n  MYSQL_PORT: \"3306\"\n")
    d.run("netsim", "-n", "uit", "rollout", "restart", "deploy", "ublog")
    d.run("netsim", "-n", "uit", "rollout", "status", "deploy", "ublog", "--timeout=120s")
    d.run("curl", "-s", "-m", "3", f"http://{cfg.node(worker).ip}:32333/blog/index/")

    d.say("3. Ingress (seed section 3): nginx on the node labelled ingress=true")
    ing = d.file("ingress")
    if ing:
        ip = cfg.node(worker).ip
        d.run("netsim", "label", "node", worker, "ingress=true", "--overwrite")
        d.run("netsim", "create", "namespace", "demo")
        d.run("netsim", "apply", "-f", os.path.join(ing, "myblog.yaml"))
        d.run("netsim", "apply", "-f", os.path.join(ing, "ingress.yaml"))
        d.wait_ready("ingress-nginx", "", 1)
        d.wait_ready("demo", "app=myblog", 1)
        _wait_http(["-H", "Host: myblog.devops.cn", f"http://{ip}/blog/index/"])
        d.run("netsim", "-n", "demo", "get", "ing")
        d.run("curl", "-s", "-m", "3", "-H", "Host: myblog.devops.cn", f"http://{ip}/blog/index/")
        d.say("    HTTPS with a self-signed certificate in a kubernetes.io/tls Secret")
        tmp = tempfile.mkdtemp(prefix="netsim-demo-")
        key, crt = os.path.join(tmp, "tls.key"), os.path.join(tmp, "tls.crt")
        d.run("openssl", "req", "-x509", "-nodes", "-days", "2920", "-newkey", "rsa:2048",
              "-keyout", key, "-out", crt, "-subj", "/CN=*.devops.cn/O=ingress-nginx")
        d.run("netsim", "-n", "demo", "create", "secret", "tls", "https-secret", "--key", key,
              "--cert", crt)
        d.run("netsim", "apply", "-f", os.path.join(ing, "ingress-tls.yaml"))
        _wait_http(["-k", "--resolve", f"myblog.devops.cn:443:{ip}",
                    "https://myblog.devops.cn/blog/index/"])
        d.run("curl", "-s", "-k", "-m", "3", "--resolve", f"myblog.devops.cn:443:{ip}",
              "https://myblog.devops.cn/blog/index/")
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{BOLD}Done.{RESET} The cluster \"{ctx.cluster}\" stays up: try `netsim -n uit get po -o wide`, "
          f"`netsim node exec {worker} -- iptables-save`, `netsim -n uit exec -ti <pod> -- bash`.\n"
          f"Remove everything with `netsim cluster down`.")
    return 0
