#!/usr/bin/env bash
# Sets up and runs Candor on its embedded defaults: SQLite in ./data, interview
# processors as local child processes, offline speech (pocketsphinx, espeak-ng).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
mkdir -p bin
go build -o bin/candor .
exec ./bin/candor "$@"
