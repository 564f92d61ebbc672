"""Issue 9: vagrant/provision.sh leaves the services the machine already had as they were.

provision.sh runs for real, with fake apt-get, dpkg-query, systemctl and modprobe first on
PATH (they record their calls), in a private mount namespace with tmpfs over /usr/sbin
(policy-rc.d) and /usr/local/bin (the netsim link): the machine is not changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from tests.conftest import requires_root

pytestmark = [requires_root]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROVISION = os.path.join(REPO, "vagrant", "provision.sh")

FAKES = {
    # installed = listed in $FAKE_INSTALLED or installed by the fake apt-get
    "dpkg-query": """for p; do :; done
case " $FAKE_INSTALLED " in *" $p "*) echo -n "install ok installed"; exit 0;; esac
[ -e "$FAKE_STATE/$p" ] && { echo -n "install ok installed"; exit 0; }
exit 1""",
    "apt-get": """echo "apt-get $* policy=$(tail -1 /usr/sbin/policy-rc.d 2>/dev/null)" >> "$FAKE_LOG"
if [ "$1" = install ]; then for p; do case "$p" in -*|install) ;; *) touch "$FAKE_STATE/$p";; esac; done; fi""",
    # the user's nginx/nsd are enabled and running
    "systemctl": """echo "systemctl $*" >> "$FAKE_LOG"; exit 0""",
    "modprobe": "exit 0",
}


@pytest.fixture
def machine(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in FAKES.items():
        (bin_ / name).write_text("#!/bin/sh\n" + body + "\n")
        (bin_ / name).chmod(0o755)
    (tmp_path / "state").mkdir()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    # a wrapper, not a symlink: a symlinked python finds no pyvenv.cfg beside it, cannot
    # import netsim, and provision.sh would take the venv for another checkout's
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    want = hashlib.sha256(open(os.path.join(REPO, "pyproject.toml"), "rb").read()).hexdigest()[:16]
    (venv / ".netsim-installed").write_text(f"{want}:{REPO}\n")  # pip install already done

    def run(installed: list[str], times: int = 1) -> tuple[list[str], str]:
        log = tmp_path / "calls.log"
        log.write_text("")
        script = ("mount --make-rprivate / && mount -t tmpfs nsim-test /usr/sbin && "
                  "mount -t tmpfs nsim-test /usr/local/bin && "
                  + " && ".join([f"bash {PROVISION}"] * times)
                  + " && { test -e /usr/sbin/policy-rc.d && echo policy-left || echo policy-gone; }")
        env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "NETSIM_VENV": str(venv),
               "FAKE_LOG": str(log), "FAKE_STATE": str(tmp_path / "state"),
               "FAKE_INSTALLED": " ".join(installed)}
        p = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                           text=True, env=env, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        return log.read_text().splitlines(), p.stdout
    return run


def _pkgs() -> list[str]:
    text = open(PROVISION).read()
    block = text[text.index("PKGS=(") + 6:]
    return block[:block.index(")")].split()


def test_a_machine_with_nginx_and_nsd_keeps_their_services(machine):
    calls, out = machine(_pkgs() + ["nginx", "nsd"])
    assert not [c for c in calls if c.startswith("systemctl")], calls
    assert not [c for c in calls if c.startswith("apt-get")], calls
    assert "policy-gone" in out


def test_only_what_provision_installs_is_kept_stopped(machine):
    calls, out = machine(_pkgs() + ["nsd"])  # the user has nsd; nginx is missing
    installs = [c for c in calls if c.startswith("apt-get install")]
    assert len(installs) == 1 and " nginx " in installs[0] + " "
    assert installs[0].endswith("policy=exit 101"), installs  # not started by its package
    assert [c for c in calls if c.startswith("systemctl")] == ["systemctl disable --now nginx"]
    assert "policy-gone" in out  # the policy was provision's own: removed


def test_provision_twice_changes_nothing_the_second_time(machine):
    calls, _ = machine(_pkgs(), times=2)
    assert [c.split(" policy=")[0] for c in calls if "install" in c or "systemctl" in c] == [
        "apt-get install -y -qq --no-install-recommends nginx",
        "apt-get install -y -qq --no-install-recommends nsd",
        "systemctl disable --now nginx", "systemctl disable --now nsd"]
