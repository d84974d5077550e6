/** Values as JSON carries them. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A record's fields, in Kith's GraphQL names (`firstName`, `companyId`, ...). */
export type Fields = { [field: string]: Json };

/** A stored record: its object, id, optimistic-concurrency version and fields. */
export interface Record {
  object: string;
  id: string;
  version: number;
  fields: Fields;
}

/** A page of records; pass `nextCursor` as `after` to read the next one (undefined on the last). */
export interface Page {
  records: Record[];
  nextCursor?: string;
}

/** A committed change, delivered at least once, in order per record. Use `id` to make a handler idempotent. */
export interface Event {
  id: string;
  seq: number;
  /** `contact.created`, `deal.updated`, `ticket.status_changed`, ... */
  kind: string;
  object: string;
  recordId?: string;
  occurredAt: string;
  /** Who made the change (`user:ada@example.org`, `plugin:welcome`, ...). */
  actor: string;
  originPlugin?: string;
  depth: number;
  /** The record after the change (`payload.record`) plus event details. */
  payload: { record?: Fields; [key: string]: Json | undefined };
}

/** An event as Kith would deliver it for `record` (for tests). */
export function event(kind: string, object: string, recordId: string | undefined, record: Fields): Event {
  return {
    id: `evt-${kind}-${recordId ?? ''}`,
    seq: 1,
    kind,
    object,
    recordId,
    occurredAt: '2026-01-01T00:00:00.000000Z',
    actor: 'user:test@example.org',
    depth: 0,
    payload: { record },
  };
}

/** A write about to happen, as `beforeWrite` sees it. */
export interface Change {
  object: string;
  operation: 'create' | 'update' | 'delete';
  id: string;
  /** The stored record before the change, for updates and deletes. */
  before?: Fields;
  /** The record as it will be stored. */
  after: Fields;
  actor: string;
}

/** A create of `after` (for tests). */
export function createChange(object: string, after: Fields): Change {
  return { object, operation: 'create', id: '00000000-0000-7000-8000-000000000000', after, actor: 'user:test@example.org' };
}

/** An update from `before` to `after` (for tests). */
export function updateChange(object: string, id: string, before: Fields, after: Fields): Change {
  return { object, operation: 'update', id, before, after, actor: 'user:test@example.org' };
}

/** What `beforeWrite` answers: let the write through, refuse it (the reason is shown), or amend it. */
export type Verdict = { kind: 'allow' } | { kind: 'deny'; reason: string } | { kind: 'modify'; fields: Fields };

/** Let the write through unchanged. */
export const allow = (): Verdict => ({ kind: 'allow' });
/** Refuse the write; `reason` is shown to whoever attempted it. */
export const deny = (reason: string): Verdict => ({ kind: 'deny', reason });
/** Let the write through with these fields changed. */
export const modify = (fields: Fields): Verdict => ({ kind: 'modify', fields });

/** A call of one of the plugin's declared queries or mutations. */
export interface Call {
  name: string;
  arguments: Fields;
  /** `user:ada@example.org`, ... */
  caller: string;
}

/** A request to one of the plugin's declared routes (`[[routes]]`). */
export interface RouteRequest {
  method: string;
  route: string;
  path: string;
  query: string;
  headers: Array<[string, string]>;
  body: Uint8Array;
  caller?: string;
}

/** The answer to a route request. */
export interface RouteResponse {
  status: number;
  headers?: Array<[string, string]>;
  body?: Uint8Array;
}

/** A text field of `fields`, or undefined when it is missing, null or not text. */
export function str(fields: Fields | undefined, name: string): string | undefined {
  const value = fields?.[name];
  return typeof value === 'string' ? value : undefined;
}
