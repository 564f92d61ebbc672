"""netsim as a library for packet-level tests: `netsim.Cluster` (also importable from here)
and the pytest plugin (netsim.library.plugin, registered as `netsim` by the package)."""

from netsim.library.cluster import Capture, Cluster, LanHost, Node, Pod
from netsim.library.errors import CommandError, NetsimError, NotFoundError, WaitTimeout

__all__ = ["Capture", "Cluster", "CommandError", "LanHost", "NetsimError", "Node", "NotFoundError",
           "Pod", "WaitTimeout"]
