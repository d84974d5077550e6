/**
 * How the test host reads, as Kith does: the filter language (with SQL's three-valued logic
 * on null), sort orders (Kith's null placement and its `id` tie-break) and aggregates, over
 * records held as JSON. A port of the Rust SDK's `plugin-sdk/src/testing/read.rs`; Kith's
 * conformance table (`plugin-sdk/conformance/reads.json`) holds both to Kith's answers.
 *
 * The test host does not know the objects' field kinds, so it compares by the values' forms:
 * numbers, and texts that are decimal numbers (`"10.50"`), as numbers; RFC 3339 UTC instants
 * (`…T09:00:00Z`) as instants; booleans `false` before `true`; other texts in the byte order
 * of their UTF-8 encoding (not JavaScript's UTF-16 order).
 *
 * Numbers: the Rust host reads JSON with serde_json, which keeps integers (up to 64 bits)
 * apart from floating-point numbers. Here a JSON number is a JavaScript number, so a whole
 * number from -2^63 up to (not including) 2^64 is taken as an integer, and any other number as
 * a floating-point one, written as serde_json writes it (`1e+16`, `1.5e-7`, `0.25`).
 */

/** A JSON value, as `JSON.parse` gives it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A read Kith refuses (the test host answers it as host error `invalid-input`). */
export class ReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReadError';
  }
}

/** Deepest nesting of `and` / `or` / `not` (Kith's `filter::MAX_DEPTH`). */
const MAX_DEPTH = 8;
/** Most conditions in one filter. */
const MAX_CONDITIONS = 100;
/** Most values in one `in` / `notIn` list. */
const MAX_IN_VALUES = 500;
/** Most sort keys. */
const MAX_SORT_KEYS = 5;
/** Most groups an aggregate returns. */
const MAX_GROUPS = 100_000;
/** Most metrics in one aggregate. */
const MAX_METRICS = 10;
/** Most group keys in one aggregate. */
const MAX_GROUP_KEYS = 3;

/** How two values compare: less, equal or greater. */
type Ordering = -1 | 0 | 1;

/** Three-valued logic: `null` is SQL's unknown (a comparison with null). */
type Truth = boolean | null;

/** A JSON object. */
type JsonObject = { [key: string]: Json };

function invalid(message: string): ReadError {
  return new ReadError(message);
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value of `key` in `value` when it is an object holding that key (not inherited). */
function get(value: Json | undefined, key: string): Json | undefined {
  if (!isObject(value) || !Object.prototype.hasOwnProperty.call(value, key)) {
    return undefined;
  }
  return value[key];
}

/** `get`, with a JSON null (or an undefined entry) as missing. */
function present(value: Json | undefined, key: string): Json | undefined {
  const found = get(value, key);
  return found === null ? undefined : found;
}

// ---------------------------------------------------------------------------------------------
// Text and number forms
// ---------------------------------------------------------------------------------------------

/** Orders texts as Rust orders `String`s: by their UTF-8 bytes, that is by code point. */
function byteOrder(a: string, b: string): Ordering {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      // UTF-16 puts the surrogates (code points above U+FFFF) below U+E000–U+FFFF: lift them.
      x = x >= 0xd800 && x <= 0xdfff ? x + 0x2000 : x >= 0xe000 ? x - 0x800 : x;
      y = y >= 0xd800 && y <= 0xdfff ? y + 0x2000 : y >= 0xe000 ? y - 0x800 : y;
      return x < y ? -1 : 1;
    }
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/** A floating-point number as serde_json writes it (shortest digits; fixed notation for
 * exponents -5 to 15, else `d.ddde+N`). */
function floatText(n: number): string {
  if (!Number.isFinite(n)) {
    return String(n);
  }
  const sign = n < 0 || Object.is(n, -0) ? '-' : '';
  const abs = Math.abs(n);
  if (abs === 0) {
    return `${sign}0.0`;
  }
  const [mantissa, exponentText] = abs.toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const exponent = Number(exponentText);
  let body: string;
  if (exponent >= -5 && exponent <= 15) {
    if (digits.length - 1 <= exponent) {
      body = `${digits}${'0'.repeat(exponent + 1 - digits.length)}.0`;
    } else if (exponent >= 0) {
      body = `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
    } else {
      body = `0.${'0'.repeat(-exponent - 1)}${digits}`;
    }
  } else {
    const rest = digits.length > 1 ? `.${digits.slice(1)}` : '';
    body = `${digits[0]}${rest}e${exponent < 0 ? '-' : '+'}${Math.abs(exponent)}`;
  }
  return sign + body;
}

/** A JSON number's text, as serde_json writes it (see the module's note on integers). */
function numberText(n: number): string {
  if (Number.isInteger(n) && !Object.is(n, -0) && n >= -(2 ** 63) && n < 2 ** 64) {
    return BigInt(n).toString();
  }
  return floatText(n);
}

/** A value as serde_json writes it compactly (object keys in byte order, as its `Map` holds
 * them). */
function jsonText(value: Json): string {
  if (value === null) {
    return 'null';
  }
  if (typeof value === 'boolean') {
    return value ? 'true' : 'false';
  }
  if (typeof value === 'number') {
    return numberText(value);
  }
  if (typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(jsonText).join(',')}]`;
  }
  const keys = Object.keys(value).sort(byteOrder);
  return `{${keys.map((key) => `${JSON.stringify(key)}:${jsonText(value[key] as Json)}`).join(',')}}`;
}

/** Whether two values are equal as serde_json's values are. */
function jsonEqual(a: Json, b: Json): boolean {
  if (typeof a === 'number' && typeof b === 'number') {
    // serde_json tells integers from floating-point numbers.
    return a === b && isInteger(a) === isInteger(b);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i] as Json))
    );
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) {
      return false;
    }
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((key) => Object.prototype.hasOwnProperty.call(b, key) && jsonEqual(a[key] as Json, b[key] as Json))
    );
  }
  return a === b;
}

