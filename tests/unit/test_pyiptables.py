"""netsim.net.pyiptables: python-iptables without setuptools' distutils shim."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("iptc")


def test_load_imports_iptc_without_setuptools_and_leaves_distutils_importable():
    code = (
        "import sys\n"
        "from netsim.net import pyiptables\n"
        "iptc = pyiptables.load()\n"
        "assert iptc is sys.modules['iptc'] and pyiptables.load() is iptc\n"
        "assert 'setuptools' not in sys.modules and 'pkg_resources' not in sys.modules\n"
        "assert 'distutils' not in sys.modules\n"  # not left hidden: a later import may find it
        "print('ok')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"


def test_load_runs_neither_gcc_nor_a_library_scan_and_leaves_the_environment_as_it_was():
    # iptc finds its own libxtwrapper and the extension folder from the hints, so the
    # import no longer tries gcc/ld for six names nor scans every library folder
    code = (
        "import os, subprocess, sys\n"
        "ran = []\n"
        "class Recorder(subprocess.Popen):\n"
        "    def __init__(self, args, *a, **kw):\n"
        "        ran.append(os.path.basename(str(args[0] if not isinstance(args, str) else args)))\n"
        "        ran.extend(a for a in args[1:] if a == '-v')\n"
        "        super().__init__(args, *a, **kw)\n"
        "subprocess.Popen = Recorder\n"
        "before = dict(os.environ)\n"
        "from netsim.net import pyiptables\n"
        "pyiptables.load()\n"
        "assert 'gcc' not in ran and '-v' not in ran, ran\n"
        "assert dict(os.environ) == before\n"
        "assert os.getenv('IPTABLES_LIBDIR') is None and os.getenv('XTABLES_LIBDIR') is None\n"
        "print('ok')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items()
                            if k not in ("IPTABLES_LIBDIR", "XTABLES_LIBDIR")})
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"
