/**
 * Kith's plugin SDK for TypeScript: write a plugin with `definePlugin`, build it with
 * componentize-js against Kith's committed WIT (`kith-plugin build`), and unit-test it with
 * `TestHost` from `@kith/plugin-sdk/testing`.
 *
 * @example
 * import { definePlugin, log, str } from '@kith/plugin-sdk';
 * export default definePlugin({
 *   onEvent(event) { log.info(`hello, ${str(event.payload.record, 'firstName') ?? 'there'}`); },
 * });
 */
import { current } from './host.js';

export * as aggregate from './aggregate.js';
export { Aggregate, Row } from './aggregate.js';
export * as http from './http.js';
export { HttpResponse } from './http.js';
export * as kv from './kv.js';
export * as log from './log.js';
export * as records from './records.js';
export * as settings from './settings.js';
export { allOf, anyOf, asc, desc, escapeLike, field, not } from './filters.js';
export type { Filter, SortKey } from './filters.js';
export { HostError, OperationError, describe } from './errors.js';
export type { ErrorCode } from './errors.js';
export { BatchFailure, definePlugin } from './plugin.js';
export type { Plugin } from './plugin.js';
export { allow, createChange, deny, event, modify, str, updateChange } from './types.js';
export type { Call, Change, Event, Fields, Json, Page, Record, RouteRequest, RouteResponse, Verdict } from './types.js';

/** The `kith:plugin` version this SDK builds against (the manifest's `sdk_version`). */
export const WIT_VERSION = '1.4.0';

/** The current time, RFC 3339 UTC with microseconds (the host's clock). */
export function now(): string {
  return current().now();
}