/** Whether serde_json would hold the number as an integer. */
function isInteger(n: number): boolean {
  return Number.isInteger(n) && !Object.is(n, -0) && n >= -(2 ** 63) && n < 2 ** 64;
}

// ---------------------------------------------------------------------------------------------
// Decimals and instants
// ---------------------------------------------------------------------------------------------

/** A decimal number's text, made comparable: sign, whole digits without leading zeros and
 * fraction digits without trailing zeros. */
interface Decimal {
  negative: boolean;
  whole: string;
  fraction: string;
}

const DIGITS = /^[0-9]*$/;

/** A text such as `-10.50` as a decimal (`null` when it is not one: no exponent, no `+`, no
 * leading or trailing `.`). */
function parseDecimal(text: string): Decimal | null {
  const negative = text.startsWith('-');
  const digits = negative ? text.slice(1) : text;
  const dot = digits.indexOf('.');
  const whole = dot < 0 ? digits : digits.slice(0, dot);
  const fraction = dot < 0 ? '' : digits.slice(dot + 1);
  if (whole === '' || !DIGITS.test(whole) || !DIGITS.test(fraction) || digits.endsWith('.')) {
    return null;
  }
  const trimmedWhole = whole.replace(/^0+/, '');
  const trimmedFraction = fraction.replace(/0+$/, '');
  const zero = trimmedWhole === '' && trimmedFraction === '';
  return { negative: negative && !zero, whole: trimmedWhole, fraction: trimmedFraction };
}

/** A number, or a text that is a decimal number, as a decimal. */
function decimalOf(value: Json): Decimal | null {
  if (typeof value === 'number') {
    return parseDecimal(numberText(value));
  }
  if (typeof value === 'string') {
    return parseDecimal(value);
  }
  return null;
}

/** Plain (ASCII) text order, for digits. */
function plainOrder(a: string, b: string): Ordering {
  return a < b ? -1 : a > b ? 1 : 0;
}

function magnitude(a: Decimal, b: Decimal): Ordering {
  if (a.whole.length !== b.whole.length) {
    return a.whole.length < b.whole.length ? -1 : 1;
  }
  return plainOrder(a.whole, b.whole) || plainOrder(a.fraction, b.fraction);
}

function compareDecimals(a: Decimal, b: Decimal): Ordering {
  if (a.negative !== b.negative) {
    return a.negative ? -1 : 1;
  }
  return a.negative ? magnitude(b, a) : magnitude(a, b);
}

/** The shortest text (Kith's normalized decimal): `10.50` → `10.5`, `-0` → `0`. */
function decimalText(d: Decimal): string {
  const sign = d.negative ? '-' : '';
  const whole = d.whole === '' ? '0' : d.whole;
  return d.fraction === '' ? `${sign}${whole}` : `${sign}${whole}.${d.fraction}`;
}

/** An RFC 3339 UTC instant (`2026-01-05T09:00:00Z`, any fraction up to 9 digits, or
 * `+00:00`) as Kith writes it, with microseconds: `2026-01-05T09:00:00.000000Z`. Digits past
 * the sixth are dropped, not rounded. */
