/**
 * The filter language of lists, segments and plugins, built with calls. A filter is plain JSON
 * (`{"email": {"ilike": "%@example.org"}}`): these helpers only spell it.
 *
 * @example
 * allOf(field('tier').eq('GOLD'), field('score').gte(5));
 * // {"and": [{"tier": {"eq": "GOLD"}}, {"score": {"gte": 5}}]}
 */
import type { Json } from './types.js';

/** A filter: an object of field conditions and `and` / `or` / `not`. */
export type Filter = { [key: string]: Json };

/** A sort key. */
export interface SortKey {
  field: string;
  direction?: 'ASC' | 'DESC';
  nulls?: 'FIRST' | 'LAST';
}

/** Conditions on one field: `field('email').endsWith('@example.org')`. */
export class FieldCondition {
  constructor(readonly name: string) {}

  private op(op: string, value: Json): Filter {
    return { [this.name]: { [op]: value } };
  }

  eq(value: Json): Filter {
    return this.op('eq', value);
  }
  /** Not equal (never matches a null, as in SQL). */
  neq(value: Json): Filter {
    return this.op('neq', value);
  }
  in(values: Json[]): Filter {
    return this.op('in', values);
  }
  notIn(values: Json[]): Filter {
    return this.op('notIn', values);
  }
  lt(value: Json): Filter {
    return this.op('lt', value);
  }
  lte(value: Json): Filter {
    return this.op('lte', value);
  }
  gt(value: Json): Filter {
    return this.op('gt', value);
  }
  gte(value: Json): Filter {
    return this.op('gte', value);
  }
  /** `low <= value <= high`. */
  between(low: Json, high: Json): Filter {
    return { [this.name]: { gte: low, lte: high } };
  }
  isNull(isNull = true): Filter {
    return this.op('isNull', isNull);
  }
  /** Text starting with `prefix`, ignoring case (`%` and `_` taken literally). */
  startsWith(prefix: string): Filter {
    return this.op('startsWith', prefix);
  }
  /** Text ending with `suffix`, ignoring case (an `ilike` with `suffix` escaped). */
  endsWith(suffix: string): Filter {
    return this.op('ilike', '%' + escapeLike(suffix));
  }
  /** SQL LIKE, case-sensitive (`%`, `_`, `\` escapes). */
  like(pattern: string): Filter {
    return this.op('like', pattern);
  }
  /** SQL LIKE ignoring case. */
  ilike(pattern: string): Filter {
    return this.op('ilike', pattern);
  }
}

/** Conditions on the field `name`. */
export const field = (name: string): FieldCondition => new FieldCondition(name);

/** Every filter matches (none: everything). */
export const allOf = (...filters: Filter[]): Filter => ({ and: filters });

/** At least one filter matches (none: nothing). */
export const anyOf = (...filters: Filter[]): Filter => ({ or: filters });

/** The filter does not match (with SQL's logic: a comparison with null is not negated to true). */
export const not = (filter: Filter): Filter => ({ not: filter });

/** A sort key, ascending (nulls last unless `nulls` is `FIRST`). */
export const asc = (name: string, nulls?: 'FIRST' | 'LAST'): SortKey => (nulls ? { field: name, direction: 'ASC', nulls } : { field: name, direction: 'ASC' });

/** A sort key, descending (nulls first unless `nulls` is `LAST`). */
export const desc = (name: string, nulls?: 'FIRST' | 'LAST'): SortKey => (nulls ? { field: name, direction: 'DESC', nulls } : { field: name, direction: 'DESC' });

/** `text` with LIKE's wildcards and escape character taken literally. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => '\\' + c);
}
