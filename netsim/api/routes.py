"""Extension points of the HTTP API, so each protocol feature lives in a module of its own
(patch types, subresources such as pods/log or deployments/scale, create-only review kinds,
body encodings, extra paths such as /openapi) and the server's request loop stays one small
dispatcher. A module registers itself at import time; `netsim.api.server` imports them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the handler class lives in server.py, which imports this module
    from netsim.api.resources import Resource
    from netsim.api.store import Store


@dataclass
class Request:
    """One API request as the dispatcher parsed it. `handler` is the connection's
    BaseHTTPRequestHandler: use its _send/_send_raw/_chunk/wfile/rfile/connection to answer
    (a stream handler may take the connection over, e.g. after an Upgrade)."""

    handler: Any
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    store: Store
    res: Resource | None = None
    url_api: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    user: dict = field(default_factory=dict)  # who sent it: {"username", "groups"} when known

    def content_type(self) -> str:
        """The media type of the body, parameters dropped ("" when absent)."""
        return (self.headers.get("content-type") or "").split(";", 1)[0].strip().lower()


# (plural, subresource) -> handler(req). The handler answers the request itself.
SubresourceHandler = Callable[[Request], None]
SUBRESOURCES: dict[tuple[str, str], SubresourceHandler] = {}

# plural -> handler(req) for kinds that are only ever created and answered, never stored
# (SelfSubjectAccessReview, TokenReview, ...). The plural must be in resources.RESOURCES.
VIRTUAL: dict[str, SubresourceHandler] = {}

# Content-Type of a PATCH body -> fn(current object, raw body, req) -> the patched object.
# application/merge-patch+json is built in (netsim.api.store.merge_patch).
PatchFn = Callable[[dict, bytes, Request], dict]
PATCH_TYPES: dict[str, PatchFn] = {}

# Content-Type of a POST/PUT body -> fn(raw body, req) -> the decoded JSON-like object.
# application/json (and no Content-Type) is built in.
BodyDecoder = Callable[[bytes, Request], Any]
BODY_DECODERS: dict[str, BodyDecoder] = {}

# Path prefix (e.g. "/openapi/") -> handler(req) for paths outside /api and /apis.
PATHS: dict[str, SubresourceHandler] = {}


def subresource(plural: str, sub: str) -> Callable[[SubresourceHandler], SubresourceHandler]:
    """Decorator: serve `{plural}/{name}/{sub}`."""
    def register(fn: SubresourceHandler) -> SubresourceHandler:
        SUBRESOURCES[(plural, sub)] = fn
        return fn
    return register
