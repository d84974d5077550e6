"""Core records (`contact`, `company`, `deal`, `ticket`, `activity`, ...) and the plugin's own
objects: read, query with the filter language, create and update. Fields are dicts in Kith's
GraphQL names. Reading a core object needs `OBJECTS:read` (`contacts:read`), writing
`OBJECTS:write`; the plugin's own objects need nothing.

>>> from kith_plugin.testing import TestHost
>>> from kith_plugin.filters import field
>>> with TestHost().own("gift") as host:
...     gift = create("gift", {"amount": "5", "fund": "A"})
...     [r.id for r in query("gift", field("fund").eq("A"))] == [gift.id]
True
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from . import _host
from .types import Page, Record


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def get(object: str, id: str) -> Record | None:
    """One record, or None when there is no such record."""
    return _host.current().get_record(object, id)


def query(
    object: str,
    filter: Any = None,
    order_by: list[dict[str, str]] | None = None,
    first: int = 50,
    after: str | None = None,
) -> Page:
    """A page of records: `filter` in the filter language (see `kith_plugin.filters`),
    `order_by` a list like `[{"field": "createdAt", "direction": "DESC"}]` (see `asc`, `desc`),
    `first` 1 to 200, `after` the previous page's `next_cursor`."""
    return _host.current().query_records(object, _json(filter), _json(order_by), first, after)


def query_all(object: str, filter: Any = None, order_by: list[dict[str, str]] | None = None) -> Iterator[Record]:
    """Every matching record, reading pages of 200 as it goes."""
    after: str | None = None
    while True:
        page = query(object, filter, order_by, 200, after)
        yield from page.records
        if page.next_cursor is None:
            return
        after = page.next_cursor


def first(object: str, filter: Any = None, order_by: list[dict[str, str]] | None = None) -> Record | None:
    """The first matching record, or None."""
    page = query(object, filter, order_by, 1)
    return page.records[0] if page.records else None


def create(object: str, fields: dict[str, Any]) -> Record:
    """Creates a record; Kith validates it as it validates any write."""
    return _host.current().create_record(object, json.dumps(fields))


def update(object: str, id: str, fields: dict[str, Any], expected_version: int | None = None) -> Record:
    """Changes the given fields; with `expected_version`, only if the record is still at that
    version (else `HostError` `CONFLICT`)."""
    return _host.current().update_record(object, id, json.dumps(fields), expected_version)
