"""Pod volumes (netsim.kubelet.volumes): payloads, the AtomicWriter layout, the holder's
plan, the containers' bind mounts and the volume manager's FailedMount and token paths,
as upstream's kubelet does them."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from netsim.api import errors
from netsim.kubelet import volumes as v
from netsim.kubelet.volumes import MountError, Sources


def _pod(volumes=None, mounts=None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "demo", "uid": "u-1",
                         "labels": {"app": "web", "tier": "front \"end\""},
                         "annotations": {"note": "a\nb"}},
            "spec": {"containers": [{"name": "main", "image": "busybox",
                                     "volumeMounts": mounts or [],
                                     "resources": {"limits": {"memory": "64Mi"}}}],
                     "volumes": volumes or [], **spec}}


CM = {"metadata": {"name": "cfg", "namespace": "demo"},
      "data": {"key": "value", "other": "two"},
      "binaryData": {"blob": base64.b64encode(b"\x00\x01").decode()}}
SECRET = {"metadata": {"name": "sec", "namespace": "demo"},
          "data": {"password": base64.b64encode(b"s3cret").decode()}}


def _get(objs):
    return lambda res, name, ns: objs.get((res, name))


def _sources(objs=None, token=lambda pod, tp: b"tok"):
    return Sources(_get(objs or {}), token, {"cpu": "2", "memory": "1Gi"})


# ---- payloads --------------------------------------------------------------------------

def test_configmap_all_keys_with_default_mode_0644():
    files = v.payload({"name": "c", "configMap": {"name": "cfg"}}, _pod(),
                      _sources({("configmaps", "cfg"): CM}))
    assert files == {"key": (b"value", 0o644), "other": (b"two", 0o644),
                     "blob": (b"\x00\x01", 0o644)}


def test_configmap_items_path_mode_and_missing_key():
    vol = {"name": "c", "configMap": {"name": "cfg", "defaultMode": 0o600, "items": [
        {"key": "key", "path": "sub/k.conf", "mode": 0o400}, {"key": "other", "path": "o"}]}}
    files = v.payload(vol, _pod(), _sources({("configmaps", "cfg"): CM}))
    assert files == {"sub/k.conf": (b"value", 0o400), "o": (b"two", 0o600)}
    vol["configMap"]["items"].append({"key": "nope", "path": "n"})
    with pytest.raises(MountError, match="^configmap references non-existent config key: nope$"):
        v.payload(vol, _pod(), _sources({("configmaps", "cfg"): CM}))
    vol["configMap"]["optional"] = True
    assert "n" not in v.payload(vol, _pod(), _sources({("configmaps", "cfg"): CM}))


def test_missing_configmap_and_secret_say_what_upstream_says():
    with pytest.raises(MountError) as e:
        v.payload({"name": "x", "configMap": {"name": "y"}}, _pod(), _sources())
    assert str(e.value) == 'configmap "y" not found'
    with pytest.raises(MountError) as e:
        v.payload({"name": "x", "secret": {"secretName": "y"}}, _pod(), _sources())
    assert str(e.value) == 'secret "y" not found'
    assert v.payload({"name": "x", "configMap": {"name": "y", "optional": True}}, _pod(),
                     _sources()) == {}


def test_secret_is_decoded_and_0644():
    files = v.payload({"name": "s", "secret": {"secretName": "sec"}}, _pod(),
                      _sources({("secrets", "sec"): SECRET}))
    assert files == {"password": (b"s3cret", 0o644)}
    with pytest.raises(MountError, match="references non-existent secret key: k"):
        v.payload({"name": "s", "secret": {"secretName": "sec", "items": [{"key": "k", "path": "k"}]}},
                  _pod(), _sources({("secrets", "sec"): SECRET}))


def test_downward_api_fields_and_resources():
    vol = {"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "main",
                                             "resource": "limits.memory", "divisor": "1Mi"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "main", "resource": "limits.cpu"}},
        {"path": "cpu_m", "resourceFieldRef": {"containerName": "main",
                                               "resource": "limits.cpu", "divisor": "1m"}}]}}
    files = {k: c.decode() for k, (c, _m) in v.payload(vol, _pod(), _sources()).items()}
    # fieldpath.FormatMap: sorted, %q-quoted, no final newline
    assert files["labels"] == 'app="web"\ntier="front \\"end\\""'
    assert files["annotations"] == 'note="a\\nb"'
    assert (files["name"], files["ns"], files["uid"], files["app"]) == ("web", "demo", "u-1", "web")
    assert files["mem"] == "64"
    assert (files["cpu"], files["cpu_m"]) == ("2", "2000")  # no limit: the node's allocatable
    with pytest.raises(MountError, match="unsupported fieldPath: spec.nodeName"):
        v.payload({"name": "i", "downwardAPI": {"items": [
            {"path": "n", "fieldRef": {"fieldPath": "spec.nodeName"}}]}}, _pod(), _sources())


def kube_api_access() -> dict:
    """The volume upstream's ServiceAccount admission adds."""
    return {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}


