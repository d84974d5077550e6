/**
 * An in-memory Kith for unit tests: records, grants, settings, kv, a clock, HTTP stubs and the
 * log, with Kith's checks (capabilities, read-only contexts) and Kith's reads (the filter
 * language, sorting, paging and aggregates, held to Kith's answers by the conformance table in
 * `plugin-sdk/conformance/reads.json`). The Rust SDK's `testing::TestHost`, in TypeScript.
 *
 * @example
 * const host = new TestHost().grant('activities:write').own('greeting').at('2026-02-27T09:30:00.000000Z');
 * const id = host.insert('contact', { firstName: 'Ada' });
 * host.onEvent(plugin, event('contact.created', 'contact', id, { firstName: 'Ada' }));
 * assert.equal(host.records('activity')[0].fields.subject, 'Welcome Ada');
 *
 * It does not know your objects' field kinds nor run Kith's field validation: test those end to
 * end against a running Kith.
 */
import { Row, type AggregateQuery } from './aggregate.js';
import { HostError, OperationError } from './errors.js';
import { install, uninstall, type Backend } from './host.js';
import { HttpResponse, type HttpRequest } from './http.js';
import { BatchFailure, defaults, deliver, type Plugin } from './plugin.js';
import * as read from './read.js';
import type { Change, Event, Fields, Json, Page, Record, RouteRequest, RouteResponse, Verdict } from './types.js';

const CORE_PLURALS: { [object: string]: string } = {
  contact: 'contacts',
  company: 'companies',
  deal: 'deals',
  ticket: 'tickets',
  activity: 'activities',
  consent: 'consents',
  segment: 'segments',
};

const READ_ONLY = 'writes are not available in before_write, computed fields and queries';

/** `scheme://host[:port]` of an absolute http(s) URL, default ports dropped. */
export function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
    return parsed.origin;
  } catch {
    return undefined;
  }
}

const copy = <T>(value: T): T => structuredClone(value);

/**
 * A host with no grants, no records and the clock at `2026-01-01T00:00:00.000000Z`. Configure it
 * by chaining (`new TestHost().grant('kv').own('gift')`); run plugin code with its methods
 * (`onEvent`, `beforeWrite`, `call`, ...) or inside `host.run(() => ...)`.
 */
export class TestHost implements Backend {
  private clock = '2026-01-01T00:00:00.000000Z';
  private readonly grants = new Set<string>();
  private readonly owned = new Set<string>();
  private readonly foreignObjects = new Map<string, string>();
  private readonly settingValues = new Map<string, Json>();
  private readonly stored = new Map<string, Record[]>();
  private readonly kvStore = new Map<string, Uint8Array>();
  private readonly logLines: string[] = [];
  private readonly deniedCapabilities: string[] = [];
  private readonly stubs = new Map<string, HttpResponse>();
  private readonly requests: HttpRequest[] = [];
  private nextId = 0;
  private readOnly = false;

  // Configuration.

  /** Grants a capability (`contacts:read`, `activities:write`, `kv`, `http:ORIGIN`). */
  grant(capability: string): this {
    this.grants.add(capability);
    return this;
  }

  /** Declares one of the plugin's own objects: read and written without capabilities. */
  own(object: string): this {
    this.owned.add(object);
    return this;
  }

  /** Declares another plugin's object: readable with `PLUGIN/PLURAL:read`, never writable. */
  foreign(plugin: string, object: string, plural: string): this {
    this.foreignObjects.set(object, `${plugin}/${plural}:read`);
    return this;
  }

  /** Sets a setting (as the admin would, or as its manifest default). */
  setting(key: string, value: Json): this {
    this.settingValues.set(key, value);
    return this;
  }

  /** Sets the clock (`now()` and the times stamped on created records). */
  at(now: string): this {
    this.clock = now;
    return this;
  }

  // What the plugin did.

  /** Stores a record as if it existed already (no checks); returns its id. */
  insert(object: string, fields: Fields): string {
    this.nextId += 1;
    const id = `00000000-0000-7000-8000-${this.nextId.toString(16).padStart(12, '0')}`;
    const list = this.stored.get(object) ?? [];
    list.push({ object, id, version: 1, fields: { ...copy(fields), id } });
    this.stored.set(object, list);
    return id;
  }

  /** Every stored record of `object`, in insertion order (copies). */
  records(object: string): Record[] {
    return copy(this.stored.get(object) ?? []);
  }

  /** One stored record (a copy). */
  record(object: string, id: string): Record | undefined {
    const found = this.find(object, id);
    return found && copy(found);
  }

  /** The log lines so far, as `LEVEL message`. */
  logs(): string[] {
    return [...this.logLines];
  }

