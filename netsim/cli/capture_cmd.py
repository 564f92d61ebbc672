"""`netsim capture TARGET [-n NS] [-i IFACE] [-c COUNT] [--timeout S] [-w FILE|-] [FILTER]`.

TARGET is `pod/NAME`, `node/NAME` or `svc/NAME` (every endpoint's pod). With `-w FILE` the
pcap goes to FILE, with `-w -` to stdout (`| tcpdump -r -`, `| wireshark -k -i -`); without
-w the packets are printed as tcpdump prints them. The work is netsim.inspect.capture's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, err, server_error
from netsim.inspect import capture as cap
from netsim.net.topology import ClusterConfig


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="netsim capture", description=(
        "Capture packets (tcpdump) where TARGET lives: pod/NAME (its eth0), node/NAME (every "
        "interface of the node), svc/NAME (the eth0 of each endpoint's pod, merged)."))
    ap.add_argument("target")
    ap.add_argument("filter", nargs="*", help="a tcpdump filter expression")
    ap.add_argument("-n", "--namespace")
    ap.add_argument("-i", "--interface")
    ap.add_argument("-c", "--count", type=int)
    ap.add_argument("--timeout", type=float, help="stop after S seconds")
    ap.add_argument("-w", "--write", help="pcap to FILE, or - for stdout")
    return ap


def run(ctx: Ctx, argv: list[str]) -> int:
    a = parser().parse_intermixed_args(argv)
    if a.namespace:
        ctx.namespace = a.namespace
    if a.count is not None and a.count < 1:
        raise CliError("error: --count must be at least 1")
    cfg = ClusterConfig.load(ctx.cluster)
    if cfg is None:
        raise CliError(f'error: cluster "{ctx.cluster}" is not up')
    try:
        kind, name = cap.parse_target(a.target)
        targets = cap.places(ctx.client, cfg, kind, name, ctx.ns, a.interface)
    except cap.CaptureError as e:
        raise CliError(str(e)) from e
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    err("capturing on " + ", ".join(f"{t.label} ({t.iface})" for t in targets))
    reader: subprocess.Popen | None = None
    fd: int | None = None
    try:
        if a.write == "-":
            out_fd = sys.stdout.fileno()
        elif a.write:
            fd = os.open(a.write, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            out_fd = fd
        else:  # show the packets: a tcpdump reading our pcap, in the captured netns when
            # there is one (`-i any` records interface indexes: named there, not here)
            argv = ["tcpdump", "-n", "-l", "-r", "-"]
            if len(targets) == 1:
                argv = ["ip", "netns", "exec", targets[0].netns, *argv]
            reader = subprocess.Popen(argv, stdin=subprocess.PIPE, start_new_session=True)
            out_fd = reader.stdin.fileno()  # type: ignore[union-attr]
        try:
            rc = cap.capture(targets, out_fd, count=a.count, timeout=a.timeout, bpf=a.filter)
        except cap.CaptureError as e:
            raise CliError(str(e)) from e
    finally:
        if fd is not None:
            os.close(fd)
        if reader is not None:
            reader.stdin.close()  # type: ignore[union-attr]
            try:
                reader.wait(5)
            except subprocess.TimeoutExpired:
                reader.kill()
                reader.wait()
    return rc
