#!/usr/bin/env bash
# GraphQL load benchmark over loopback with wrk (apt-get install wrk).
# Usage: bench/graphql.sh [ROWS] [DURATION]   (defaults: 100000 contacts, 10s per workload)
# Set DATABASE=postgres://postgres@127.0.0.1:5432/kith_bench to run against PostgreSQL
# (the database must exist and be empty). ONLY=create (a substring of a workload's name) runs
# just the matching workloads.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-100000}"
DURATION="${2:-10s}"
# FLOOR=1 also measures the page of 50 against async-graphql's floor: the same query answered by
# a static async-graphql schema from memory (core/examples/graphql_floor.rs), same day, same machine.
# BENCH_KITH=path/to/kith measures another build (e.g. an older commit's) instead.
# REUSE=1 with DATABASE: the database already holds the seeded rows (skip the imports), so two
# builds can be alternated on one database.
if [[ -z "${BENCH_KITH:-}" ]]; then cargo build --release -p kith-core --bin kith >/dev/null; fi
KITH="${BENCH_KITH:-$PWD/target/release/kith}"
WORK="$(mktemp -d)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
DB="${DATABASE:-sqlite://$WORK/bench.db}"
export KITH_API__RATE_LIMIT_PER_MINUTE=0
# 500 companies; every contact works at one (the page below reads `company { name }`).
python3 - > "$WORK/companies.csv" <<'PY'
print("name,domain")
for j in range(500):
    print(f"Company{j},c{j}.example")
PY
python3 - "$ROWS" > "$WORK/contacts.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("first_name,last_name,email,city,company")
for i in range(n):
    print(f"First{i},Last{i % 5000},person{i}@example.org,City{i % 200},c{i % 500}.example")
PY
if [[ -z "${REUSE:-}" ]]; then
  # Only serve, migrate and seed create a database; import needs one.
  "$KITH" --database "$DB" migrate up >/dev/null 2>&1
  "$KITH" --database "$DB" import companies "$WORK/companies.csv" 2>&1 | head -1
  "$KITH" --database "$DB" import contacts "$WORK/contacts.csv" 2>&1 | head -1
fi
TOKEN=$("$KITH" --database "$DB" token create --name "bench-$$" --role ADMIN)
"$KITH" --database "$DB" serve --bind 127.0.0.1:18090 >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 50); do curl -sf localhost:18090/healthz >/dev/null && break; sleep 0.2; done
ID=$(curl -s localhost:18090/graphql -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"query":"{ contacts(first: 1, filter: {addressCity: {eq: \"City7\"}}) { edges { node { id } } } }"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["contacts"]["edges"][0]["node"]["id"])')
COMPANY=$(curl -s localhost:18090/graphql -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"query":"{ companies(first: 1) { edges { node { id } } } }"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["companies"]["edges"][0]["node"]["id"])')
PORT=18090
run() {
  local name="$1" body="$2" conns="$3"
  [[ -z "${ONLY:-}" || "$name" == *"$ONLY"* ]] || return 0
  cat > "$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = [[$body]]
LUA
  echo "== $name (wrk -t1 -c$conns -d$DURATION)"
  wrk -t1 -c"$conns" -d"$DURATION" --latency -s "$WORK/post.lua" "http://127.0.0.1:$PORT/graphql" | grep -E 'Requests/sec|50%|99%|Non-2xx'
}
run "contact by id" "{\"query\":\"{ contact(id: \\\"$ID\\\") { id firstName lastName email } }\"}" 32
PAGE='{"query":"{ contacts(first: 50, filter: {addressCity: {eq: \"City7\"}}, orderBy: [{field: lastName}]) { edges { node { id firstName lastName email company { name } } } } }"}'
run "contacts(first: 50, filter, orderBy) with company" "$PAGE" 32
run "contacts(first: 50) of one company (filter companyId, id order)" "{\"query\":\"{ contacts(first: 50, filter: {companyId: {eq: \\\"$COMPANY\\\"}}) { edges { node { id firstName lastName email } } } }\"}" 32
run "contacts(first: 50), newest first (orderBy createdAt DESC)" '{"query":"{ contacts(first: 50, orderBy: [{field: createdAt, direction: DESC}]) { edges { node { id firstName lastName email } } } }"}' 32
run "search (a word in 1 row of 100,000)" '{"query":"{ search(query: \"first4242\", first: 20) { recordId title score } }"}' 32
run "search (a common word: every row matches, ranking capped)" '{"query":"{ search(query: \"example\", first: 20) { recordId title score } }"}' 32
run "createContact" '{"query":"mutation { createContact(input: {firstName: \"Bench\"}) { id } }"}' 8
run "createContact, 32 clients" '{"query":"mutation { createContact(input: {firstName: \"Bench\"}) { id } }"}' 32
if [[ -n "${FLOOR:-}" ]]; then
  kill "$SERVER" 2>/dev/null || true
  cargo build --release -p kith-core --example graphql_floor >/dev/null
  target/release/examples/graphql_floor 127.0.0.1:18091 >"$WORK/floor.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 50); do curl -s -o /dev/null localhost:18091/graphql -H 'Content-Type: application/json' -d "$PAGE" && break; sleep 0.2; done
  PORT=18091
  ONLY="" run "floor: the same page from a static async-graphql schema, no database" "$PAGE" 32
fi
