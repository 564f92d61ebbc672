"""The `netsim` command: kubectl's syntax for the verbs the seed uses, plus cluster verbs.

Global flags may stand before or after the verb (`netsim -nuit get po -owide`), as in kubectl.
"""

from __future__ import annotations

import argparse
import os
import sys

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, ensure_root, err, server_error

VALUE_FLAGS = {"-n", "--namespace", "-l", "--selector", "-o", "--output", "--cluster", "-f",
               "--filename", "-c", "--container", "-L", "--label-columns", "--replicas",
               "--to-revision", "--revision", "--grace-period", "--tail", "--name", "--nodes",
               "--lan", "--pod-cidr", "--service-cidr", "--proxy-mode", "--from-literal",
               "--from-file", "--from-env-file", "--cert", "--key", "--type", "--timeout",
               "--node", "--mode", "--image", "--port", "--target-port", "--field-selector",
               "--current-replicas", "--output-directory", "--node-label", "--from",
               "--schedule", "--restart", "--max-pods", "--tcp", "--clusterip", "--node-port",
               "--external-name", "--docker-server", "--docker-username", "--docker-password",
               "--docker-email", "--min-available", "--max-unavailable"}


# Flags whose value is optional (`--record`, `--record=true`): written bare they get their
# default value here, so that argparse never takes the next word as their value.
BARE_DEFAULTS = {"--record": "true", "--wait": "true", "--dry-run": "client"}


def reorder(argv: list[str]) -> list[str]:
    """kubectl takes flags anywhere: put the verb first, then the flags (with their values),
    then the positional words, so `describe ing -n demo x` parses like `describe -n demo ing
    x`. Everything from `--` on stays as it is (exec's command)."""
    words, glob, flags, i = [], [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return words[:1] + glob + flags + words[1:] + argv[i:]
        if a.startswith("-") and a != "-":
            # the global flags first: a verb parsing its own flags hands argparse the rest
            # as one remainder, which would swallow a `-n NS` after `--replicas 3`
            to = glob if _global_flag(a) else flags
            to.append(f"{a}={BARE_DEFAULTS[a]}" if a in BARE_DEFAULTS else a)
            if a in VALUE_FLAGS and i + 1 < len(argv):
                to.append(argv[i + 1])
                i += 1
        else:
            words.append(a)
        i += 1
    return words[:1] + glob + flags + words[1:]


def _global_flag(a: str) -> bool:
    """-n/--namespace, --cluster and -A/--all-namespaces, in any of their spellings."""
    return (a in ("-n", "--namespace", "--cluster", "-A", "--all-namespaces")
            or a.startswith(("--namespace=", "--cluster="))
            or (a.startswith("-n") and not a.startswith("--")))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--namespace")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--cluster", default=os.environ.get("NETSIM_CLUSTER", "netsim"))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="netsim", allow_abbrev=False, description=(
        "netsim: a Kubernetes dataplane on network namespaces. kubectl's verbs, plus "
        "`cluster up|down|status`, `node exec`, `render`, `demo`."))
    sub = ap.add_subparsers(dest="verb")

    def verb(name: str, **kw) -> argparse.ArgumentParser:
        # pflag knows no abbreviations: `--name` must never be taken for `--namespace`
        p = sub.add_parser(name, allow_abbrev=False, **kw)
        _common(p)
        return p

    for name in ("apply", "create", "delete"):
        p = verb(name)
        p.add_argument("-f", "--filename", action="append", default=[])
        p.add_argument("-R", "--recursive", action="store_true")
        p.add_argument("--record", nargs="?", const="true", default=None)
        p.add_argument("-l", "--selector")
        p.add_argument("--all", action="store_true")
        p.add_argument("--grace-period", type=int)
        p.add_argument("--force", action="store_true")
        p.add_argument("--now", action="store_true")
        p.add_argument("--wait", nargs="?", const="true", default="true")
        p.add_argument("--ignore-not-found", action="store_true")
        p.add_argument("--cascade", nargs="?", const="background", default="background")
        p.add_argument("--from-literal", action="append", default=[])
        p.add_argument("--from-file", action="append", default=[])
        p.add_argument("--from-env-file", action="append", default=[])
        p.add_argument("--cert")
        p.add_argument("--key")
        p.add_argument("--type")
        p.add_argument("--image", action="append", default=[])
        p.add_argument("--replicas", type=int)
        p.add_argument("--port", type=int)
        p.add_argument("--from", dest="from_")        # create job --from=cronjob/NAME
        p.add_argument("--schedule")                   # create cronjob
        p.add_argument("--restart")
        p.add_argument("--tcp", action="append", default=[])  # create service
        p.add_argument("--clusterip")
        p.add_argument("--node-port")
        p.add_argument("--external-name")
        p.add_argument("--docker-server")              # create secret docker-registry
        p.add_argument("--docker-username")
        p.add_argument("--docker-password")
        p.add_argument("--docker-email")
        p.add_argument("--min-available")              # create poddisruptionbudget
        p.add_argument("--max-unavailable")
        p.add_argument("-o", "--output")
        p.add_argument("--dry-run", nargs="?", const="client")
        p.add_argument("args", nargs="*")
    for name in ("get", "describe"):
        p = verb(name)
        p.add_argument("-o", "--output")
        p.add_argument("-l", "--selector")
        p.add_argument("--show-labels", action="store_true")
        p.add_argument("--no-headers", action="store_true")
        p.add_argument("-L", "--label-columns", action="append", default=[])
        p.add_argument("-w", "--watch", action="store_true")
        if name == "get":
            p.add_argument("--field-selector")
        p.add_argument("args", nargs="*")
    p = verb("exec")
    p.add_argument("-c", "--container")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-i", "--stdin", action="store_true")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = verb("logs")
    p.add_argument("-c", "--container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-p", "--previous", action="store_true")
    p.add_argument("--tail", type=int)
    p.add_argument("args", nargs="*")
    p = verb("cluster", help="cluster up|down|status|kubeconfig")
    p.add_argument("action", choices=["up", "down", "status", "kubeconfig"])
    p.add_argument("--name")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--lan", default="192.168.3.0/24")
    p.add_argument("--pod-cidr", default="10.244.0.0/16")
    p.add_argument("--service-cidr", default="10.96.0.0/12")
    p.add_argument("--proxy-mode", default="iptables", choices=["iptables", "nftables", "ipvs"])
    p.add_argument("--no-host-access", action="store_true")
    p.add_argument("--no-addons", action="store_true",
                   help="no CoreDNS, ingress-nginx or default StorageClass")
    p.add_argument("--max-pods", type=int, default=110)  # the kubelet's maxPods
    p = verb("node", help="node exec NODE -- CMD | node stop|start NODE | node add [NAME] | "
                          "node remove NAME")
    p.add_argument("action", choices=["exec", "stop", "start", "add", "remove"])
    p.add_argument("args", nargs=argparse.REMAINDER)
    p = verb("demo", help="bring up a cluster and run the seed's blog app")
    p.add_argument("--keep", action="store_true")
    for name in ("scale", "label", "annotate", "taint", "edit", "rollout", "set", "render",
                 "proxy", "cordon", "uncordon", "drain", "api-resources", "version",
                 "expose", "run"):
        p = verb(name)
        p.add_argument("args", nargs=argparse.REMAINDER)
    for name in ("capture", "trace", "topology", "link", "netpol"):  # -h: their own parsers
        p = verb(name, add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER)
    return ap


