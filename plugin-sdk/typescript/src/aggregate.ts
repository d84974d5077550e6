/**
 * Counts, sums, minimums and maximums computed by the database, grouped by fields or date
 * buckets, so a report never reads every record.
 *
 * @example
 * const byFund = aggregate.run('gift', new Aggregate().by('fund').sum('amount'));
 * byFund.map((row) => [row.key(0), row.value(0)]);
 */
import { current } from './host.js';
import type { Json } from './types.js';

import type { AggregateRequest, Bucket, MetricKind } from './read.js';

export type { Bucket, MetricKind } from './read.js';

/** An aggregate query as the host receives it (see `read.ts` for its rules). */
export type AggregateQuery = AggregateRequest;

/** An aggregate query, built by chaining: `new Aggregate().where(f).by('fund').sum('amount')`. */
export class Aggregate implements AggregateQuery {
  private filterValue?: Json;
  private keys: Array<{ field: string; bucket?: Bucket }> = [];
  metrics: Array<{ kind: MetricKind; field?: string }> = [];
  limit = 10_000;
  order?: { metric: number; descending: boolean };

  get filter(): Json | undefined {
    return this.filterValue;
  }

  get groupBy(): Array<{ field: string; bucket?: Bucket }> {
    return this.keys;
  }

  /** Only records matching `filter`. */
  where(filter: Json): this {
    this.filterValue = filter;
    return this;
  }

  /** One more grouping key (at most 3): a field, or a date field's `day`, `week` (from Monday), `month` or `year`. */
  by(field: string, bucket?: Bucket): this {
    this.keys.push(bucket ? { field, bucket } : { field });
    return this;
  }

  /** How many records. */
  count(): this {
    this.metrics.push({ kind: 'count' });
    return this;
  }

  /** The exact sum of a number, decimal or money field. */
  sum(field: string): this {
    this.metrics.push({ kind: 'sum', field });
    return this;
  }

  /** The smallest value of an ordered field. */
  min(field: string): this {
    this.metrics.push({ kind: 'min', field });
    return this;
  }

  /** The largest value of an ordered field. */
  max(field: string): this {
    this.metrics.push({ kind: 'max', field });
    return this;
  }

  /** How many different values a field has. */
  countDistinct(field: string): this {
    this.metrics.push({ kind: 'count-distinct', field });
    return this;
  }

  /** At most `limit` groups (default 10,000). */
  top(limit: number): this {
    this.limit = limit;
    return this;
  }

  /** Groups ordered by metric `index` instead of their keys: with `top`, the top N. */
  orderByMetric(metric: number, descending = false): this {
    this.order = { metric, descending };
    return this;
  }
}

/** One group: its keys (in `by` order) and metrics (in request order), as text. */
export class Row {
  constructor(
    readonly keys: Array<string | undefined>,
    readonly values: Array<string | undefined>,
  ) {}

  /** Key `index`, or undefined. */
  key(index: number): string | undefined {
    return this.keys[index];
  }

  /** Metric `index` as text, or undefined. */
  value(index: number): string | undefined {
    return this.values[index];
  }

  /** Metric `index` as a number (a count), or undefined. */
  number(index: number): number | undefined {
    const value = this.values[index];
    return value === undefined ? undefined : Number(value);
  }
}

/** Computes `query` over `object`. Needs `OBJECTS:read` (nothing for the plugin's own objects). */
export function run(object: string, query: AggregateQuery): Row[] {
  return current().aggregate(object, query);
}
