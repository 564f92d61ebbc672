"""Issue #2 CLI contract: kubectl's tables, output formats, and bad input in kubectl's words."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import namespace_fixture, requires_root, wait_for

pytestmark = [requires_root, pytest.mark.e2e]
NS = "clibasics"

POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: clibasics
  labels: {{app: {app}, tier: web}}
spec:
  containers:
  - name: main
    image: {image}
    ports: [{{containerPort: 8080}}]
"""


ns = namespace_fixture(NS)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_apply_get_wide_labels_yaml_json_name(cluster, ns, tmp_path):
    f = _write(tmp_path, "p.yaml", POD.format(name="web-1", app="web", image="netsim/echo"))
    r = cluster.netsim("apply", "-f", f)
    assert r.stdout == "pod/web-1 created\n"
    assert cluster.netsim("apply", "-f", f).stdout == "pod/web-1 unchanged\n"
    wait_for(lambda: cluster.client.get("pods", "web-1", NS)["status"].get("phase") == "Running",
             30, what="web-1 Running")
    out = cluster.netsim("-n", NS, "get", "po").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert out[1].split()[:4] == ["web-1", "1/1", "Running", "0"]
    wide = cluster.netsim(f"-n{NS}", "get", "po", "-owide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                               "NOMINATED", "NODE", "READINESS", "GATES"]
    pod = cluster.client.get("pods", "web-1", NS)
    assert pod["status"]["podIP"] in wide[1] and pod["spec"]["nodeName"] in wide[1]
    labels = cluster.netsim("get", "po", "-n", NS, "--show-labels").stdout
    assert "app=web,tier=web" in labels
    assert cluster.netsim("get", "po", "-n", NS, "-l", "app=nope").stderr == \
        f"No resources found in {NS} namespace.\n"
    y = yaml.safe_load(cluster.netsim("get", "po", "web-1", "-n", NS, "-o", "yaml").stdout)
    assert y["kind"] == "Pod" and y["spec"]["dnsPolicy"] == "ClusterFirst"
    assert y["metadata"]["uid"] and y["metadata"]["resourceVersion"]
    j = json.loads(cluster.netsim("get", "po", "-n", NS, "-o", "json").stdout)
    assert j["kind"] == "List" and j["items"][0]["metadata"]["name"] == "web-1"
    assert cluster.netsim("get", "po", "-n", NS, "-o", "name").stdout == "pod/web-1\n"
    allns = cluster.netsim("get", "po", "-A").stdout.splitlines()
    assert allns[0].split()[0] == "NAMESPACE"
    assert any(line.split()[:2] == [NS, "web-1"] for line in allns)
    d = cluster.netsim("describe", "po", "web-1", "-n", NS).stdout
    # (aligned under "Service Account:", which every pod has: the admission sets it)
    assert d.startswith("Name:") and f"Namespace:        {NS}\n" in d and "Events:" in d
    # the Events table's last row for the container start, as kubectl describe shows it
    assert re.search(r"^  Normal  +Started +.+? +kubelet +Started container main$", d, re.M), d
    logs = cluster.netsim("logs", "web-1", "-n", NS).stdout
    assert "listening" in logs


def test_unknown_image_is_errimagepull_then_backoff(cluster, ns, tmp_path):
    f = _write(tmp_path, "bad.yaml", POD.format(name="ghost", app="ghost", image="no/such-image:1"))
    cluster.netsim("apply", "-f", f)

    def status():
        line = cluster.netsim("get", "po", "ghost", "-n", NS).stdout.splitlines()[1].split()
        return line[2] if line[2] in ("ErrImagePull", "ImagePullBackOff") else None
    assert wait_for(status, 30, what="ErrImagePull") in ("ErrImagePull", "ImagePullBackOff")
    wait_for(lambda: status() == "ImagePullBackOff", 30, what="ImagePullBackOff")
    assert cluster.netsim("get", "po", "ghost", "-n", NS).stdout.splitlines()[1].split()[1] == "0/1"


def test_bad_input_messages_and_nothing_stored(cluster, ns, tmp_path):
    good = POD.format(name="half", app="half", image="netsim/echo")
    cases = {
        "syntax.yaml": (good + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   bad: [\n",
                        "error: error parsing"),
        "nokind.yaml": (good + "---\napiVersion: v1\nmetadata:\n  name: nokind\n",
                        'error: error validating "'),
        "unknown.yaml": (good + "---\napiVersion: v1\nkind: Gizmo\nmetadata:\n  name: g\n",
                         'error: resource mapping not found for name: "g" namespace: "" from'),
        "noimage.yaml": (good + "---\n" + POD.format(name="noimg", app="x", image='""'),
                         'The Pod "noimg" is invalid: spec.containers[0].image: Required value'),
    }
    for fname, (text, want) in cases.items():
        r = cluster.netsim("apply", "-f", _write(tmp_path, fname, text), check=False)
        assert r.returncode == 1, fname
        assert r.stderr.startswith(want), (fname, r.stderr)
        assert "Traceback" not in r.stderr
        assert cluster.client.get_or_none("pods", "half", NS) is None, f"{fname} stored half"
    r = cluster.netsim("apply", "-f", _write(tmp_path, "noimage2.yaml",
                                             POD.format(name="noimg", app="x", image='""')),
                       check=False)
    assert 'The Pod "noimg" is invalid: spec.containers[0].image: Required value' in r.stderr
    r = cluster.netsim("get", "gizmos", check=False)
    assert r.returncode == 1 and r.stderr == 'error: the server doesn\'t have a resource type "gizmos"\n'
    r = cluster.netsim("get", "po", "nothere", "-n", NS, check=False)
    assert r.returncode == 1 and r.stderr == 'Error from server (NotFound): pods "nothere" not found\n'


def test_not_root_says_so_in_one_line():
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-m", "netsim.cli.main", "get", "po"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1 and "root" in r.stderr


def test_host_path_volume_is_mounted_only_when_both_paths_exist(cluster, ns, tmp_path):
    src = tmp_path / "data"
    src.mkdir()
    (src / "marker").write_text("from the host\n")
    pod = f"""apiVersion: v1
kind: Pod
metadata: {{name: hostpath, namespace: {NS}}}
spec:
  volumes:
  - {{name: data, hostPath: {{path: {src}}}}}
  - {{name: gone, hostPath: {{path: {tmp_path}/does-not-exist}}}}
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    volumeMounts:
    - {{name: data, mountPath: /mnt}}
    - {{name: gone, mountPath: /srv}}
"""
    cluster.netsim("apply", "-f", _write(tmp_path, "hp.yaml", pod))
    wait_for(lambda: cluster.client.get("pods", "hostpath", NS)["status"].get("phase")
             == "Running", 30, what="hostpath pod Running")
    assert cluster.pod_exec("hostpath", "cat", "/mnt/marker", namespace=NS).stdout == "from the host\n"
    d = cluster.netsim("describe", "po", "hostpath", "-n", NS).stdout
    assert 'FailedMount' in d and 'hostPath volume "gone" not mounted at /srv' in d


def test_expose_a_deployment_and_reach_it(cluster, ns):
    """`kubectl expose` as tutorials use it: the Service gets the Deployment's selector and
    labels, answers on its ClusterIP and NodePort; `--name` is never taken for
    `--namespace` (pflag knows no abbreviations)."""
    assert cluster.netsim("create", "deployment", "exp", "--image=netsim/echo", "--port=8080",
                          "-n", NS).returncode == 0
    r = cluster.netsim("expose", "deployment", "exp", "--port", "80", "--target-port", "8080",
                       "-n", NS)
    assert r.stdout == "service/exp exposed\n"
    r = cluster.netsim("expose", "deploy", "exp", "--name", "exp-np", "--type", "NodePort",
                       "-n", NS)
    assert r.stdout == "service/exp-np exposed\n"
    svc = cluster.client.get("services", "exp", NS)
    assert svc["spec"]["selector"] == {"app": "exp"} and svc["metadata"]["labels"] == {"app": "exp"}
    assert [(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [(80, 8080)]
    np = cluster.client.get("services", "exp-np", NS)["spec"]["ports"][0]
    assert (np["port"], np["targetPort"]) == (8080, 8080) and 30000 <= np["nodePort"] <= 32767
    r = cluster.netsim("expose", "node", "k8s-slave-172", check=False)
    assert (r.returncode, r.stderr) == (1, "error: cannot expose a Node\n")
    node = cluster.node_netns("k8s-slave-173")

    def answers(url):
        r = cluster.in_netns(node, "curl", "-s", "-m", "2", url)
        return r.returncode == 0 and '"pod": "exp-' in r.stdout
    wait_for(lambda: answers(f"http://{svc['spec']['clusterIP']}/"), 30, what="exp's ClusterIP")
    lan_ip = cluster.cfg.node("k8s-slave-172").ip
    wait_for(lambda: answers(f"http://{lan_ip}:{np['nodePort']}/"), 30, what="exp-np's NodePort")
    # `create service` selects app=<name>, which `create deployment <name>` labels its pods with
    r = cluster.netsim("create", "service", "nodeport", "exp", "--tcp=81:8080", "-n", NS,
                       check=False)
    assert r.stderr == 'Error from server (AlreadyExists): services "exp" already exists\n'
    cluster.netsim("delete", "svc", "exp", "-n", NS)
    r = cluster.netsim("create", "service", "nodeport", "exp", "--tcp=81:8080", "-n", NS)
    assert r.stdout == "service/exp created\n"
    sp = cluster.client.get("services", "exp", NS)["spec"]["ports"][0]
    assert (sp["name"], sp["port"], sp["targetPort"]) == ("81-8080", 81, 8080)
    wait_for(lambda: answers(f"http://{lan_ip}:{sp['nodePort']}/"), 30, what="exp's NodePort")


def test_run_a_pod_expose_it_and_run_a_client_that_is_removed(cluster, ns):
    """`kubectl run` as tutorials use it: a server with --port --expose, then a one-off
    client with --rm --restart=Never whose output and exit code come back."""
    r = cluster.netsim("run", "srv", "--image=netsim/echo", "--port", "8080", "--expose",
                       "-n", NS)
    assert r.stdout == "pod/srv created\nservice/srv created\n"
    assert cluster.client.get("pods", "srv", NS)["metadata"]["labels"] == {"run": "srv"}
    wait_for(lambda: cluster.client.get("endpoints", "srv", NS).get("subsets"), 30,
             what="srv's endpoints")
    # and programmed on every worker, where the client may land: kube-proxy syncs at most
    # once a second in a stream of changes (minSyncPeriod), and an image-server container
    # can start within that second (CI once saw curl exit 7)
    url = f"http://{cluster.client.get('services', 'srv', NS)['spec']['clusterIP']}:8080/"
    for node in ("k8s-slave-172", "k8s-slave-173"):
        wait_for(lambda n=node: cluster.in_netns(cluster.node_netns(n), "curl", "-s", "-m", "2",
                                                 url).returncode == 0, 30,
                 what=f"srv's ClusterIP from {node}")
    r = cluster.netsim("run", "cli", "--rm", "-i", "--restart=Never", "--image=curlimages/curl",
                       "-n", NS, "--", "curl", "-s", "-m", "5", "srv:8080/hi", timeout=90)
    assert '"path": "/hi"' in r.stdout and '"pod": "srv"' in r.stdout
    assert r.stdout.rstrip().endswith(f'pod "cli" deleted from {NS} namespace')
    r = cluster.netsim("run", "bad", "--rm", "--attach", "--restart=Never", "--image=busybox",
                       "-n", NS, "--", "sh", "-c", "echo bye; exit 3", check=False, timeout=90)
    assert r.returncode == 3 and r.stdout.startswith("bye\n")
    wait_for(lambda: not any(p["metadata"]["name"] in ("cli", "bad")
                             for p in cluster.client.list("pods", NS)), 30, what="clients gone")
    r = cluster.netsim("run", "x", "--rm", "--image=busybox", "-n", NS, check=False)
    assert r.stderr == "error: --rm should only be used for attached containers\n"
