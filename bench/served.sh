# Sourced by bench/grown.sh and bench/soak.sh: a Kith server on the side-by-side harness's data
# (../shared/bench/peer: ROWS contacts at 5,000 companies, six lifecycle stages, 200 cities),
# with the harness's read workloads.
#
# `serve_harness_data NAME PORT ROWS` (NAME: the script's name, which a PostgreSQL DATABASE must
# start with as `kith_NAME`) sets WORK, DB, TOKEN, SERVER (stopped on exit), LUA (the harness's
# wrk script), ids.txt in WORK (contacts for `%ID%`), and BODY (the reads, by name).
# Environment: DATABASE (PostgreSQL, dropped and recreated; default a fresh SQLite file), KITH
# (default target/release/kith, built if missing), WRK_LUA.

serve_harness_data() {
  local name="$1" port="$2" rows="$3"
  KITH="${KITH:-$PWD/target/release/kith}"
  [[ -x "$KITH" ]] || cargo build --release -p kith-core --bin kith >/dev/null
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  LUA="${WRK_LUA:-$PWD/../shared/bench/peer/wrk-post.lua}"
  [[ -f "$LUA" ]] || { echo "no wrk script at $LUA (set WRK_LUA)" >&2; exit 2; }
  WORK="$(mktemp -d "/tmp/kith-$name.XXXXXX")"
  trap 'kill "${SERVER:-0}" 2>/dev/null || true' EXIT
  if [[ -n "${DATABASE:-}" ]]; then
    local base="${DATABASE%/*}" db="${DATABASE##*/}"
    [[ "$db" == "kith_$name"* ]] || { echo "DATABASE must name a database kith_$name*" >&2; exit 2; }
    psql "$base/postgres" -X -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
    DB="$DATABASE?sslmode=disable"
  else
    DB="sqlite://$WORK/$name.db"
  fi
  export KITH_API__RATE_LIMIT_PER_MINUTE=0
  python3 - "$WORK" "$rows" <<'PY'
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
  TOKEN=$("$KITH" --database "$DB" token create --name "$name-$$" --role ADMIN)
  "$KITH" --database "$DB" serve --bind "127.0.0.1:$port" >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
  curl -s "127.0.0.1:$port/graphql" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"query":"{ contacts(first: 200, filter: {addressCity: {eq: \"City7\"}}) { edges { node { id } } } }"}' \
    | python3 -c 'import json,sys; [print(e["node"]["id"]) for e in json.load(sys.stdin)["data"]["contacts"]["edges"]]' > "$WORK/ids.txt"
  declare -gA BODY=(
    [by_id]='{"query":"query Q($id: ID!) { contact(id: $id) { id firstName lastName email } }","variables":{"id":"%ID%"}}'
    [page_city]='{"query":"{ contacts(first: 50, filter: {addressCity: {eq: \"City7\"}}, orderBy: [{field: lastName}]) { edges { node { id firstName lastName email company { name } } } } }"}'
    [page_stage]='{"query":"{ contacts(first: 50, filter: {lifecycleStage: {eq: CUSTOMER}}, orderBy: [{field: lastName}]) { edges { node { id firstName lastName email company { name } } } } }"}'
    [search_rare]='{"query":"{ search(query: \"first4242\", first: 20) { recordId title score } }"}'
  )
}