function instant(text: string): string | null {
  let body: string;
  if (text.endsWith('Z')) {
    body = text.slice(0, -1);
  } else if (text.endsWith('+00:00')) {
    body = text.slice(0, -6);
  } else {
    return null;
  }
  const dot = body.indexOf('.');
  const seconds = dot < 0 ? body : body.slice(0, dot);
  const fraction = dot < 0 ? '' : body.slice(dot + 1);
  if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$/.test(seconds)) {
    return null;
  }
  if (!DIGITS.test(fraction) || fraction.length > 9) {
    return null;
  }
  return `${seconds}.${(fraction + '000000').slice(0, 6)}Z`;
}

/** How two non-null values compare; `null` when they cannot be (a text and a boolean). */
function compare(a: Json, b: Json): Ordering | null {
  const x = decimalOf(a);
  const y = decimalOf(b);
  if (x !== null && y !== null) {
    return compareDecimals(x, y);
  }
  if (typeof a === 'string' && typeof b === 'string') {
    const i = instant(a);
    const j = instant(b);
    return i !== null && j !== null ? byteOrder(i, j) : byteOrder(a, b);
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') {
    return a === b ? 0 : a ? 1 : -1;
  }
  return null;
}

/** Whether two non-null values are equal: by `compare` when they compare, else as JSON. */
function equal(a: Json, b: Json): boolean {
  const ordering = compare(a, b);
  return ordering === null ? jsonEqual(a, b) : ordering === 0;
}

/** A value as one text (for group keys, distinct counts and aggregate answers): decimals and
 * instants as Kith writes them, `undefined` for null. */
function canonical(value: Json): string | undefined {
  if (value === null) {
    return undefined;
  }
  if (typeof value === 'string') {
    const decimal = parseDecimal(value);
    if (decimal !== null) {
      return decimalText(decimal);
    }
    return instant(value) ?? value;
  }
  if (typeof value === 'number') {
    const decimal = parseDecimal(numberText(value));
    return decimal !== null ? decimalText(decimal) : numberText(value);
  }
  return jsonText(value);
}

/** Texts as `compare` orders the values they stand for. */
function compareText(a: string, b: string): Ordering {
  return compare(a, b) ?? byteOrder(a, b);
}

// ---------------------------------------------------------------------------------------------
// Sorting as Rust's `sort_by` does
// ---------------------------------------------------------------------------------------------

/**
 * Sorts `items` in place, stably, as Rust's `slice::sort_by` does. Up to 20 items Rust sorts by
 * insertion, and so does this: the same answer even where `order` is not a consistent order
 * (texts that are and are not numbers, mixed). Longer lists are merge sorted, which agrees
 * with Rust wherever `order` is consistent.
 */
function sortBy<T>(items: T[], order: (a: T, b: T) => Ordering): void {
  const less = (a: T, b: T): boolean => order(a, b) < 0;
  if (items.length <= 20) {
    for (let i = 1; i < items.length; i++) {
      const item = items[i] as T;
      let j = i;
      while (j > 0 && less(item, items[j - 1] as T)) {
        items[j] = items[j - 1] as T;
        j--;
      }
      items[j] = item;
    }
    return;
  }
  const sorted = mergeSort(items, less);
  for (let i = 0; i < items.length; i++) {
    items[i] = sorted[i] as T;
  }
}

