#!/usr/bin/env python3
"""What raw SQLite alone can do with Kith's import schema, with no Kith code in the way.

Usage: python3 bench/sqlite_floor.py [ROWS]   (default 100000; needs only Python's sqlite3)

Creates a fresh WAL database with the tables and indexes an imported contact touches (the
contact table with its 11 indexes, audit_log, event_outbox, search_entry with its FTS5 index,
record_tag), with Kith's settings (`synchronous = FULL`, `secure_delete = ON`: an erased
person's values must not stay in freed pages), then inserts ROWS rows per table combination in
5,000-row transactions with prepared statements, as `kith import` does, and prints rows/s for
each. Payload sizes match Kith's: ~300 B audit entries and ~950 B events.
"""
import os
import sqlite3
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
BATCH = 5_000
NOW = "2026-12-02T03:40:00.000000Z"

SCHEMA = """
CREATE TABLE contact (id TEXT PRIMARY KEY NOT NULL, first_name TEXT, last_name TEXT, email TEXT, phone TEXT,
  job_title TEXT, birthday TEXT, company_id TEXT, owner_id TEXT, lifecycle_stage TEXT NOT NULL,
  email_opt_in BOOL NOT NULL, email_opt_in_at TEXT, email_opt_in_source TEXT, do_not_contact BOOL NOT NULL,
  source TEXT, custom_fields TEXT NOT NULL, address_street TEXT, address_city TEXT, address_region TEXT,
  address_postal_code TEXT, address_country TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  deleted_at TEXT, version INTEGER NOT NULL);
CREATE UNIQUE INDEX ux_contact_email ON contact (lower(email)) WHERE email IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX i1 ON contact(last_name, first_name, id);
CREATE INDEX i2 ON contact(company_id, id);
CREATE INDEX i3 ON contact(owner_id, id);
CREATE INDEX i4 ON contact(created_at, id);
CREATE INDEX i5 ON contact(address_city, last_name, id);
CREATE INDEX i6 ON contact(lifecycle_stage, id);
CREATE INDEX p1 ON contact(lower(first_name));
CREATE INDEX p2 ON contact(lower(last_name));
CREATE INDEX p3 ON contact(lower(email));
CREATE TABLE audit_log (id TEXT PRIMARY KEY NOT NULL, occurred_at TEXT NOT NULL, actor_kind TEXT NOT NULL,
  actor_id TEXT, actor_name TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL, record_id TEXT,
  changes TEXT NOT NULL);
CREATE INDEX ia ON audit_log(object, record_id, occurred_at);
CREATE TABLE event_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, kind TEXT NOT NULL,
  object TEXT NOT NULL, record_id TEXT, payload TEXT NOT NULL, actor TEXT NOT NULL, origin_plugin TEXT,
  occurred_at TEXT NOT NULL, depth INTEGER NOT NULL);
CREATE INDEX io ON event_outbox(record_id, seq);
CREATE TABLE search_entry (rowid INTEGER PRIMARY KEY AUTOINCREMENT, record_id TEXT NOT NULL UNIQUE,
  object TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL);
CREATE VIRTUAL TABLE search_fts USING fts5(body, content = 'search_entry', content_rowid = 'rowid',
  tokenize = 'unicode61 remove_diacritics 2');
CREATE TABLE record_tag (object TEXT NOT NULL, record_id TEXT NOT NULL, tag_id TEXT NOT NULL,
  PRIMARY KEY (record_id, tag_id));
CREATE INDEX it ON record_tag(tag_id);
"""


def uid(i):
    return "01938%03d-0000-7000-8000-%012d" % (i // 10**7, i)


PAYLOAD = '{"record":{' + ",".join('"field%d":"value of the field %d"' % (k, k) for k in range(28)) + "}}"
AUDIT = '{"$created":{' + ",".join('"field%d":"value %d"' % (k, k) for k in range(14)) + "}}"


def run(parts):
    path = os.path.join(tempfile.mkdtemp(prefix="kith-floor-"), "floor.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for pragma in ("synchronous=FULL", "cache_size=-16384", "temp_store=MEMORY", "foreign_keys=ON",
                   "secure_delete=ON"):
        db.execute("PRAGMA " + pragma)
    db.executescript(SCHEMA)
    started = time.time()
    for b in range(0, N, BATCH):
        ids = range(b, min(b + BATCH, N))
        db.execute("BEGIN IMMEDIATE")
        if "contact" in parts:
            db.executemany(
                "INSERT INTO contact VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(uid(i), "First%d" % i, "Last%d" % (i % 977), "person%d@example.org" % i,
                  "+44 20 7946 %04d" % (i % 10000), "Engineer", None, None, None, "LEAD", 0, None, None, 0,
                  None, "{}", None, "City%d" % (i % 50), None, None, "UK", NOW, NOW, None, 1) for i in ids])
        if "audit" in parts:
            db.executemany("INSERT INTO audit_log VALUES (?,?,?,?,?,?,?,?,?)",
                           [(uid(i + N), NOW, "system", None, "bench", "create", "contact", uid(i), AUDIT)
                            for i in ids])
        if "outbox" in parts:
            db.executemany(
                "INSERT INTO event_outbox (event_id,kind,object,record_id,payload,actor,origin_plugin,occurred_at,"
                "depth) VALUES (?,?,?,?,?,?,?,?,?)",
                [(uid(i + 2 * N), "contact.created", "contact", uid(i), PAYLOAD, "system:bench", None, NOW, 0)
                 for i in ids])
        if "search" in parts:
            last = db.execute("SELECT coalesce(max(rowid), 0) FROM search_entry").fetchone()[0]
            db.executemany("INSERT INTO search_entry (record_id, object, title, body) VALUES (?,?,?,?)",
                           [(uid(i), "contact", "First%d Last%d" % (i, i % 977),
                             "First%d Last%d person%d@example.org Engineer City%d" % (i, i % 977, i, i % 50))
                            for i in ids])
            # One FTS statement per batch, as Kith's single multi-row statement gets.
            db.execute("INSERT INTO search_fts (rowid, body) SELECT rowid, body FROM search_entry WHERE rowid > ?",
                       (last,))
        if "tags" in parts:
            db.executemany("INSERT INTO record_tag VALUES (?,?,?)",
                           [("contact", uid(i), uid(3 * N + i % 7)) for i in ids])
        db.execute("COMMIT")
    secs = time.time() - started
    db.close()
    print("%-40s %8.0f rows/s" % ("+".join(parts), N / secs))


print("SQLite", sqlite3.sqlite_version, "-", N, "rows, transactions of", BATCH)
for parts in (["contact"], ["audit"], ["outbox"], ["search"], ["tags"],
              ["contact", "audit", "outbox", "search", "tags"]):
    run(parts)