def _after_verb(argv: list[str], verb: str) -> list[str]:
    """The raw arguments of a verb that parses its own flags (global flags dropped)."""
    out, seen, skip = [], False, False
    for a in argv:
        if skip:
            skip = False
            continue
        if not seen and a == verb:
            seen = True
            continue
        if a in ("--cluster", "-n", "--namespace"):
            skip = True
            continue
        if a.startswith(("--cluster=", "--namespace=")) or (a.startswith("-n") and len(a) > 2
                                                            and not a.startswith("--")):
            continue
        out.append(a)
    return out


def _record_cause(argv: list[str]) -> str:
    from netsim.cli.pflags import change_cause  # kubectl's `--record` text
    return change_cause(argv)


def run(argv: list[str]) -> int:
    ap = build_parser()
    ordered = reorder(argv)
    if not ordered or ordered[0] in ("-h", "--help", "help"):
        ap.print_help()
        return 0
    args, extra = ap.parse_known_args(ordered)
    if extra and args.verb not in ("exec", "node", "scale", "label", "annotate", "taint", "edit",
                                   "expose", "drain", "run",
                                   "rollout", "set", "render", "proxy", "cordon", "uncordon",
                                   "capture", "trace", "topology", "link", "netpol"):
        raise CliError(f"error: unknown flag: {extra[0]}\nSee 'netsim {args.verb} --help' for usage.")
    ctx = Ctx(cluster=getattr(args, "cluster", "netsim"), namespace=getattr(args, "namespace", None),
              all_namespaces=getattr(args, "all_namespaces", False), argv=argv)
    v = args.verb
    if v in ("render", "version", "api-resources"):
        from netsim.cli import extra_cmds
        return extra_cmds.run(v, ctx, _after_verb(argv, v))
    ensure_root()
    if v == "cluster":
        from netsim.cli import cluster_cmds
        return cluster_cmds.run(args)
    if v == "demo":
        from netsim.cli import demo
        return demo.run(ctx, args)
    if v == "node":
        from netsim.cli import pods
        rest = [a for a in args.args if a != "--"]
        if args.action in ("add", "remove"):
            from netsim.cli import node_cmds
            return node_cmds.run(ctx, args.action, rest)
        if not rest:
            raise CliError("error: usage: netsim node exec NODE -- COMMAND")
        if args.action in ("stop", "start"):
            from netsim.cli import cluster_cmds
            return cluster_cmds.node_agent(ctx, args.action, rest[0])
        return pods.node_exec(ctx, rest[0], rest[1:])
    if v in ("apply", "create", "delete"):
        return _crud(ctx, args)
    if v == "get" and args.watch:
        from netsim.cli import get
        return get.watch(ctx, args.args, args.output, args.selector, args.show_labels,
                         args.field_selector)
    if v == "get":
        from netsim.cli import get
        return get.get(ctx, args.args, args.output, args.selector, args.show_labels,
                       args.no_headers, [c for x in args.label_columns for c in x.split(",")],
                       args.field_selector)
    if v == "describe":
        from netsim.cli import get
        return get.describe(ctx, args.args, args.selector)
    if v == "exec":
        from netsim.cli import pods
        rest = list(args.args)
        # flags after the pod name but before `--` (argparse.REMAINDER keeps them)
        pod, cmd, container, tty, stdin = None, [], args.container, args.tty, args.stdin
        i = 0
        while i < len(rest):
            a = rest[i]
            if a == "--":
                cmd = rest[i + 1:]
                break
            if a in ("-c", "--container") and i + 1 < len(rest):
                container = rest[i + 1]
                i += 2
                continue
            if a.startswith("-") and pod is None or a in ("-ti", "-it", "-t", "-i"):
                i += 1
                continue
            if pod is None:
                pod = a
            else:
                cmd = rest[i:]
                break
            i += 1
        if pod is None:
            raise CliError("error: expected 'exec POD_NAME COMMAND [ARG1] [ARG2] ... [ARGN]'.\n"
                           "POD_NAME and COMMAND are required arguments for the exec command")
        return pods.exec_(ctx, pod, container, cmd, tty, stdin)
    if v == "logs":
        from netsim.cli import pods
        if not args.args:
            raise CliError("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.")
        name = pods.pod_for_logs(ctx, args.args[0])
        return pods.logs(ctx, name, args.container, args.follow, args.previous, args.tail)
    if v == "proxy":
        from netsim.cli import proxy_cmd
        return proxy_cmd.run(ctx, _after_verb(argv, v))
    if v == "netpol":
        from netsim.cli import netpol_cmd
        return netpol_cmd.run(ctx, _after_verb(argv, v))
    if v == "capture":
        from netsim.cli import capture_cmd
        return capture_cmd.run(ctx, _after_verb(argv, v))
    if v == "trace":
        from netsim.cli import trace_cmd
        return trace_cmd.run(ctx, _after_verb(argv, v))
    if v == "topology":
        from netsim.cli import topology_cmd
        return topology_cmd.run(ctx, _after_verb(argv, v))
    if v == "link":
        from netsim.cli import link_cmd
        return link_cmd.run(ctx, _after_verb(argv, v))
    from netsim.cli import workloads
    # these verbs parse their own flags (pflag style), from the raw words after the verb
    return workloads.run(v, ctx, _after_verb(argv, v), argv)


