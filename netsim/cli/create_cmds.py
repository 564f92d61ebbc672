"""`create configmap|secret generic|secret tls|namespace|deployment|job|cronjob` without -f, as
kubectl."""

from __future__ import annotations

import base64
import copy
import os
import re

from netsim.api import errors, validation
from netsim.api.resources import Resource
from netsim.cli.context import CliError, Ctx, out, server_error
from netsim.cli.pflags import Parsed

# ---------------------------------------------------------------------------- create X

ENV_NAME_MSG = ("a valid environment variable name must consist of alphabetic characters, "
                "digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  "
                "or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
                "'[-._a-zA-Z][-._a-zA-Z0-9]*')")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def parse_env_file(text: str, path: str, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """kubectl's env-file reader: `KEY=VALUE` lines, `#` comments and blank lines skipped,
    leading whitespace trimmed, a bare `KEY` takes its value from the environment."""
    env = os.environ if environ is None else environ
    pairs = []
    for n, raw in enumerate(text.split("\n")):
        line = raw[1:] if n == 0 and raw.startswith("\ufeff") else raw
        line = line.rstrip("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not _ENV_NAME.fullmatch(key):
            raise CliError(f'error: "{key}" is not a valid key name: {ENV_NAME_MSG}')
        if not eq:
            if key not in env:
                continue
            value = env[key]
        pairs.append((key, value))
    return pairs


def _read_source(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as e:
        raise CliError(f"error: lstat {path}: no such file or directory") from e
    except OSError as e:
        raise CliError(f"error: {e}") from e


def collect_data(p: Parsed, kind: str, name: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """--from-literal / --from-file / --from-env-file -> (text data, binary data)."""
    data: dict[str, str] = {}
    binary: dict[str, bytes] = {}
    label = "ConfigMap" if kind == "configmap" else "Secret"

    def put(k: str, v: bytes | str) -> None:
        problems = validation.is_config_map_key(k)
        if problems:  # kubectl checks with IsConfigMapKey and joins its messages with ", "
            raise CliError(f'error: "{k}" is not a valid key name for a {label}: '
                           + ", ".join(problems))
        if k in data or k in binary:
            raise CliError(f"error: cannot add key {k}, another key by that name already exists "
                           f"in {'Data' if kind == 'secret' else 'data'} for {label} \"{name}\"")
        if isinstance(v, str):
            data[k] = v
            return
        try:
            data[k] = v.decode("utf-8")
        except UnicodeDecodeError:
            binary[k] = v

    env_files = p.all("from-env-file")
    if env_files and (p.all("from-literal") or p.all("from-file")):
        raise CliError("error: from-env-file cannot be combined with from-file or from-literal")
    for lit in p.all("from-literal"):
        k, eq, v = lit.partition("=")
        if not eq or not k:
            raise CliError(f"error: invalid literal source {lit}, expected key=value")
        put(k, v)
    for src in p.all("from-file"):
        k, eq, path = src.partition("=")
        if not eq:
            k, path = "", src
        elif not k:
            raise CliError(f"error: key name for file path {path} missing")
        if os.path.isdir(path):
            if k:
                raise CliError(f"error: cannot give a key name for a directory path {path}")
            for f in sorted(os.listdir(path)):
                fp = os.path.join(path, f)
                if os.path.isfile(fp):
                    put(f, _read_source(fp))
        else:
            put(k or os.path.basename(path), _read_source(path))
    for path in env_files:
        raw = _read_source(path)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CliError(f"error: env file {path} contains invalid utf8 bytes") from e
        for k, v in parse_env_file(text, path):
            if k in data:
                data.pop(k)  # later lines win in an env file
            put(k, v)
    return data, binary


def _check_pem(cert: bytes, key: bytes) -> None:
    """tls.X509KeyPair's checks, with its messages."""
    import ssl
    import tempfile
    for data, needle, problem in (
        (cert, b"-----BEGIN", "failed to find any PEM data in certificate input"),
        (cert, b"-----BEGIN CERTIFICATE-----", "failed to find certificate PEM data in "
         "certificate input, but did find a private key; PEM inputs may have been switched"),
        (key, b"-----BEGIN", "failed to find any PEM data in key input"),
        (key, b"PRIVATE KEY-----", 'failed to find PEM block with type ending in "PRIVATE KEY" '
         "in key input after skipping PEM blocks of the following types: [CERTIFICATE]"),
    ):
        if needle not in data:
            raise CliError(f"error: failed to load key pair tls: {problem}")
    with tempfile.TemporaryDirectory() as d:
        cp, kp = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
        with open(cp, "wb") as f:
            f.write(cert)
        with open(kp, "wb") as f:
            f.write(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_cert_chain(cp, kp)
        except ssl.SSLError as e:
            if "KEY_VALUES_MISMATCH" in str(e) or "key values mismatch" in str(e):
                raise CliError("error: failed to load key pair tls: private key does not match "
                               "public key") from e
            raise CliError("error: failed to load key pair x509: malformed certificate") from e


def image_container_name(image: str) -> str:
    """kubectl create deployment: container named after the image (`nginx` for nginx:1.19)."""
    base = image.split("@", 1)[0]
    last = base.rsplit("/", 1)[-1]
    last = last.split(":", 1)[0]
    return re.sub(r"[^a-z0-9-]", "-", last.lower()).strip("-") or "app"


def _namespace_md(ctx: Ctx, md: dict) -> dict:
    if ctx.namespace:
        md["namespace"] = ctx.namespace
    return md


def build_generic(ctx: Ctx, what: str, name: str, p: Parsed) -> dict:
    """The object `create configmap|secret|namespace|deployment` would send."""
    if what in ("configmap", "cm"):
        data, binary = collect_data(p, "configmap", name)
        obj = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": _namespace_md(ctx, {"name": name})}
        if binary:
            obj["binaryData"] = {k: base64.b64encode(v).decode() for k, v in binary.items()}
        if data:
            obj["data"] = data
        return obj
    if what == "secret generic":
        data, binary = collect_data(p, "secret", name)
        allb = {k: v.encode() for k, v in data.items()}
        allb.update(binary)
        obj = {"apiVersion": "v1", "kind": "Secret",
               "metadata": _namespace_md(ctx, {"name": name})}
        if allb:
            obj["data"] = {k: base64.b64encode(allb[k]).decode() for k in sorted(allb)}
        if p.get("type"):
            obj["type"] = p.get("type")
        return obj
    if what == "secret tls":
        missing = [f'"{f}"' for f in ("cert", "key") if not p.get(f)]
        if missing:
            raise CliError(f"error: required flag(s) {', '.join(missing)} not set")
        cert, key = _read_source(p.get("cert")), _read_source(p.get("key"))
        _check_pem(cert, key)
        return {"apiVersion": "v1", "kind": "Secret",
                "metadata": _namespace_md(ctx, {"name": name}),
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": base64.b64encode(cert).decode(),
                         "tls.key": base64.b64encode(key).decode()}}
    if what in ("poddisruptionbudget", "pdb"):
        from netsim.cli.create_pdb import build_pdb
        return build_pdb(ctx, name, p)
    if what == "secret docker-registry":
        from netsim.cli.create_docker import build_docker_registry
        return build_docker_registry(ctx, name, p)
    if what in ("namespace", "ns"):
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name},
                "spec": {}, "status": {}}
    if what in ("deployment", "deploy"):
        images = p.all("image")
        if not images:
            raise CliError("error: required flag(s) \"image\" not set")
        containers = []
        for img in images:
            c = {"image": img, "name": image_container_name(img), "resources": {}}
            containers.append(c)
        if p.get("port") and p.get("port") != "-1":
            containers[0]["ports"] = [{"containerPort": int(p.get("port"))}]
        labels = {"app": name}
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": _namespace_md(ctx, {"name": name,
                                                "labels": dict(labels)}),
                "spec": {"replicas": int(p.get("replicas") or 1),
                         "selector": {"matchLabels": dict(labels)},
                         "strategy": {},
                         "template": {"metadata": {"labels": dict(labels)},
                                      "spec": {"containers": containers}}},
                "status": {}}
    if what == "job":
        return build_job(ctx, name, p)
    if what in ("cronjob", "cj"):
        return build_cronjob(ctx, name, p)
    raise CliError(f'error: unknown command "{what}" for "netsim create"\n'
                   "See 'netsim create -h' for help and examples")


