"""Looking inside a node's dataplane without root: `ruleflow` walks a packet through the
iptables or nftables rules kube-proxy rendered (the interpreter behind renderer tests, and
later `netsim trace`)."""
