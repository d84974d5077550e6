/**
 * The plugin's settings (`[settings.KEY]` in plugin.toml), as the admin set them or their
 * defaults. Secret settings are never readable: use `{{secret:KEY}}` in an HTTP request.
 *
 * @example
 * const blocked = settings.get<string[]>('blocked_domains') ?? [];
 */
import { current } from './host.js';

/** The setting's value, or `fallback` when it is null or the manifest declares no `key`. */
export function get<T>(key: string): T | undefined;
export function get<T>(key: string, fallback: T): T;
export function get<T>(key: string, fallback?: T): T | undefined {
  const text = current().settingValue(key);
  const value = text ? (JSON.parse(text) as T | null) : null;
  return value ?? fallback;
}
