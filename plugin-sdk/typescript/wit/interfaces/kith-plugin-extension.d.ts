/// <reference path="./kith-plugin-types.d.ts" />
declare module 'kith:plugin/extension@1.4.0' {
  /**
   * Computes the declared field `field` of `object` for a page of records at once: one JSON
   * value per id, in the order of `ids` (`null` for none). Reads only.
   */
  export function computeField(object: string, field: string, ids: Array<string>): Array<string>;
  /**
   * Runs the declared query or mutation `name` with its arguments (a JSON object, already
   * checked against the declared types) for `caller` (`user:ada@example.org`, ...). Returns
   * the result as JSON, which Kith checks against the declared type. Queries read only.
   */
  export function callOperation(name: string, arguments: string, caller: string): string;
  /**
   * Runs the declared job `job`, due at `scheduled-for` (RFC 3339 UTC).
   */
  export function runJob(job: string, scheduledFor: string): void;
  export type ErrorCode = import('kith:plugin/types@1.4.0').ErrorCode;
  /**
   * Why an operation failed: shown to the caller with the code (`invalid-input` is
   * `BAD_USER_INPUT`, `not-found` is `NOT_FOUND`, `conflict` is `CONFLICT`, `denied` is
   * `FORBIDDEN`).
   */
  export interface OperationError {
    code: ErrorCode,
    message: string,
    /**
     * The argument or field at fault (`amount`), if any.
     */
    field?: string,
  }
}
