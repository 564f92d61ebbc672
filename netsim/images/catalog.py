"""Image catalog: an image reference names a built-in program (there is no container runtime).

`resolve()` turns a pod's container (image, command, args, ports) into the argv the kubelet
execs. Built-ins run as `python -S <this dir>/<program>.py` rather than `python -m ...`:
skipping site and runpy halves start-up time, which hundreds of pods multiply; the programs
import nothing from netsim, so they need no sys.path set up.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_USER_CATALOG = "/etc/netsim/images.yaml"
_HERE = os.path.dirname(os.path.abspath(__file__))
_DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass
class ImageSpec:
    """What to run for a container: argv to exec, version to report, ports it listens on."""

    argv: list[str]
    version: str
    ports: list[int]
    builtin: str | None = None  # program name (echo, tcp-echo, mysql, blog, sleep) or None


@dataclass(frozen=True)
class _Entry:
    program: str | None  # built-in program; None = run `command`
    port: tuple[int, ...] = ()  # default ports when the container declares none
    command: tuple[str, ...] = ()  # ENTRYPOINT of a command image
    args: tuple[str, ...] = ()  # CMD of a command image
    version: str | None = None  # fixed version instead of the tag
    shell: bool = False  # no ENTRYPOINT (busybox...): container args alone are the command


# module file of each built-in program
PROGRAMS = {"echo": "echo", "tcp-echo": "tcp_echo", "mysql": "mysql", "blog": "blog",
            "sleep": "sleep", "pause": "sleep"}
_PROGRAM_ALIASES = {"tcp_echo": "tcp-echo", "tcpecho": "tcp-echo", "http-echo": "echo",
                    "myblog": "blog"}

_ECHO = _Entry("echo", (8080,))
_SLEEP = _Entry("sleep", shell=True)
_MYSQL = _Entry("mysql", (3306,))
BUILTINS: dict[str, _Entry] = {
    "netsim/echo": _ECHO,
    "echo": _ECHO,
    # real defaults of these images, so manifests without containerPort still line up
    "ealen/echo-server": _Entry("echo", (80,)),
    "hashicorp/http-echo": _Entry("echo", (5678,)),
    "nginx": _Entry("echo", (80,)),
    "httpd": _Entry("echo", (80,)),
    "netsim/tcp-echo": _Entry("tcp-echo", (9000,)),
    "tcp-echo": _Entry("tcp-echo", (9000,)),
    "mysql": _MYSQL,
    "mysql/mysql-server": _MYSQL,
    "myblog": _Entry("blog", (8002,)),
    "netsim/blog": _Entry("blog", (8002,)),
    "busybox": _SLEEP,
    "alpine": _SLEEP,
    "debian": _SLEEP,
    "ubuntu": _SLEEP,
    "pause": _Entry("pause"),
    # pods share the host's filesystem, so the host's curl is this image's binary
    "curlimages/curl": _Entry(None, command=("curl",), args=("--help",)),
    # add-ons: netsim's own cluster DNS and ingress controller run as these images' pods
    "coredns/coredns": _Entry(None, command=(sys.executable, "-m", "netsim.dns"),
                              args=("--configmap", "kube-system/coredns")),
    "coredns": _Entry(None, command=(sys.executable, "-m", "netsim.dns"),
                      args=("--configmap", "kube-system/coredns")),
    "ingress-nginx/controller": _Entry(None, command=(sys.executable, "-m", "netsim.ingress")),
    "kubernetes-ingress-controller/nginx-ingress-controller": _Entry(
        None, command=(sys.executable, "-m", "netsim.ingress")),
}

# flags that make a built-in listen somewhere else than the container ports say
_PORT_FLAG = re.compile(r"^--?(port|p|listen)(=|$)")


def parse_ref(image: str) -> tuple[str, str, str]:
    """'192.168.3.171:5000/myblog:v1' -> ('192.168.3.171:5000', 'myblog', 'v1').

    Docker's rules: the first component is a registry when it has a '.' or ':' or is
    'localhost'; Docker Hub's `library/` is dropped; tag defaults to `latest`; a digest is
    ignored. Raises ValueError on an empty or malformed reference.
    """
    ref = (image or "").strip()
    if not ref or any(ch.isspace() for ch in ref):
        raise ValueError(f"invalid image reference {image!r}")
    ref = ref.split("@", 1)[0]
    registry = "docker.io"
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, ref = first, rest
    name, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:
        name, tag = ref, "latest"
    if not name or not tag or name.startswith("/") or name.endswith("/") or "//" in name:
        raise ValueError(f"invalid image reference {image!r}")
    if registry in _DOCKER_HUB and name.startswith("library/"):
        name = name[len("library/"):]
    return registry, name.lower(), tag


def _strs(value) -> list[str] | None:
    """Container command/args as a list of strings; None when absent or empty."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    out = [str(v) for v in value]
    return out or None


def container_ports(container: dict) -> list[int]:
    """TCP containerPorts in declaration order (protocol defaults to TCP)."""
    ports: list[int] = []
    for p in container.get("ports") or []:
        if not isinstance(p, dict) or str(p.get("protocol") or "TCP").upper() != "TCP":
            continue
        try:
            n = int(p.get("containerPort"))
        except (TypeError, ValueError):
            continue
        if 0 < n < 65536 and n not in ports:
            ports.append(n)
    return ports


def _ports_from_args(args: list[str]) -> list[int]:
    """Ports named by --port/-listen flags in the container's args."""
    ports: list[int] = []
    for i, arg in enumerate(args):
        if not _PORT_FLAG.match(arg):
            continue
        value = arg.split("=", 1)[1] if "=" in arg else (args[i + 1] if i + 1 < len(args) else "")
        for part in value.split(","):
            tail = part.rsplit(":", 1)[-1]
            if tail.isdigit() and 0 < int(tail) < 65536 and int(tail) not in ports:
                ports.append(int(tail))
    return ports


