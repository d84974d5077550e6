/**
 * Core records (`contact`, `company`, `deal`, `ticket`, `activity`, ...) and the plugin's own
 * objects: read, query with the filter language, create and update. Reading a core object needs
 * `OBJECTS:read` (`contacts:read`), writing `OBJECTS:write`; the plugin's own objects need nothing.
 *
 * @example
 * const gifts = records.query('gift', field('fund').eq('A'), [desc('amount')], 10);
 */
import { current } from './host.js';
import type { Fields, Json, Page, Record } from './types.js';
import type { SortKey } from './filters.js';

const json = (value: Json | SortKey[] | undefined): string | undefined => (value == null ? undefined : JSON.stringify(value));

/** One record, or undefined when there is no such record. */
export function get(object: string, id: string): Record | undefined {
  return current().getRecord(object, id);
}

/**
 * A page of records: `filter` in the filter language (see `field`, `allOf`), `orderBy` sort keys
 * (`asc`, `desc`), `first` 1 to 200, `after` the previous page's `nextCursor`.
 */
export function query(object: string, filter?: Json, orderBy?: SortKey[], first = 50, after?: string): Page {
  return current().queryRecords(object, json(filter), json(orderBy), first, after);
}

/** Every matching record, reading pages of 200 as it goes. */
export function* queryAll(object: string, filter?: Json, orderBy?: SortKey[]): Generator<Record> {
  let after: string | undefined;
  do {
    const page = query(object, filter, orderBy, 200, after);
    yield* page.records;
    after = page.nextCursor;
  } while (after !== undefined);
}

/** The first matching record, or undefined. */
export function first(object: string, filter?: Json, orderBy?: SortKey[]): Record | undefined {
  return query(object, filter, orderBy, 1).records[0];
}

/** Creates a record; Kith validates it as it validates any write. */
export function create(object: string, fields: Fields): Record {
  return current().createRecord(object, JSON.stringify(fields));
}

/** Changes the given fields; with `expectedVersion`, only if the record is still at that version (else a `conflict`). */
export function update(object: string, id: string, fields: Fields, expectedVersion?: number): Record {
  return current().updateRecord(object, id, JSON.stringify(fields), expectedVersion);
}
