"""netsim: a Kubernetes dataplane emulator built from real Linux network namespaces.

Kept import-free on purpose: every pod's image program starts with `python -m netsim.images.X`,
and anything imported here would slow down every pod start. The library's names
(`netsim.Cluster`, `netsim.NetsimError`, ...) are imported on first use (PEP 562).
"""

__version__ = "0.1.0"

_LIBRARY = ("Capture", "Cluster", "CommandError", "LanHost", "NetsimError", "Node",
            "NotFoundError", "Pod", "WaitTimeout")
__all__ = ["__version__", *_LIBRARY]


def __getattr__(name: str):
    if name in _LIBRARY:
        from netsim import library
        return getattr(library, name)
    raise AttributeError(f"module 'netsim' has no attribute {name!r}")
