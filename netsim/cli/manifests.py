"""Reading manifests the way kubectl does: files, directories, stdin, multi-document YAML, Lists."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass

import yaml

from netsim.api.resources import ACCEPTED_VERSIONS, BY_KIND


class ManifestError(Exception):
    """Printed as-is after `error: ` (kubectl's wording)."""


@dataclass
class Doc:
    obj: dict
    source: str


def _files(path: str, recursive: bool) -> list[str]:
    if path == "-":
        return ["-"]
    if os.path.isdir(path):
        out = []
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                if f.endswith((".yaml", ".yml", ".json")):
                    out.append(os.path.join(root, f))
            if not recursive:
                break
        return out
    if not os.path.exists(path):
        raise ManifestError(f'the path "{path}" does not exist')
    return [path]


def _yaml_error(path: str, e: yaml.YAMLError) -> ManifestError:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    line = f"line {mark.line + 1}: " if mark else ""
    return ManifestError(f"error parsing {path}: error converting YAML to JSON: yaml: {line}{problem}")


def load(paths: list[str], recursive: bool = False) -> list[Doc]:
    """Every object in the given files, validated for apiVersion/kind, in file order."""
    docs: list[Doc] = []
    for p in paths:
        for f in _files(p, recursive):
            text = sys.stdin.read() if f == "-" else open(f, encoding="utf-8").read()
            name = "STDIN" if f == "-" else f
            # kubectl's YAML parser takes a TAB before a trailing comment (the seed has
            # `valueFrom:\t\t# ...`); PyYAML does not, so make those TABs spaces.
            text = re.sub(r"(?m)(?<=\S)\t+(?=[ \t]*#)", "  ", text)
            try:
                if f.endswith(".json"):
                    raw = [json.loads(text)]
                else:
                    raw = list(yaml.safe_load_all(text))
            except yaml.YAMLError as e:
                raise _yaml_error(name, e) from e
            except json.JSONDecodeError as e:
                raise ManifestError(f"error parsing {name}: {e}") from e
            for obj in raw:
                if obj is None:
                    continue
                if not isinstance(obj, dict):
                    raise ManifestError(f"error parsing {name}: error converting YAML to JSON: "
                                        "yaml: cannot unmarshal into an object")
                items = obj.get("items") if obj.get("kind", "").endswith("List") and \
                    isinstance(obj.get("items"), list) else [obj]
                for it in items:
                    check(it, name)
                    docs.append(Doc(it, name))
    if not docs:
        raise ManifestError("no objects passed to apply")
    return docs


def check(obj: dict, source: str) -> None:
    """Client-side checks kubectl makes before talking to the server."""
    kind, api = obj.get("kind"), obj.get("apiVersion")
    if not api and not kind:
        raise ManifestError(f'error validating "{source}": error validating data: [apiVersion not '
                            "set, kind not set]; if you choose to ignore these errors, turn "
                            "validation off with --validate=false")
    if not kind:
        raise ManifestError(f'error validating "{source}": error validating data: kind not set; '
                            "if you choose to ignore these errors, turn validation off with "
                            "--validate=false")
    if not api:
        raise ManifestError(f'error validating "{source}": error validating data: apiVersion not '
                            "set; if you choose to ignore these errors, turn validation off with "
                            "--validate=false")
    res = BY_KIND.get(kind)
    ok = res is not None and (api in ACCEPTED_VERSIONS.get(kind, {res.api_version}))
    if not ok:
        name = (obj.get("metadata") or {}).get("name", "")
        ns = (obj.get("metadata") or {}).get("namespace", "")
        raise ManifestError(f'resource mapping not found for name: "{name}" namespace: "{ns}" '
                            f'from "{source}": no matches for kind "{kind}" in version "{api}"\n'
                            "ensure CRDs are installed first")
    if not isinstance(obj.get("metadata"), dict) or not (obj["metadata"].get("name")
                                                         or obj["metadata"].get("generateName")):
        if kind != "List":
            raise ManifestError(f'error when retrieving current configuration of:\nResource: '
                                f'"{res.qualified}", GroupVersionKind: "{api}, Kind={kind}"\n'
                                f'Name: "", Namespace: ""\nfrom server for: "{source}": '
                                "resource name may not be empty")
