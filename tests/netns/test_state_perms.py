"""Issue 9: a cluster's state is root's only (etcd keeps its data dir 0700).

The store and its WAL hold Secrets; the logs hold whatever containers print. Another local
user (here `nobody`) can neither read them nor talk to the API socket; root still can.
"""

from __future__ import annotations

import base64
import glob
import os
import stat
import subprocess
import sys

import pytest

from tests.conftest import requires_root, wait_for

pytestmark = [requires_root]

SECRET = "s3cr3t-only-for-root-7d41"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NOBODY, *cmd], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def state(cluster):
    """A Secret in the store and a container that printed it to its log."""
    cluster.netsim("create", "secret", "generic", "perms-secret", f"--from-literal=token={SECRET}")
    cluster.netsim("apply", "-f", "-", input="""apiVersion: v1
kind: Pod
metadata: {name: perms-logger}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo token=$TOKEN; exec sleep 3600"]
    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: perms-secret, key: token}}}]
""")
    root = f"/var/lib/netsim/{cluster.name}"

    def logged():
        logs = glob.glob(f"{root}/nodes/*/pods/default_perms-logger_*/c/*.log")
        return [p for p in logs if SECRET in open(p).read()]
    logs = wait_for(logged, 60, what="the pod's log with the secret")
    yield root, logs[0]
    cluster.netsim("delete", "pod", "perms-logger", "--grace-period=0", "--force", check=False)
    cluster.netsim("delete", "secret", "perms-secret", check=False)


def test_state_folders_are_0700(cluster, state):
    for d in ("/var/lib/netsim", f"/var/lib/netsim/{cluster.name}", f"/run/netsim/{cluster.name}",
              f"/var/lib/netsim/{cluster.name}/logs", f"/var/lib/netsim/{cluster.name}/nodes"):
        st = os.stat(d)
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == 0, d


def test_the_store_its_wal_the_ledger_and_logs_are_0600(cluster, state):
    root, _ = state
    files = [f"{root}/{n}" for n in ("store.db", "store.db-wal", "ledger.jsonl", "cluster.json")]
    files += glob.glob(f"{root}/logs/*.log")
    assert len(files) >= 6
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f


def test_nobody_cannot_read_the_secret(cluster, state):
    root, container_log = state
    wal = f"{root}/store.db-wal"
    # root can: the secret really is in these files (base64 in the store, plain in the log)
    assert base64.b64encode(SECRET.encode()) in open(wal, "rb").read() + open(f"{root}/store.db", "rb").read()
    for f in (f"{root}/store.db", wal, f"{root}/ledger.jsonl", f"{root}/cluster.json",
              f"{root}/logs/controlplane.log", container_log):
        p = as_nobody("cat", f)
        assert p.returncode != 0 and "Permission denied" in p.stderr, (f, p.stdout[:200], p.stderr)
    p = as_nobody("ls", "/var/lib/netsim")
    assert p.returncode != 0 and "Permission denied" in p.stderr


def test_nobody_cannot_use_the_api_socket_root_can(cluster, state):
    sock = f"/run/netsim/{cluster.name}/api.sock"
    p = as_nobody("curl", "-s", "-S", "--max-time", "5", "--unix-socket", sock,
                  "http://localhost/api/v1/namespaces/default/secrets/perms-secret")
    assert p.returncode != 0 and SECRET not in p.stdout, p.stdout
    out = cluster.netsim("get", "secret", "perms-secret", "-o", "jsonpath={.data.token}").stdout
    assert base64.b64decode(out).decode() == SECRET


def test_the_ingress_still_buffers_to_its_private_state(cluster, tmp_path):
    """nginx writes responses and request bodies larger than its buffers to temp files in
    the pod's state folder: with that folder root's only its workers must still open them
    (as `nobody` a 2 MB response was cut at ~170 KB and a 500 KB POST got a 500)."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "big.txt").write_bytes(b"a" * 2_000_000)
    # a POST handler that reads the whole body before it answers: http.server's own 501
    # came before the body was read, and closing on unread data resets nginx's upload (502)
    server = tmp_path / "server.py"
    server.write_text(
        "import http.server, sys\n"
        "class H(http.server.SimpleHTTPRequestHandler):\n"
        "    def do_POST(self):\n"
        "        got = str(len(self.rfile.read(int(self.headers['Content-Length'])))).encode()\n"
        "        self.send_response(200)\n"
        "        self.send_header('Content-Length', str(len(got)))\n"
        "        self.end_headers()\n"
        "        self.wfile.write(got)\n"
        "http.server.ThreadingHTTPServer(('', 8080), lambda *a: H(*a, directory=sys.argv[1])).serve_forever()\n")
    cluster.netsim("label", "node", "k8s-slave-172", "ingress=true", "--overwrite")
    cluster.netsim("apply", "-f", "-", input=f"""apiVersion: v1
kind: Pod
metadata: {{name: perms-big, labels: {{app: perms-big}}}}
spec:
  containers:
  - name: web
    image: busybox
    command: ["{sys.executable}", "{server}", "{www}"]
---
apiVersion: v1
kind: Service
metadata: {{name: perms-big}}
spec:
  selector: {{app: perms-big}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: perms-big}}
spec:
  ingressClassName: nginx
  rules:
  - host: perms-big.test
    http:
      paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: perms-big, port: {{number: 80}}}}}}}}]
""")
    node_ip = cluster.cfg.node("k8s-slave-172").ip
    body = tmp_path / "body"
    body.write_bytes(b"b" * 500_000)

    def fetch(*args: str, out: str = "/dev/null") -> list[str]:
        p = subprocess.run(["curl", "-s", "-o", out, "-w", "%{http_code} %{size_download}",
                            "--max-time", "10", "-H", "Host: perms-big.test", *args,
                            f"http://{node_ip}/big.txt"], capture_output=True, text=True, timeout=20)
        return p.stdout.split()
    def routed(*args: str, out: str = "/dev/null") -> list[str]:
        """fetch, asked again while it is 503: an ingress pod whose config has no ready
        endpoint for the Service yet (CI: the node's label had just started one, and
        the request before had met another pod)."""
        return wait_for(lambda: (r := fetch(*args, out=out))[0] != "503" and r, 30, 0.5,
                        what="an ingress pod routing perms-big.test")
    try:
        wait_for(lambda: all(fetch()[0] == "200" for _ in range(5)), 90,
                 what="the ingress serving perms-big.test, 5 answers in a row")
        assert routed() == ["200", "2000000"]
        # the body went through nginx's temp file to the pod, whole
        answer = tmp_path / "answer"
        assert routed("--data-binary", f"@{body}", out=str(answer))[0] == "200"
        assert answer.read_text() == "500000"
    finally:
        cluster.netsim("delete", "ingress,service,pod", "perms-big", "--grace-period=0", "--force",
                       check=False)