def test_projected_service_account_volume():
    ca = {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n"}}
    files = v.payload(kube_api_access(), _pod(),
                      _sources({("configmaps", "kube-root-ca.crt"): ca}, lambda p, tp: b"jwt"))
    assert files == {"token": (b"jwt", 0o644), "ca.crt": (b"-----BEGIN CERTIFICATE-----\n", 0o644),
                     "namespace": (b"demo", 0o644)}


def test_projected_collects_every_error():
    def no_token(pod, tp):
        raise MountError("failed to fetch token: the server could not find the requested resource")
    with pytest.raises(MountError) as e:
        v.payload(kube_api_access(), _pod(), _sources(token=no_token))
    assert str(e.value) == ("[failed to fetch token: the server could not find the requested "
                            'resource, configmap "kube-root-ca.crt" not found]')


# ---- the AtomicWriter ---------------------------------------------------------------------

def test_atomic_writer_layout_update_and_removal(tmp_path):
    d = str(tmp_path)
    assert v.atomic_write(d, {"key": (b"one", 0o644), "sub/deep": (b"x", 0o600)})
    data = os.readlink(os.path.join(d, "..data"))
    assert data.startswith("..") and os.path.isdir(os.path.join(d, data))
    assert os.readlink(os.path.join(d, "key")) == "..data/key"
    assert os.readlink(os.path.join(d, "sub")) == "..data/sub"
    assert stat.S_IMODE(os.stat(os.path.join(d, data)).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(d, "key")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.join(d, "sub", "deep")).st_mode) == 0o600
    assert not v.atomic_write(d, {"key": (b"one", 0o644), "sub/deep": (b"x", 0o600)})
    assert v.atomic_write(d, {"key": (b"two", 0o644)})
    new = os.readlink(os.path.join(d, "..data"))
    assert new != data and not os.path.exists(os.path.join(d, data))
    assert open(os.path.join(d, "key")).read() == "two"
    assert not os.path.lexists(os.path.join(d, "sub"))
    assert sorted(os.listdir(d)) == sorted(["..data", new, "key"])


@pytest.mark.parametrize("bad", ["/abs", "a/../b", "..x", ""])
def test_atomic_writer_refuses_bad_paths(tmp_path, bad):
    with pytest.raises(MountError, match="invalid path"):
        v.atomic_write(str(tmp_path), {bad: (b"", 0o644)})


# ---- mounts -------------------------------------------------------------------------------

