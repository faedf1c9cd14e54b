#!/usr/bin/env bash
# Installs the Debian packages that `make test` needs beyond the Kafka stack (deploy/stack.sh
# installs its own): systemd (systemd-analyze verifies deploy/systemd's units) and postgresql
# (the Temporal cluster of deploy/production). Only what is missing; `apt-get update` once,
# only when something is.
#
#   deploy/packages.sh [PACKAGE...]     default: systemd postgresql
set -euo pipefail
pkgs=("$@")
((${#pkgs[@]})) || pkgs=(systemd postgresql)
missing=()
for p in "${pkgs[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == 'install ok installed' ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
sudo=()
((EUID == 0)) || sudo=(sudo)
echo "[packages] installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
# A package's own service must not start here (policy-rc.d 101): the tests run their servers
# as plain processes on ports of their own.
policy=/usr/sbin/policy-rc.d
made_policy=
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod +x "$policy"
  made_policy=1
fi
trap '[[ $made_policy ]] && "${sudo[@]}" rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
