#!/usr/bin/env bash
# Refused logins for a known and an unknown account: the answer times should match (the
# 150 ms floor), and after five failures both accounts are throttled alike.
# Usage: bench/login_timing.sh [KITH_BINARY]   (default: target/debug/kith)
set -euo pipefail
kith=${1:-target/debug/kith}
dir=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$kith" --database "$dir/kith.db" migrate up >/dev/null 2>&1
echo 'correct horse battery staple' |
  "$kith" --database "$dir/kith.db" user create --email known@example.org --name Known --role AGENT --password-stdin >/dev/null
"$kith" --database "$dir/kith.db" serve --bind 127.0.0.1:18081 >"$dir/serve.log" 2>&1 &
server=$!
until curl -sf localhost:18081/readyz >/dev/null; do sleep 0.2; done
for who in known@example.org unknown@example.org; do
  printf '%-22s' "$who"
  for i in 1 2 3 4 5 6; do
    curl -s -o /dev/null -w '%{time_total} ' localhost:18081/graphql -H 'Content-Type: application/json' \
      -d "{\"query\":\"mutation { login(email: \\\"$who\\\", password: \\\"wrong$i\\\") { token } }\"}"
  done
  echo
done
