declare module 'kith:plugin/types@1.4.0' {
  /**
   * Why a host call failed.
   * # Variants
   * 
   * ## `"denied"`
   * 
   * The plugin was not granted the capability this call needs.
   * ## `"invalid-input"`
   * 
   * An argument was malformed or a value broke a validation rule.
   * ## `"not-found"`
   * 
   * The record or key does not exist.
   * ## `"conflict"`
   * 
   * A uniqueness rule or an expected version did not hold.
   * ## `"limit-exceeded"`
   * 
   * A size or rate limit was reached.
   * ## `"unavailable"`
   * 
   * The call is not allowed in this context (e.g. a write inside `before-write`).
   * ## `"internal"`
   * 
   * Kith failed; retrying later may help.
   */
  export type ErrorCode = 'denied' | 'invalid-input' | 'not-found' | 'conflict' | 'limit-exceeded' | 'unavailable' | 'internal';
  /**
   * A failed host call.
   */
  export interface HostError {
    code: ErrorCode,
    message: string,
  }
  /**
   * A stored core record.
   */
  export interface CrmRecord {
    /**
     * `contact`, `company`, `deal`, `ticket` or `activity`.
     */
    object: string,
    /**
     * The record's UUID.
     */
    id: string,
    /**
     * Its optimistic-concurrency version.
     */
    version: bigint,
    /**
     * Every field, as a JSON object in GraphQL field names.
     */
    fields: string,
  }
  /**
   * What to read with `query-records`.
   */
  export interface Query {
    /**
     * A JSON filter, as in GraphQL; `none` matches every record.
     */
    filter?: string,
    /**
     * A JSON list of `{"field": ..., "direction": "ASC"|"DESC"}`; `none` sorts by id.
     */
    orderBy?: string,
    /**
     * How many records at most (1 to 200).
     */
    first: number,
    /**
     * The `next-cursor` of the previous page.
     */
    after?: string,
  }
  /**
   * A page of records.
   */
  export interface Page {
    records: Array<CrmRecord>,
    /**
     * Pass as `query.after` to read the next page; `none` on the last page.
     */
    nextCursor?: string,
  }
  /**
   * Log levels.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /**
   * A committed change, delivered at least once, in order per record.
   */
  export interface Event {
    /**
     * Unique, stable across redeliveries: use it to make handlers idempotent.
     */
    id: string,
    /**
     * Position in Kith's outbox.
     */
    seq: bigint,
    /**
     * `contact.created`, `deal.updated`, `ticket.status_changed`, ...
     */
    kind: string,
    /**
     * The object kind.
     */
    object: string,
    /**
     * The record, if the event is about one.
     */
    recordId?: string,
    /**
     * RFC 3339 UTC timestamp of the change.
     */
    occurredAt: string,
    /**
     * Who made the change (`user:ada@example.org`, `plugin:welcome`, ...).
     */
    actor: string,
    /**
     * The plugin whose write caused this event, if any.
     */
    originPlugin?: string,
    /**
     * How many plugin writes led to this event (0 = a person or Kith itself).
     */
    depth: number,
    /**
     * The record after the change plus event details, as JSON.
     */
    payload: string,
  }
  /**
   * Handling the event at `index` of a batch failed; the events before it were handled.
   */
  export interface EventFailure {
    index: number,
    message: string,
  }
  /**
   * What kind of write `before-write` is asked about.
   * # Variants
   * 
   * ## `"create"`
   * 
   * ## `"update"`
   * 
   * ## `"delete"`
   */
  export type Operation = 'create' | 'update' | 'delete';
  /**
   * A write about to happen.
   */
  export interface Change {
    object: string,
    operation: Operation,
    /**
     * The record id (also for creates: ids are assigned before hooks run).
     */
    id: string,
    /**
     * The stored record before the change (JSON), for updates and deletes.
     */
    before?: string,
    /**
     * The record as it will be stored (JSON).
     */
    after: string,
    /**
     * Who is writing.
     */
    actor: string,
  }
  /**
   * The answer of `before-write`.
   */
  export type Verdict = VerdictAllow | VerdictDeny | VerdictModify;
  /**
   * Let the write through unchanged.
   */
  export interface VerdictAllow {
    tag: 'allow',
  }
  /**
   * Refuse the write; the reason is shown to whoever attempted it.
   */
  export interface VerdictDeny {
    tag: 'deny',
    val: string,
  }
  /**
   * Let it through with these fields changed (a JSON object of field values).
   */
  export interface VerdictModify {
    tag: 'modify',
    val: string,
  }
}
