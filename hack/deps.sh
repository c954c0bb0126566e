#!/usr/bin/env bash
# Installs the Debian packages Pleura's tests and local stack use, when a
# command they provide is missing. Everything else is built by hack/tools.sh.
set -euo pipefail

# command:package pairs.
needs=(
  "initdb:postgresql"
  # The portal's browser test (chromedp) drives headless Chromium.
  "chromium:chromium"
  "chromedriver:chromium-driver"
)

missing=()
for pair in "${needs[@]}"; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if ! command -v "$cmd" >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/$cmd" >/dev/null; then
    missing+=("$pkg")
  fi
done
((${#missing[@]})) || exit 0

echo "[deps] installing Debian packages: ${missing[*]}" >&2
if [[ $(id -u) -ne 0 ]]; then
  echo "[deps] not root: run 'sudo apt-get install ${missing[*]}' and retry" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
