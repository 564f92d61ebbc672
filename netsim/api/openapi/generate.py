"""Generate netsim/api/openapi/schemas.json.gz, the compact copy of upstream's OpenAPI v3
schemas that netsim's API serves (/openapi/v3), validates against (fieldValidation) and
merges with (strategic merge patch, server-side apply).

The input is a directory of kube-apiserver's OpenAPI v3 documents, one per group-version,
in either of the two layouts upstream publishes them:

  * kubernetes/kubernetes          api/openapi-spec/v3/api__v1_openapi.json,
                                   api/openapi-spec/v3/apis__apps__v1_openapi.json, ...
  * kubernetes-sigs/kubectl-validate  pkg/openapiclient/builtins/<minor>/api/v1.json,
                                   .../apis/apps/v1.json, ...  (what GET /openapi/v3/<gv> gives)

Re-run (the committed file came from kubectl-validate's 1.35 documents):

    git --git-dir=<mirror>/kubernetes-sigs+kubectl-validate/repo archive HEAD \\
        pkg/openapiclient/builtins/1.35 | tar -x -C /tmp/oa
    /opt/netsim/venv/bin/python -m netsim.api.openapi.generate \\
        /tmp/oa/pkg/openapiclient/builtins/1.35 --kubernetes 1.35 \\
        --source kubernetes-sigs/kubectl-validate@<commit>:pkg/openapiclient/builtins/1.35

What is kept: every kind (one x-kubernetes-group-version-kind; Lists and the shared option types left out)
of the group-versions in GROUP_VERSIONS, the few in EXTRA, and every schema those reach through $ref, each
schema exactly as upstream wrote it (descriptions included: `kubectl explain` prints them).
Paths are not kept: netsim renders its own from the kinds it serves (netsim.api.openapi.v3).
The output is sorted, minified and gzipped with a zero mtime, so a re-run on the same input
gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys

# The group-versions whose kinds netsim serves or may serve (its resource registry, the
# review kinds, autoscaling/v1 Scale for /scale, policy/v1 for eviction and PDBs, ...).
GROUP_VERSIONS = [
    "api/v1", "apis/apps/v1", "apis/batch/v1", "apis/discovery.k8s.io/v1",
    "apis/networking.k8s.io/v1", "apis/authorization.k8s.io/v1",
    "apis/authentication.k8s.io/v1", "apis/autoscaling/v1", "apis/policy/v1",
    "apis/coordination.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1", "apis/events.k8s.io/v1",
    "apis/storage.k8s.io/v1",
]

# Kept besides the kinds: what the rendered documents' operations name (request bodies and
# answers of PATCH and DELETE).
EXTRA = ["io.k8s.apimachinery.pkg.apis.meta.v1.Patch", "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
         "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas.json.gz")
_PREFIX = "#/components/schemas/"


def _document(src: str, gv: str) -> dict:
    """One group-version's document from either layout."""
    for path in (os.path.join(src, gv + ".json"),
                 os.path.join(src, gv.replace("/", "__") + "_openapi.json"),
                 os.path.join(src, "api", "openapi-spec", "v3",
                              gv.replace("/", "__") + "_openapi.json")):
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                return json.load(f)
    raise SystemExit(f"no OpenAPI v3 document for {gv} under {src}")


def _refs(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "$ref" and isinstance(v, str) and v.startswith(_PREFIX):
                yield v[len(_PREFIX):]
            else:
                yield from _refs(v)
    elif isinstance(o, list):
        for v in o:
            yield from _refs(v)


def build(src: str, kubernetes: str, source: str) -> dict:
    schemas: dict[str, dict] = {}
    kinds: dict[str, dict[str, str]] = {}  # "apps/v1" -> {"Deployment": schema name}
    for gv in GROUP_VERSIONS:
        doc_schemas = _document(src, gv)["components"]["schemas"]
        for name, s in doc_schemas.items():
            if name in schemas and schemas[name] != s:
                print(f"warning: {name} differs between documents; keeping the first",
                      file=sys.stderr)
            schemas.setdefault(name, s)
            gvks = s.get("x-kubernetes-group-version-kind") or []
            if len(gvks) != 1:  # shared option types (DeleteOptions, WatchEvent) aren't kinds
                continue
            g = gvks[0]
            if g["kind"].endswith("List"):
                continue
            api = f"{g['group']}/{g['version']}" if g["group"] else g["version"]
            kinds.setdefault(api, {}).setdefault(g["kind"], name)
    keep: set[str] = set()
    todo = [n for m in kinds.values() for n in m.values()] + [n for n in EXTRA if n in schemas]
    while todo:
        n = todo.pop()
        if n not in keep:
            keep.add(n)
            todo.extend(_refs(schemas[n]))
    return {"kubernetes": kubernetes, "source": source,
            "kinds": {api: dict(sorted(m.items())) for api, m in sorted(kinds.items())},
            "schemas": {n: schemas[n] for n in sorted(keep)}}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="directory of upstream OpenAPI v3 documents")
    p.add_argument("--kubernetes", required=True, help="the release they describe, e.g. 1.35")
    p.add_argument("--source", required=True, help="where they came from (recorded)")
    p.add_argument("--out", default=OUT)
    a = p.parse_args(argv)
    data = build(a.src, a.kubernetes, a.source)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with open(a.out, "wb") as f:
        f.write(gzip.compress(text.encode(), 9, mtime=0))
    print(f"{a.out}: {len(data['schemas'])} schemas, "
          f"{sum(len(m) for m in data['kinds'].values())} kinds, {len(text)} bytes JSON")


if __name__ == "__main__":
    main()
