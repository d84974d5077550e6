/**
 * The plugin's own key-value store (needs `kv`): keys up to 256 bytes, values up to 64 KiB.
 *
 * @example
 * kv.setJson('count', (kv.getJson<number>('count') ?? 0) + 1);
 */
import { current } from './host.js';
import type { Json } from './types.js';

/** The value of `key`, or undefined. */
export function get(key: string): Uint8Array | undefined {
  return current().kvGet(key);
}

/** Stores `value` (text is stored as UTF-8). */
export function set(key: string, value: Uint8Array | string): void {
  current().kvSet(key, typeof value === 'string' ? new TextEncoder().encode(value) : value);
}

/** Deletes `key`; whether it existed. */
export function remove(key: string): boolean {
  return current().kvDelete(key);
}

/** Keys starting with `prefix`, sorted, at most 1000. */
export function keys(prefix = ''): string[] {
  return current().kvKeys(prefix);
}

/** The value of `key` parsed as JSON, or undefined when there is none. */
export function getJson<T = Json>(key: string): T | undefined {
  const value = get(key);
  return value === undefined ? undefined : (JSON.parse(new TextDecoder().decode(value)) as T);
}

/** Stores `value` as JSON. */
export function setJson(key: string, value: Json): void {
  set(key, JSON.stringify(value));
}
