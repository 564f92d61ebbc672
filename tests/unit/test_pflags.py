"""kubectl's flag syntax (spf13/pflag under cobra) as netsim's imperative verbs read it.

What a user types after `netsim scale|label|taint|set|rollout|edit`: every form pflag
accepts must mean the same here, and every form it refuses must fail in its words
(`error: unknown flag: --x`, `error: flag needs an argument: 'n' in -n`)."""

from __future__ import annotations

import pytest

from netsim.cli.context import CliError
from netsim.cli.pflags import change_cause, parse_flags

VALUES = {"output", "selector", "replicas", "filename"}


def parse(*args: str, values: set[str] = VALUES, bools: set[str] | None = None,
          verb: str = "scale"):
    return parse_flags(list(args), values, bools, verb=verb)


@pytest.mark.parametrize("args", [
    ["-nuit"], ["-n", "uit"], ["-n=uit"], ["--namespace=uit"], ["--namespace", "uit"],
])
def test_namespace_in_every_form(args):
    p = parse("deploy", *args, "web")
    assert p.get("namespace") == "uit"
    assert p.positional == ["deploy", "web"]


@pytest.mark.parametrize("args, output", [
    (["-owide"], "wide"), (["-o", "wide"], "wide"), (["-o=yaml"], "yaml"),
    (["--output=json"], "json"), (["--output", "name"], "name"),
])
def test_output_in_every_form(args, output):
    assert parse("po", *args).get("output") == output


def test_flags_may_come_before_between_and_after_words():
    p = parse("-n", "a", "deploy", "--replicas=2", "web", "-l", "app=x")
    assert p.positional == ["deploy", "web"]
    assert (p.get("namespace"), p.get("replicas"), p.get("selector")) == ("a", "2", "app=x")


def test_double_dash_ends_flags():
    p = parse("pod", "--", "-n", "x", "--bogus", "-it")
    assert p.positional == ["pod", "-n", "x", "--bogus", "-it"]
    assert p.get("namespace") is None


def test_a_value_may_look_like_a_flag():
    # pflag hands the next word to a flag that needs a value, whatever it looks like
    assert parse("--replicas", "-1").get("replicas") == "-1"
    assert parse("-l", "-x").get("selector") == "-x"
    assert parse("--selector=a=b,c!=d").get("selector") == "a=b,c!=d"


def test_bool_flags_take_no_separate_value():
    p = parse("--overwrite", "pods", "--all")
    assert p.positional == ["pods"]
    assert p.bool("overwrite") and p.bool("all")
    assert not p.bool("force")


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("false", False), ("0", False), ("f", False), ("False", False), ("1", True),
])
def test_bool_flags_take_a_value_after_equals(value, expected):
    assert parse(f"--overwrite={value}").bool("overwrite") is expected
    assert parse(f"-i={value}").bool("stdin") is expected


def test_bool_shorthands_bundle():
    p = parse("-it", "pod")
    assert p.bool("stdin") and p.bool("tty")
    assert p.positional == ["pod"]
    # a bundle may end in a flag that takes the value from the rest or the next word
    p = parse("-in", "kube-system", "pod")
    assert p.bool("stdin") and p.get("namespace") == "kube-system"
    assert p.positional == ["pod"]
    assert parse("-inuit").get("namespace") == "uit"


def test_verb_specific_bool_flags():
    p = parse("--dry-wrap", "web", bools={"dry-wrap"})
    assert p.bool("dry-wrap") and p.positional == ["web"]


def test_dry_run_value_may_be_left_out():
    assert parse("--dry-run", values={"dry-run"}).get("dry-run") == "client"
    assert parse("--dry-run=server", values={"dry-run"}).get("dry-run") == "server"
    # as pflag's NoOptDefVal: a separate word is not the value
    p = parse("--dry-run", "server", values={"dry-run"})
    assert p.get("dry-run") == "client" and p.positional == ["server"]


def test_repeated_flags_keep_every_value_and_the_last_wins():
    p = parse("-l", "a=1", "--selector=b=2")
    assert p.all("selector") == ["a=1", "b=2"]
    assert p.get("selector") == "b=2"


def test_globals_are_always_known():
    p = parse("--cluster=lab", "-A", values=set())
    assert p.get("cluster") == "lab" and p.bool("all-namespaces")


def test_unknown_flag_in_kubectls_words():
    with pytest.raises(CliError) as e:
        parse("deploy", "--bogus=1")
    assert str(e.value) == "error: unknown flag: --bogus\nSee 'netsim scale --help' for usage."


def test_unknown_shorthand_in_kubectls_words():
    with pytest.raises(CliError) as e:
        parse("-x", verb="label")
    assert str(e.value) == ("error: unknown shorthand flag: 'x' in -x\n"
                            "See 'netsim label --help' for usage.")
    # a shorthand kubectl has but this verb does not take is as unknown
    with pytest.raises(CliError, match=r"unknown shorthand flag: 'c' in -cweb"):
        parse("-cweb")
    # in a bundle, the letter that is unknown is the one named
    with pytest.raises(CliError, match=r"unknown shorthand flag: 'x' in -ix"):
        parse("-ix")


def test_missing_value_in_kubectls_words():
    with pytest.raises(CliError) as e:
        parse("deploy", "--replicas")
    assert str(e.value) == "error: flag needs an argument: --replicas"
    with pytest.raises(CliError) as e:
        parse("deploy", "-n")
    assert str(e.value) == "error: flag needs an argument: 'n' in -n"
    with pytest.raises(CliError, match=r"flag needs an argument: 'n' in -in$"):
        parse("-in")


def test_a_lone_dash_and_negative_numbers_are_words():
    assert parse("-", "-5").positional == ["-", "-5"]


def test_change_cause_reads_flags_the_same_way():
    assert change_cause(["exec", "-it", "pod", "--", "sh", "-c", "x"]) == \
        "netsim exec pod sh -c x --stdin=true --tty=true"
    assert change_cause(["scale", "-n=uit", "deploy/web", "--replicas", "2"]) == \
        "netsim scale deploy/web --namespace=uit --replicas=2"
