/// <reference path="./kith-plugin-types.d.ts" />
declare module 'kith:plugin/http@1.4.0' {
  /**
   * Sends a request. Needs `http:ORIGIN` (or `http-private:ORIGIN`) for every origin it
   * reaches.
   */
  export function send(request: Request): Response;
  export type HostError = import('kith:plugin/types@1.4.0').HostError;
  /**
   * A header.
   */
  export interface Header {
    name: string,
    value: string,
  }
  /**
   * A request.
   */
  export interface Request {
    /**
     * `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD`.
     */
    method: string,
    /**
     * An absolute `http://` or `https://` URL.
     */
    url: string,
    headers: Array<Header>,
    body?: Uint8Array,
    /**
     * Milliseconds; default 10,000, at most 30,000.
     */
    timeoutMs?: number,
  }
  /**
   * A response (after redirects).
   */
  export interface Response {
    status: number,
    headers: Array<Header>,
    body: Uint8Array,
    /**
     * The URL that answered, after redirects.
     */
    url: string,
  }
}
