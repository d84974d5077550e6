#!/usr/bin/env bash
# Issue 21 "Hardening": one request of 1,000 aliases of `contactGrowth(interval: DAY)` over the
# longest range a call may have (999 days ending tomorrow), on SQLite, against a fresh database
# holding ROWS contacts. Prints the HTTP status, the answer's first error, the time the request
# took and the server's peak resident memory (VmHWM) before and after it.
# Usage: bench/report_cost.sh [ROWS] [ALIASES]   (defaults: 1000 contacts, 1000 aliases)
# FIELDS="periodStart newContacts" picks each point's fields (default: newContacts; with one
# field, 1,000 aliases cost 2,000, async-graphql's count before issue 21, which passed).
# BENCH_KITH=path/to/kith measures that build (default: target/release/kith, built first).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-1000}"
ALIASES="${2:-1000}"
if [[ -z "${BENCH_KITH:-}" ]]; then cargo build --release -p kith-core --bin kith >/dev/null; fi
KITH="${BENCH_KITH:-$PWD/target/release/kith}"
WORK="$(mktemp -d)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
DB="sqlite://$WORK/bench.db"
# The request must be allowed to finish to be measured (the default is 10 s).
export KITH_API__TIMEOUT_MS=600000 KITH_API__RATE_LIMIT_PER_MINUTE=0
python3 - "$ROWS" > "$WORK/contacts.csv" <<'PY'
import sys
print("first_name,last_name,email")
for i in range(int(sys.argv[1])):
    print(f"First{i},Last{i},person{i}@example.org")
PY
"$KITH" --database "$DB" migrate up >/dev/null 2>&1
"$KITH" --database "$DB" import contacts "$WORK/contacts.csv" 2>&1 | head -1
TOKEN="$("$KITH" --database "$DB" token create --name bench --role MANAGER 2>/dev/null)"
PORT=$((20000 + RANDOM % 20000))
"$KITH" --database "$DB" serve --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
python3 - "$ALIASES" "${FIELDS:-newContacts}" > "$WORK/body.json" <<'PY'
import datetime, json, sys
to = datetime.date.today() + datetime.timedelta(days=1)
start = to - datetime.timedelta(days=999)
fields = " ".join(
    f'a{i}: contactGrowth(from: "{start}", to: "{to}", interval: DAY) {{ {sys.argv[2]} }}'
    for i in range(int(sys.argv[1]))
)
print(json.dumps({"query": "{ " + fields + " }"}))
PY
hwm() { awk '/VmHWM/ {print $2 " kB"}' "/proc/$SERVER/status"; }
echo "query: $(wc -c < "$WORK/body.json") bytes, $ALIASES aliases of 999 DAY points, $ROWS contacts"
echo "peak RSS before: $(hwm)"
curl -s -o "$WORK/answer.json" -w 'status %{http_code}, %{time_total} s, %{size_download} bytes\n' \
  "127.0.0.1:$PORT/graphql" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data-binary @"$WORK/body.json"
echo "peak RSS after:  $(hwm)"
python3 - "$WORK/answer.json" <<'PY'
import json, sys
answer = json.load(open(sys.argv[1]))
errors = answer.get("errors") or []
print("first error:", json.dumps(errors[0]) if errors else None)
data = answer.get("data") or {}
print("points answered:", sum(len(v) for v in data.values() if isinstance(v, list)))
PY
