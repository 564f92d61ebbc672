"""`netsim drain NODE`: kubectl's drain verb, its flags and their checks; the work is
netsim.cluster.drain's (Drainer), shared with `netsim node remove`."""

from __future__ import annotations

import sys

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, server_error
from netsim.cli.pflags import apply_globals, parse_flags
from netsim.cluster.drain import Drainer, DrainOptions


def options_from_flags(p) -> DrainOptions:
    from netsim.cli.rollout_cmds import parse_duration

    def integer(flag: str, default: int) -> int:
        raw = p.get(flag)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise CliError(f'error: invalid argument "{raw}" for "--{flag}" flag: '
                           f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None
    dry = p.get("dry-run") or "none"
    if dry in ("true", "unchanged"):
        dry = "client"
    if dry == "false":
        dry = "none"
    if dry not in ("none", "client", "server"):
        raise CliError(f'error: Invalid dry-run value ({dry}). Must be "none", "server", or '
                       '"client".')
    timeout = p.get("timeout")
    return DrainOptions(
        force=p.bool("force"), ignore_daemonsets=p.bool("ignore-daemonsets"),
        delete_emptydir_data=p.bool("delete-emptydir-data") or p.bool("delete-local-data"),
        grace_period=integer("grace-period", -1),
        timeout=parse_duration(timeout) if timeout else 0.0,
        pod_selector=p.get("pod-selector") or "",
        disable_eviction=p.bool("disable-eviction"),
        skip_wait_for_delete_timeout=integer("skip-wait-for-delete-timeout", 0),
        dry_run=dry)


def drain_cmd(ctx: Ctx, args: list[str]) -> int:
    p = parse_flags(args, {"grace-period", "timeout", "pod-selector", "selector", "dry-run",
                           "skip-wait-for-delete-timeout", "chunk-size"},
                    {"force", "ignore-daemonsets", "delete-emptydir-data", "delete-local-data",
                     "disable-eviction"}, verb="drain")
    apply_globals(ctx, p)
    if not p.positional and p.get("selector") is None:
        raise CliError("error: USAGE: drain NODE [flags]\nSee 'netsim drain -h' for help and "
                       "examples")
    if p.positional and p.get("selector"):
        raise CliError("error: error: cannot specify both a node name and a --selector option\n"
                       "See 'netsim drain -h' for help and examples")
    opts = options_from_flags(p)
    if opts.pod_selector:
        from netsim.api import selectors
        try:
            selectors.parse(opts.pod_selector)
        except ValueError:
            raise CliError("error: --pod-selector=<pod_selector> must be a valid label "
                           "selector") from None
    if p.bool("delete-local-data"):
        sys.stderr.write("Flag --delete-local-data has been deprecated, This option is "
                         "deprecated and will be deleted. Use --delete-emptydir-data.\n")
    d = Drainer(ctx.client, opts)
    try:
        if d.drain(p.positional or None, p.get("selector")):
            return 0
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    raise CliError(f"error: {d.failure}")
