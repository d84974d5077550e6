"""Counts, sums, minimums and maximums computed by the database, grouped by fields or date
buckets, so a report never reads every record.

>>> from kith_plugin.testing import TestHost
>>> with TestHost().own("gift") as host:
...     _ = host.insert("gift", {"fund": "A", "amount": "5"})
...     _ = host.insert("gift", {"fund": "A", "amount": "2.5"})
...     [(r.key(0), r.value(0)) for r in run("gift", Aggregate().group_by("fund").sum("amount"))]
[('A', '7.5')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from . import _host

BUCKETS = ("day", "week", "month", "year")
METRICS = ("count", "sum", "min", "max", "count-distinct")


@dataclass
class Aggregate:
    """An aggregate query, built by chaining: `Aggregate().filter(f).group_by("fund").sum("amount")`."""

    filter_: Any = None
    groups: list[tuple[str, str | None]] = field(default_factory=list)
    metrics: list[tuple[str, str | None]] = field(default_factory=list)
    limit_: int = 10_000
    order: tuple[int, bool] | None = None

    def filter(self, filter: Any) -> Aggregate:
        """Only records matching `filter` (the JSON filter language, as a dict)."""
        self.filter_ = filter
        return self

    def group_by(self, field: str, bucket: str | None = None) -> Aggregate:
        """One more grouping key (at most 3): a field, or a date field's `day`, `week` (from
        Monday), `month` or `year`."""
        if bucket is not None and bucket not in BUCKETS:
            raise ValueError(f"no bucket `{bucket}`: use one of {', '.join(BUCKETS)}")
        self.groups.append((field, bucket))
        return self

    def count(self) -> Aggregate:
        """How many records."""
        self.metrics.append(("count", None))
        return self

    def sum(self, field: str) -> Aggregate:
        """The exact sum of a number, decimal or money field."""
        self.metrics.append(("sum", field))
        return self

    def min(self, field: str) -> Aggregate:
        """The smallest value of an ordered field."""
        self.metrics.append(("min", field))
        return self

    def max(self, field: str) -> Aggregate:
        """The largest value of an ordered field."""
        self.metrics.append(("max", field))
        return self

    def count_distinct(self, field: str) -> Aggregate:
        """How many different values a field has."""
        self.metrics.append(("count-distinct", field))
        return self

    def limit(self, limit: int) -> Aggregate:
        """At most `limit` groups (default 10,000)."""
        self.limit_ = limit
        return self

    def order_by_metric(self, index: int, descending: bool = False) -> Aggregate:
        """Groups ordered by metric `index` instead of their keys: with `limit`, the top N."""
        self.order = (index, descending)
        return self


@dataclass
class Row:
    """One group: its keys (in `group_by` order) and metrics (in request order), as text."""

    keys: list[str | None]
    values: list[str | None]

    def key(self, index: int) -> str | None:
        """Key `index`, or None (a missing value, or no such key)."""
        return self.keys[index] if index < len(self.keys) else None

    def value(self, index: int) -> str | None:
        """Metric `index` as text, or None."""
        return self.values[index] if index < len(self.values) else None

    def int(self, index: int) -> int | None:
        """Metric `index` as an integer (a count), or None."""
        value = self.value(index)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def decimal(self, index: int) -> Decimal | None:
        """Metric `index` as an exact decimal (a sum), or None."""
        value = self.value(index)
        try:
            return Decimal(value) if value is not None else None
        except InvalidOperation:
            return None


def run(object: str, query: Aggregate) -> list[Row]:
    """Computes `query` over `object`. Needs `OBJECTS:read` (nothing for the plugin's own)."""
    return _host.current().aggregate(object, query)
