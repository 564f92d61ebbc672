"""`create secret docker-registry NAME`: kubectl's pkg/cmd/create/create_secret_docker.go.

A Secret of type kubernetes.io/dockerconfigjson whose `.dockerconfigjson` is what
json.Marshal writes for `{"auths": {SERVER: {username, password, email, auth}}}` (empty
fields left out, auth = base64(username:password)); --docker-server defaults to Docker Hub's
`https://index.docker.io/v1/`. With --from-file the files are the data instead (a path
without `key=` becomes `.dockerconfigjson=path`), checked as `create secret generic` checks
them.
"""

from __future__ import annotations

import base64
import json

from netsim.cli.context import CliError, Ctx
from netsim.cli.pflags import Parsed

DEFAULT_SERVER = "https://index.docker.io/v1/"
KEY = ".dockerconfigjson"


def go_json(obj) -> str:
    """encoding/json's Marshal: compact, HTML characters escaped."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def docker_config_json(username: str, password: str, email: str, server: str) -> str:
    entry = {"username": username, "password": password, "email": email,
             "auth": base64.b64encode(f"{username}:{password}".encode()).decode()}
    return go_json({"auths": {server: {k: v for k, v in entry.items() if v}}})


def build_docker_registry(ctx: Ctx, name: str, p: Parsed) -> dict:
    from netsim.cli.create_cmds import _namespace_md, collect_data
    files = p.all("from-file")
    server = p.get("docker-server", DEFAULT_SERVER)
    user, password = p.get("docker-username") or "", p.get("docker-password") or ""
    if not files and not (user and password and server):
        raise CliError("error: either --from-file or the combination of --docker-username, "
                       "--docker-password and --docker-server is required")
    obj = {"apiVersion": "v1", "kind": "Secret",
           "metadata": _namespace_md(ctx, {"name": name}),  # kubectl 1.37 omits the zero time
           "type": "kubernetes.io/dockerconfigjson"}
    if files:
        sources = Parsed(flags={"from-file": [f if "=" in f else f"{KEY}={f}" for f in files]})
        data, binary = collect_data(sources, "secret", name)
        raw = {k: v.encode() for k, v in data.items()} | binary
    else:
        raw = {KEY: docker_config_json(user, password, p.get("docker-email") or "",
                                       server).encode()}
    obj["data"] = {k: base64.b64encode(raw[k]).decode() for k in sorted(raw)}
    return obj
