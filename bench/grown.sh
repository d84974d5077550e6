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
# shellcheck source=bench/served.sh
source bench/served.sh
serve_harness_data grown 18096 "$ROWS"
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
