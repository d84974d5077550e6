#!/usr/bin/env bash
# The console's speed goals on SQLite: page times over loopback, first-visit transfer, and
# (with LIGHTHOUSE set) Lighthouse scores.
# Usage: bench/console.sh [ROWS] [ROUNDS]   (defaults: 100000 contacts, 200 rounds)
# Seeds a fresh database: `kith seed --demo` (pipelines, deals, tickets, activities), then 500
# companies and ROWS contacts through `kith import`; creates an ADMIN with a password; serves it
# with `kith serve`; runs core/examples/bench_console.rs against it (signs in through /login).
# LIGHTHOUSE=/work/lh/node_modules/.bin/lighthouse also scores the contacts list and the board
# with Debian's chromium (`npm install lighthouse` in a folder outside the repository), mobile
# (Lighthouse's default) and desktop (`--preset=desktop`); the reports go to $LH_OUT (default
# /tmp/kith-lighthouse).
# BENCH_KITH=path/to/kith measures another build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-100000}"
ROUNDS="${2:-200}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -p kith-core --example bench_console >/dev/null
if [[ -z "${BENCH_KITH:-}" ]]; then cargo build --release -p kith-core --bin kith >/dev/null; fi
KITH="${BENCH_KITH:-$TARGET/release/kith}"
WORK="$(mktemp -d)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
DB="sqlite://$WORK/bench.db"
PORT=18095
PASSWORD='correct horse battery staple'
python3 - > "$WORK/companies.csv" <<'PY'
print("name,domain")
for j in range(500):
    print(f"Company{j},c{j}.example")
PY
python3 - "$ROWS" > "$WORK/contacts.csv" <<'PY'
import sys
n = int(sys.argv[1])
print("first_name,last_name,email,phone,job_title,city,company")
for i in range(n):
    print(f"First{i},Last{i % 5000},person{i}@example.org,+44 20 7946 {i % 10000:04},Engineer,City{i % 200},c{i % 500}.example")
PY
"$KITH" --database "$DB" migrate up >/dev/null
"$KITH" --database "$DB" seed --demo
"$KITH" --database "$DB" import companies "$WORK/companies.csv" 2>&1 | head -1
"$KITH" --database "$DB" import contacts "$WORK/contacts.csv" 2>&1 | head -1
echo "$PASSWORD" | "$KITH" --database "$DB" user create --email bench@example.org --name Bench --role ADMIN --password-stdin >/dev/null
KITH_API__RATE_LIMIT_PER_MINUTE=0 "$KITH" --database "$DB" serve --bind "127.0.0.1:$PORT" >"$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "localhost:$PORT/readyz" >/dev/null && break; sleep 0.2; done
"$TARGET/release/examples/bench_console" "http://127.0.0.1:$PORT" bench@example.org "$PASSWORD" "$ROUNDS" "$WORK/cookie"
if [[ -n "${LIGHTHOUSE:-}" ]]; then
  OUT="${LH_OUT:-/tmp/kith-lighthouse}"
  mkdir -p "$OUT"
  HEADERS="$(python3 -c 'import json,sys; print(json.dumps({"Cookie": open(sys.argv[1]).read()}))' "$WORK/cookie")"
  export CHROME_PATH="${CHROME_PATH:-$(command -v chromium)}"
  for page in o/contacts board; do
    for preset in mobile desktop; do
      report="$OUT/${page//\//-}-$preset.json"
      extra=()
      [[ "$preset" == desktop ]] && extra=(--preset=desktop)
      "$LIGHTHOUSE" "http://127.0.0.1:$PORT/$page" --quiet --output=json --output-path="$report" \
        --only-categories=performance,accessibility --chrome-flags="--headless=new --no-sandbox" \
        --extra-headers="$HEADERS" "${extra[@]}"
      python3 - "$report" "/$page" "$preset" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
scores = {k: round(v["score"] * 100) for k, v in report["categories"].items()}
failed = [a["id"] for a in report["audits"].values() if a.get("score") is not None and a["score"] < 0.9 and a.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")]
print(f"lighthouse {sys.argv[2]} ({sys.argv[3]}): performance {scores['performance']}, accessibility {scores['accessibility']}" + (f"; below 0.9: {', '.join(failed)}" if failed else ""))
PY
    done
  done
fi
