#!/usr/bin/env bash
# No decay as tables grow: the side-by-side harness's reads (../shared/bench/peer: contact by id,
# the two filtered pages, the rare-word search) on a freshly imported table, then again after
# the table has grown GROWTH-fold through the API (createContact, 32 clients), the server
# running all along as it would in production.
#
# Usage: bench/grown.sh [ROWS] [GROWTH] [DURATION]   (defaults: 100000 contacts, 3-fold, 10s)
# DATABASE=postgres://postgres@127.0.0.1:5432/kith_grown runs on PostgreSQL (dropped and
# recreated); the default is a fresh SQLite file. KITH=path/to/kith (default target/release/kith).
# SETTLE=70 seconds of quiet (more than one round of the server's upkeep, every minute) between
# the growth and the second reads. Prints each read's req/s fresh and grown, and grown ÷ fresh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-100000}"
GROWTH="${2:-3}"
DURATION="${3:-10s}"
KITH="${KITH:-$PWD/target/release/kith}"
[[ -x "$KITH" ]] || cargo build --release -p kith-core --bin kith >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
LUA="${WRK_LUA:-$PWD/../shared/bench/peer/wrk-post.lua}"
[[ -f "$LUA" ]] || { echo "no wrk script at $LUA (set WRK_LUA)" >&2; exit 2; }
WORK="$(mktemp -d /tmp/kith-grown.XXXXXX)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true' EXIT
if [[ -n "${DATABASE:-}" ]]; then
  base="${DATABASE%/*}" name="${DATABASE##*/}"
  [[ "$name" == kith_grown* ]] || { echo "DATABASE must name a database kith_grown*" >&2; exit 2; }
  psql "$base/postgres" -X -q -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
  DB="$DATABASE?sslmode=disable"
else
  DB="sqlite://$WORK/grown.db"
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
TOKEN=$("$KITH" --database "$DB" token create --name "grown-$$" --role ADMIN)
"$KITH" --database "$DB" serve --bind 127.0.0.1:18096 >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf 127.0.0.1:18096/healthz >/dev/null && break; sleep 0.2; done
curl -s 127.0.0.1:18096/graphql -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"query":"{ contacts(first: 200, filter: {addressCity: {eq: \"City7\"}}) { edges { node { id } } } }"}' \
  | python3 -c 'import json,sys; [print(e["node"]["id"]) for e in json.load(sys.stdin)["data"]["contacts"]["edges"]]' > "$WORK/ids.txt"
declare -A BODY=(
  [by_id]='{"query":"query Q($id: ID!) { contact(id: $id) { id firstName lastName email } }","variables":{"id":"%ID%"}}'
  [page_city]='{"query":"{ contacts(first: 50, filter: {addressCity: {eq: \"City7\"}}, orderBy: [{field: lastName}]) { edges { node { id firstName lastName email company { name } } } } }"}'
  [page_stage]='{"query":"{ contacts(first: 50, filter: {lifecycleStage: {eq: CUSTOMER}}, orderBy: [{field: lastName}]) { edges { node { id firstName lastName email company { name } } } } }"}'
  [search_rare]='{"query":"{ search(query: \"first4242\", first: 20) { recordId title score } }"}'
)
CREATE='{"query":"mutation M($email: String!) { createContact(input: {firstName: \"Grown\", lastName: \"Table\", email: $email}) { id } }","variables":{"email":"%EMAIL%"}}'
load() { # name body duration [conns]
  BODY="$2" AUTH="Bearer $TOKEN" IDS_FILE="$WORK/ids.txt" EMAIL_PREFIX="grown-$1-$$" \
    wrk -t2 -c"${4:-32}" -d"$3" --timeout 10s --latency -s "$LUA" http://127.0.0.1:18096/graphql
}
rps() { sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p'; }
declare -A FRESH GROWN
for w in by_id page_city page_stage search_rare; do load "$w" "${BODY[$w]}" 3s >/dev/null; FRESH[$w]=$(load "$w" "${BODY[$w]}" "$DURATION" | rps); done
target=$((ROWS * GROWTH))
while :; do
  count=$(curl -s 127.0.0.1:18096/graphql -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"query":"{ contacts(first: 1) { totalCount } }"}' \
    | python3 -c 'import json,sys; r = json.load(sys.stdin); print(r["data"]["contacts"]["totalCount"]) if r.get("data") else sys.exit(f"no count: {r}")')
  echo "contacts: $count of $target" >&2
  (( count >= target )) && break
  load "create-$count" "$CREATE" 10s >/dev/null
done
# The writes' aftermath (dirty pages written back, WAL checkpoints, a round of the upkeep)
# settles before the reads:
# this measures what the grown tables and indexes cost, not the burst of writes just before.
sleep "${SETTLE:-70}"
for w in by_id page_city page_stage search_rare; do load "$w" "${BODY[$w]}" 3s >/dev/null; GROWN[$w]=$(load "$w" "${BODY[$w]}" "$DURATION" | rps); done
printf 'workload\tfresh (%s rows) req/s\tgrown (%s rows) req/s\tgrown / fresh\n' "$ROWS" "$count"
for w in by_id page_city page_stage search_rare; do
  printf '%s\t%s\t%s\t%s\n' "$w" "${FRESH[$w]}" "${GROWN[$w]}" "$(echo "scale=2; ${GROWN[$w]} / ${FRESH[$w]}" | bc)"
done
