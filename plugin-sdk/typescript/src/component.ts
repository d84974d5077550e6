/**
 * The component's side of the SDK: Kith's host through the `kith:plugin@1.4.0` WIT imports, and a
 * plugin turned into the world `plugin`'s exports. The entry `kith-plugin build` writes is
 *
 * ```ts
 * import plugin from '../src/plugin';
 * import { exportPlugin } from '@kith/plugin-sdk/component';
 * export const { onEvent, beforeWrite, extension, httpHandler } = exportPlugin(plugin);
 * ```
 *
 * Unit tests never load this module (its imports exist only inside a component).
 */
/// <reference path="../wit/plugin.d.ts" />
import * as witAggregate from 'kith:plugin/aggregate@1.4.0';
import type * as WitExtension from 'kith:plugin/extension@1.4.0';
import type * as WitHandler from 'kith:plugin/http-handler@1.4.0';
import * as witHost from 'kith:plugin/host@1.4.0';
import * as witHttp from 'kith:plugin/http@1.4.0';
import type * as WitTypes from 'kith:plugin/types@1.4.0';
import { Row, type AggregateQuery } from './aggregate.js';
import { describe, HostError, OperationError } from './errors.js';
import { install, type Backend } from './host.js';
import { HttpResponse, type HttpRequest } from './http.js';
import { BatchFailure, defaults, deliver, type Plugin } from './plugin.js';
import type { Change, Event, Page, Record } from './types.js';

/** Calls a WIT import, throwing its `host-error` as a `HostError`. */
function call<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    const payload = (err as { payload?: WitTypes.HostError })?.payload;
    if (payload && typeof payload.code === 'string') throw new HostError(payload.code, payload.message);
    throw err;
  }
}

function record(r: WitTypes.CrmRecord): Record {
  return { object: r.object, id: r.id, version: Number(r.version), fields: JSON.parse(r.fields) };
}

/** The host of a running component. */
export const witBackend: Backend = {
  log: (level, message) => witHost.log(level, message),
  now: () => witHost.now(),
  getRecord(object, id) {
    const found = call(() => witHost.getRecord(object, id));
    return found === undefined ? undefined : record(found);
  },
  queryRecords(object, filter, orderBy, first, after): Page {
    const page = call(() => witHost.queryRecords(object, { filter, orderBy, first, after }));
    return { records: page.records.map(record), nextCursor: page.nextCursor };
  },
  createRecord: (object, fields) => record(call(() => witHost.createRecord(object, fields))),
  updateRecord: (object, id, fields, expectedVersion) =>
    record(call(() => witHost.updateRecord(object, id, fields, expectedVersion === undefined ? undefined : BigInt(expectedVersion)))),
  kvGet: (key) => call(() => witHost.kvGet(key)),
  kvSet: (key, value) => call(() => witHost.kvSet(key, value)),
  kvDelete: (key) => call(() => witHost.kvDelete(key)),
  kvKeys: (prefix) => call(() => witHost.kvKeys(prefix)),
  settingValue: (key) => witHost.setting(key),
  httpSend(request: HttpRequest): HttpResponse {
    const response = call(() =>
      witHttp.send({
        method: request.method,
        url: request.url,
        headers: (request.headers ?? []).map(([name, value]) => ({ name, value })),
        body: request.body,
        timeoutMs: request.timeoutMs,
      }),
    );
    return new HttpResponse(response.status, response.body, response.headers.map((h) => [h.name, h.value]), response.url);
  },
  aggregate(object: string, query: AggregateQuery): Row[] {
    const rows = call(() =>
      witAggregate.aggregate(object, {
        filter: query.filter == null ? undefined : JSON.stringify(query.filter),
        groupBy: query.groupBy.map((g) => ({ field: g.field, bucket: g.bucket })),
        metrics: query.metrics.map((m) => ({ kind: m.kind, field: m.field })),
        limit: query.limit,
        order: query.order,
      }),
    );
    return rows.map((r) => new Row(r.keys, r.values));
  },
};

function eventOf(e: WitTypes.Event): Event {
  return {
    id: e.id,
    seq: Number(e.seq),
    kind: e.kind,
    object: e.object,
    recordId: e.recordId,
    occurredAt: e.occurredAt,
    actor: e.actor,
    originPlugin: e.originPlugin,
    depth: e.depth,
    payload: e.payload ? JSON.parse(e.payload) : {},
  };
}

function changeOf(c: WitTypes.Change): Change {
  return {
    object: c.object,
    operation: c.operation,
    id: c.id,
    before: c.before ? JSON.parse(c.before) : undefined,
    after: JSON.parse(c.after),
    actor: c.actor,
  };
}

/** The world `plugin`'s exports for `plugin`, with Kith's host installed. */
export function exportPlugin(plugin: Plugin) {
  install(witBackend);
  const onEvent = (events: WitTypes.Event[]): void => {
    try {
      deliver(plugin, events.map(eventOf));
    } catch (err) {
      if (err instanceof BatchFailure) throw { index: err.index, message: describe(err.error) } satisfies WitTypes.EventFailure;
      throw { index: 0, message: describe(err) } satisfies WitTypes.EventFailure;
    }
  };
  const beforeWrite = (change: WitTypes.Change): WitTypes.Verdict => {
    const verdict = (plugin.beforeWrite ?? defaults.beforeWrite)(changeOf(change));
    switch (verdict.kind) {
      case 'allow':
        return { tag: 'allow' };
      case 'deny':
        return { tag: 'deny', val: verdict.reason };
      case 'modify':
        return { tag: 'modify', val: JSON.stringify(verdict.fields) };
    }
  };
  const extension: typeof WitExtension = {
    computeField(object, field, ids) {
      let values;
      try {
        values = plugin.computeField ? plugin.computeField(object, field, ids) : defaults.computeField(object, field);
      } catch (err) {
        throw describe(err);
      }
      if (values.length !== ids.length) throw `computeField answered ${values.length} values for ${ids.length} ids`;
      return values.map((v) => JSON.stringify(v ?? null));
    },
    callOperation(name, args, caller) {
      try {
        const call = { name, arguments: args ? JSON.parse(args) : {}, caller };
        return JSON.stringify((plugin.call ?? defaults.call)(call) ?? null);
      } catch (err) {
        const failure = OperationError.of(err);
        throw { code: failure.code, message: failure.message, field: failure.field } satisfies WitExtension.OperationError;
      }
    },
    runJob(job, scheduledFor) {
      try {
        if (plugin.runJob) plugin.runJob(job, scheduledFor);
        else defaults.runJob(job);
      } catch (err) {
        throw describe(err);
      }
    },
  };
  const httpHandler: typeof WitHandler = {
    handle(request) {
      let response;
      try {
        response = (plugin.handleRequest ?? defaults.handleRequest)({
          method: request.method,
          route: request.route,
          path: request.path,
          query: request.query,
          headers: request.headers.map((h) => [h.name, h.value]),
          body: request.body,
          caller: request.caller,
        });
      } catch (err) {
        response = { status: 500, body: new TextEncoder().encode(describe(err)) };
      }
      return {
        status: response.status,
        headers: (response.headers ?? []).map(([name, value]) => ({ name, value })),
        body: response.body ?? new Uint8Array(),
      };
    },
  };
  return { onEvent, beforeWrite, extension, httpHandler };
}
