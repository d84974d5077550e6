/// <reference path="./kith-plugin-types.d.ts" />
declare module 'kith:plugin/aggregate@1.4.0' {
  /**
   * Computes `request` over `object`. Needs `OBJECTS:read` (none for the plugin's own
   * objects).
   */
  export function aggregate(object: string, request: Request): Array<Row>;
  export type HostError = import('kith:plugin/types@1.4.0').HostError;
  /**
   * What to compute.
   * # Variants
   * 
   * ## `"count"`
   * 
   * How many records (no field).
   * ## `"sum"`
   * 
   * The sum of a numeric, decimal or money field (exact).
   * ## `"min"`
   * 
   * The smallest value of an ordered field.
   * ## `"max"`
   * 
   * The largest value of an ordered field.
   * ## `"count-distinct"`
   * 
   * How many different values a field has (`count-distinct` of `contactId`: donors).
   */
  export type MetricKind = 'count' | 'sum' | 'min' | 'max' | 'count-distinct';
  /**
   * One value to compute per group.
   */
  export interface Metric {
    kind: MetricKind,
    /**
     * The field (`amount`, `receivedDate`); `none` for `count`.
     */
    field?: string,
  }
  /**
   * Date buckets for grouping by a date or datetime field (weeks start on Monday, UTC).
   * # Variants
   * 
   * ## `"day"`
   * 
   * ## `"week"`
   * 
   * ## `"month"`
   * 
   * ## `"year"`
   */
  export type DateBucket = 'day' | 'week' | 'month' | 'year';
  /**
   * One grouping key.
   */
  export interface GroupBy {
    /**
     * The field to group by (`contactId`, `fund`, `receivedDate`).
     */
    field: string,
    /**
     * For a date or datetime field: group by this bucket's start date (`2026-03-01`).
     */
    bucket?: DateBucket,
  }
  /**
   * Groups ordered by one of their metrics instead of their keys.
   */
  export interface MetricOrder {
    /**
     * The metric's position in `metrics` (0 for the first).
     */
    metric: number,
    /**
     * Largest first.
     */
    descending: boolean,
  }
  /**
   * An aggregate query.
   */
  export interface Request {
    /**
     * A JSON filter, as in GraphQL; `none` matches every live record.
     */
    filter?: string,
    /**
     * Up to 3 grouping keys; empty gives one row over all matching records.
     */
    groupBy: Array<GroupBy>,
    /**
     * 1 to 10 values to compute per group.
     */
    metrics: Array<Metric>,
    /**
     * Most groups returned (1 to 100,000), ordered by their keys (missing keys first).
     */
    limit: number,
    /**
     * Order the groups by a metric instead (ties by their keys): with `limit`, the top N.
     */
    order?: MetricOrder,
  }
  /**
   * One group.
   */
  export interface Row {
    /**
     * The group's keys, in `group-by` order, as text (`none` for a missing value).
     */
    keys: Array<string | undefined>,
    /**
     * The metrics, in request order, as text: counts and sums exactly (`"1234.5"`),
     * minimums and maximums in the field's GraphQL form; `none` where no value exists.
     */
    values: Array<string | undefined>,
  }
}
