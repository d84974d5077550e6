/**
 * A plugin is an object of handlers, each optional, passed to `definePlugin`:
 *
 * @example
 * export default definePlugin({
 *   onEvent(event) { log.info(`hello, ${str(event.payload.record, 'firstName') ?? 'there'}`); },
 * });
 *
 * The component entry the build writes calls it through `@kith/plugin-sdk/component`; tests call
 * it through `TestHost`. Kith keeps no state between calls you can rely on: keep it in `kv` or in
 * records.
 */
import { OperationError } from './errors.js';
import type { Call, Change, Event, Json, RouteRequest, RouteResponse, Verdict } from './types.js';

export interface Plugin {
  /** Handles one event the manifest subscribes to. Throwing fails the event: Kith retries it, then dead-letters it. */
  onEvent?(event: Event): void;
  /** Handles a batch in order; by default `onEvent` for each. Throw `BatchFailure` to name the event at fault. */
  onEvents?(events: Event[]): void;
  /** Allows (`allow()`), refuses (`deny(reason)`) or amends (`modify(fields)`) a write; host writes are unavailable here. */
  beforeWrite?(change: Change): Verdict;
  /** The values of a declared computed field for a page of records: one per id, in order (null for none). Reads only. */
  computeField?(object: string, field: string, ids: string[]): Json[];
  /** Runs a declared query or mutation; the result is checked against the declared type. Throw `OperationError` to answer an error. */
  call?(call: Call): Json;
  /** Runs a declared job due at `scheduledFor` (RFC 3339 UTC). */
  runJob?(job: string, scheduledFor: string): void;
  /** Answers a request to a declared route. */
  handleRequest?(request: RouteRequest): RouteResponse;
}

/** Handling the event at `index` of a batch failed; the events before it were handled. */
export class BatchFailure extends Error {
  constructor(
    readonly index: number,
    readonly error: unknown,
  ) {
    super(`event ${index}: ${error instanceof Error ? error.message : String(error)}`);
    this.name = 'BatchFailure';
  }
}

/** The plugin, type-checked (an identity function). */
export function definePlugin<P extends Plugin>(plugin: P): P {
  return plugin;
}

/** Delivers a batch as Kith does: `onEvents`, else `onEvent` per event. */
export function deliver(plugin: Plugin, events: Event[]): void {
  if (plugin.onEvents) {
    plugin.onEvents(events);
    return;
  }
  events.forEach((event, index) => {
    try {
      plugin.onEvent?.(event);
    } catch (err) {
      throw new BatchFailure(index, err);
    }
  });
}

/** The defaults for what a plugin does not handle. */
export const defaults = {
  beforeWrite: (): Verdict => ({ kind: 'allow' }),
  computeField: (object: string, field: string): never => {
    throw new OperationError('internal', `no computed field \`${field}\` of \`${object}\``);
  },
  call: (call: Call): never => {
    throw new OperationError('internal', `no operation \`${call.name}\``);
  },
  runJob: (job: string): never => {
    throw new OperationError('internal', `no job \`${job}\``);
  },
  handleRequest: (): RouteResponse => ({ status: 404, body: new TextEncoder().encode('no such route') }),
};
