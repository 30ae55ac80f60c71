#!/usr/bin/env bash
# Kill -9 the control plane while an interview runs on a local processor,
# start it again on the same data dir, and check that the processor lived
# through it, was adopted, and is ended (no orphan) when the interview ends.
# Usage: scripts/crash-control-plane.sh [path/to/candor]   (default: builds bin/candor)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-bin/candor}
[ -x "$B" ] || go build -o bin/candor . && B=${1:-bin/candor}
D=$(mktemp -d)
trap 'kill $(cat "$D/cp.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$D"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
U=http://127.0.0.1:$PORT
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
KEY=$("$B" admin bootstrap --tenant Acme --email o@acme.test --password 'correct horse' --data "$D/data" | json '["api_key"]')
H="Authorization: Bearer $KEY"
start_cp() {
	"$B" --addr="127.0.0.1:$PORT" --data="$D/data" --warm-pool=0 --heartbeat-timeout=30s >"$D/cp$1.log" 2>&1 &
	echo $! >"$D/cp.pid"
	for _ in $(seq 150); do curl -sf "$U/healthz" >/dev/null && return; sleep 0.2; done
	echo "control plane did not start: $(tail -3 "$D/cp$1.log")"; exit 1
}
post() { curl -sf -H "$H" -H 'Content-Type: application/json' -d "$2" "$U$1"; }

start_cp 1
POS=$(post /api/v1/positions '{"title":"Eng","description":"","questions":["Why?"],"rubric":[]}' | json '["id"]')
CAN=$(post /api/v1/candidates '{"name":"Ada","email":"ada@example.test"}' | json '["id"]')
IV=$(post /api/v1/interviews "{\"position_id\":\"$POS\",\"candidate_id\":\"$CAN\"}" | json '["id"]')
curl -sf -H "$H" -X POST "$U/api/v1/interviews/$IV/start" >/dev/null
PID=$(cat "$D"/data/processors/*.pid | json '["pid"]')
kill -9 "$(cat "$D/cp.pid")"; wait "$(cat "$D/cp.pid")" 2>/dev/null || true
kill -0 "$PID" || { echo "FAIL: the processor died with the control plane"; exit 1; }
echo "control plane killed; processor $PID still runs"
start_cp 2
sleep 2
kill -0 "$PID" || { echo "FAIL: the restarted control plane ended the processor"; exit 1; }
grep -q "adopted a processor of a previous run" "$D/cp2.log" || { echo "FAIL: not adopted"; exit 1; }
echo "restarted control plane adopted it: $(curl -sf -H "$H" "$U/api/v1/interviews/$IV" | json '["status"]')"
echo "end: $(curl -sf -H "$H" -X POST "$U/api/v1/interviews/$IV/end" | json '["status"]')"
for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
kill -0 "$PID" 2>/dev/null && { echo "FAIL: processor left running"; exit 1; }
ls "$D"/data/processors/*.pid >/dev/null 2>&1 && { echo "FAIL: pid file left"; exit 1; }
echo "OK: processor ended with its interview, no pid file left"
