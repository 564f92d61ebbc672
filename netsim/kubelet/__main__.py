"""Node agent entry point: `python -m netsim.kubelet --cluster C --node N` (inside the node netns)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from netsim.api.client import HttpClient
from netsim.net.topology import ClusterConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="netsim-node-agent")
    ap.add_argument("--cluster", required=True)
    ap.add_argument("--node", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from netsim import profiling
    profiling.maybe_start(f"agent-{args.node}")
    cfg = ClusterConfig.load(args.cluster)
    if cfg is None:
        print(f"cluster {args.cluster} has no configuration", file=sys.stderr)
        return 1
    node = cfg.node(args.node)
    client = HttpClient(args.cluster)
    from netsim.api import events
    client.event_sink = events.Sink(client)  # events are written off the sync thread
    from netsim.kubelet.agent import Kubelet
    from netsim.machinery import InformerFactory
    # One informer per resource for the whole agent: the kubelet and kube-proxy share the
    # Services watch.
    informers = InformerFactory(client)
    kubelet = Kubelet(client, cfg, node, informers=informers)
    agents = [kubelet]
    # kube-proxy runs beside every kubelet; a broken import stops the agent with its traceback.
    from netsim.proxy.agent import KubeProxy
    proxy = KubeProxy(client, cfg, node, factory=informers)
    proxy.start()
    agents.append(proxy)
    # NetworkPolicy enforcement, as a CNI's policy daemon on every node (its pods watch starts
    # with the first NetworkPolicy).
    from netsim.netpol.agent import PolicyAgent
    policies = PolicyAgent(client, cfg, node, factory=informers)
    policies.start()
    agents.append(policies)

    def stop(*_):
        # Containers keep running: a restarted agent re-adopts them.
        for a in agents:
            a.stopped.set()
        kubelet.stop()  # the sync loop returns at once instead of after its poll
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from netsim import gcpolicy
    gcpolicy.for_daemon()
    kubelet.run()
    # Leave now: a normal exit joins the probe pool's workers, so one probe in flight
    # (up to its timeoutSeconds) held `cluster down` for its whole grace period.
    # Everything the agent keeps is already on disk (ledger, pod records, IPAM).
    profiling.dump_now()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
