"""`netsim cluster up|down|status|kubeconfig`."""

from __future__ import annotations

from netsim.cli.context import CliError, check_cluster
from netsim.cluster import lifecycle
from netsim.net.topology import ClusterConfig


def run(args) -> int:
    # `--name ""` is a name (an invalid one), not "no --name".
    name = args.name if args.name is not None else args.cluster
    check_cluster(name, "--name" if args.name is not None else None)
    try:
        if args.action == "status":
            return lifecycle.status(name)
        if args.action == "down":
            lifecycle.down(name)
            return 0
        if args.action == "kubeconfig":  # kind get kubeconfig: a standalone file on stdout
            if not lifecycle.is_up(name):
                raise lifecycle.ClusterError(f'cluster "{name}" is not up')
            from netsim.cluster import kubeconfig
            print(kubeconfig.dump(kubeconfig.standalone(name, *lifecycle.kubeconfig_entries(name))),
                  end="")
            return 0
    except lifecycle.ClusterError as e:
        raise CliError(f"error: {e}") from e
    if args.proxy_mode == "ipvs":
        from netsim.cli import extra_cmds
        extra_cmds.check_ipvs()
    try:
        cfg = ClusterConfig.make(name=name, nodes=args.nodes, lan=args.lan, pod_cidr=args.pod_cidr,
                                 service_cidr=args.service_cidr, proxy_mode=args.proxy_mode,
                                 host_access=not args.no_host_access,
                                 max_pods=args.max_pods, addons=not args.no_addons)
        lifecycle.up(cfg)
    except (ValueError, lifecycle.ClusterError) as e:
        raise CliError(f"error: {e}") from e
    return 0


def node_agent(ctx, action: str, node: str) -> int:
    """`node stop NODE` kills the node's agent (a node failure); `node start NODE` revives it."""
    cfg = cluster_with_node(ctx.cluster, node)
    if action == "stop":
        n = lifecycle.stop_agent(cfg.name, node)
        print(f"node/{node} agent {'stopped' if n else 'was not running'}")
    else:
        pid = lifecycle.start_agent(cfg, node)
        print(f"node/{node} agent {f'started (pid {pid})' if pid else 'already running'}")
    return 0


def cluster_with_node(cluster: str, node: str) -> ClusterConfig:
    """The cluster's config, after checking it is up and has that node (kubectl's words)."""
    cfg = ClusterConfig.load(cluster)
    if cfg is None:
        raise CliError(f'error: cluster "{cluster}" is not up')
    try:
        cfg.node(node)
    except KeyError as e:
        raise CliError(f'Error from server (NotFound): nodes "{node}" not found') from e
    return cfg
