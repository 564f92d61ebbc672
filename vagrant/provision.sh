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
PKGS=(iproute2 iptables nftables ipset ipvsadm conntrack tcpdump nginx dnsutils
      curl socat iputils-ping python3-venv python3-dev gcc util-linux procps net-tools psmisc kmod
      openssl libnetfilter-conntrack3
      wrk dnsperf)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nsd is only the DNS benchmark's C reference server: install it without letting its
# package start a system nsd on :53 (policy-rc.d 101 = "do not start services").
if ! dpkg-query -W -f='${Status}' nsd 2>/dev/null | grep -q "install ok installed"; then
  echo "==> apt-get install nsd (service left stopped)"
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nsd >/dev/null || true
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled nsd >/dev/null 2>&1; then
  systemctl disable --now nsd >/dev/null 2>&1 || true
fi
# The packaged nginx service is not ours: netsim runs its own nginx per ingress pod.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled nginx >/dev/null 2>&1; then
  systemctl disable --now nginx >/dev/null 2>&1 || true
fi

# Kernel modules: load where they are modules; carry on where built in or absent.
for m in br_netfilter nf_conntrack veth bridge vxlan ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh; do
  if [ -d "/sys/module/$m" ]; then continue; fi
  modprobe "$m" 2>/dev/null || echo "    (kernel module $m not available: continuing)"
done

# Python: a virtualenv with netsim and its test extras; `netsim` on root's PATH.
PY=python3
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> virtualenv $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.netsim-installed"
want=$(cat "$HERE/pyproject.toml" | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want:$HERE" ]; then
  echo "==> pip install -e $HERE[test]"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q -e "$HERE[test]"
  echo "$want:$HERE" > "$stamp"
fi
ln -sf "$VENV/bin/netsim" /usr/local/bin/netsim
echo "==> netsim installed: /usr/local/bin/netsim -> $VENV/bin/netsim"
