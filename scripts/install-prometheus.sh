#!/usr/bin/env bash
# Makes `prometheus` and `promtool` available, from Debian's `prometheus`
# package, and `amtool` from `prometheus-alertmanager` (scripts/check-rules.sh
# checks deploy/alertmanager/alertmanager.yml with it), unless all three are
# already on PATH. Idempotent and non-interactive.
# The package's systemd service is not started (policy-rc.d blocks it during
# the install; on hosts without systemd nothing starts anyway).
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 \
  && command -v amtool >/dev/null 2>&1; then
  echo "install-prometheus.sh: $(prometheus --version 2>&1 | head -n1)" >&2
  exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo -n)
else
  echo "install-prometheus.sh: need root or sudo to install the prometheus package" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-prometheus.sh: no apt-get; install prometheus and promtool (>= 2.37) yourself" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep the service from being started by the package's postinst: a
# policy-rc.d that denies every start, restored afterwards.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
  created_policy=1
fi
cleanup() {
  if [[ "$created_policy" -eq 1 ]]; then "${sudo[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

# Update the package lists only once per run, and only if the package is not
# already known (apt-get update is the slow part).
if ! apt-cache show prometheus >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -q
fi
packages=(prometheus prometheus-alertmanager)
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"; then
  # Stale package lists (e.g. a 404 on an old version): refresh and retry once.
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

# Belt and braces: if a service manager did start it, stop it (it would hold
# port 9090, which tests may want).
for service in prometheus prometheus-alertmanager; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    "${sudo[@]}" systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
done

command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v amtool >/dev/null
echo "install-prometheus.sh: installed $(prometheus --version 2>&1 | head -n1)" >&2
