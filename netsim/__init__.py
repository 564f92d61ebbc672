"""netsim: a Kubernetes dataplane emulator built from real Linux network namespaces.

Kept import-free on purpose: every pod's image program starts with `python -m netsim.images.X`,
and anything imported here would slow down every pod start.
"""

__version__ = "0.1.0"
