#!/usr/bin/env bash
# Runs every test with the real parts they use (SQLite, pocketsphinx, ffmpeg,
# espeak-ng, headless Chromium), installing the packages first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
go vet ./...
go test -count=1 -timeout 20m ./... "$@"
