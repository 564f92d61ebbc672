"""Pure parts of the imperative verbs: flags, change causes, labels, taints, env files, edit
patches. No cluster, no root."""

from __future__ import annotations

import pytest

from netsim.cli import create_cmds, edit, labels, pflags, rollout_cmds, workloads
from netsim.cli.context import CliError


# ---------------------------------------------------------------- change causes (--record)
@pytest.mark.parametrize("argv, cause", [
    # the seed's history lines, with netsim as the program
    (["-nuit", "set", "image", "deploy", "ublog", "myblog=192.168.3.171:5000/myblog:v1",
      "--record"],
     "netsim set image deploy ublog myblog=192.168.3.171:5000/myblog:v1 --namespace=uit "
     "--record=true"),
    (["create", "-f", "ublog.yaml", "--record"],
     "netsim create --filename=ublog.yaml --record=true"),
    (["scale", "deploy", "mysql", "--replicas", "3", "-n", "uit", "--record=true"],
     "netsim scale deploy mysql --replicas=3 --namespace=uit --record=true"),
    (["-owide", "get", "po"], "netsim get po --output=wide"),
])
def test_change_cause_is_kubectls_format(argv, cause):
    assert pflags.change_cause(argv) == cause


# ---------------------------------------------------------------- flag parsing
def test_parse_flags_forms():
    p = pflags.parse_flags(["deploy", "mysql", "--replicas=3", "-nuit", "--record",
                       "--current-replicas", "1"], {"replicas", "current-replicas"})
    assert p.positional == ["deploy", "mysql"]
    assert p.get("replicas") == "3" and p.get("namespace") == "uit"
    assert p.get("current-replicas") == "1" and p.bool("record")


def test_parse_flags_unknown_flag_is_kubectls_error():
    with pytest.raises(CliError, match="unknown flag: --bogus"):
        pflags.parse_flags(["--bogus=1"], set(), verb="scale")


def test_parse_flags_dry_run_without_value():
    assert pflags.parse_flags(["--dry-run"], {"dry-run"}).get("dry-run") == "client"


def test_resources_and_pairs():
    assert pflags.get_resources_and_pairs(["po", "x", "a=b", "c-"], "label") == \
        (["po", "x"], ["a=b", "c-"])
    with pytest.raises(CliError, match="all resources must be specified before label changes"):
        pflags.get_resources_and_pairs(["po", "a=b", "x"], "label")


def test_split_targets_forms():
    [(res, names)] = pflags.split_targets(["deploy", "ublog"])
    assert res.plural == "deployments" and names == ["ublog"]
    [(res, names)] = pflags.split_targets(["deployments.apps/ublog"])
    assert res.plural == "deployments" and names == ["ublog"]
    with pytest.raises(CliError, match="no name was specified"):
        pflags.split_targets(["deploy"])
    with pytest.raises(CliError, match="no need to specify a resource type"):
        pflags.split_targets(["deploy", "deploy/ublog"])


# ---------------------------------------------------------------- labels
def test_label_overwrite_rule_and_messages():
    add, remove = labels.parse_labels(["app=x"])
    new, problems, _ = labels.update_map({"app": "y"}, add, remove, overwrite=False)
    assert problems == ["'app' already has a value (y), and --overwrite is false"]
    new, problems, _ = labels.update_map({"app": "y"}, add, remove, overwrite=True)
    assert new == {"app": "x"} and not problems
    assert labels.change_message({"app": "y"}, new, True, "labeled") == "labeled"
    # same value again: no error, nothing changes
    new, problems, _ = labels.update_map({"app": "x"}, add, remove, overwrite=False)
    assert not problems and labels.change_message({"app": "x"}, new, False, "labeled") == "not labeled"


def test_label_removal():
    add, remove = labels.parse_labels(["app-"])
    new, _, notes = labels.update_map({"app": "x", "b": "1"}, add, remove, overwrite=False)
    assert new == {"b": "1"} and not notes
    assert labels.change_message({"app": "x", "b": "1"}, new, False, "labeled") == "unlabeled"
    new, _, notes = labels.update_map({"b": "1"}, add, remove, overwrite=False)
    assert notes == ['label "app" not found.']


def test_label_validation():
    with pytest.raises(CliError, match="invalid label value"):
        labels.parse_labels(["app=a b"])
    with pytest.raises(CliError, match="invalid label spec"):
        labels.parse_labels(["-bad=x"])
    with pytest.raises(CliError, match="can not both modify and remove"):
        labels.parse_labels(["a=1", "a-"])
    assert labels.parse_labels(["example.com/tier=web"]) == ({"example.com/tier": "web"}, [])


def test_annotation_change_cause_always_overwritable():
    add, _ = labels.parse_labels([f"{pflags.CHANGE_CAUSE}=new"], "annotation")
    _, problems, _ = labels.update_map({pflags.CHANGE_CAUSE: "old"}, add, [], False, "annotation")
    assert not problems


# ---------------------------------------------------------------- taints
def test_parse_taint_forms():
    assert labels.parse_taint("gpu=yes:NoSchedule") == {"key": "gpu", "value": "yes",
                                                   "effect": "NoSchedule"}
    assert labels.parse_taint("gpu:NoExecute") == {"key": "gpu", "effect": "NoExecute"}
    assert labels.parse_taint("gpu") == {"key": "gpu", "effect": ""}
    with pytest.raises(CliError, match="invalid taint effect: Bad, unsupported taint effect"):
        labels.parse_taint("gpu=yes:Bad")
    with pytest.raises(CliError, match="invalid taint spec"):
        labels.parse_taint("a=b=c:NoSchedule")


