#!/usr/bin/env bash
# Makes `chromium` (Debian's package) available for the status-page test
# (tests/it/status_page.rs renders the demo's `/` in a real headless browser),
# unless a Chromium is already on PATH. Idempotent and non-interactive.
set -euo pipefail

for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "install-chromium.sh: $("$name" --version 2>/dev/null | head -n1)" >&2
    exit 0
  fi
done

if [[ "$(id -u)" -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo -n)
else
  echo "install-chromium.sh: need root or sudo to install the chromium package" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium.sh: no apt-get; install Chromium yourself (the test looks for \`chromium\` or \`chromium-browser\` on PATH, or CREDWATCH_CHROMIUM)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Update the package lists only if the package is not already known.
if ! apt-cache show chromium >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -q
fi
# Fonts: without any, headless Chromium draws boxes and the screenshot is useless.
packages=(chromium fonts-dejavu-core)
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"; then
  # Stale package lists (e.g. a 404 on an old version): refresh and retry once.
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
fi

command -v chromium >/dev/null
echo "install-chromium.sh: installed $(chromium --version 2>/dev/null | head -n1)" >&2