function mergeSort<T>(items: T[], less: (a: T, b: T) => boolean): T[] {
  if (items.length <= 1) {
    return items.slice();
  }
  const middle = items.length >> 1;
  const left = mergeSort(items.slice(0, middle), less);
  const right = mergeSort(items.slice(middle), less);
  const out: T[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length && j < right.length) {
    if (less(right[j] as T, left[i] as T)) {
      out.push(right[j++] as T);
    } else {
      out.push(left[i++] as T);
    }
  }
  while (i < left.length) {
    out.push(left[i++] as T);
  }
  while (j < right.length) {
    out.push(right[j++] as T);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

/** How many more conditions a filter may hold. */
interface Budget {
  left: number;
}

/** Checks `filter` as Kith checks one before reading anything (every field null: every
 * argument is checked, no branch is skipped), and answers it (`null` matches everything). */
function parseFilter(filter: Json | undefined): Json | null {
  if (filter === undefined || filter === null) {
    return null;
  }
  evaluate(filter, null, 0, { left: MAX_CONDITIONS });
  return filter;
}

/** Whether the checked `filter` holds (is true, not false or unknown) for `fields`. */
function matches(filter: Json | null, fields: Json): boolean {
  if (filter === null) {
    return true;
  }
  return evaluate(filter, fields, 0, { left: MAX_CONDITIONS }) === true;
}

function and(values: Truth[]): Truth {
  let out: Truth = true;
  for (const value of values) {
    if (value === false) {
      return false;
    }
    if (value === null) {
      out = null;
    }
  }
  return out;
}

function or(values: Truth[]): Truth {
  let out: Truth = false;
  for (const value of values) {
    if (value === true) {
      return true;
    }
    if (value === null) {
      out = null;
    }
  }
  return out;
}

/** Evaluates every part (no short cut, so every part is checked). */
function evaluate(filter: Json, fields: Json, depth: number, budget: Budget): Truth {
  if (depth > MAX_DEPTH) {
    throw invalid(`a filter is nested deeper than ${MAX_DEPTH} levels`);
  }
  if (filter === null) {
    return true;
  }
  if (!isObject(filter)) {
    throw invalid('a filter is a JSON object');
  }
  const parts: Truth[] = [];
  for (const key of Object.keys(filter)) {
    const value = filter[key] as Json;
    if (key === 'and' || key === 'or') {
      if (!Array.isArray(value)) {
        throw invalid(`\`${key}\` takes a list of filters`);
      }
      const values = value.map((item) => evaluate(item, fields, depth + 1, budget));
      parts.push(key === 'and' ? and(values) : or(values));
    } else if (key === 'not') {
      const inner = evaluate(value, fields, depth + 1, budget);
      parts.push(inner === null ? null : !inner);
    } else if (key === 'customFields') {
      // Custom fields, as Kith filters them: `{"customFields": {"tier": {"eq": "Gold"}}}`.
      if (!isObject(value)) {
        throw invalid('`customFields` takes an object of custom keys');
      }
      const stored = get(fields, 'customFields');
      const values = Object.keys(value).map((custom) =>
        conditions(get(stored, custom), value[custom] as Json, `customFields.${custom}`, budget),
      );
      parts.push(and(values));
    } else {
      parts.push(conditions(get(fields, key), value, key, budget));
    }
  }
  return and(parts);
}

/** The operators `ops` on one field's `value`. */
function conditions(value: Json | undefined, ops: Json, field: string, budget: Budget): Truth {
  if (!isObject(ops)) {
    throw invalid(`\`${field}\` needs an object of operators`);
  }
  const names = Object.keys(ops);
  if (names.length === 0) {
    throw invalid(`\`${field}\` needs at least one operator`);
  }
  const given = value === null ? undefined : value;
  const parts: Truth[] = [];
  for (const op of names) {
    if (budget.left === 0) {
      throw invalid(`a filter has more than ${MAX_CONDITIONS} conditions`);
    }
    budget.left--;
    parts.push(condition(given, op, ops[op] as Json, field));
  }
  return and(parts);
}

/** One comparison (`value` undefined: null). Its argument is checked first, whatever the
 * value. */
function condition(value: Json | undefined, op: string, arg: Json, field: string): Truth {
  const scalar = (item: Json): void => {
    if (item === null) {
      throw invalid(`\`${field}.${op}\` must not be null (use isNull)`);
    }
    if (typeof item === 'object') {
      throw invalid(`\`${field}.${op}\` takes a value`);
    }
  };
  const pattern = (item: Json): string => {
    if (typeof item !== 'string') {
      throw invalid(`\`${field}.${op}\` takes a string pattern`);
    }
    if (value !== undefined && typeof value !== 'string') {
      throw invalid(`\`${field}\`: only text fields support pattern operators`);
    }
    return item;
  };
  switch (op) {
    case 'eq':
    case 'neq':
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      scalar(arg);
      if (value === undefined) {
        return null;
      }
      if (op === 'eq') {
        return equal(value, arg);
      }
      if (op === 'neq') {
        return !equal(value, arg);
      }
      const ordering = compare(value, arg);
      if (ordering === null) {
        return false;
      }
      return op === 'lt' ? ordering < 0 : op === 'lte' ? ordering <= 0 : op === 'gt' ? ordering > 0 : ordering >= 0;
    }
    case 'in':
    case 'notIn': {
      if (!Array.isArray(arg)) {
        throw invalid(`\`${field}.${op}\` takes a list`);
      }
      if (arg.length > MAX_IN_VALUES) {
        throw invalid(`\`${field}.${op}\` has more than ${MAX_IN_VALUES} values`);
      }
      arg.forEach(scalar);
      if (value === undefined) {
        // `1 = 0` and `IS NOT NULL` in Kith's SQL: never unknown.
        return arg.length === 0 ? false : null;
      }
      const found = arg.some((item) => equal(value, item));
      return op === 'in' ? found : !found;
    }
    case 'startsWith': {
      const prefix = pattern(arg).toLowerCase();
      return value === undefined ? null : textOf(value).toLowerCase().startsWith(prefix);
    }
    case 'like': {
      const text = pattern(arg);
      return value === undefined ? null : like(textOf(value), text);
    }
    case 'ilike': {
      const text = pattern(arg).toLowerCase();
      return value === undefined ? null : like(textOf(value).toLowerCase(), text);
    }
    case 'isNull': {
      if (typeof arg !== 'boolean') {
        throw invalid(`\`${field}.isNull\` takes true or false`);
      }
      return arg === (value === undefined);
    }
    default:
      throw invalid(
        `unknown operator \`${op}\` (eq, neq, in, notIn, lt, lte, gt, gte, like, ilike, startsWith, isNull)`,
      );
  }
}

/** A value as text: a text as itself, anything else as JSON. */
function textOf(value: Json): string {
  return typeof value === 'string' ? value : jsonText(value);
}

/** One piece of a `LIKE` pattern: `%` (any run of characters), `_` (one character), or a
 * character (`\x` is `x`). */
type Like = { kind: 'any' } | { kind: 'one' } | { kind: 'char'; char: string };

/** SQL `LIKE` with `ESCAPE '\'`: `%` any run of characters, `_` one, `\` makes the next one
 * literal. Characters are code points. */
function like(text: string, pattern: string): boolean {
  const chars = Array.from(pattern);
  const tokens: Like[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] as string;
    if (c === '%') {
      tokens.push({ kind: 'any' });
    } else if (c === '_') {
      tokens.push({ kind: 'one' });
    } else if (c === '\\') {
      i++;
      tokens.push({ kind: 'char', char: i < chars.length ? (chars[i] as string) : '\\' });
    } else {
      tokens.push({ kind: 'char', char: c });
    }
  }
  // Positions of the pattern reachable after each character of the text.
  const close = (at: boolean[]): void => {
    for (let i = 0; i < tokens.length; i++) {
      if (at[i] && (tokens[i] as Like).kind === 'any') {
        at[i + 1] = true;
      }
    }
  };
  let at: boolean[] = new Array<boolean>(tokens.length + 1).fill(false);
  at[0] = true;
  close(at);
  for (const c of text) {
    const next: boolean[] = new Array<boolean>(tokens.length + 1).fill(false);
    tokens.forEach((token, i) => {
      if (!at[i]) {
        return;
      }
      if (token.kind === 'any') {
        next[i] = true;
      } else if (token.kind === 'one' || token.char === c) {
        next[i + 1] = true;
      }
    });
    close(next);
    at = next;
  }
  return at[tokens.length] === true;
}

