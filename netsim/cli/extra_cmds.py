"""Verbs that need no cluster: version, api-resources, render (offline kube-proxy rules)."""

from __future__ import annotations

import os

from netsim import __version__
from netsim.api.discovery import KUBERNETES_VERSION
from netsim.api.printing.printers import tabulate
from netsim.api.resources import RESOURCES
from netsim.cli.context import CliError, Ctx, out


def check_ipvs() -> None:
    if not os.path.exists("/proc/net/ip_vs"):
        raise CliError("error: --proxy-mode ipvs needs a kernel with IP_VS (and dummy links); this "
                       "kernel has none. Use --proxy-mode iptables or nftables, or run netsim in a VM "
                       "with a stock kernel (see the README).")


def run(verb: str, ctx: Ctx, args: list[str]) -> int:
    if verb == "version":
        out(f"netsim {__version__} (emulating Kubernetes {KUBERNETES_VERSION})")
        return 0
    if verb == "api-resources":
        rows = [[r.plural, ",".join(r.short), r.api_version, str(r.namespaced).lower(), r.kind]
                for r in RESOURCES]
        out(tabulate(["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"], rows))
        return 0
    if verb == "render":
        from netsim.cli import render_cmd
        return render_cmd.run(args)
    raise CliError(f"error: unknown command {verb}")
