#!/usr/bin/env bash
# Runs every test with the real parts they use (SQLite, pocketsphinx, ffmpeg,
# espeak-ng, headless Chromium), installing the packages first if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
go vet ./...
# The Fly case of `candor bench machines` builds only with the Fly fake.
go vet -tags flyfake ./bench
go test -count=1 -timeout 20m ./... "$@"