// ---------------------------------------------------------------------------------------------
// Sort orders and record queries
// ---------------------------------------------------------------------------------------------

/** One sort key of `orderBy`. */
interface SortKey {
  field: string;
  descending: boolean;
  nullsFirst: boolean;
}

/** A sort order, checked as Kith checks one: a list of at most 5 `{field, direction, nulls}`
 * (`direction` ASC or DESC, `nulls` FIRST or LAST, either in lower case too; a `direction` or
 * `nulls` that is not a text counts as missing). */
function parseOrder(orderBy: Json | undefined): SortKey[] {
  if (orderBy === undefined || orderBy === null) {
    return [];
  }
  if (!Array.isArray(orderBy) || orderBy.length > MAX_SORT_KEYS) {
    throw invalid(`orderBy is a list of at most ${MAX_SORT_KEYS} sort keys`);
  }
  return orderBy.map((item) => {
    if (!isObject(item)) {
      throw invalid('a sort key is {field, direction, nulls}');
    }
    for (const key of Object.keys(item)) {
      if (key !== 'field' && key !== 'direction' && key !== 'nulls') {
        throw invalid(
          key === 'customField' ? 'the test host does not sort by custom fields' : `orderBy.${key}: unknown key`,
        );
      }
    }
    const direction = get(item, 'direction');
    let descending: boolean;
    switch (typeof direction === 'string' ? direction : 'ASC') {
      case 'ASC':
      case 'asc':
        descending = false;
        break;
      case 'DESC':
      case 'desc':
        descending = true;
        break;
      default:
        throw invalid(`orderBy.direction: \`${String(direction)}\` is not ASC or DESC`);
    }
    const nulls = get(item, 'nulls');
    let nullsFirst: boolean;
    if (typeof nulls !== 'string') {
      nullsFirst = descending;
    } else if (nulls === 'FIRST' || nulls === 'first') {
      nullsFirst = true;
    } else if (nulls === 'LAST' || nulls === 'last') {
      nullsFirst = false;
    } else {
      throw invalid(`orderBy.nulls: \`${nulls}\` is not FIRST or LAST`);
    }
    const field = get(item, 'field');
    if (typeof field !== 'string') {
      throw invalid('orderBy.field is required');
    }
    return { field, descending, nullsFirst };
  });
}

