"""python-iptables (`iptc`), imported without setuptools and without running gcc.

iptc's util.py tries `from distutils.sysconfig import get_python_lib` and falls back to
sysconfig when there is no distutils. In a venv with setuptools that import goes through
setuptools' `_distutils_hack` and loads setuptools and pkg_resources: 230 of the 325 ms an
`import iptc` took in each node agent (10 agents: ~3 s of CPU in the first seconds of a
cluster). Hiding distutils for the length of the import makes iptc take its own fallback;
nothing else is changed, and a distutils someone already imported is left as it is.

iptc then looks for its libraries by name through ctypes.util.find_library, which runs
`ldconfig -p` for each name tried and gcc and ld for each one ldconfig does not know: its
own libxtwrapper (beside the package) is asked for under six names, and a scan of every
library folder (`ldconfig -N -v`) only checks that an xtables extension folder exists: 19
subprocesses and ~70 ms of CPU per import (its own 45 ms and theirs 53 ms -> 24 and 4). iptc's own knobs skip both: IPTABLES_LIBDIR (folders
tried before the bare names: the package's own, where libxtwrapper is) and XTABLES_LIBDIR
(the extension folder; libxtables reads the same variable, and its built-in default is that
folder). They are set for the import only, and only when the user has not set them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from types import ModuleType


def _extension_dir() -> str | None:
    """Where the xtables extensions are, in ldconfig's order of folders (None: let iptc
    look)."""
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    for base in ("/usr/local/lib", f"/usr/local/lib/{arch}", f"/lib/{arch}", f"/usr/lib/{arch}",
                 "/lib64", "/usr/lib64", "/lib", "/usr/lib"):
        if os.path.isdir(f"{base}/xtables"):
            return f"{base}/xtables"
    return None


def _hints() -> dict[str, str]:
    hints = {}
    spec = importlib.util.find_spec("iptc")
    if spec is not None and spec.origin:
        hints["IPTABLES_LIBDIR"] = os.path.dirname(os.path.dirname(spec.origin))
    ext = _extension_dir()
    if ext:
        hints["XTABLES_LIBDIR"] = ext
    return {k: v for k, v in hints.items() if k not in os.environ}


def load() -> ModuleType:
    """`import iptc`, the cheap way (ImportError when python-iptables or libiptc is missing)."""
    if "iptc" in sys.modules:
        return sys.modules["iptc"]
    hid = "distutils" not in sys.modules
    if hid:
        sys.modules["distutils"] = None  # type: ignore[assignment]  # ModuleNotFoundError
    # Into os.environ's mapping only (what iptc reads), not the C environment: a putenv
    # while another thread's libc reads the environment (tzset, for a log line) can crash.
    env = os.environ._data  # type: ignore[attr-defined]
    keys = []
    for k, v in _hints().items():
        keys.append(os.environ.encodekey(k))  # type: ignore[attr-defined]
        env[keys[-1]] = os.environ.encodevalue(v)  # type: ignore[attr-defined]
    try:
        import iptc  # noqa: PLC0415 - optional
    finally:
        for k in keys:
            env.pop(k, None)
        if hid and sys.modules.get("distutils", ...) is None:
            del sys.modules["distutils"]
    return iptc