def _crud(ctx: Ctx, args) -> int:
    from netsim.cli import apply as ap
    record = _record_cause(ctx.argv) if args.record not in (None, "false") else None
    if record:
        err("Flag --record has been deprecated, --record will be removed in the future")
    if args.verb == "apply":
        return ap.apply(ctx, args.filename, args.recursive, record, args.dry_run)
    if args.verb == "create":
        if args.filename:
            return ap.create(ctx, args.filename, args.recursive, record, args.dry_run)
        from netsim.cli import create_cmds
        return create_cmds.create_generic(ctx, args)
    grace = 0 if (args.force or args.now) and args.grace_period is None else args.grace_period
    if args.now and args.grace_period is None:
        grace = 1
    wait = str(args.wait).lower() not in ("false", "0", "no")
    policy = ap.cascade_policy(args.cascade)
    if args.filename:
        return ap.delete_files(ctx, args.filename, args.recursive, grace, args.ignore_not_found,
                               wait, policy)
    if not args.args:
        raise CliError("error: You must provide one or more resources by argument or filename.")
    targets = args.args
    if all("/" in t for t in targets):
        rc = 0
        for t in targets:
            k, n = t.split("/", 1)
            rc |= ap.delete_named(ctx, k, [n], None, False, grace, args.ignore_not_found, wait,
                                  policy)
        return rc
    return ap.delete_named(ctx, targets[0], targets[1:], args.selector, args.all, grace,
                           args.ignore_not_found, wait, policy)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except CliError as e:
        msg = str(e)
        err(msg if msg.startswith(("error", "Error", "netsim", "cluster", "the ", "The ", "You ",
                                   "Flag"))
            or "\n" in msg else "error: " + msg)
        return 1
    except errors.ApiError as e:
        err(server_error(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
