"""Streaming subresources: pods/log, pods/exec (WebSocket channels), pods/portforward.
Importing the package registers their handlers in netsim.api.routes."""

from netsim.api.streams import exec, logs, portforward  # noqa: F401  (register pods/exec, pods/log, pods/portforward)
