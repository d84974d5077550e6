#!/usr/bin/env bash
# Soak: the side-by-side harness's workloads (../shared/bench/peer: contact by id, the two
# filtered pages, the rare-word search, createContact) run together against one Kith server for
# a long time, minute by minute: requests/s, p99 and errors per workload, and the server's RSS.
#
# Usage: bench/soak.sh [MINUTES] [ROWS]   (defaults: 60 minutes, 100000 contacts)
# DATABASE=postgres://postgres@127.0.0.1:5432/kith_soak runs on PostgreSQL (the database is
# dropped and recreated); the default is a fresh SQLite file. CONNS=4 connections per workload.
# KITH=path/to/kith (default target/release/kith, built if missing). Output: a TSV per minute on
# stdout and in $WORK/soak.tsv, then a summary (RSS growth after the warm-up, p99 spread, errors).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-60}"
ROWS="${2:-100000}"
CONNS="${CONNS:-4}"
KITH="${KITH:-$PWD/target/release/kith}"
[[ -x "$KITH" ]] || cargo build --release -p kith-core --bin kith >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
WORK="$(mktemp -d /tmp/kith-soak.XXXXXX)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true' EXIT
if [[ -n "${DATABASE:-}" ]]; then
  base="${DATABASE%/*}" name="${DATABASE##*/}"
  [[ "$name" == kith_soak* ]] || { echo "DATABASE must name a database kith_soak*" >&2; exit 2; }
  psql "$base/postgres" -X -q -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
  DB="$DATABASE?sslmode=disable"
else
  DB="sqlite://$WORK/soak.db"
fi
export KITH_API__RATE_LIMIT_PER_MINUTE=0
python3 - "$WORK" "$ROWS" <<'PY'
import sys
out, n = sys.argv[1], int(sys.argv[2])
stages = ["SUBSCRIBER", "LEAD", "PROSPECT", "CUSTOMER", "CHURNED", "OTHER"]
with open(f"{out}/companies.csv", "w") as f:
    f.write("name,domain\n")
    for j in range(5000):
        f.write(f"Company{j},c{j}.example\n")
with open(f"{out}/contacts.csv", "w") as f:
    f.write("first_name,last_name,email,city,lifecycle_stage,company\n")
    for i in range(n):
        f.write(f"First{i},Last{i % 5000},person{i}@example.org,City{i % 200},{stages[i % 6]},c{i % 5000}.example\n")
PY
"$KITH" --database "$DB" migrate up >/dev/null 2>&1
"$KITH" --database "$DB" import companies "$WORK/companies.csv" >/dev/null 2>&1
"$KITH" --database "$DB" import contacts "$WORK/contacts.csv" 2>&1 | head -1 >&2
TOKEN=$("$KITH" --database "$DB" token create --name "soak-$$" --role ADMIN)
"$KITH" --database "$DB" serve --bind 127.0.0.1:18095 >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf 127.0.0.1:18095/healthz >/dev/null && break; sleep 0.2; done
gql() { curl -s 127.0.0.1:18095/graphql -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$1"; }
gql '{"query":"{ contacts(first: 200, filter: {addressCity: {eq: \"City7\"}}) { edges { node { id } } } }"}' \
  | python3 -c 'import json,sys; [print(e["node"]["id"]) for e in json.load(sys.stdin)["data"]["contacts"]["edges"]]' > "$WORK/ids.txt"
declare -A BODY=(
  [by_id]='{"query":"query Q($id: ID!) { contact(id: $id) { id firstName lastName email } }","variables":{"id":"%ID%"}}'
  [page_city]='{"query":"{ contacts(first: 50, filter: {addressCity: {eq: \"City7\"}}, orderBy: [{field: lastName}]) { edges { node { id firstName lastName email company { name } } } } }"}'
  [page_stage]='{"query":"{ contacts(first: 50, filter: {lifecycleStage: {eq: CUSTOMER}}, orderBy: [{field: lastName}]) { edges { node { id firstName lastName email company { name } } } } }"}'
  [search_rare]='{"query":"{ search(query: \"first4242\", first: 20) { recordId title score } }"}'
  [create]='{"query":"mutation M($email: String!) { createContact(input: {firstName: \"Soak\", lastName: \"Test\", email: $email}) { id } }","variables":{"email":"%EMAIL%"}}'
)
# The harness's wrk script (it fills %ID% and %EMAIL% per request).
LUA="${WRK_LUA:-$PWD/../shared/bench/peer/wrk-post.lua}"
[[ -f "$LUA" ]] || { echo "no wrk script at $LUA (set WRK_LUA)" >&2; exit 2; }
printf 'minute\tworkload\treq_s\tp99_ms\terrors\trss_mib\n' | tee "$WORK/soak.tsv"
for minute in $(seq 1 "$MINUTES"); do
  for w in "${!BODY[@]}"; do
    BODY="${BODY[$w]}" AUTH="Bearer $TOKEN" IDS_FILE="$WORK/ids.txt" EMAIL_PREFIX="soak-$minute-$w" \
      wrk -t1 -c"$CONNS" -d60s --timeout 10s --latency -s "$LUA" http://127.0.0.1:18095/graphql > "$WORK/$w.txt" 2>&1 &
  done
  wait $(jobs -p | grep -v "^$SERVER$") 2>/dev/null || true
  rss=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status")
  for w in "${!BODY[@]}"; do
    python3 - "$WORK/$w.txt" "$minute" "$w" "$rss" <<'PY' | tee -a "$WORK/soak.tsv"
import re, sys
text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")
non2 = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
errors = (int(non2.group(1)) if non2 else 0) + (sum(map(int, sock.groups())) if sock else 0)
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{rps.group(1) if rps else 'nan'}\t{p99:.2f}\t{errors}\t{sys.argv[4]}")
PY
  done
done
python3 - "$WORK/soak.tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
minutes = sorted({int(r["minute"]) for r in rows})
rss = {int(r["minute"]): float(r["rss_mib"]) for r in rows}
warm = [m for m in minutes if m > max(5, len(minutes) // 6)] or minutes
print(f"\nminutes: {len(minutes)}; RSS after warm-up: {rss[warm[0]]:.1f} MiB at minute {warm[0]}, "
      f"{rss[warm[-1]]:.1f} MiB at minute {warm[-1]} "
      f"({(rss[warm[-1]] - rss[warm[0]]) / max(1, warm[-1] - warm[0]):+.2f} MiB/min); peak {max(rss.values()):.1f} MiB")
for w in sorted({r["workload"] for r in rows}):
    mine = [r for r in rows if r["workload"] == w and int(r["minute"]) in warm]
    p99 = [float(r["p99_ms"]) for r in mine]
    rps = [float(r["req_s"]) for r in mine]
    errors = sum(int(r["errors"]) for r in rows if r["workload"] == w)
    print(f"{w}: req/s median {statistics.median(rps):.0f} (min {min(rps):.0f}, max {max(rps):.0f}); "
          f"p99 median {statistics.median(p99):.1f} ms (max {max(p99):.1f}); errors {errors}")
PY
echo "raw: $WORK" >&2
