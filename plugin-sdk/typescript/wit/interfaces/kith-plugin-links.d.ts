/// <reference path="./kith-plugin-types.d.ts" />
declare module 'kith:plugin/links@1.4.0' {
  /**
   * An absolute URL to `path` under this plugin's routes (`/p/PLUGIN/PATH`, from Kith's
   * public URL) carrying `params` as its query and a signature; valid for
   * `expires-in-seconds` (none: for ever).
   */
  export function signUrl(path: string, params: Array<[string, string]>, expiresInSeconds: number | undefined): string;
  /**
   * The params of a URL (absolute, or path and query as a route receives them) that this
   * plugin signed; `invalid-input` if the signature is wrong or missing or the link expired.
   */
  export function verifyUrl(url: string): Array<[string, string]>;
  export type HostError = import('kith:plugin/types@1.4.0').HostError;
}
