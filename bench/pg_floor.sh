#!/usr/bin/env bash
# What PostgreSQL alone can do with Kith's import schema, with no Kith code and no client in
# the way: ROWS contacts generated inside the server and written with everything an imported
# contact writes (the contact with its 11 indexes, its search entry in the GIN index, its audit
# entry, its outbox event), in transactions of 5,000 rows, as `kith import` batches them.
#
# Usage: bench/pg_floor.sh [ROWS] (default 100000). Needs `psql`, a release `kith` in
# target/release (or KITH=path) and PostgreSQL at PG_BASE (default
# postgres://postgres@127.0.0.1:5432); uses the scratch database kith_floor (dropped first).
set -euo pipefail
ROWS="${1:-100000}"
PG_BASE="${PG_BASE:-postgres://postgres@127.0.0.1:5432}"
KITH="${KITH:-target/release/kith}"
psql "$PG_BASE/postgres" -X -q -c "DROP DATABASE IF EXISTS kith_floor" -c "CREATE DATABASE kith_floor" >/dev/null
"$KITH" --database "$PG_BASE/kith_floor?sslmode=disable" migrate up >/dev/null
batch() { # from to
  cat <<SQL
BEGIN;
CREATE TEMP TABLE src ON COMMIT DROP AS
  SELECT i, ('02a24bfa-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid AS id FROM generate_series($1, $2) i;
INSERT INTO contact (id, first_name, last_name, email, lifecycle_stage, custom_fields, address_city, created_at, updated_at)
  SELECT id, 'First' || i, 'Last' || (i % 5000), 'person' || i || '@example.org', 'CUSTOMER', '{}', 'City' || (i % 200), now(), now() FROM src;
INSERT INTO search_entry (record_id, object, title, body, document)
  SELECT id, 'contact', 'First' || i || ' Last' || (i % 5000), 'First' || i || ' Last' || (i % 5000) || ' person' || i || '@example.org',
         to_tsvector('simple', 'first' || i || ' last' || (i % 5000) || ' person' || i || ' example org person' || i || '@example.org') FROM src;
INSERT INTO audit_log (id, occurred_at, actor_kind, actor_id, actor_name, action, object, record_id, changes)
  SELECT gen_random_uuid(), now(), 'system', NULL, 'import', 'create', 'contact', id,
         jsonb_build_object('\$created', jsonb_build_object('firstName', 'First' || i, 'lastName', 'Last' || (i % 5000),
           'email', 'person' || i || '@example.org', 'lifecycleStage', 'CUSTOMER', 'addressCity', 'City' || (i % 200))) FROM src;
SELECT pg_advisory_xact_lock(4242424243);
INSERT INTO event_outbox (event_id, kind, object, record_id, payload, actor, occurred_at)
  SELECT gen_random_uuid(), 'contact.created', 'contact', id,
         jsonb_build_object('record', jsonb_build_object('id', id, 'firstName', 'First' || i, 'lastName', 'Last' || (i % 5000),
           'email', 'person' || i || '@example.org', 'lifecycleStage', 'CUSTOMER', 'addressCity', 'City' || (i % 200))),
         'system:import', now() FROM src;
COMMIT;
SQL
}
script=$(mktemp)
for ((from = 1; from <= ROWS; from += 5000)); do
  to=$((from + 4999 > ROWS ? ROWS : from + 4999))
  batch "$from" "$to" >> "$script"
done
start=$(date +%s.%N)
psql "$PG_BASE/kith_floor" -X -q -v ON_ERROR_STOP=1 -f "$script" >/dev/null
secs=$(echo "$(date +%s.%N) - $start" | bc)
rm -f "$script"
echo "PostgreSQL $(psql "$PG_BASE/postgres" -X -Atc 'show server_version') - $ROWS contacts with their search entries, audit entries and events, transactions of 5000: $secs s = $(echo "$ROWS / $secs" | bc) rows/s"
psql "$PG_BASE/postgres" -X -q -c "DROP DATABASE kith_floor" >/dev/null