def program_argv(program: str) -> list[str]:
    """argv prefix of a built-in program."""
    return [sys.executable, "-S", os.path.join(_HERE, PROGRAMS[program] + ".py")]


# --- user catalog ---------------------------------------------------------------------------

_user_cache: dict[str, tuple[float, list[tuple[str, str | None, _Entry]]]] = {}


def _user_entry(item) -> tuple[str, str | None, _Entry]:
    if not isinstance(item, dict) or not item.get("image"):
        raise ValueError("needs `image`")
    _, repo, tag = parse_ref(str(item["image"]))
    image = str(item["image"])
    explicit_tag = tag if ":" in image.rsplit("/", 1)[-1] else None
    ports = item.get("ports", item.get("port"))
    if ports is None:
        ports = []
    elif not isinstance(ports, list):
        ports = [ports]
    port = tuple(int(p) for p in ports)
    if any(not 0 < p < 65536 for p in port):
        raise ValueError(f"bad port in {port}")
    version = str(item["version"]) if item.get("version") is not None else None
    args = tuple(_strs(item.get("args")) or ())
    if item.get("command") is not None:
        command = _strs(item["command"])
        if not command:
            raise ValueError("empty `command`")
        return repo, explicit_tag, _Entry(None, port, tuple(command), args, version)
    builtin = str(item.get("builtin", ""))
    builtin = _PROGRAM_ALIASES.get(builtin, builtin)
    if builtin not in PROGRAMS:
        raise ValueError(f"unknown builtin {builtin!r} (one of {', '.join(sorted(PROGRAMS))})")
    if not port:
        base = next((e for e in BUILTINS.values() if e.program == builtin), None)
        port = base.port if base else ()
    return repo, explicit_tag, _Entry(builtin, port, (), args, version, shell=builtin == "sleep")


def load_user_catalog(path: str) -> list[tuple[str, str | None, _Entry]]:
    """Entries of a user catalog file, cached by mtime; a missing file is an empty catalog.

    The file is a YAML list (or a mapping with an `images:` list) of
    `{image: repo[:tag], builtin: echo|tcp-echo|mysql|blog|sleep, port: N, version: V}` or
    `{image: repo[:tag], command: [...], args: [...], port: N}`. Bad entries are skipped with a
    warning: one typo must not make every pod fail to start.
    """
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return []
    cached = _user_cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        log.warning("image catalog %s unreadable: %s", path, e)
        data = None
    if isinstance(data, dict):
        data = data.get("images")
    entries = []
    for i, item in enumerate(data if isinstance(data, list) else []):
        try:
            entries.append(_user_entry(item))
        except (ValueError, TypeError) as e:
            log.warning("image catalog %s entry %d skipped: %s", path, i + 1, e)
    _user_cache[path] = (mtime, entries)
    return entries


def _lookup(repo: str, tag: str, user_catalog: str | None) -> _Entry | None:
    if user_catalog:
        entries = load_user_catalog(user_catalog)
        for want_tag in (tag, None):  # an exact tag beats a tag-less entry
            for e_repo, e_tag, entry in entries:
                if e_repo == repo and e_tag == want_tag:
                    return entry
    return BUILTINS.get(repo)


# --- resolution -----------------------------------------------------------------------------


def known(image: str, *, user_catalog: str | None = DEFAULT_USER_CATALOG) -> bool:
    """Whether the image reference names an entry of the catalog (built-in or the user's)."""
    try:
        _, repo, tag = parse_ref(image)
    except ValueError:
        return False
    return _lookup(repo, tag, user_catalog) is not None


def resolve(image: str, container: dict, *,
            user_catalog: str | None = DEFAULT_USER_CATALOG) -> ImageSpec | None:
    """The program a container runs, or None for an unknown image without a `command`
    (-> ErrImagePull).

    Kubernetes semantics: `command` replaces the image's ENTRYPOINT and `args` its CMD; with
    only `args`, a built-in gets them as extra flags, and an image without ENTRYPOINT
    (busybox...) runs them as the command. Ports are the container's TCP containerPorts,
    else the image's default (or those named by --port/-listen in args).
    """
    try:
        _, repo, tag = parse_ref(image)
    except ValueError:
        return None
    command, args = _strs(container.get("command")), _strs(container.get("args"))
    declared = container_ports(container)
    entry = _lookup(repo, tag, user_catalog)
    if command:
        # Pods share the host's filesystem: the command is the host's program, whatever
        # image it was written for (`python:3.12` + `command: [python3, ...]` runs).
        return ImageSpec(command + (args or []), (entry and entry.version) or tag, declared)
    if entry is None:
        return None
    version = entry.version or tag
    if entry.program is None:
        argv = list(entry.command) + (args if args is not None else list(entry.args))
        return ImageSpec(argv, version, declared or list(entry.port))
    if entry.shell and args:
        return ImageSpec(args, version, declared)
    if entry.program in ("sleep", "pause"):
        return ImageSpec(program_argv(entry.program) + list(args or entry.args), version, [],
                         builtin=entry.program)
    extra = args if args is not None else list(entry.args)
    from_args = _ports_from_args(extra)
    ports = from_args or declared or list(entry.port)
    argv = program_argv(entry.program)
    if not from_args:
        for p in ports:
            argv += ["--port", str(p)]
    argv += ["--version", version] + extra
    return ImageSpec(argv, version, ports, builtin=entry.program)


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(argv: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion of command/args: `$$` escapes, unknown refs stay as is."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return [_VAR_REF.sub(sub, a) for a in argv]
