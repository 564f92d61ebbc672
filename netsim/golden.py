"""Golden files in rules/: write a rendering, or check that the stored one still matches.

Shared by the kube-proxy, DNS and ingress regenerators so all three behave alike.
"""

from __future__ import annotations

import os
import sys

# What the examples' READMEs tell the user to do before applying them, as
# {example folder: {node: labels}}; the offline cluster labels the nodes so first.
EXAMPLE_NODE_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "uit": {"k8s-slave-172": {"component": "zz"}},       # examples/uit/README.md
    "ingress": {"k8s-slave-172": {"ingress": "true"}},   # examples/ingress/mandatory.yaml
}


def write_or_check(path: str, text: str, check: bool, regen_hint: str) -> bool:
    """Write `text` to `path` (check=False) or compare with it; False when it differs."""
    if check:
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            print(f"differs: {path} (regenerate: {regen_hint})", file=sys.stderr)
            return False
        return True
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")
    return True
