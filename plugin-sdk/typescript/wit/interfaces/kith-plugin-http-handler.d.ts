declare module 'kith:plugin/http-handler@1.4.0' {
  /**
   * Handles a request to a declared route.
   */
  export function handle(request: Request): Response;
  /**
   * A header.
   */
  export interface Header {
    name: string,
    value: string,
  }
  /**
   * A request to one of the plugin's routes.
   */
  export interface Request {
    /**
     * `GET`, `POST`, ...
     */
    method: string,
    /**
     * The declared route's path (`/unsubscribe`), as in the manifest.
     */
    route: string,
    /**
     * The request's path under `/p/PLUGIN` (`/unsubscribe`).
     */
    path: string,
    /**
     * The raw query string, without `?` (empty when none).
     */
    query: string,
    headers: Array<Header>,
    /**
     * The body, at most the route's cap.
     */
    body: Uint8Array,
    /**
     * Who called: `user:ada@example.org` or `token:NAME` on `token` routes; none on public
     * routes.
     */
    caller?: string,
  }
  /**
   * The answer.
   */
  export interface Response {
    status: number,
    headers: Array<Header>,
    body: Uint8Array,
  }
}