/** A record's id as text, for the tie-break. */
function idOf(record: JsonObject): string {
  const id = get(record, 'id');
  return typeof id === 'string' ? id : id === undefined ? '' : jsonText(id);
}

/** Sorts as Kith does: each key with its null placement (by default nulls last ascending,
 * first descending), then the id in the last key's direction (records made earlier have
 * smaller ids in both hosts), so the order is total. */
function sortRecords(keys: SortKey[], records: JsonObject[]): void {
  const idDescending = keys.length > 0 && (keys[keys.length - 1] as SortKey).descending;
  sortBy(records, (a, b) => {
    for (const key of keys) {
      const x = present(a, key.field);
      const y = present(b, key.field);
      let ordering: Ordering;
      if (x === undefined && y === undefined) {
        ordering = 0;
      } else if (x === undefined) {
        ordering = key.nullsFirst ? -1 : 1;
      } else if (y === undefined) {
        ordering = key.nullsFirst ? 1 : -1;
      } else {
        const compared = compare(x, y) ?? byteOrder(jsonText(x), jsonText(y));
        ordering = key.descending ? ((-compared) as Ordering) : compared;
      }
      if (ordering !== 0) {
        return ordering;
      }
    }
    const ordering = byteOrder(idOf(a), idOf(b));
    return idDescending ? ((-ordering) as Ordering) : ordering;
  });
}

/**
 * The records (field objects in insertion order; each holds "id" and its fields) that `filter`
 * (parsed JSON, or undefined/null for all) matches, sorted by `orderBy` (parsed JSON list of
 * {field, direction, nulls}, or undefined/null: insertion order), as Kith returns them.
 * Throws ReadError.
 *
 * As in the Rust host, the final tie-break (and the whole order without `orderBy`) is the
 * records' `id` texts in byte order, which is insertion order for the test host's ids
 * (`00000000-0000-7000-8000-000000000001`, …). The records answered are the objects given.
 */
export function select(
  records: Array<{ [key: string]: Json }>,
  filter: Json | undefined,
  orderBy: Json | undefined,
): Array<{ [key: string]: Json }> {
  const checked = parseFilter(filter);
  const keys = parseOrder(orderBy);
  const matching = records.filter((record) => matches(checked, record));
  sortRecords(keys, matching);
  return matching;
}

// ---------------------------------------------------------------------------------------------
// Aggregates
// ---------------------------------------------------------------------------------------------

/** Date buckets (weeks start on Monday; UTC). A bucket's key is its first day (`2026-03-01`). */
export type Bucket = 'day' | 'week' | 'month' | 'year';

/** What to compute: a count of records (or, on a field, of its values), an exact sum, the
 * smallest or largest value, or how many different values. */
export type MetricKind = 'count' | 'sum' | 'min' | 'max' | 'count-distinct';

/** An aggregate query: up to 3 group keys, 1 to 10 metrics (each but `count` on a field),
 * at most `limit` groups (1 to 100,000; the Rust SDK's default is 10,000), ordered by their
 * keys (missing keys first) or by metric `order.metric`. */
export interface AggregateRequest {
  filter?: Json;
  groupBy: Array<{ field: string; bucket?: Bucket }>;
  metrics: Array<{ kind: MetricKind; field?: string }>;
  limit: number;
  order?: { metric: number; descending: boolean };
}

/** One group: its keys as text in `groupBy` order (`undefined`: the records have no value),
 * and its metrics as text in request order (counts and sums exactly, minimums and maximums in
 * the field's GraphQL form; `undefined`: no value). */
export interface Row {
  keys: Array<string | undefined>;
  values: Array<string | undefined>;
}

const BUCKETS: readonly string[] = ['day', 'week', 'month', 'year'];
const METRICS: readonly string[] = ['count', 'sum', 'min', 'max', 'count-distinct'];

