/// <reference path="./kith-plugin-mail.d.ts" />
/// <reference path="./kith-plugin-types.d.ts" />
declare module 'kith:plugin/bulk@1.4.0' {
  /**
   * Creates a record from each JSON object of `items` (at most 1,000). Needs `OBJECTS:write`.
   */
  export function createRecords(object: string, items: Array<string>): Array<Result<CrmRecord, HostError>>;
  /**
   * Applies each update (at most 1,000; an id at most once). Needs `OBJECTS:write`.
   */
  export function updateRecords(object: string, updates: Array<Update>): Array<Result<CrmRecord, HostError>>;
  /**
   * Queues each message (at most 1,000) as `mail.send` does, returning each one's
   * `Message-ID`. Needs `mail:send`; each message counts against the plugin's mail rate.
   */
  export function sendMails(messages: Array<Message>): Array<Result<string, HostError>>;
  export type HostError = import('kith:plugin/types@1.4.0').HostError;
  export type CrmRecord = import('kith:plugin/types@1.4.0').CrmRecord;
  export type Message = import('kith:plugin/mail@1.4.0').Message;
  /**
   * One update of `update-records`.
   */
  export interface Update {
    /**
     * The record's id.
     */
    id: string,
    /**
     * The fields to change, as a JSON object.
     */
    fields: string,
    /**
     * Only if the record is still at this version (else `conflict` for this item).
     */
    expectedVersion?: bigint,
  }
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
}
