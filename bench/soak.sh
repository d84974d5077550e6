#!/usr/bin/env bash
# Soak: the side-by-side harness's workloads (../shared/bench/peer: contact by id, the two
# filtered pages, the rare-word search, createContact) run together against one Kith server for
# a long time, minute by minute: requests/s, p99 and errors per workload, and the server's RSS.
#
# Usage: bench/soak.sh [MINUTES] [ROWS]   (defaults: 60 minutes, 100000 contacts)
# DATABASE=postgres://postgres@127.0.0.1:5432/kith_soak runs on PostgreSQL (the database is
# dropped and recreated); the default is a fresh SQLite file. CONNS=4 connections per workload.
# PORT=18095 (another lets two soaks run at once).
# KITH=path/to/kith (default target/release/kith, built if missing). Output: a TSV per minute on
# stdout and in $WORK/soak.tsv, then a summary (RSS growth after the warm-up, p99 spread, errors).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-60}"
ROWS="${2:-100000}"
CONNS="${CONNS:-4}"
PORT="${PORT:-18095}"
# shellcheck source=bench/served.sh
source bench/served.sh
serve_harness_data soak "$PORT" "$ROWS"
BODY[create]='{"query":"mutation M($email: String!) { createContact(input: {firstName: \"Soak\", lastName: \"Test\", email: $email}) { id } }","variables":{"email":"%EMAIL%"}}'
printf 'minute\tworkload\treq_s\tp99_ms\terrors\trss_mib\n' | tee "$WORK/soak.tsv"
for minute in $(seq 1 "$MINUTES"); do
  for w in "${!BODY[@]}"; do
    BODY="${BODY[$w]}" AUTH="Bearer $TOKEN" IDS_FILE="$WORK/ids.txt" EMAIL_PREFIX="soak-$minute-$w" \
      wrk -t1 -c"$CONNS" -d60s --timeout 10s --latency -s "$LUA" "http://127.0.0.1:$PORT/graphql" > "$WORK/$w.txt" 2>&1 &
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