/** Rows as Kith's aggregate answers them. Throws ReadError. */
export function aggregate(records: Array<{ [key: string]: Json }>, request: AggregateRequest): Row[] {
  const { groupBy, metrics, limit, order } = request;
  if (metrics.length === 0 || metrics.length > MAX_METRICS) {
    throw invalid(`ask for 1 to ${MAX_METRICS} metrics`);
  }
  if (groupBy.length > MAX_GROUP_KEYS) {
    throw invalid(`at most ${MAX_GROUP_KEYS} group keys`);
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_GROUPS) {
    throw invalid(`limit must be between 1 and ${MAX_GROUPS}`);
  }
  if (order !== undefined && order !== null) {
    if (!Number.isInteger(order.metric) || order.metric < 0 || order.metric >= metrics.length) {
      throw invalid(`there is no metric ${order.metric}`);
    }
  }
  for (const { kind, field } of metrics) {
    if (!METRICS.includes(kind)) {
      throw invalid(`no metric \`${String(kind)}\``);
    }
    if (kind !== 'count' && field === undefined) {
      throw invalid(`${kind} names a field`);
    }
  }
  for (const { bucket } of groupBy) {
    if (bucket !== undefined && !BUCKETS.includes(bucket)) {
      throw invalid(`no bucket \`${String(bucket)}\``);
    }
  }
  const filter = parseFilter(request.filter);

  const groups: Array<{ keys: Array<string | undefined>; members: JsonObject[] }> = [];
  const index = new Map<string, number>();
  for (const record of records) {
    if (!matches(filter, record)) {
      continue;
    }
    const keys = groupBy.map(({ field, bucket }) => {
      const text = canonical(get(record, field) ?? null);
      return bucket !== undefined && text !== undefined ? bucketStart(text, bucket) : text;
    });
    const name = JSON.stringify(keys.map((key) => key ?? null));
    const at = index.get(name);
    if (at === undefined) {
      index.set(name, groups.length);
      groups.push({ keys, members: [record] });
    } else {
      (groups[at] as { members: JsonObject[] }).members.push(record);
    }
  }
  // Without group keys the database answers one row, even over no records.
  if (groupBy.length === 0 && groups.length === 0) {
    groups.push({ keys: [], members: [] });
  }
  // By the keys, missing keys first.
  sortBy(groups, (a, b) => {
    for (let i = 0; i < Math.min(a.keys.length, b.keys.length); i++) {
      const x = a.keys[i];
      const y = b.keys[i];
      const ordering: Ordering =
        x === undefined ? (y === undefined ? 0 : -1) : y === undefined ? 1 : compareText(x, y);
      if (ordering !== 0) {
        return ordering;
      }
    }
    return 0;
  });

  const rows: Row[] = groups.map(({ keys, members }) => {
    const values = metrics.map(({ kind, field }): string | undefined => {
      const fieldValues: Json[] = [];
      if (field !== undefined) {
        for (const member of members) {
          const value = present(member, field);
          if (value !== undefined) {
            fieldValues.push(value);
          }
        }
      }
      if ((kind === 'min' || kind === 'max') && fieldValues.some((v) => typeof v === 'boolean')) {
        throw invalid(`\`${field ?? ''}\` has no order`);
      }
      const texts = fieldValues.map((v) => canonical(v) as string);
      switch (kind) {
        case 'count':
          return String(field === undefined ? members.length : texts.length);
        case 'count-distinct':
          return String(new Set(texts).size);
        case 'sum':
          return sumExact(texts);
        case 'min':
          // Rust's `min_by`: the first of equal least values.
          return texts.length === 0 ? undefined : texts.reduce((x, y) => (compareText(x, y) > 0 ? y : x));
        case 'max':
          // Rust's `max_by`: the last of equal greatest values.
          return texts.length === 0 ? undefined : texts.reduce((x, y) => (compareText(x, y) > 0 ? x : y));
      }
    });
    return { keys, values };
  });

  if (order !== undefined && order !== null) {
    const at = order.metric;
    // Stable: ties keep their key order. Missing values last, either way.
    sortBy(rows, (a, b) => {
      const x = a.values[at];
      const y = b.values[at];
      if (x !== undefined && y !== undefined) {
        return order.descending ? compareText(y, x) : compareText(x, y);
      }
      return x === undefined ? (y === undefined ? 0 : 1) : -1;
    });
  }
  return rows.slice(0, limit);
}

// ---------------------------------------------------------------------------------------------
// Dates and exact sums
// ---------------------------------------------------------------------------------------------

/** A calendar date (proleptic Gregorian). */
interface CalendarDate {
  year: number;
  month: number;
  day: number;
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  switch (month) {
    case 1:
    case 3:
    case 5:
    case 7:
    case 8:
    case 10:
    case 12:
      return 31;
    case 4:
    case 6:
    case 9:
    case 11:
      return 30;
    case 2:
      return isLeap(year) ? 29 : 28;
    default:
      return 0;
  }
}