def build_job(ctx: Ctx, name: str, p: Parsed) -> dict:
    """kubectl create job: createJob (--image, command after `--`, restartPolicy Never) or
    createJobFromCronJob (--from=cronjob/NAME: its jobTemplate, an owner reference and
    cronjob.kubernetes.io/instantiate=manual)."""
    image, src = p.get("image"), p.get("from")
    command = list(getattr(p, "command", None) or [])
    if not image and not src:
        raise CliError("error: either --image or --from must be specified")
    if image and src:
        raise CliError("error: --image and --from are mutually exclusive")
    if src and command:
        raise CliError("error: cannot specify --from and command")
    if image:
        c: dict = {"name": name, "image": image, "resources": {}}
        if command:
            c["command"] = command
        return {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": _namespace_md(ctx, {"name": name}),
                "spec": {"template": {"metadata": {},
                                      "spec": {"containers": [c], "restartPolicy": "Never"}}},
                "status": {}}
    kind, _, src_name = src.partition("/")
    if kind not in ("cronjob", "cronjobs", "cj", "cronjob.batch", "cronjobs.batch") or not src_name:
        raise CliError(f"error: from must be an existing cronjob: {src}")
    try:
        cj = ctx.client.get("cronjobs", src_name, ctx.ns)
    except errors.ApiError as e:
        raise CliError(server_error(e)) from e
    jt = (cj.get("spec") or {}).get("jobTemplate") or {}
    jtmd = jt.get("metadata") or {}
    ann = {"cronjob.kubernetes.io/instantiate": "manual", **(jtmd.get("annotations") or {})}
    # not metav1.NewControllerRef: kubectl leaves blockOwnerDeletion out (it would need
    # the cronjobs/finalizers permission)
    md = {"name": name, "annotations": ann,
          "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                               "name": cj["metadata"]["name"], "uid": cj["metadata"]["uid"],
                               "controller": True}]}
    if jtmd.get("labels"):
        md["labels"] = dict(jtmd["labels"])
    spec = copy.deepcopy(jt.get("spec") or {})
    tmd = (spec.get("template") or {}).get("metadata")
    if isinstance(tmd, dict) and tmd.get("creationTimestamp", "") is None:
        del tmd["creationTimestamp"]  # kubectl's typed copy: a null time is the zero time
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": _namespace_md(ctx, md),
            "spec": spec, "status": {}}


