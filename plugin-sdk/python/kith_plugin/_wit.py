"""Kith's host inside a component: the SDK's calls translated to the `kith:plugin` WIT imports
that componentize-py generated into `wit_world` for the world `plugin`."""

from __future__ import annotations

import json
from typing import Any, Callable, TypeVar

from componentize_py_types import Err
from wit_world.imports import aggregate as wit_aggregate
from wit_world.imports import host as wit_host
from wit_world.imports import http as wit_http
from wit_world.imports import types as wit_types

from . import aggregate as sdk_aggregate
from . import http as sdk_http
from .errors import ErrorCode, HostError
from .types import Page, Record

T = TypeVar("T")

_LEVELS = {
    "trace": wit_types.LogLevel.TRACE,
    "debug": wit_types.LogLevel.DEBUG,
    "info": wit_types.LogLevel.INFO,
    "warn": wit_types.LogLevel.WARN,
    "error": wit_types.LogLevel.ERROR,
}
_CODES = {
    wit_types.ErrorCode.DENIED: ErrorCode.DENIED,
    wit_types.ErrorCode.INVALID_INPUT: ErrorCode.INVALID_INPUT,
    wit_types.ErrorCode.NOT_FOUND: ErrorCode.NOT_FOUND,
    wit_types.ErrorCode.CONFLICT: ErrorCode.CONFLICT,
    wit_types.ErrorCode.LIMIT_EXCEEDED: ErrorCode.LIMIT_EXCEEDED,
    wit_types.ErrorCode.UNAVAILABLE: ErrorCode.UNAVAILABLE,
    wit_types.ErrorCode.INTERNAL: ErrorCode.INTERNAL,
}
_BUCKETS = {
    "day": wit_aggregate.DateBucket.DAY,
    "week": wit_aggregate.DateBucket.WEEK,
    "month": wit_aggregate.DateBucket.MONTH,
    "year": wit_aggregate.DateBucket.YEAR,
}
_METRICS = {
    "count": wit_aggregate.MetricKind.COUNT,
    "sum": wit_aggregate.MetricKind.SUM,
    "min": wit_aggregate.MetricKind.MIN,
    "max": wit_aggregate.MetricKind.MAX,
    "count-distinct": wit_aggregate.MetricKind.COUNT_DISTINCT,
}


def _call(f: Callable[..., T], *args: Any) -> T:
    """Calls a WIT import, raising its `host-error` as a `HostError`."""
    try:
        return f(*args)
    except Err as err:
        value = err.value
        raise HostError(_CODES.get(value.code, ErrorCode.INTERNAL), value.message) from None


def _record(record: Any) -> Record:
    return Record(record.object, record.id, record.version, json.loads(record.fields))


class WitBackend:
    """The host of a running component."""

    def log(self, level: str, message: str) -> None:
        wit_host.log(_LEVELS[level], message)

    def now(self) -> str:
        return wit_host.now()

    def get_record(self, object: str, id: str) -> Record | None:
        record = _call(wit_host.get_record, object, id)
        return None if record is None else _record(record)

    def query_records(
        self, object: str, filter: str | None, order_by: str | None, first: int, after: str | None
    ) -> Page:
        page = _call(wit_host.query_records, object, wit_types.Query(filter, order_by, first, after))
        return Page([_record(r) for r in page.records], page.next_cursor)

    def create_record(self, object: str, fields: str) -> Record:
        return _record(_call(wit_host.create_record, object, fields))

    def update_record(self, object: str, id: str, fields: str, expected_version: int | None) -> Record:
        return _record(_call(wit_host.update_record, object, id, fields, expected_version))

    def kv_get(self, key: str) -> bytes | None:
        return _call(wit_host.kv_get, key)

    def kv_set(self, key: str, value: bytes) -> None:
        _call(wit_host.kv_set, key, value)

    def kv_delete(self, key: str) -> bool:
        return _call(wit_host.kv_delete, key)

    def kv_keys(self, prefix: str) -> list[str]:
        return _call(wit_host.kv_keys, prefix)

    def setting_value(self, key: str) -> str | None:
        return wit_host.setting(key)

    def http_send(self, request: sdk_http.Request) -> sdk_http.Response:
        headers = [wit_http.Header(n, v) for n, v in request.headers]
        wit_request = wit_http.Request(request.method, request.url, headers, request.body, request.timeout_ms)
        response = _call(wit_http.send, wit_request)
        return sdk_http.Response(
            response.status, bytes(response.body), [(h.name, h.value) for h in response.headers], response.url
        )

    def aggregate(self, object: str, query: sdk_aggregate.Aggregate) -> list[sdk_aggregate.Row]:
        request = wit_aggregate.Request(
            filter=None if query.filter_ is None else json.dumps(query.filter_),
            group_by=[wit_aggregate.GroupBy(f, None if b is None else _BUCKETS[b]) for f, b in query.groups],
            metrics=[wit_aggregate.Metric(_METRICS[k], f) for k, f in query.metrics],
            limit=query.limit_,
            order=None if query.order is None else wit_aggregate.MetricOrder(query.order[0], query.order[1]),
        )
        rows = _call(wit_aggregate.aggregate, object, request)
        return [sdk_aggregate.Row(list(r.keys), list(r.values)) for r in rows]