  /** The capabilities calls were refused for, in order. */
  denied(): string[] {
    return [...this.deniedCapabilities];
  }

  /** A kv value. */
  kv(key: string): Uint8Array | undefined {
    return this.kvStore.get(key);
  }

  /** Answers requests to `url` with `response` (others fail with `unavailable`). */
  httpStub(url: string, response: HttpResponse): void {
    this.stubs.set(url, response);
  }

  /** The HTTP requests sent, in order. */
  httpRequests(): HttpRequest[] {
    return [...this.requests];
  }

  // Running plugin code.

  /** Calls `f` with this host installed (writes unavailable when `readOnly`). */
  run<T>(f: () => T, readOnly = false): T {
    const previous = this.readOnly;
    this.readOnly = readOnly;
    install(this);
    try {
      return f();
    } finally {
      uninstall(this);
      this.readOnly = previous;
    }
  }

  /** Delivers `event`, as Kith does; a failure is thrown as the plugin threw it. */
  onEvent(plugin: Plugin, event: Event): void {
    try {
      this.onEvents(plugin, [event]);
    } catch (err) {
      throw err instanceof BatchFailure ? err.error : err;
    }
  }

  /** Delivers `events` as one batch; a failure is thrown as a `BatchFailure` naming the event. */
  onEvents(plugin: Plugin, events: Event[]): void {
    this.run(() => {
      try {
        deliver(plugin, copy(events));
      } catch (err) {
        throw err instanceof BatchFailure ? err : new BatchFailure(0, err);
      }
    });
  }

  /** Asks the plugin about `change`, writes unavailable, as in Kith. */
  beforeWrite(plugin: Plugin, change: Change): Verdict {
    return this.run(() => (plugin.beforeWrite ?? defaults.beforeWrite)(copy(change)), true);
  }

  /** A computed field's values for `ids`, writes unavailable, as in Kith. */
  computeField(plugin: Plugin, object: string, field: string, ids: string[]): Json[] {
    const values = this.run(
      () => (plugin.computeField ? plugin.computeField(object, field, [...ids]) : defaults.computeField(object, field)),
      true,
    );
    if (values.length !== ids.length) throw new OperationError('internal', `${values.length} values for ${ids.length} ids`);
    return JSON.parse(JSON.stringify(values.map((v) => v ?? null)));
  }

  /** Calls a query (`write` false: writes unavailable) or a mutation; an error is thrown as the `OperationError` Kith answers. */
  call(plugin: Plugin, name: string, args: Fields = {}, write = false): Json {
    try {
      const result = this.run(() => (plugin.call ?? defaults.call)({ name, arguments: copy(args), caller: 'user:test@example.org' }), !write);
      return JSON.parse(JSON.stringify(result ?? null));
    } catch (err) {
      throw OperationError.of(err);
    }
  }

  /** Runs job `job`, due at the host's clock. */
  runJob(plugin: Plugin, job: string): void {
    this.run(() => (plugin.runJob ? plugin.runJob(job, this.clock) : defaults.runJob(job)));
  }

  /** Calls `handleRequest`, as Kith does for a declared route. */
  handleRequest(plugin: Plugin, request: RouteRequest): RouteResponse {
    return this.run(() => (plugin.handleRequest ?? defaults.handleRequest)(request));
  }

  // The backend the SDK calls.

  private check(capability: string): void {
    if (!this.grants.has(capability)) {
      this.deniedCapabilities.push(capability);
      throw new HostError('denied', `the plugin was not granted \`${capability}\``);
    }
  }

  private checkObject(object: string, access: 'read' | 'write'): void {
    if (access === 'write' && this.readOnly) throw new HostError('unavailable', READ_ONLY);
    if (this.owned.has(object)) return;
    const foreign = this.foreignObjects.get(object);
    if (foreign !== undefined) {
      if (access === 'write') throw new HostError('invalid-input', `\`${object}\` belongs to another plugin: read only`);
      this.check(foreign);
      return;
    }
    const plural = CORE_PLURALS[object];
    if (plural === undefined) throw new HostError('invalid-input', `unknown object \`${object}\``);
    this.check(`${plural}:${access}`);
  }

  private find(object: string, id: string): Record | undefined {
    return (this.stored.get(object) ?? []).find((r) => r.id === id);
  }

  log(level: string, message: string): void {
    this.logLines.push(`${level.toUpperCase()} ${message}`);
  }

  now(): string {
    return this.clock;
  }

  getRecord(object: string, id: string): Record | undefined {
    this.checkObject(object, 'read');
    return this.record(object, id);
  }