def build_cronjob(ctx: Ctx, name: str, p: Parsed) -> dict:
    """kubectl create cronjob: --image and --schedule required, --restart OnFailure."""
    missing = [f'"{f}"' for f in ("image", "schedule") if not p.get(f)]
    if missing:
        raise CliError(f"error: required flag(s) {', '.join(missing)} not set")
    c: dict = {"name": name, "image": p.get("image"), "resources": {}}
    command = list(getattr(p, "command", None) or [])
    if command:
        c["command"] = command
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": _namespace_md(ctx, {"name": name}),
            "spec": {"schedule": p.get("schedule"),
                     "jobTemplate": {"metadata": {"name": name},
                                     "spec": {"template": {
                                         "metadata": {},
                                         "spec": {"containers": [c],
                                                  "restartPolicy": p.get("restart") or "OnFailure"}}}}},
            "status": {}}


def _parsed_from_namespace(args) -> Parsed:
    """The argparse namespace main.py hands over, as the same Parsed the other verbs use."""
    p = Parsed()

    def put(name: str, v) -> None:
        if v is None or v == [] or v is False:
            return
        if isinstance(v, list):
            p.flags[name] = [str(x) for x in v]
        else:
            p.flags[name] = [str(v) if not isinstance(v, bool) else "true"]
    for attr, name in (("from_literal", "from-literal"), ("from_file", "from-file"),
                       ("from_env_file", "from-env-file"), ("cert", "cert"), ("key", "key"),
                       ("type", "type"), ("image", "image"), ("replicas", "replicas"),
                       ("port", "port"), ("output", "output"), ("dry_run", "dry-run"),
                       ("from_", "from"), ("schedule", "schedule"), ("restart", "restart"),
                       ("tcp", "tcp"), ("clusterip", "clusterip"), ("node_port", "node-port"),
                       ("external_name", "external-name"),
                       ("docker_server", "docker-server"), ("docker_username", "docker-username"),
                       ("docker_password", "docker-password"), ("docker_email", "docker-email"),
                       ("selector", "selector"), ("min_available", "min-available"),
                       ("max_unavailable", "max-unavailable")):
        put(name, getattr(args, attr, None))
    p.positional = list(getattr(args, "args", []) or [])
    # The words after `--` are the container's command (create job/cronjob).
    argv = list(getattr(args, "raw_argv", None) or [])
    p.command = []  # type: ignore[attr-defined]
    if "--" in argv:
        p.command = argv[argv.index("--") + 1:]
        if p.command and p.positional[-len(p.command):] == p.command:
            p.positional = p.positional[:-len(p.command)]
    return p


