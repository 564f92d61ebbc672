"""NetworkPolicy on the nodes: a pure renderer (snapshot -> iptables-restore text of the
filter table's NETSIM-* policy chains) and, on each node, what applies it.

`python -m netsim.netpol golden [--check]` regenerates (or checks) rules/netpol-*.rules.
"""
