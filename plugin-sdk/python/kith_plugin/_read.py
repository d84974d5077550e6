"""How the test host reads records as Kith does.

This is a port of the Rust SDK's `plugin-sdk/src/testing/read.rs`: the JSON filter language
(with SQL's three-valued logic on null and Kith's limits), sort orders (Kith's null placement
and its `id` tie-break) and aggregates (counts, exact sums, minimums and maximums, grouped by
fields or date buckets), over records held as parsed JSON.

The test host does not know the objects' field kinds, so it compares values by their form:
numbers, and texts that are decimal numbers (`"10.50"`), as numbers; RFC 3339 UTC instants
(`...T09:00:00Z`) as instants; booleans `false` before `true`; other texts in code point order
(which is the byte order of their UTF-8).

Values are taken as the Rust host holds them (serde_json values): an integer that a 64-bit
integer cannot hold is a floating point number there, and a floating point number is written
as serde_json writes it (`1e+16`, `1e-7`, `0.00001`, `100.0`). Kith's conformance table
(`plugin-sdk/conformance/reads.json`) holds this module to the same answers as Kith.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["ReadError", "select", "aggregate"]

MAX_DEPTH = 8
"""Deepest nesting of `and` / `or` / `not` (Kith's `filter::MAX_DEPTH`)."""
MAX_CONDITIONS = 100
"""Most conditions in one filter."""
MAX_IN_VALUES = 500
"""Most values in one `in` / `notIn` list."""
MAX_SORT_KEYS = 5
"""Most sort keys."""
MAX_GROUPS = 100_000
"""Most groups an aggregate returns (its largest `limit`)."""
MAX_METRICS = 10
"""Most metrics in one aggregate."""
MAX_GROUP_KEYS = 3
"""Most group keys in one aggregate."""
SUM_SCALE = 9
"""Decimal places an exact sum keeps."""

_I128_MIN = -(2**127)
_I128_MAX = 2**127 - 1
_U64_MAX = 2**64 - 1
_I64_MIN = -(2**63)
_DIGITS = frozenset("0123456789")

_OPERATORS = "eq, neq, in, notIn, lt, lte, gt, gte, like, ilike, startsWith, isNull"
_BUCKETS = ("day", "week", "month", "year")
_METRICS = ("count", "sum", "min", "max", "count-distinct")


class ReadError(Exception):
    """A read Kith refuses (the test host answers it as host error `invalid-input`); str(err) is the message."""


Truth = Optional[bool]
"""SQL's three-valued logic: True, False, or None for unknown (a comparison with null)."""


# --- Values and their forms ------------------------------------------------------------------


def _is_number(value: object) -> bool:
    """Whether `value` is a JSON number (a bool is not, though Python makes it an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_float(value: object) -> bool:
    """Whether serde_json would hold the number `value` as a floating point number."""
    if isinstance(value, float):
        return True
    return isinstance(value, int) and not isinstance(value, bool) and not _I64_MIN <= value <= _U64_MAX


def _float_text(value: float) -> str:
    """A float as serde_json writes it: the shortest digits that read back, in fixed notation
    when the decimal exponent is -5 to 15 (`0.00001`, `100.0`), else `1.5e+16` / `1e-7`."""
    if not math.isfinite(value):
        return "null"  # serde_json holds no infinities nor NaN: it writes them as null.
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent_text = text.split("e")
    exponent = int(exponent_text)
    if exponent == -5:
        negative = mantissa.startswith("-")
        digits = mantissa.lstrip("-").replace(".", "")
        return ("-" if negative else "") + "0.0000" + digits
    return f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def _number_text(value: int | float) -> str:
    """A JSON number as serde_json writes it (integers beyond 64 bits are floats there)."""
    if isinstance(value, int) and _I64_MIN <= value <= _U64_MAX:
        return str(value)
    try:
        return _float_text(float(value))
    except OverflowError:
        return str(value)


def _escape(text: str) -> str:
    """A JSON string literal as serde_json writes it (only `"`, `\\` and control characters
    escaped)."""
    out = ['"']
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char < " ":
            out.append(
                {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}.get(char, f"\\u{ord(char):04x}")
            )
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _json_text(value: object) -> str:
    """A value as serde_json's compact `to_string` writes it (object keys sorted, as its
    ordered map keeps them)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if _is_number(value):
        return _number_text(value)  # type: ignore[arg-type]
    if isinstance(value, str):
        return _escape(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json_text(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: kv[0])
        return "{" + ",".join(_escape(k) + ":" + _json_text(v) for k, v in items) + "}"
    return _escape(str(value))


def _json_equal(a: object, b: object) -> bool:
    """serde_json's equality: kinds must match (a bool is not a number, an integer is not a
    float), objects compare regardless of key order."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) or _is_number(b):
        if not (_is_number(a) and _is_number(b)):
            return False
        if _is_float(a) != _is_float(b):
            return False
        if _is_float(a):
            return float(a) == float(b)  # type: ignore[arg-type]
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return False


def _ascii_digits(text: str) -> bool:
    """Whether every character of `text` is an ASCII digit (true for an empty text)."""
    return all(c in _DIGITS for c in text)


@dataclass(frozen=True)
class _Decimal:
    """A decimal number's text, made comparable: sign, whole digits without leading zeros and
    fraction digits without trailing zeros."""

    negative: bool
    whole: str
    fraction: str

    @staticmethod
    def parse(text: str) -> _Decimal | None:
        """`-?digits(.digits)?`, or None for any other text (`1.`, `.5`, `+1`, `1e3`)."""
        negative = text.startswith("-")
        digits = text[1:] if negative else text
        whole, dot, fraction = digits.partition(".")
        if not whole or not _ascii_digits(whole) or not _ascii_digits(fraction) or digits.endswith("."):
            return None
        whole = whole.lstrip("0")
        fraction = fraction.rstrip("0")
        zero = not whole and not fraction
        return _Decimal(negative and not zero, whole, fraction)

    @staticmethod
    def of(value: object) -> _Decimal | None:
        """A number, or a text that is a decimal number, as a decimal; None for anything else."""
        if _is_number(value):
            return _Decimal.parse(_number_text(value))  # type: ignore[arg-type]
        if isinstance(value, str):
            return _Decimal.parse(value)
        return None

    def _magnitude(self, other: _Decimal) -> int:
        """How the absolute values compare (-1, 0 or 1)."""
        for x, y in ((len(self.whole), len(other.whole)), (self.whole, other.whole), (self.fraction, other.fraction)):
            if x != y:
                return -1 if x < y else 1  # type: ignore[operator]
        return 0

    def cmp(self, other: _Decimal) -> int:
        """How the numbers compare (-1, 0 or 1)."""
        if not self.negative and not other.negative:
            return self._magnitude(other)
        if self.negative and other.negative:
            return other._magnitude(self)
        return -1 if self.negative else 1

    def text(self) -> str:
        """The shortest text (Kith's normalized decimal): `10.50` is `10.5`, `-0` is `0`."""
        sign = "-" if self.negative else ""
        whole = self.whole or "0"
        return f"{sign}{whole}.{self.fraction}" if self.fraction else f"{sign}{whole}"


def _instant(text: str) -> str | None:
    """An RFC 3339 UTC instant (`2026-01-05T09:00:00Z`, any fraction up to 9 digits, or
    `+00:00`) as Kith writes it, with microseconds (`2026-01-05T09:00:00.000000Z`); None for
    any other text."""
    if text.endswith("Z"):
        body = text[:-1]
    elif text.endswith("+00:00"):
        body = text[:-6]
    else:
        return None
    seconds, _, fraction = body.partition(".")
    shape = len(seconds) == 19 and all(
        c == "-" if i in (4, 7) else c == "T" if i == 10 else c == ":" if i in (13, 16) else c in _DIGITS
        for i, c in enumerate(seconds)
    )
    if not shape or not _ascii_digits(fraction) or len(fraction) > 9:
        return None
    micros = (fraction + "000000")[:6]
    return f"{seconds}.{micros}Z"


def _sign(x: Any, y: Any) -> int:
    """-1, 0 or 1 as `x` is less than, equal to or greater than `y`."""
    return (x > y) - (x < y)


def compare(a: object, b: object) -> int | None:
    """How two non-null values compare (-1, 0 or 1); None when they cannot be (a text and a
    boolean, a number and a text that is not a number)."""
    x, y = _Decimal.of(a), _Decimal.of(b)
    if x is not None and y is not None:
        return x.cmp(y)
    if isinstance(a, str) and isinstance(b, str):
        i, j = _instant(a), _instant(b)
        if i is not None and j is not None:
            return _sign(i, j)
        return _sign(a, b)
    if isinstance(a, bool) and isinstance(b, bool):
        return _sign(a, b)
    return None


def _equal(a: object, b: object) -> bool:
    """Equal as compared by form, else as JSON."""
    ordering = compare(a, b)
    if ordering is not None:
        return ordering == 0
    return _json_equal(a, b)


def canonical(value: object) -> str | None:
    """A value as one text (for group keys, distinct counts and aggregate answers): decimals and
    instants as Kith writes them, None for null."""
    if value is None:
        return None
    if isinstance(value, str):
        decimal = _Decimal.parse(value)
        if decimal is not None:
            return decimal.text()
        instant = _instant(value)
        return instant if instant is not None else value
    if _is_number(value):
        text = _number_text(value)  # type: ignore[arg-type]
        decimal = _Decimal.parse(text)
        return decimal.text() if decimal is not None else text
    return _json_text(value)


def _compare_text(a: str, b: str) -> int:
    """Texts as `compare` orders the values they stand for."""
    ordering = compare(a, b)
    return ordering if ordering is not None else _sign(a, b)


# --- Filters ---------------------------------------------------------------------------------


def _and(values: Iterable[Truth]) -> Truth:
    """SQL AND: false if any is false, else unknown if any is unknown, else true."""
    out: Truth = True
    for value in values:
        if value is False:
            return False
        if value is None:
            out = None
    return out


def _or(values: Iterable[Truth]) -> Truth:
    """SQL OR: true if any is true, else unknown if any is unknown, else false."""
    out: Truth = False
    for value in values:
        if value is True:
            return True
        if value is None:
            out = None
    return out


class _Budget:
    """How many more conditions a filter may hold."""

    def __init__(self) -> None:
        self.left = MAX_CONDITIONS

    def spend(self) -> None:
        """Counts one condition; refuses the filter past the limit."""
        if self.left == 0:
            raise ReadError(f"a filter has more than {MAX_CONDITIONS} conditions")
        self.left -= 1


def _eval(filter: object, fields: dict | None, depth: int, budget: _Budget) -> Truth:
    """Evaluates every part of `filter` over `fields` (no short cut, so that every part is
    checked); `fields` None stands for a record whose every field is null."""
    if depth > MAX_DEPTH:
        raise ReadError(f"a filter is nested deeper than {MAX_DEPTH} levels")
    if filter is None:
        return True
    if not isinstance(filter, dict):
        raise ReadError("a filter is a JSON object")
    parts: list[Truth] = []
    for key, value in filter.items():
        if key in ("and", "or"):
            if not isinstance(value, list):
                raise ReadError(f"`{key}` takes a list of filters")
            values = [_eval(item, fields, depth + 1, budget) for item in value]
            part = _and(values) if key == "and" else _or(values)
        elif key == "not":
            inner = _eval(value, fields, depth + 1, budget)
            part = None if inner is None else not inner
        elif key == "customFields":
            # Custom fields, as Kith filters them: `{"customFields": {"tier": {"eq": "Gold"}}}`.
            if not isinstance(value, dict):
                raise ReadError("`customFields` takes an object of custom keys")
            stored = fields.get("customFields") if fields is not None else None
            values = []
            for custom, ops in value.items():
                here = stored.get(custom) if isinstance(stored, dict) else None
                values.append(_conditions(here, ops, f"customFields.{custom}", budget))
            part = _and(values)
        else:
            part = _conditions(fields.get(key) if fields is not None else None, value, key, budget)
        parts.append(part)
    return _and(parts)


def _conditions(value: object, ops: object, field: str, budget: _Budget) -> Truth:
    """The operators of one field, all of which must hold."""
    if not isinstance(ops, dict):
        raise ReadError(f"`{field}` needs an object of operators")
    if not ops:
        raise ReadError(f"`{field}` needs at least one operator")
    parts: list[Truth] = []
    for op, arg in ops.items():
        budget.spend()
        parts.append(_condition(value, op, arg, field))
    return _and(parts)


def _check_scalar(arg: object, field: str, op: str) -> None:
    """Refuses a comparison argument that is null, a list or an object."""
    if arg is None:
        raise ReadError(f"`{field}.{op}` must not be null (use isNull)")
    if isinstance(arg, (list, tuple, dict)):
        raise ReadError(f"`{field}.{op}` takes a value")


def _condition(value: object, op: str, arg: object, field: str) -> Truth:
    """One comparison of `value` (None: null). Its argument is checked first, whatever the
    value."""

    def pattern() -> str:
        if not isinstance(arg, str):
            raise ReadError(f"`{field}.{op}` takes a string pattern")
        if value is not None and not isinstance(value, str):
            raise ReadError(f"`{field}`: only text fields support pattern operators")
        return arg

    if op in ("eq", "neq", "lt", "lte", "gt", "gte"):
        _check_scalar(arg, field, op)
        if value is None:
            return None
        if op == "eq":
            return _equal(value, arg)
        if op == "neq":
            return not _equal(value, arg)
        ordering = compare(value, arg)
        if op == "lt":
            return ordering == -1
        if op == "lte":
            return ordering in (-1, 0)
        if op == "gt":
            return ordering == 1
        return ordering in (1, 0)
    if op in ("in", "notIn"):
        if not isinstance(arg, list):
            raise ReadError(f"`{field}.{op}` takes a list")
        if len(arg) > MAX_IN_VALUES:
            raise ReadError(f"`{field}.{op}` has more than {MAX_IN_VALUES} values")
        for item in arg:
            _check_scalar(item, field, op)
        if value is None:
            # `1 = 0` and `IS NOT NULL` in Kith's SQL: never unknown.
            return False if not arg else None
        found = any(_equal(value, item) for item in arg)
        return found if op == "in" else not found
    if op == "startsWith":
        prefix = pattern().lower()
        return None if value is None else str(value).lower().startswith(prefix)
    if op == "like":
        text = pattern()
        return None if value is None else _like(str(value), text)
    if op == "ilike":
        text = pattern().lower()
        return None if value is None else _like(str(value).lower(), text)
    if op == "isNull":
        if not isinstance(arg, bool):
            raise ReadError(f"`{field}.isNull` takes true or false")
        return arg == (value is None)
    raise ReadError(f"unknown operator `{op}` ({_OPERATORS})")


_ANY = object()
"""`%` in a LIKE pattern: any run of characters."""
_ONE = object()
"""`_` in a LIKE pattern: one character."""


def _like(text: str, pattern: str) -> bool:
    """SQL `LIKE` with `ESCAPE '\\'`: `%` any run of characters, `_` one, `\\` makes the next
    one literal (a trailing `\\` is itself)."""
    tokens: list[object] = []
    chars = iter(pattern)
    for c in chars:
        if c == "%":
            tokens.append(_ANY)
        elif c == "_":
            tokens.append(_ONE)
        elif c == "\\":
            tokens.append(next(chars, "\\"))
        else:
            tokens.append(c)

    def close(at: list[bool]) -> None:
        for i, token in enumerate(tokens):
            if at[i] and token is _ANY:
                at[i + 1] = True

    # Positions of the pattern reachable after each character of the text.
    at = [False] * (len(tokens) + 1)
    at[0] = True
    close(at)
    for c in text:
        following = [False] * (len(tokens) + 1)
        for i, token in enumerate(tokens):
            if not at[i]:
                continue
            if token is _ANY:
                following[i] = True
            elif token is _ONE or token == c:
                following[i + 1] = True
        close(following)
        at = following
    return at[len(tokens)]


class _Filter:
    """A filter, checked as Kith checks one before reading anything."""

    def __init__(self, filter: object | None) -> None:
        self.filter = filter
        if filter is not None:
            # Every field null: every argument is checked, no branch is skipped.
            _eval(filter, None, 0, _Budget())

    def matches(self, fields: dict) -> bool:
        """Whether the filter holds (is true, not false or unknown) for `fields`."""
        if self.filter is None:
            return True
        return _eval(self.filter, fields, 0, _Budget()) is True


# --- Sort orders -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _SortKey:
    """One sort key of `orderBy`."""

    field: str
    descending: bool
    nulls_first: bool


def _parse_order(order_by: object | None) -> list[_SortKey]:
    """A sort order, checked as Kith checks one: a list of at most 5 `{field, direction, nulls}`."""
    if order_by is None:
        return []
    if not isinstance(order_by, list) or len(order_by) > MAX_SORT_KEYS:
        raise ReadError(f"orderBy is a list of at most {MAX_SORT_KEYS} sort keys")
    keys = []
    for item in order_by:
        if not isinstance(item, dict):
            raise ReadError("a sort key is {field, direction, nulls}")
        for key in item:
            if key not in ("field", "direction", "nulls"):
                if key == "customField":
                    raise ReadError("the test host does not sort by custom fields")
                raise ReadError(f"orderBy.{key}: unknown key")
        # A direction or nulls that is not a text is as good as none, as in the Rust host.
        direction = item.get("direction")
        direction = direction if isinstance(direction, str) else "ASC"
        if direction in ("ASC", "asc"):
            descending = False
        elif direction in ("DESC", "desc"):
            descending = True
        else:
            raise ReadError(f"orderBy.direction: `{direction}` is not ASC or DESC")
        nulls = item.get("nulls")
        if not isinstance(nulls, str):
            nulls_first = descending
        elif nulls in ("FIRST", "first"):
            nulls_first = True
        elif nulls in ("LAST", "last"):
            nulls_first = False
        else:
            raise ReadError(f"orderBy.nulls: `{nulls}` is not FIRST or LAST")
        field = item.get("field")
        if not isinstance(field, str):
            raise ReadError("orderBy.field is required")
        keys.append(_SortKey(field, descending, nulls_first))
    return keys


def _sort(records: list[dict], keys: list[_SortKey]) -> list[dict]:
    """Sorts as Kith does: each key with its null placement (by default nulls last ascending,
    first descending), then the id in the last key's direction (records made earlier have
    smaller ids), so the order is total."""
    id_descending = bool(keys) and keys[-1].descending

    def cmp(a: dict, b: dict) -> int:
        for key in keys:
            x, y = a.get(key.field), b.get(key.field)
            if x is None and y is None:
                ordering = 0
            elif x is None:
                ordering = -1 if key.nulls_first else 1
            elif y is None:
                ordering = 1 if key.nulls_first else -1
            else:
                found = compare(x, y)
                ordering = found if found is not None else _sign(_json_text(x), _json_text(y))
                if key.descending:
                    ordering = -ordering
            if ordering != 0:
                return ordering
        ordering = _sign(str(a.get("id", "")), str(b.get("id", "")))
        return -ordering if id_descending else ordering

    return sorted(records, key=functools.cmp_to_key(cmp))


def select(records: list[dict], filter: object | None, order_by: object | None) -> list[dict]:
    """The records (field dicts in insertion order; each holds "id" and its fields) that `filter`
    (the parsed JSON filter, or None for all) matches, sorted by `order_by` (the parsed JSON list
    of {"field", "direction", "nulls"}, or None: insertion order), as Kith returns them.
    Raises ReadError for anything Kith refuses.

    Like the Rust host, the order always ends with the records' ids (ascending, or descending
    when the last sort key is): the test host's ids grow with insertion, so without `order_by`
    this is insertion order. The dicts returned are those given, not copies."""
    checked = _Filter(filter)
    keys = _parse_order(order_by)
    matching = [fields for fields in records if checked.matches(fields)]
    return _sort(matching, keys)


# --- Aggregates ------------------------------------------------------------------------------


def _days_in_month(year: int, month: int) -> int:
    """Days in `month` of `year` (0 for a month that does not exist)."""
    if month in (1, 3, 5, 7, 8, 10, 12):
        return 31
    if month in (4, 6, 9, 11):
        return 30
    if month == 2:
        return 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    return 0


def _parse_int(text: str) -> int | None:
    """Rust's integer parse: an optional `+`, then ASCII digits."""
    digits = text[1:] if text.startswith("+") else text
    if not digits or not _ascii_digits(digits):
        return None
    return int(digits)


def _parse_date(text: str) -> tuple[int, int, int] | None:
    """The SDK's `Date::parse`: `YYYY-MM-DD` in the first 10 bytes of `text` (so also the date
    of an RFC 3339 instant), if that date exists."""
    head = text.encode("utf-8", "surrogatepass")
    if len(head) < 10:
        return None
    try:
        prefix = head[:10].decode("utf-8")
    except UnicodeDecodeError:
        return None
    parts = prefix.split("-")
    if len(parts) != 3:
        return None
    year, month, day = (_parse_int(p) for p in parts)
    if year is None or month is None or day is None:
        return None
    if year > 2**31 - 1 or month > 2**32 - 1 or day > 2**32 - 1:
        return None
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        return None
    return year, month, day


def _days_since_epoch(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 (Howard Hinnant's days-from-civil)."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _from_days_since_epoch(days: int) -> tuple[int, int, int]:
    """The date `days` days after 1970-01-01 (Howard Hinnant's civil-from-days)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def _bucket_start(text: str, bucket: str) -> str:
    """The first day of the bucket holding the date (or RFC 3339 instant) `text`: the day, its
    week's Monday, its month's first day or its year's January 1st."""
    date = _parse_date(text)
    if date is None:
        raise ReadError(f"`{text}` is not a date to bucket")
    year, month, day = date
    if bucket == "week":
        days = _days_since_epoch(year, month, day)
        # 1970-01-01 was a Thursday.
        year, month, day = _from_days_since_epoch(days - (days + 3) % 7)
    elif bucket == "month":
        day = 1
    elif bucket == "year":
        month, day = 1, 1
    return f"{year:04d}-{month:02d}-{day:02d}"


def _sum_exact(values: list[str]) -> str | None:
    """Sums decimal texts exactly (up to 9 decimal places, in a 128-bit integer of units, as
    the Rust host does), as Kith's normalized decimal; None over no values."""
    if not values:
        return None
    total = 0
    for value in values:
        decimal = _Decimal.parse(value)
        if decimal is None or len(decimal.fraction) > SUM_SCALE:
            raise ReadError(f"`{value}` is not a number to sum")
        whole = int(decimal.whole) if decimal.whole else 0
        if whole > _I128_MAX:
            raise ReadError(f"`{value}` is not a number to sum")
        fraction = int(decimal.fraction) if decimal.fraction else 0
        scaled = whole * 10**SUM_SCALE + fraction * 10 ** (SUM_SCALE - len(decimal.fraction))
        # Beyond 128 bits the Rust host overflows (a panic in its debug builds): refused here.
        if scaled > _I128_MAX:
            raise ReadError(f"`{value}` is too large to sum")
        total += -scaled if decimal.negative else scaled
        if not _I128_MIN <= total <= _I128_MAX:
            raise ReadError("the sum is too large")
    unit = 10**SUM_SCALE
    magnitude = abs(total)
    text = f"{'-' if total < 0 else ''}{magnitude // unit}.{magnitude % unit:09d}"
    parsed = _Decimal.parse(text)
    return parsed.text() if parsed is not None else None


def _fold_min(texts: list[str]) -> str | None:
    """Rust's `min_by`: the first of the smallest, by a left fold."""
    if not texts:
        return None
    best = texts[0]
    for text in texts[1:]:
        if _compare_text(best, text) > 0:
            best = text
    return best


def _fold_max(texts: list[str]) -> str | None:
    """Rust's `max_by`: the last of the largest, by a left fold."""
    if not texts:
        return None
    best = texts[0]
    for text in texts[1:]:
        if _compare_text(best, text) <= 0:
            best = text
    return best


def _compare_keys(a: list[str | None], b: list[str | None]) -> int:
    """Group keys in order, missing keys first."""
    for x, y in zip(a, b):
        if x is None and y is None:
            continue
        if x is None:
            return -1
        if y is None:
            return 1
        ordering = _compare_text(x, y)
        if ordering != 0:
            return ordering
    return 0


_Row = tuple[list[Optional[str]], list[Optional[str]]]
"""One aggregate row: its keys and its metric values."""


def _metric_value(kind: str, field: str | None, members: list[dict]) -> str | None:
    """One metric over the records of one group, as text (None: no value)."""
    values = [] if field is None else [m.get(field) for m in members]
    values = [v for v in values if v is not None]
    if kind in ("min", "max") and any(isinstance(v, bool) for v in values):
        raise ReadError(f"`{field or ''}` has no order")
    texts = [t for t in (canonical(v) for v in values) if t is not None]
    if kind == "count":
        return str(len(members) if field is None else len(texts))
    if kind == "count-distinct":
        return str(len(set(texts)))
    if kind == "sum":
        return _sum_exact(texts)
    if kind == "min":
        return _fold_min(texts)
    return _fold_max(texts)


def aggregate(records: list[dict], filter: object | None,
              group_by: list[tuple[str, str | None]],   # (field, bucket) bucket in "day","week","month","year" or None
              metrics: list[tuple[str, str | None]],    # (kind, field) kind in "count","sum","min","max","count-distinct"
              limit: int,
              order: tuple[int, bool] | None,           # (metric index, descending)
              ) -> list[tuple[list[str | None], list[str | None]]]:
    """Rows (keys, values) as Kith's aggregate answers them, text or None. Raises ReadError.

    Groups come in the order of their keys (missing keys first), or by metric `order[0]`
    (descending when `order[1]`; missing values last either way, ties in key order); at most
    `limit` of them. Without group keys there is one row, even over no records. Counts and sums
    are exact texts (`"15.5"`); minimums and maximums are in the field's GraphQL form."""
    if not metrics or len(metrics) > MAX_METRICS:
        raise ReadError(f"ask for 1 to {MAX_METRICS} metrics")
    if len(group_by) > MAX_GROUP_KEYS:
        raise ReadError(f"at most {MAX_GROUP_KEYS} group keys")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_GROUPS:
        raise ReadError(f"limit must be between 1 and {MAX_GROUPS}")
    if order is not None and not 0 <= order[0] < len(metrics):
        raise ReadError(f"there is no metric {order[0]}")
    for kind, field in metrics:
        if kind not in _METRICS:
            raise ReadError(f"no metric `{kind}` ({', '.join(_METRICS)})")
        if kind != "count" and field is None:
            raise ReadError(f"{kind} names a field")
    for _, bucket in group_by:
        if bucket is not None and bucket not in _BUCKETS:
            raise ReadError(f"no bucket `{bucket}` ({', '.join(_BUCKETS)})")
    checked = _Filter(filter)

    groups: list[tuple[list[str | None], list[dict]]] = []
    found: dict[tuple[str | None, ...], list[dict]] = {}
    for fields in records:
        if not checked.matches(fields):
            continue
        keys: list[str | None] = []
        for field, bucket in group_by:
            text = canonical(fields.get(field))
            keys.append(_bucket_start(text, bucket) if bucket is not None and text is not None else text)
        members = found.get(tuple(keys))
        if members is None:
            members = found[tuple(keys)] = []
            groups.append((keys, members))
        members.append(fields)
    # Without group keys the database answers one row, even over no records.
    if not group_by and not groups:
        groups.append(([], []))
    groups.sort(key=functools.cmp_to_key(lambda a, b: _compare_keys(a[0], b[0])))

    rows: list[tuple[list[str | None], list[str | None]]] = []
    for keys, members in groups:
        rows.append((keys, [_metric_value(kind, field, members) for kind, field in metrics]))

    if order is not None:
        at, descending = order

        def by_metric(a: _Row, b: _Row) -> int:
            x, y = a[1][at], b[1][at]
            if x is not None and y is not None:
                return _compare_text(y, x) if descending else _compare_text(x, y)
            if x is None and y is None:
                return 0
            return 1 if x is None else -1

        rows.sort(key=functools.cmp_to_key(by_metric))
    return rows[:limit]
