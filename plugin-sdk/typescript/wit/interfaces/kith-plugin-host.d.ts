/// <reference path="./kith-plugin-types.d.ts" />
declare module 'kith:plugin/host@1.4.0' {
  /**
   * Writes a line to Kith's log, tagged with the plugin id. Rate-limited per call.
   */
  export function log(level: LogLevel, message: string): void;
  /**
   * The current time, RFC 3339 UTC with microseconds.
   */
  export function now(): string;
  /**
   * Reads one record. Needs `OBJECTS:read` (e.g. `contacts:read`).
   */
  export function getRecord(object: string, id: string): CrmRecord | undefined;
  /**
   * Reads a page of records. Needs `OBJECTS:read`.
   */
  export function queryRecords(object: string, query: Query): Page;
  /**
   * Creates a record from a JSON object of fields. Needs `OBJECTS:write`.
   */
  export function createRecord(object: string, fields: string): CrmRecord;
  /**
   * Changes the given fields of a record. Needs `OBJECTS:write`.
   */
  export function updateRecord(object: string, id: string, fields: string, expectedVersion: bigint | undefined): CrmRecord;
  /**
   * Reads a value of the plugin's own key-value store. Needs `kv`.
   */
  export function kvGet(key: string): Uint8Array | undefined;
  /**
   * Stores a value (keys up to 256 bytes, values up to 64 KiB). Needs `kv`.
   */
  export function kvSet(key: string, value: Uint8Array): void;
  /**
   * Deletes a key; returns whether it existed. Needs `kv`.
   */
  export function kvDelete(key: string): boolean;
  /**
   * Keys starting with `prefix`, sorted, at most 1000. Needs `kv`.
   */
  export function kvKeys(prefix: string): Array<string>;
  /**
   * A setting of this plugin as JSON (its default if the admin set none); `none` if the
   * manifest declares no such setting. Secret settings are never returned.
   */
  export function setting(key: string): string | undefined;
  export type HostError = import('kith:plugin/types@1.4.0').HostError;
  export type CrmRecord = import('kith:plugin/types@1.4.0').CrmRecord;
  export type Query = import('kith:plugin/types@1.4.0').Query;
  export type Page = import('kith:plugin/types@1.4.0').Page;
  export type LogLevel = import('kith:plugin/types@1.4.0').LogLevel;
}
