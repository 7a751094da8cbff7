#!/usr/bin/env bash
# Call the orchestrator's HTTP API with curl: submit a task, wait for the end of its event stream, show the run.
#   ./api_curl.sh http://127.0.0.1:8080 quote '{"product": "pump", "quantity": 120}'
# With access control on, export SCALEOUT_TOKEN first.
set -euo pipefail
url=${1:?usage: api_curl.sh ORCHESTRATOR_URL SKILL INPUT_JSON}
skill=${2:?skill}
input=${3:?input JSON}
auth=()
[ -n "${SCALEOUT_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $SCALEOUT_TOKEN")

# 1. submit: 202 with {"id": ..., "status": ...}; the run is stored before the answer
run=$(curl -sS --fail-with-body "${auth[@]}" -H 'Content-Type: application/json' \
  -d "{\"skill\": \"$skill\", \"input\": $input}" "$url/runs")
id=$(printf '%s' "$run" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "submitted run $id"

# 2. follow: Server-Sent Events until the run ends (the stream closes itself after run.succeeded/failed/cancelled)
curl -sS -N --fail-with-body --max-time 120 "${auth[@]}" "$url/runs/$id/events" | grep '^event:' || true

# 3. the record: status, tasks with outputs, attempts, usage
curl -sS --fail-with-body "${auth[@]}" "$url/runs/$id" |
  python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["status"], json.dumps(r["tasks"][0]["output"]))'
