// Which host the SDK's calls reach: Kith, through the WIT imports (installed by the component
// entry `@kith/plugin-sdk/component`), or a `TestHost` installed for a test. Every module of the
// SDK calls `current()`; only `component.ts` touches the WIT.
import type { AggregateQuery, Row } from './aggregate.js';
import type { HttpRequest, HttpResponse } from './http.js';
import type { Page, Record } from './types.js';

/** What a host offers; failures throw `HostError`. */
export interface Backend {
  log(level: 'trace' | 'debug' | 'info' | 'warn' | 'error', message: string): void;
  now(): string;
  getRecord(object: string, id: string): Record | undefined;
  queryRecords(object: string, filter: string | undefined, orderBy: string | undefined, first: number, after: string | undefined): Page;
  createRecord(object: string, fields: string): Record;
  updateRecord(object: string, id: string, fields: string, expectedVersion: number | undefined): Record;
  kvGet(key: string): Uint8Array | undefined;
  kvSet(key: string, value: Uint8Array): void;
  kvDelete(key: string): boolean;
  kvKeys(prefix: string): string[];
  settingValue(key: string): string | undefined;
  httpSend(request: HttpRequest): HttpResponse;
  aggregate(object: string, query: AggregateQuery): Row[];
}

const installed: Backend[] = [];

/** The backend installed last. */
export function current(): Backend {
  const backend = installed[installed.length - 1];
  if (!backend) {
    throw new Error('@kith/plugin-sdk: host calls outside a component need a TestHost: host.run(() => ...) or host.onEvent(plugin, event)');
  }
  return backend;
}

export function install(backend: Backend): void {
  installed.push(backend);
}

export function uninstall(backend: Backend): void {
  const at = installed.lastIndexOf(backend);
  if (at >= 0) installed.splice(at, 1);
}
