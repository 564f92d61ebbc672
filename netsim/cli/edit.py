"""`edit TYPE NAME`: the object as YAML in $KUBE_EDITOR / $EDITOR (default vi), saved edits
sent as a merge patch; on an API error the file is reopened with the error as a comment
header, as kubectl does."""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess
import tempfile

import yaml

from netsim.api import errors
from netsim.cli.context import CliError, Ctx, err, out, server_error
from netsim.cli.pflags import apply_globals, fetch, label_of, parse_flags, split_targets

HEADER = ("# Please edit the object below. Lines beginning with a '#' will be ignored,\n"
          "# and an empty file will abort the edit. If an error occurs while saving this file "
          "will be\n# reopened with the relevant failures.\n#\n")


def strip_comments(text: str) -> str:
    """cmdutil.StripComments: drop lines whose first non-blank character is '#'."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.lstrip().startswith("#"))


def has_lines(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in text.splitlines())


def merge_patch(orig, new):
    """RFC 7386 JSON merge patch turning `orig` into `new` (None when they are equal)."""
    if not isinstance(orig, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    patch = {}
    for k in orig:
        if k not in new:
            patch[k] = None
    for k, v in new.items():
        if k not in orig:
            patch[k] = copy.deepcopy(v)
        elif orig[k] != v:
            if isinstance(orig[k], dict) and isinstance(v, dict):
                patch[k] = merge_patch(orig[k], v)
            else:
                patch[k] = copy.deepcopy(v)
    return patch


def error_causes(message: str) -> list[str]:
    """`The Deployment "x" is invalid: [a: b, c: d]` -> ["a: b", "c: d"]."""
    _, sep, detail = message.partition(" is invalid: ")
    if not sep:
        return [message]
    if detail.startswith("[") and detail.endswith("]"):
        return [c for c in re.split(r", (?=[A-Za-z][\w.\[\]\-]*: )", detail[1:-1]) if c]
    return [detail]


def header_for(reasons: list[tuple[str, list[str]]]) -> str:
    text = HEADER
    for head, others in reasons:
        text += f"# {head}:\n" if others else f"# {head}\n"
        for o in others:
            text += f"# * {o}\n"
        text += "#\n"
    return text


def launch(editor: str, path: str) -> None:
    cmd = shlex.split(editor) + [path]
    try:
        rc = subprocess.call(cmd)
    except OSError as e:
        raise CliError(f'error: there was a problem with the editor "{editor}"') from e
    if rc != 0:
        raise CliError(f'error: there was a problem with the editor "{editor}"')


def run(ctx: Ctx, args: list[str]) -> int:
    p = parse_flags(args, {"output", "filename", "field-manager", "subresource"},
                    bool_flags={"windows-line-endings", "save-config", "output-patch"},
                    verb="edit")
    apply_globals(ctx, p)
    if not p.positional:
        raise CliError("error: you must provide one or more resources by argument or filename")
    objs = fetch(ctx, split_targets(p.positional))
    if not objs:
        raise CliError("error: edit cancelled, no objects found")
    res, obj = objs[0]
    from netsim.cli.get import to_yaml
    ext = ".json" if p.get("output") == "json" else ".yaml"
    editor = os.environ.get("KUBE_EDITOR") or os.environ.get("EDITOR") or "vi"
    qual = f"{res.plural}.{res.group}" if res.group else res.plural
    name = obj["metadata"]["name"]
    original = HEADER + to_yaml(obj)
    buf = original
    reasons: list[tuple[str, list[str]]] = []
    contains_error = False
    prev_edited = None
    prev_file = None
    while True:
        fd, path = tempfile.mkstemp(prefix="netsim-edit-", suffix=ext)
        with os.fdopen(fd, "w") as f:
            f.write(buf)
        launch(editor, path)
        with open(path, encoding="utf-8") as f:
            edited = f.read()
        if contains_error and prev_edited is not None \
                and strip_comments(prev_edited) == strip_comments(edited):
            if prev_file and os.path.exists(prev_file):
                os.remove(prev_file)
            err(f'A copy of your changes has been stored to "{path}"')
            raise CliError("error: Edit cancelled, no valid changes were saved.")
        if prev_file and os.path.exists(prev_file):
            os.remove(prev_file)
        if strip_comments(original) == strip_comments(edited):
            os.remove(path)
            err("Edit cancelled, no changes made.")
            return 0
        if not has_lines(edited):
            os.remove(path)
            err("Edit cancelled, saved file was empty.")
            return 0
        try:
            new = yaml.safe_load(strip_comments(edited))
            if not isinstance(new, dict):
                raise yaml.YAMLError("error unmarshaling JSON: json: cannot unmarshal into Go "
                                     "value of type map[string]interface {}")
        except yaml.YAMLError as e:
            reasons = [(f"The edited file had a syntax error: {e}", [])]
            contains_error = True
            prev_edited, prev_file = edited, path
            buf = header_for(reasons) + strip_comments(edited)
            continue
        if (new.get("apiVersion") != obj.get("apiVersion") or new.get("kind") != obj.get("kind")
                or (new.get("metadata") or {}).get("name") != name):
            err(f'A copy of your changes has been stored to "{path}"')
            raise CliError("error: At least one of apiVersion, kind and name was changed")
        patch = merge_patch(obj, new)
        for k in ("status",):
            patch.pop(k, None)
        (patch.get("metadata") or {}).pop("resourceVersion", None)
        if patch.get("metadata") == {}:
            patch.pop("metadata")
        if not patch:
            os.remove(path)
            out(f"{label_of(res, obj)} skipped")
            return 0
        try:
            ctx.client.patch(res.plural, name, obj["metadata"].get("namespace"), patch)
        except errors.Invalid as e:
            err(f'error: {qual} "{name}" is invalid')
            reasons = [(f'{qual} "{name}" was not valid', error_causes(e.message))]
            contains_error = True
            prev_edited, prev_file = edited, path
            buf = header_for(reasons) + strip_comments(edited)
            continue
        except errors.NotFound:
            err(f'error: {qual} "{name}" could not be found on the server')
            err(f'The edits you made on deleted resources have been saved to "{path}"')
            return 1
        except errors.ApiError as e:
            err(f'error: {qual} "{name}" could not be patched: {server_error(e)}')
            err(f"You can run `netsim replace -f {path}` to try this update again.")
            return 1
        os.remove(path)
        out(f"{label_of(res, obj)} edited")
        return 0