def test_plan_tmpfs_mimic_and_placeholders(tmp_path):
    pdir = str(tmp_path)
    pod = _pod([{"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "sec", "secret": {"secretName": "sec"}},
                {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
                kube_api_access()],
               [{"name": "cfg", "mountPath": "/etc/netsim-test-cfg"},
                {"name": "cfg", "mountPath": "/etc/netsim-test-one.conf", "subPath": "key"},
                {"name": "mem", "mountPath": "/tmp"},
                {"name": "kube-api-access-abcde",
                 "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    plan = v.plan(pod, pdir, {"cfg": {"key": (b"", 0o644)}})
    base = os.path.join(pdir, "volumes")
    assert plan["tmpfs"] == [[f"{base}/kubernetes.io~secret/sec", ""],
                             [f"{base}/kubernetes.io~empty-dir/mem", f"size={64 << 20}"],
                             [f"{base}/kubernetes.io~projected/kube-api-access-abcde", ""]]
    assert plan["selfbind"] == [f"{base}/kubernetes.io~configmap/cfg"]
    run = os.path.realpath("/var/run")
    assert plan["mimic"] == ["/etc", v.deepest_existing(f"{run}/secrets")]
    assert plan["placeholders"] == [["/etc/netsim-test-cfg", "dir"],
                                    ["/etc/netsim-test-one.conf", "file"],
                                    [f"{run}/secrets/kubernetes.io/serviceaccount", "dir"]]


def test_container_binds_read_only_sub_path_and_missing_host_path(tmp_path):
    pdir = str(tmp_path)
    pod = _pod([{"name": "cfg", "configMap": {"name": "cfg"}},
                {"name": "work", "emptyDir": {}},
                {"name": "host", "hostPath": {"path": str(tmp_path)}},
                {"name": "gone", "hostPath": {"path": "/nonexistent/netsim"}}],
               [{"name": "work", "mountPath": "/work/sub"},
                {"name": "cfg", "mountPath": "/etc/cfg"},
                {"name": "cfg", "mountPath": "/etc/one", "subPath": "key"},
                {"name": "work", "mountPath": "/data", "readOnly": True},
                {"name": "host", "mountPath": "/host"},
                {"name": "gone", "mountPath": "/srv"}])
    said = []
    binds = v.container_binds(pod, pod["spec"]["containers"][0], pdir, said.append)
    cm = f"{pdir}/volumes/kubernetes.io~configmap/cfg"
    ed = f"{pdir}/volumes/kubernetes.io~empty-dir/work"
    # parents first (containerd sorts by depth), else in the pod's order
    assert [(b.src, b.dst, b.read_only) for b in binds] == [
        (ed, "/data", True), (pdir, "/host", False), (ed, "/work/sub", False),
        (cm, "/etc/cfg", True), (f"{cm}/key", "/etc/one", True)]
    assert said == ['hostPath volume "gone" not mounted at /srv: /nonexistent/netsim does not '
                    "exist on this machine (netsim creates no host directories)"]
    path = v.write_binds(binds, os.path.join(pdir, "main", "binds"))
    lines = open(path).read().splitlines()
    assert lines[1] == f"{pdir}\t/host\t" and lines[3] == f"{cm}\t/etc/cfg\tro"


def test_only_pods_with_volumes_get_a_namespace():
    assert not v.needs_namespace(_pod())
    assert not v.needs_namespace(_pod([{"name": "h", "hostPath": {"path": "/tmp"}}],
                                      [{"name": "h", "mountPath": "/tmp"}]))
    assert v.needs_namespace(_pod([{"name": "h", "hostPath": {"path": "/tmp"}}],
                                  [{"name": "h", "mountPath": "/netsim-not-here"}]))
    assert v.needs_namespace(_pod([{"name": "e", "emptyDir": {}}],
                                  [{"name": "e", "mountPath": "/tmp"}]))


# ---- the volume manager --------------------------------------------------------------------

def _events(client, pod_name="web"):
    return [(e["reason"], e["message"]) for e in client.list("events", "demo")
            if e["involvedObject"]["name"] == pod_name]


@pytest.fixture
def demo(client):
    client.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    return client


def test_missing_configmap_is_a_failed_mount_with_back_off(demo, tmp_path):
    mgr = v.PodVolumes(demo, _get({}), "node-1")
    pod = _pod([{"name": "x", "configMap": {"name": "y"}}], [{"name": "x", "mountPath": "/etc/x"}])
    assert mgr.setup(pod, str(tmp_path), "") is False
    assert _events(demo) == [("FailedMount",
                              'MountVolume.SetUp failed for volume "x" : configmap "y" not found')]
    assert 0.3 < mgr.retry_in("u-1") <= 0.5
    assert mgr.setup(pod, str(tmp_path), "") is False  # within the back-off: not tried
    assert len(_events(demo)) == 1
    mgr.retry_now("u-1")
    assert mgr.setup(pod, str(tmp_path), "") is False
    assert 0.5 < mgr.retry_in("u-1") <= 1.0
    assert demo.list("events", "demo")[0]["count"] == 2


class _Tokens:
    """A fake TokenRequest endpoint: what it was asked, what it answers."""

    def __init__(self, fail: Exception | None = None):
        self.asked: list[tuple[str, str, dict]] = []
        self.fail = fail

    def __call__(self, ns, sa, body):
        self.asked.append((ns, sa, body))
        if self.fail:
            raise self.fail
        return {**body, "status": {"token": f"tok-{len(self.asked)}"}}


def test_token_request_body_and_refresh_at_80_percent(demo, monkeypatch):
    tokens = _Tokens()
    mgr = v.PodVolumes(demo, _get({}), "node-1", token_requester=tokens)
    pod = _pod(serviceAccountName="robot")
    tp = {"expirationSeconds": 3607, "path": "token", "audience": "vault"}
    now = [1000.0]
    monkeypatch.setattr(v.time, "time", lambda: now[0])
    assert mgr._token(pod, tp) == b"tok-1"
    ns, sa, body = tokens.asked[0]
    assert (ns, sa) == ("demo", "robot")
    assert body == {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                    "spec": {"audiences": ["vault"], "expirationSeconds": 3607,
                             "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                "name": "web", "uid": "u-1"}}}
    assert mgr.refresh_in("u-1") == pytest.approx(0.8 * 3607)
    now[0] += 0.79 * 3607
    assert mgr._token(pod, tp) == b"tok-1" and len(tokens.asked) == 1
    now[0] += 0.02 * 3607
    assert mgr._token(pod, tp) == b"tok-2"
    tokens.fail = errors.NotFound("nope")
    now[0] += 0.81 * 3607
    assert mgr._token(pod, tp) == b"tok-2"  # still valid: kept while the API fails
    now[0] += 0.2 * 3607
    with pytest.raises(MountError, match="^failed to fetch token: nope"):
        mgr._token(pod, tp)


def test_token_endpoint_missing_keeps_the_pod_creating(demo, tmp_path):
    ca = {"data": {"ca.crt": "pem"}}
    mgr = v.PodVolumes(demo, _get({("configmaps", "kube-root-ca.crt"): ca}), "node-1",
                       token_requester=_Tokens(errors.NotFound(
                           "the server could not find the requested resource")))
    pod = _pod([kube_api_access()], [{"name": "kube-api-access-abcde",
                                      "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    assert mgr.setup(pod, str(tmp_path), "") is False
    assert _events(demo) == [("FailedMount", 'MountVolume.SetUp failed for volume '
                              '"kube-api-access-abcde" : failed to fetch token: the server could '
                              "not find the requested resource")]


def test_references_name_configmaps_and_secrets_of_any_volume_kind():
    mgr = v.PodVolumes(None, _get({}), "n")
    pod = _pod([kube_api_access(), {"name": "s", "secret": {"secretName": "sec"}}])
    assert mgr.references(pod, "configmaps", "kube-root-ca.crt")
    assert mgr.references(pod, "secrets", "sec")
    assert not mgr.references(pod, "configmaps", "sec")


def test_sub_path_expr_expands_env_and_field_refs(tmp_path):
    pod = _pod([{"name": "work", "emptyDir": {}}])
    c = pod["spec"]["containers"][0]
    c["env"] = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "SUB", "value": "logs"}]
    c["volumeMounts"] = [{"name": "work", "mountPath": "/logs", "subPathExpr": "$(SUB)/$(POD)"}]
    binds = v.container_binds(pod, c, str(tmp_path), lambda m: None)
    assert binds[0].src.endswith("kubernetes.io~empty-dir/work/logs/web")


def test_referenced_objects_of_volumes_env_and_env_from():
    pod = _pod([kube_api_access(), {"name": "s", "secret": {"secretName": "sec"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "psec"}}]}}])
    c = pod["spec"]["containers"][0]
    c["env"] = [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "esec", "key": "k"}}},
                {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "ecm", "key": "k"}}}]
    c["envFrom"] = [{"secretRef": {"name": "fsec"}}]
    assert v.referenced([pod], "secrets") == {("demo", n) for n in ("sec", "psec", "esec", "fsec")}
    assert v.referenced([pod], "configmaps") == {("demo", "kube-root-ca.crt"), ("demo", "ecm")}
