"""Streaming subresources: pods/log, pods/exec (WebSocket channels), pods/portforward.
Importing the package registers their handlers in netsim.api.routes."""
