/**
 * Outbound HTTP, to the origins the admin granted (`http:https://api.example.org` in the
 * manifest's capabilities). Kith checks every hop, caps time and size, and puts secret settings
 * where a header or body says `{{secret:KEY}}`, so secrets never enter the plugin.
 *
 * @example
 * const rates = http.get('https://api.example.org/rates').json();
 */
import { current } from './host.js';
import type { Json } from './types.js';

/** A request: `method` is GET, POST, PUT, PATCH, DELETE or HEAD; `url` absolute. */
export interface HttpRequest {
  method: string;
  url: string;
  headers?: Array<[string, string]>;
  body?: Uint8Array;
  timeoutMs?: number;
}

/** A response, after redirects (`url` is the one that answered). */
export class HttpResponse {
  constructor(
    readonly status: number,
    readonly body: Uint8Array = new Uint8Array(),
    readonly headers: Array<[string, string]> = [],
    readonly url = '',
  ) {}

  /** A response with a text body (for tests' stubs). */
  static text(status: number, body: string): HttpResponse {
    return new HttpResponse(status, new TextEncoder().encode(body));
  }

  /** The body as UTF-8 text. */
  text(): string {
    return new TextDecoder().decode(this.body);
  }

  /** The body parsed as JSON (throws when it is not). */
  json<T = Json>(): T {
    return JSON.parse(this.text()) as T;
  }

  /** The first header called `name`, ignoring case. */
  header(name: string): string | undefined {
    return this.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
  }

  /** A 2xx status. */
  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }
}

/** Sends `request`. Throws `HostError` (`denied` for an origin not granted). */
export function send(request: HttpRequest): HttpResponse {
  return current().httpSend(request);
}

/** A GET request. */
export function get(url: string, headers: Array<[string, string]> = []): HttpResponse {
  return send({ method: 'GET', url, headers });
}

/** A POST of `value` as JSON. */
export function postJson(url: string, value: Json, headers: Array<[string, string]> = []): HttpResponse {
  const body = new TextEncoder().encode(JSON.stringify(value));
  return send({ method: 'POST', url, headers: [['content-type', 'application/json'], ...headers], body });
}
