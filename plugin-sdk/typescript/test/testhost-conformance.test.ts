/**
 * The conformance table again (see `read-conformance.test.ts`), through the SDK's public calls
 * and its `TestHost`, as a plugin's unit tests read: `records.query` following the cursors and
 * `aggregate.run`, a refused call answering its error code as the Rust test plugin names it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';

import { Aggregate, HostError, aggregate, records, type ErrorCode, type Fields, type Json, type SortKey } from '../src/index.js';
import type { Bucket } from '../src/aggregate.js';
import { TestHost } from '../src/testing.js';

const TABLE = process.env['KITH_CONFORMANCE'] ?? resolve(process.cwd(), '../conformance/reads.json');

interface Table {
  object: string;
  records: Fields[];
  cases: Array<{ case: string; request: { [key: string]: Json }; answer: Json }>;
}

const CODES: { [code in ErrorCode]: string } = {
  denied: 'Denied',
  'invalid-input': 'InvalidInput',
  'not-found': 'NotFound',
  conflict: 'Conflict',
  'limit-exceeded': 'LimitExceeded',
  unavailable: 'Unavailable',
  internal: 'Internal',
};

function throughTheSdk(host: TestHost, request: { [key: string]: Json }): Json {
  const object = request.object as string;
  try {
    return host.run(() => {
      if (request.query) {
        const spec = request.query as { [key: string]: Json };
        const pages: Json[] = [];
        let after: string | undefined;
        for (;;) {
          const first = spec.first == null ? 50 : (spec.first as number);
          const page = records.query(object, spec.filter ?? undefined, (spec.orderBy ?? undefined) as SortKey[] | undefined, first, after);
          pages.push(page.records.map((r) => r.fields.name ?? null));
          if (page.nextCursor === undefined || pages.length >= 20) return { pages };
          after = page.nextCursor;
        }
      }
      const spec = request.aggregate as { [key: string]: Json };
      const query = new Aggregate();
      if (spec.filter != null) query.where(spec.filter);
      for (const [field, bucket] of (spec.groupBy ?? []) as Array<[string, string | null]>) {
        query.by(field, bucket ? (bucket.toLowerCase() as Bucket) : undefined);
      }
      for (const [metric, field] of (spec.metrics ?? []) as Array<[string, string | null]>) {
        if (metric === 'Count') query.count();
        else if (metric === 'Sum') query.sum(field ?? '');
        else if (metric === 'Min') query.min(field ?? '');
        else if (metric === 'Max') query.max(field ?? '');
        else if (metric === 'CountDistinct') query.countDistinct(field ?? '');
        else throw new Error(`no metric ${metric}`);
      }
      if (spec.limit != null) query.top(spec.limit as number);
      if (spec.order != null) {
        const [metric, descending] = spec.order as [number, boolean];
        query.orderByMetric(metric, descending);
      }
      return aggregate.run(object, query).map((row) => ({
        keys: row.keys.map((k) => k ?? null),
        values: row.values.map((v) => v ?? null),
      }));
    });
  } catch (err) {
    if (err instanceof HostError) return { error: CODES[err.code] };
    throw err;
  }
}

const table = JSON.parse(readFileSync(TABLE, 'utf8')) as Table;
const host = new TestHost().own(table.object);
for (const fields of table.records) host.insert(table.object, fields);
for (const { case: name, request, answer } of table.cases) {
  test(`through the TestHost: ${name}`, () => {
    assert.deepStrictEqual(throughTheSdk(host, request), answer);
  });
}
