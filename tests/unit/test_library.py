"""netsim.library without a cluster: what `import netsim` costs, names and LANs the Cluster
picks, manifests it hands to the CLI, packets it ships to a pod, the plugin's registration,
and the README's example being the file CI runs."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from netsim.library import Cluster, NetsimError, plugin
from netsim.library import cluster as lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_import_netsim_stays_light_and_cluster_comes_on_first_use():
    code = ("import sys, netsim; light = 'netsim.library' not in sys.modules; "
            "from netsim import Cluster, NetsimError; "
            "print(light, Cluster.__module__, issubclass(NetsimError, Exception))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "netsim.library.cluster", "True"]


def test_unique_names_fit_a_cluster_name():
    names = {lib.unique_name() for _ in range(20)}
    assert len(names) == 20
    assert all(n.startswith("t") and len(n) == 7 for n in names)
    assert len(lib.unique_name("h8lib")) == 10
    with pytest.raises(ValueError, match="too long"):
        lib.unique_name("abcdefgh")


def test_an_invalid_name_is_refused_in_netsim_cluster_up_words():
    with pytest.raises(NetsimError) as e:
        Cluster("Bad_Name")
    assert str(e.value).startswith("error: ")


def test_lan_is_one_24_or_a_pool_of_them():
    assert Cluster("x1", lan="172.31.200.0/24")._lan_candidates() == ["172.31.200.0/24"]
    pool = Cluster("x1", lan="172.31.200.0/22")._lan_candidates()
    assert pool == [f"172.31.{i}.0/24" for i in range(200, 204)]
    default = Cluster("x1")._lan_candidates()
    assert len(default) == 16 and all(
        ipaddress.ip_network(n).subnet_of(ipaddress.ip_network(lib.DEFAULT_LAN_POOL))
        for n in default)
    with pytest.raises(NetsimError, match="invalid LAN"):
        Cluster("x1", lan="300.1.2.0/24")._lan_candidates()


def test_manifests_go_to_the_cli_as_text_path_or_objects(tmp_path):
    c = Cluster("x1")
    f = tmp_path / "a.yaml"
    f.write_text("kind: Namespace\n")
    assert c._manifest_args(str(f)) == (["-f", str(f)], None)
    assert c._manifest_args(f) == (["-f", str(f)], None)
    assert c._manifest_args("missing.yaml") == (["-f", "missing.yaml"], None)  # CLI's error
    assert c._manifest_args("kind: Pod\n") == (["-f", "-"], "kind: Pod\n")
    args, text = c._manifest_args([{"kind": "A"}, {"kind": "B"}])
    assert args == ["-f", "-"] and text == '{"kind": "A"}\n---\n{"kind": "B"}'
    with pytest.raises(TypeError):
        c._manifest_args(42)


def test_condition_match_is_kubectls():
    pod = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    assert lib._condition_true(pod, "Ready") and lib._condition_true(pod, "ready")
    assert not lib._condition_true(pod, "Available")
    assert not lib._condition_true({"status": {"conditions": [
        {"type": "Ready", "status": "False"}]}}, "Ready")


def test_a_service_is_serving_with_a_ready_endpoint_and_its_cluster_ip_open_on_every_node(
        monkeypatch):
    from types import SimpleNamespace as NS
    slices: list[dict] = []
    c = Cluster("svct")
    c._client = NS(list=lambda plural, ns, sel: slices if
                   sel == "kubernetes.io/service-name=web" else [])
    c._config = NS(nodes=[NS(name="a"), NS(name="b")], node_netns=lambda n: f"svct-{n}")
    tried: list[tuple] = []
    open_on = {"svct-a"}
    monkeypatch.setattr(lib, "_connects", lambda ns, ip, port: tried.append((ns, ip, port))
                        or ns in open_on)
    svc = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 53, "protocol": "UDP"},
                                                          {"port": 80, "protocol": "TCP"}]}}
    assert not c._serving(svc) and not tried  # no endpoint yet: no connection tried
    slices.append({"endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": False}}]})
    assert not c._serving(svc)
    slices.append({"endpoints": [{"addresses": ["10.244.2.2"], "conditions": {"ready": True}}]})
    assert not c._serving(svc)  # node b's kube-proxy has not programmed it yet
    assert tried[-1] == ("svct-b", "10.96.0.7", 80)
    open_on.add("svct-b")
    assert c._serving(svc)
    assert c._serving({**svc, "spec": {"clusterIP": "None", "ports": svc["spec"]["ports"]}})
    assert c._serving({"metadata": svc["metadata"], "spec": {"type": "ExternalName"}})


def test_a_packet_travels_unbuilt_so_the_pod_fills_in_its_own_source():
    from scapy.all import IP, TCP, Raw

    from netsim.library._sr import rebuilt, unbuilt
    pkt = IP(dst="10.96.0.10") / TCP(dport=53, flags="S") / Raw(b"x")
    [layers] = unbuilt(pkt)
    assert [cls.__name__ for cls, _ in layers] == ["IP", "TCP", "Raw"]
    assert "src" not in layers[0][1] and "chksum" not in layers[0][1]
    again = rebuilt(layers)
    assert bytes(again) == bytes(pkt)
    assert len(unbuilt([pkt, pkt])) == 2


def test_the_plugin_is_registered_by_the_package():
    eps = {e.name: e.value for e in entry_points(group="pytest11")}
    assert eps.get("netsim") == "netsim.library.plugin"


def test_marker_takes_nodes_and_proxy_mode_only():
    m = pytest.mark.netsim(nodes=1, proxy_mode="nftables").mark
    assert plugin._marker_kwargs(m) == {"nodes": 1, "proxy_mode": "nftables"}
    with pytest.raises(pytest.UsageError, match="nodes= and proxy_mode= only"):
        plugin._marker_kwargs(pytest.mark.netsim(node=1).mark)
    with pytest.raises(pytest.UsageError, match="proxy_mode must be one of"):
        plugin._marker_kwargs(pytest.mark.netsim(proxy_mode="ebpf").mark)


def test_readme_shows_the_example_ci_runs():
    readme = open(os.path.join(REPO, "README.md")).read()
    example = open(os.path.join(REPO, "examples", "pytest", "test_echo_service.py")).read()
    assert "## Testing your network code with netsim" in readme
    assert "```python\n" + example + "```" in readme


def test_cli_errors_keep_kubectls_words_and_reason():
    def failed(stderr):
        return subprocess.CompletedProcess(["netsim"], 1, "", stderr + "\n")
    e = lib._cli_failure(failed('Error from server (NotFound): pods "x" not found'), "get")
    assert isinstance(e, lib.NotFoundError) and e.reason == "NotFound"
    assert str(e) == 'Error from server (NotFound): pods "x" not found'
    e = lib._cli_failure(failed('The Service "bad" is invalid: spec.ports[0].nodePort: '
                                'Invalid value: 85: provided port is not in the valid range'), "apply")
    assert e.reason == "Invalid" and not isinstance(e, lib.NotFoundError)
    assert lib._cli_failure(failed('error: the path "x.yaml" does not exist'), "apply").reason is None
