"""`set env` and `create secret docker-registry`: kubectl's parsing and merging rules, and the
.dockerconfigjson kubectl writes (pure functions, no cluster)."""

from __future__ import annotations

import base64
import io
import json

import pytest

from netsim.cli.context import CliError
from netsim.cli.create_docker import DEFAULT_SERVER, build_docker_registry, docker_config_json
from netsim.cli.pflags import Parsed
from netsim.cli.set_env import (
    parse_env,
    ref_string,
    select_string,
    split_env_from_resources,
    update_env,
)


def test_resources_come_before_the_changes():
    assert split_env_from_resources(["deploy/web", "A=1", "B-"]) == (["deploy/web"], ["A=1", "B-"])
    assert split_env_from_resources(["deploy", "web", "A=1"]) == (["deploy", "web"], ["A=1"])
    with pytest.raises(CliError) as e:
        split_env_from_resources(["deploy/web", "A=1", "other"])
    assert str(e.value) == ("error: all resources must be specified before environment changes: "
                            "deploy/web A=1 other")


def test_parse_env_sets_removes_and_reads_stdin():
    env, remove = parse_env(["A=1", "B=x=y", "C-", "-"], io.StringIO("D=4 # note\n# E=5\nF\n"))
    assert env == [{"name": "A", "value": "1"}, {"name": "B", "value": "x=y"},
                   {"name": "D", "value": "4 "}]
    assert remove == ["C"]
    with pytest.raises(CliError) as e:
        parse_env(["A=1", "A-"])
    assert "can not both modify and remove the same environment variable" in str(e.value)
    with pytest.raises(CliError) as e:
        parse_env(["1A=1"])
    assert str(e.value).startswith('error: "1A" is not a valid key name: a valid environment '
                                   "variable name must consist of")


def test_update_env_replaces_in_place_and_appends():
    existing = [{"name": "A", "value": "0"}, {"name": "B", "value": "0"},
                {"name": "A", "value": "dup"}, {"name": "C", "valueFrom": {"fieldRef": {}}}]
    out = update_env(existing, [{"name": "A", "value": "1"}, {"name": "D", "value": "4"}], ["B"])
    assert out == [{"name": "A", "value": "1"}, {"name": "C", "valueFrom": {"fieldRef": {}}},
                   {"name": "D", "value": "4"}]


def test_container_wildcards_and_reference_strings():
    assert select_string("web", "*") and select_string("web", "w*") and select_string("web", "*b")
    assert not select_string("web", "x*") and not select_string("web", "we")
    assert ref_string({"configMapKeyRef": {"name": "cfg", "key": "k"}}) == "configmap cfg, key k"
    assert ref_string({"secretKeyRef": {"name": "s", "key": "k"}}) == "secret s, key k"
    assert ref_string({"fieldRef": {"fieldPath": "status.podIP"}}) == "field path status.podIP"


class _Ctx:
    namespace = None


def test_docker_registry_secret_as_kubectl_writes_it():
    text = docker_config_json("u", "p<&>", "e@x.org", "reg.example:5000")
    # json.Marshal's bytes: compact, HTML characters escaped, empty fields left out
    assert text == ('{"auths":{"reg.example:5000":{"username":"u","password":"p\\u003c\\u0026'
                    '\\u003e","email":"e@x.org","auth":"dTpwPCY+"}}}')
    assert json.loads(text)["auths"]["reg.example:5000"]["auth"] == \
        base64.b64encode(b"u:p<&>").decode()
    p = Parsed(flags={"docker-username": ["a"], "docker-password": ["b"]})
    obj = build_docker_registry(_Ctx(), "hub", p)
    assert obj["type"] == "kubernetes.io/dockerconfigjson"
    assert json.loads(base64.b64decode(obj["data"][".dockerconfigjson"])) == {
        "auths": {DEFAULT_SERVER: {"username": "a", "password": "b", "auth": "YTpi"}}}
    with pytest.raises(CliError) as e:
        build_docker_registry(_Ctx(), "x", Parsed(flags={"docker-username": ["a"]}))
    assert str(e.value) == ("error: either --from-file or the combination of --docker-username, "
                            "--docker-password and --docker-server is required")


def test_docker_registry_from_file_keys_it_dockerconfigjson(tmp_path):
    f = tmp_path / "config.json"
    f.write_text('{"auths":{}}')
    obj = build_docker_registry(_Ctx(), "f", Parsed(flags={"from-file": [str(f)]}))
    assert list(obj["data"]) == [".dockerconfigjson"]
    assert base64.b64decode(obj["data"][".dockerconfigjson"]) == b'{"auths":{}}'


def test_create_pdb_builds_kubectls_object():
    from netsim.cli.create_pdb import build_pdb, parse_to_label_selector
    assert parse_to_label_selector("app=web,tier!=db,env in (b,a),!legacy,gpu") == {
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]},
                             {"key": "gpu", "operator": "Exists"},
                             {"key": "legacy", "operator": "DoesNotExist"},
                             {"key": "tier", "operator": "NotIn", "values": ["db"]}]}
    obj = build_pdb(_Ctx(), "web", Parsed(flags={"selector": ["app=web"],
                                                "min-available": ["50%"]}))
    assert obj["spec"] == {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}
    obj = build_pdb(_Ctx(), "web", Parsed(flags={"selector": ["app=web"],
                                                "max-unavailable": ["1"]}))
    assert obj["spec"]["maxUnavailable"] == 1
    for flags, msg in (({"min-available": ["1"]}, "error: a selector must be specified"),
                       ({"selector": ["a=b"]},
                        "error: one of min-available or max-unavailable must be specified"),
                       ({"selector": ["a=b"], "min-available": ["1"], "max-unavailable": ["1"]},
                        "error: min-available and max-unavailable cannot be both specified"),
                       ({"selector": ["a=b"], "min-available": ["x"]},
                        "error: invalid format specified for min-available")):
        with pytest.raises(CliError) as e:
            build_pdb(_Ctx(), "web", Parsed(flags=flags))
        assert str(e.value) == msg
