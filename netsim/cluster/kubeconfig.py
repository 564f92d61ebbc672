"""The cluster's entry in the kubeconfig kubectl reads, as `kind` writes and removes its own.

`cluster up` merges a cluster, a user and a context, all named ``netsim-<cluster>``, into
the file kubectl would use (``$KUBECONFIG``'s first file, else ``~/.kube/config``) and makes
the context current; `cluster down` removes exactly those three entries (and clears
current-context when it named them). Every other entry stays as it was. Writes are atomic
(a temporary file renamed over the old one) and a new file is made 0600.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Mapping

import yaml

PREFIX = "netsim-"


def entry_name(cluster: str) -> str:
    return PREFIX + cluster


def default_path(env: Mapping[str, str] | None = None) -> str:
    """The file kubectl writes to: $KUBECONFIG's first entry, else ~/.kube/config."""
    env = os.environ if env is None else env
    for p in (env.get("KUBECONFIG") or "").split(os.pathsep):
        if p:
            return os.path.expanduser(p)
    return os.path.join(os.path.expanduser("~"), ".kube", "config")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def entries(cluster: str, server: str, ca: bytes, cert: bytes, key: bytes) -> tuple[dict, dict, dict]:
    """The named cluster, user and context of one netsim cluster (certificates embedded)."""
    n = entry_name(cluster)
    return ({"name": n, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}},
            {"name": n, "user": {"client-certificate-data": _b64(cert),
                                 "client-key-data": _b64(key)}},
            {"name": n, "context": {"cluster": n, "user": n}})


def standalone(cluster: str, server: str, ca: bytes, cert: bytes, key: bytes) -> dict:
    """A kubeconfig holding this cluster alone (`netsim cluster kubeconfig`)."""
    c, u, x = entries(cluster, server, ca, cert, key)
    return {"apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [c], "users": [u], "contexts": [x], "current-context": x["name"]}


# libyaml's emitter and parser where PyYAML has them (the same documents, ~10x less CPU:
# a third of `cluster up`'s own CPU was this file's YAML on an emulated machine)
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(_SafeDumper):
    """PyYAML's safe dumper, quoting the strings kubectl's YAML 1.1 reader takes for booleans
    and PyYAML does not (`y`, `n`): a context named `y` must stay a string."""


def _str(dumper, data: str):
    style = "'" if data in ("y", "Y", "n", "N") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(cfg: dict) -> str:
    return yaml.dump(cfg, Dumper=_Dumper, default_flow_style=False, sort_keys=False)


def _load(path: str) -> dict:
    try:
        with open(path) as f:
            cfg = yaml.load(f, Loader=_SafeLoader)
    except FileNotFoundError:
        return {}
    if cfg is None:
        return {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path} is not a kubeconfig (its top level is no mapping)")
    return cfg


def _write(path: str, cfg: dict) -> None:
    """Replace `path` atomically; keep its mode, or make it 0600 when it is new."""
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        os.makedirs(d, mode=0o700, exist_ok=True)
    try:
        st = os.stat(path)
        mode, owner = st.st_mode & 0o7777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = 0o600, None
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(dump(cfg))
        os.chmod(tmp, mode)
        if owner and os.geteuid() == 0:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _without(items, name: str) -> list:
    return [i for i in (items or []) if not (isinstance(i, dict) and i.get("name") == name)]


def merge(path: str, cluster: str, server: str, ca: bytes, cert: bytes, key: bytes) -> None:
    """Put netsim-<cluster>'s cluster, user and context into `path` (replacing older ones of
    that name) and make the context current."""
    cfg = _load(path)
    cfg.setdefault("apiVersion", "v1")
    cfg.setdefault("kind", "Config")
    c, u, x = entries(cluster, server, ca, cert, key)
    for section, item in (("clusters", c), ("users", u), ("contexts", x)):
        cfg[section] = _without(cfg.get(section), item["name"]) + [item]
    cfg["current-context"] = x["name"]
    cfg.setdefault("preferences", {})
    _write(path, cfg)


def remove(path: str, cluster: str) -> bool:
    """Take netsim-<cluster>'s three entries out of `path`; current-context becomes empty
    when it named them (kind's behaviour). Returns whether anything was removed."""
    try:
        cfg = _load(path)
    except ValueError:
        return False
    if not cfg:
        return False
    n = entry_name(cluster)
    changed = False
    for section in ("clusters", "users", "contexts"):
        if section in cfg and cfg[section] is not None:
            kept = _without(cfg[section], n)
            if len(kept) != len(cfg[section]):
                cfg[section], changed = kept, True
    if cfg.get("current-context") == n:
        cfg["current-context"], changed = "", True
    if changed:
        _write(path, cfg)
    return changed