def test_parse_taints_add_remove_and_duplicates():
    add, remove = labels.parse_taints(["a=1:NoSchedule", "b:NoSchedule-", "c-"])
    assert [labels.taint_string(t) for t in add] == ["a=1:NoSchedule"]
    assert remove == [{"key": "b", "effect": "NoSchedule"}, {"key": "c", "effect": ""}]
    with pytest.raises(CliError, match="invalid taint spec: a"):
        labels.parse_taints(["a"])  # adding needs an effect
    with pytest.raises(CliError, match="duplicated taints"):
        labels.parse_taints(["a=1:NoSchedule", "a=2:NoSchedule"])


def test_reorganize_taints_operations():
    old = [{"key": "a", "value": "1", "effect": "NoSchedule"}]
    op, new, problems = labels.reorganize_taints(old, [{"key": "b", "effect": "NoExecute"}], [], False)
    assert op == "tainted" and len(new) == 2 and not problems
    op, new, problems = labels.reorganize_taints(old, [], [{"key": "a", "effect": ""}], False)
    assert op == "untainted" and new == [] and not problems
    op, new, problems = labels.reorganize_taints(old, [], [{"key": "zz", "effect": ""}], False)
    assert problems == ['taint "zz" not found']
    op, new, _ = labels.reorganize_taints(old, [{"key": "a", "value": "2", "effect": "NoSchedule"}],
                                     [], True)
    assert op == "modified" and new == [{"key": "a", "value": "2", "effect": "NoSchedule"}]


# ---------------------------------------------------------------- env files, create X
def test_env_file_parsing():
    text = ("\ufeffMYSQL_HOST=192.168.3.172\n# comment\n\n  MYSQL_PORT=3306\nEMPTY=\n"
            "FROM_ENV\nMISSING\nURL=a=b\n")
    pairs = create_cmds.parse_env_file(text, "configmap.txt", environ={"FROM_ENV": "x"})
    assert pairs == [("MYSQL_HOST", "192.168.3.172"), ("MYSQL_PORT", "3306"), ("EMPTY", ""),
                     ("FROM_ENV", "x"), ("URL", "a=b")]
    with pytest.raises(CliError, match='"1X" is not a valid key name'):
        create_cmds.parse_env_file("1X=2\n", "f", environ={})


def test_collect_data_literals_and_files(tmp_path):
    f = tmp_path / "app.conf"
    f.write_text("x=1\n")
    b = tmp_path / "blob"
    b.write_bytes(b"\xff\x00")
    p = pflags.Parsed(flags={"from-literal": ["a=1"], "from-file": [str(f), f"bin={b}"]})
    data, binary = create_cmds.collect_data(p, "configmap", "c")
    assert data == {"a": "1", "app.conf": "x=1\n"} and binary == {"bin": b"\xff\x00"}
    dup = pflags.Parsed(flags={"from-literal": ["a=1", "a=2"]})
    with pytest.raises(CliError, match="cannot add key a, another key by that name already"):
        create_cmds.collect_data(dup, "configmap", "c")
    with pytest.raises(CliError, match="invalid literal source a, expected key=value"):
        create_cmds.collect_data(pflags.Parsed(flags={"from-literal": ["a"]}), "configmap", "c")


def test_create_deployment_object_like_kubectl():
    class C:
        namespace = None
    p = pflags.Parsed(flags={"image": ["192.168.3.171:5000/myblog:v1"], "replicas": ["3"],
                        "port": ["8002"]})
    obj = create_cmds.build_generic(C(), "deployment", "ublog", p)
    c = obj["spec"]["template"]["spec"]["containers"][0]
    assert c["name"] == "myblog" and c["ports"] == [{"containerPort": 8002}]
    assert obj["spec"]["replicas"] == 3
    assert obj["spec"]["selector"] == {"matchLabels": {"app": "ublog"}}


def test_set_images():
    spec = {"containers": [{"name": "myblog", "image": "a:v1"}]}
    assert workloads.set_images(spec, {"myblog": "a:v2"}) == []
    assert spec["containers"][0]["image"] == "a:v2"
    assert workloads.set_images(spec, {"ublog": "a:v3"}) == ['error: unable to find container named "ublog"']
    assert workloads.set_images(spec, {"*": "a:v4"}) == [] and spec["containers"][0]["image"] == "a:v4"


# ---------------------------------------------------------------- rollout / edit helpers
def test_parse_duration():
    assert rollout_cmds.parse_duration("0") == 0
    assert rollout_cmds.parse_duration("1m30s") == 90
    assert rollout_cmds.parse_duration("250ms") == 0.25
    with pytest.raises(CliError, match="missing unit"):
        rollout_cmds.parse_duration("30")


def test_edit_merge_patch_and_comments():
    a = {"spec": {"replicas": 1, "paused": True, "template": {"x": [1]}}, "metadata": {"n": 1}}
    b = {"spec": {"replicas": 3, "template": {"x": [2]}}, "metadata": {"n": 1}}
    assert edit.merge_patch(a, b) == {"spec": {"replicas": 3, "paused": None,
                                               "template": {"x": [2]}}}
    assert edit.strip_comments("# a\nk: v\n  # b\n") == "k: v\n"
    assert not edit.has_lines("# only\n\n")


def test_edit_error_header():
    causes = edit.error_causes('The Deployment "ublog" is invalid: [spec.replicas: Invalid '
                               'value: -1: must be greater than or equal to 0, spec.x: Required '
                               'value]')
    assert causes == ["spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                      "spec.x: Required value"]
    h = edit.header_for([('deployments.apps "ublog" was not valid', causes)])
    assert '# deployments.apps "ublog" was not valid:\n# * spec.replicas' in h
    assert h.startswith("# Please edit the object below.")