/** A number as Rust's `str::parse` for integers reads one: an optional `+`, then digits. */
function parseWhole(text: string): number | null {
  return /^\+?[0-9]+$/.test(text) ? Number(text) : null;
}

/** `YYYY-MM-DD`, or the date part of an RFC 3339 instant: the first 10 characters (which must
 * be ASCII), split on `-` into exactly three whole numbers making a date that exists. */
function parseDate(text: string): CalendarDate | null {
  const head = text.slice(0, 10);
  if (head.length < 10 || /[^\x00-\x7f]/.test(head)) {
    return null;
  }
  const parts = head.split('-');
  if (parts.length !== 3) {
    return null;
  }
  const [year, month, day] = parts.map(parseWhole) as [number | null, number | null, number | null];
  if (year === null || month === null || day === null) {
    return null;
  }
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    return null;
  }
  return { year, month, day };
}

function floorDiv(a: number, b: number): number {
  return Math.floor(a / b);
}

/** Days since 1970-01-01 (Howard Hinnant's days-from-civil). */
function daysSinceEpoch({ year, month, day }: CalendarDate): number {
  const y = month <= 2 ? year - 1 : year;
  const era = floorDiv(y, 400);
  const yoe = y - era * 400;
  const doy = Math.trunc((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.trunc(yoe / 4) - Math.trunc(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The date `days` days after 1970-01-01 (Howard Hinnant's civil-from-days). */
function fromDaysSinceEpoch(days: number): CalendarDate {
  const z = days + 719_468;
  const era = floorDiv(z, 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.trunc((doe - Math.trunc(doe / 1460) + Math.trunc(doe / 36_524) - Math.trunc(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.trunc(yoe / 4) - Math.trunc(yoe / 100));
  const mp = Math.trunc((5 * doy + 2) / 153);
  const day = doy - Math.trunc((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

/** `YYYY-MM-DD`, as Rust's `{:04}-{:02}-{:02}` writes it. */
function dateText({ year, month, day }: CalendarDate): string {
  const pad = (n: number, width: number): string =>
    n < 0 ? `-${String(-n).padStart(width - 1, '0')}` : String(n).padStart(width, '0');
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

/** The first day of the bucket holding the date (or RFC 3339 instant) `text`. */
function bucketStart(text: string, bucket: Bucket): string {
  const date = parseDate(text);
  if (date === null) {
    throw invalid(`\`${text}\` is not a date to bucket`);
  }
  switch (bucket) {
    case 'day':
      return dateText(date);
    case 'week': {
      const days = daysSinceEpoch(date);
      // 1970-01-01 was a Thursday.
      const weekday = (((days + 3) % 7) + 7) % 7;
      return dateText(fromDaysSinceEpoch(days - weekday));
    }
    case 'month':
      return dateText({ ...date, day: 1 });
    case 'year':
      return dateText({ year: date.year, month: 1, day: 1 });
  }
}

const SCALE = 9;
const UNIT = 10n ** BigInt(SCALE);
const I128_MAX = 2n ** 127n - 1n;
const I128_MIN = -(2n ** 127n);

/** Sums decimal texts exactly (up to 9 decimal places), as Kith's normalized decimal
 * (`undefined` for no values). Amounts past Rust's 128-bit total are refused. */
function sumExact(values: string[]): string | undefined {
  if (values.length === 0) {
    return undefined;
  }
  const inRange = (n: bigint): boolean => n >= I128_MIN && n <= I128_MAX;
  let total = 0n;
  for (const value of values) {
    const bad = (): ReadError => invalid(`\`${value}\` is not a number to sum`);
    const decimal = parseDecimal(value);
    if (decimal === null || decimal.fraction.length > SCALE) {
      throw bad();
    }
    const whole = decimal.whole === '' ? 0n : BigInt(decimal.whole);
    const fraction = decimal.fraction === '' ? 0n : BigInt(decimal.fraction);
    if (!inRange(whole)) {
      throw bad();
    }
    const scaled = whole * UNIT + fraction * 10n ** BigInt(SCALE - decimal.fraction.length);
    total += decimal.negative ? -scaled : scaled;
    if (!inRange(scaled) || !inRange(total)) {
      throw invalid('the sum is too large');
    }
  }
  const abs = total < 0n ? -total : total;
  const text = `${total < 0n ? '-' : ''}${abs / UNIT}.${(abs % UNIT).toString().padStart(SCALE, '0')}`;
  const decimal = parseDecimal(text);
  return decimal === null ? undefined : decimalText(decimal);
}
