"""netsim.net.pyiptables: python-iptables without setuptools' distutils shim."""

from __future__ import annotations

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
