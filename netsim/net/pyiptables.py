"""python-iptables (`iptc`), imported without setuptools.

iptc's util.py tries `from distutils.sysconfig import get_python_lib` and falls back to
sysconfig when there is no distutils. In a venv with setuptools that import goes through
setuptools' `_distutils_hack` and loads setuptools and pkg_resources: 230 of the 325 ms an
`import iptc` took in each node agent (10 agents: ~3 s of CPU in the first seconds of a
cluster). Hiding distutils for the length of the import makes iptc take its own fallback;
nothing else is changed, and a distutils someone already imported is left as it is.
"""

from __future__ import annotations

import sys
from types import ModuleType


def load() -> ModuleType:
    """`import iptc`, the cheap way (ImportError when python-iptables or libiptc is missing)."""
    if "iptc" in sys.modules:
        return sys.modules["iptc"]
    hid = "distutils" not in sys.modules
    if hid:
        sys.modules["distutils"] = None  # type: ignore[assignment]  # ModuleNotFoundError
    try:
        import iptc  # noqa: PLC0415 - optional
    finally:
        if hid and sys.modules.get("distutils", ...) is None:
            del sys.modules["distutils"]
    return iptc
