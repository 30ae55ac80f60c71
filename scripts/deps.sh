#!/usr/bin/env bash
# Installs the Debian packages Candor runs and tests with, when any is missing.
# Safe to run again: it does nothing when everything is there.
set -euo pipefail
packages=(pocketsphinx pocketsphinx-en-us pocketsphinx-testdata espeak-ng flite ffmpeg chromium sox poppler-utils ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# axe-core checks every dashboard and candidate page for accessibility in
# the browser tests (web/a11y_test.go); they find it in .cache/axe.
axe_version=4.14.1
root="$(cd "$(dirname "$0")/.." && pwd)"
if ! grep -qs "\"version\": \"$axe_version\"" "$root/.cache/axe/node_modules/axe-core/package.json"; then
  if command -v npm >/dev/null 2>&1; then
    echo "installing axe-core $axe_version into .cache/axe" >&2
    npm install --silent --no-audit --no-fund --prefix "$root/.cache/axe" "axe-core@$axe_version" >/dev/null
  else
    echo "npm is not installed: the accessibility tests need it for axe-core (apt-get install npm)" >&2
  fi
fi
if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed: Candor needs Go 1.26 or newer (https://go.dev/dl/), then run this again." >&2
  exit 1
fi