  queryRecords(object: string, filter: string | undefined, orderBy: string | undefined, first: number, after: string | undefined): Page {
    this.checkObject(object, 'read');
    if (!(first >= 1 && first <= 200)) throw new HostError('invalid-input', 'first must be between 1 and 200');
    const all = this.stored.get(object) ?? [];
    let matching;
    try {
      matching = read.select(
        all.map((r) => r.fields),
        filter === undefined ? undefined : JSON.parse(filter),
        orderBy === undefined ? undefined : JSON.parse(orderBy),
      );
    } catch (err) {
      if (err instanceof read.ReadError) throw new HostError('invalid-input', err.message);
      throw err;
    }
    const start = after === undefined ? 0 : Number(after);
    if (!Number.isInteger(start) || start < 0) throw new HostError('invalid-input', `bad cursor \`${after}\``);
    const end = Math.min(start + first, matching.length);
    const byId = new Map(all.map((r) => [r.id, r]));
    const records = matching.slice(start, end).map((f) => copy(byId.get(f.id as string) as Record));
    return { records, nextCursor: end < matching.length ? String(end) : undefined };
  }

  createRecord(object: string, fields: string): Record {
    this.checkObject(object, 'write');
    const given = JSON.parse(fields) as Json;
    if (given === null || typeof given !== 'object' || Array.isArray(given)) throw new HostError('invalid-input', 'fields must be a JSON object');
    given.createdAt ??= this.clock;
    given.updatedAt ??= this.clock;
    return this.record(object, this.insert(object, given)) as Record;
  }

  updateRecord(object: string, id: string, fields: string, expectedVersion: number | undefined): Record {
    this.checkObject(object, 'write');
    const changes = JSON.parse(fields) as Json;
    if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) throw new HostError('invalid-input', 'fields must be a JSON object');
    const record = this.find(object, id);
    if (!record) throw new HostError('not-found', `no ${object} ${id}`);
    if (expectedVersion !== undefined && expectedVersion !== record.version) {
      throw new HostError('conflict', `${object} ${id} is at version ${record.version}`);
    }
    Object.assign(record.fields, changes, { updatedAt: this.clock });
    record.version += 1;
    return copy(record);
  }

  kvGet(key: string): Uint8Array | undefined {
    this.check('kv');
    return this.kvStore.get(key);
  }

  kvSet(key: string, value: Uint8Array): void {
    this.check('kv');
    if (this.readOnly) throw new HostError('unavailable', READ_ONLY);
    const size = new TextEncoder().encode(key).length;
    if (size < 1 || size > 256) throw new HostError('invalid-input', 'keys are 1 to 256 bytes');
    if (value.length > 64 * 1024) throw new HostError('limit-exceeded', 'values are at most 64 KiB');
    this.kvStore.set(key, new Uint8Array(value));
  }

  kvDelete(key: string): boolean {
    this.check('kv');
    if (this.readOnly) throw new HostError('unavailable', READ_ONLY);
    return this.kvStore.delete(key);
  }

  kvKeys(prefix: string): string[] {
    this.check('kv');
    return [...this.kvStore.keys()].filter((k) => k.startsWith(prefix)).sort().slice(0, 1000);
  }

  settingValue(key: string): string | undefined {
    return this.settingValues.has(key) ? JSON.stringify(this.settingValues.get(key)) : undefined;
  }

  httpSend(request: HttpRequest): HttpResponse {
    if (this.readOnly) throw new HostError('unavailable', 'HTTP is not available inside before_write');
    const origin = originOf(request.url);
    if (origin === undefined) throw new HostError('invalid-input', `\`${request.url}\` is not an absolute URL`);
    const granted = [...this.grants].some((grant) => {
      const prefix = ['http-private:', 'http:'].find((p) => grant.startsWith(p));
      if (prefix === undefined) return false;
      let rest: Json | undefined = grant.slice(prefix.length);
      if (rest.startsWith('setting:')) rest = this.settingValues.get(rest.slice('setting:'.length));
      return typeof rest === 'string' && originOf(rest) === origin;
    });
    if (!granted) {
      this.deniedCapabilities.push(`http:${origin}`);
      throw new HostError('denied', `the plugin was not granted \`http:${origin}\``);
    }
    this.requests.push(request);
    const stub = this.stubs.get(request.url);
    if (stub === undefined) throw new HostError('unavailable', `no stub for ${request.url}`);
    return stub;
  }

  aggregate(object: string, query: AggregateQuery): Row[] {
    this.checkObject(object, 'read');
    try {
      const rows = read.aggregate((this.stored.get(object) ?? []).map((r) => r.fields), {
        filter: query.filter,
        groupBy: query.groupBy,
        metrics: query.metrics,
        limit: query.limit,
        order: query.order,
      });
      return rows.map((r) => new Row(r.keys, r.values));
    } catch (err) {
      if (err instanceof read.ReadError) throw new HostError('invalid-input', err.message);
      throw err;
    }
  }
}