# what each `kubectl create X` puts before the server's message (pkg/cmd/create/*.go);
# namespace does not wrap it
_FAILED_TO_CREATE = {"configmap": "failed to create configmap: ", "cm": "failed to create "
                     "configmap: ", "secret": "failed to create secret ",
                     "deployment": "failed to create deployment: ",
                     "deploy": "failed to create deployment: ", "job": "failed to create job: ",
                     "cronjob": "failed to create cronjob: ", "cj": "failed to create cronjob: ",
                     "poddisruptionbudget": "failed to create poddisruptionbudgets: ",
                     "pdb": "failed to create poddisruptionbudgets: "}


def create_generic(ctx: Ctx, args) -> int:
    args.raw_argv = ctx.argv
    p = _parsed_from_namespace(args)
    pos = p.positional
    if not pos:
        raise CliError("error: must specify one of -f and -k")
    what, rest = pos[0], pos[1:]
    if what == "secret":
        if not rest:
            raise CliError("error: Unknown command: use one of 'secret generic', 'secret tls', "
                           "'secret docker-registry'")
        what, rest = f"secret {rest[0]}", rest[1:]
    if what in ("service", "svc"):
        kinds = ("clusterip", "externalname", "loadbalancer", "nodeport")
        if not rest or rest[0] not in kinds:
            raise CliError("error: Unknown command: use one of 'service clusterip', 'service "
                           "externalname', 'service loadbalancer', 'service nodeport'")
        if len(rest) != 2:
            raise CliError(f"error: exactly one NAME is required, got {len(rest) - 1}\n"
                           f"See 'netsim create service {rest[0]} -h' for help and examples")
        from netsim.cli import expose
        return expose.create_service_cmd(ctx, rest[0], rest[1], p)
    if not rest:
        raise CliError("error: exactly one NAME is required, got 0\n"
                       f"See 'netsim create {what} -h' for help and examples")
    if len(rest) > 1:
        raise CliError(f"error: exactly one NAME is required, got {len(rest)}\n"
                       f"See 'netsim create {what} -h' for help and examples")
    name = rest[0]
    obj = build_generic(ctx, what, name, p)
    from netsim.api.resources import for_object
    res = for_object(obj)
    if res.namespaced:
        obj["metadata"].setdefault("namespace", ctx.ns)
    dry = p.get("dry-run")
    if dry not in (None, "none", "client", "server", "unchanged", "true", "false"):
        raise CliError(f'error: Invalid dry-run value ({dry}). Must be "none", "server", or '
                       '"client".')
    output = p.get("output")
    if dry in ("client", "unchanged", "true"):
        shown = copy.deepcopy(obj)
        if not ctx.namespace:
            shown["metadata"].pop("namespace", None)
        return _print_result(shown, res, output, "created (dry run)")
    send = copy.deepcopy(obj)
    send.pop("status", None)
    try:
        created = ctx.client.create(send, dry_run=dry == "server")
    except errors.ApiError as e:
        wrap = _FAILED_TO_CREATE.get(what.split()[0])
        if wrap:  # kubectl's create verbs wrap the server's message (its plain %v)
            raise CliError(f"error: {wrap}{e.message}") from e
        raise CliError(server_error(e)) from e
    return _print_result(created, res, output,
                         "created (server dry run)" if dry == "server" else "created")


def _print_result(obj: dict, res: Resource, output: str | None, verb: str) -> int:
    if output in ("yaml", "json"):
        from netsim.cli.get import to_yaml
        from netsim.cli.goorder import go_json
        out(to_yaml(obj) if output == "yaml" else go_json(obj))
    elif output == "name":
        out(f"{res.type_name}/{obj['metadata']['name']}")
    elif output:
        raise CliError(f'error: unable to match a printer suitable for the output format '
                       f'"{output}", allowed formats are: json,name,yaml')
    else:
        out(f"{res.type_name}/{obj['metadata']['name']} {verb}")
    return 0


