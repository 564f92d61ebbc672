"""Cluster lifecycle: bring the network, the control plane and the node agents up and down."""
