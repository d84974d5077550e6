"""An in-memory Kith for unit tests: records, grants, settings, kv, a clock, HTTP stubs and the
log, with Kith's checks (capabilities, read-only contexts) and Kith's reads (the filter
language, sorting, paging and aggregates, held to Kith's answers by the conformance table in
`plugin-sdk/conformance/reads.json`). The Rust SDK's `testing::TestHost`, in Python.

```python
host = TestHost().grant("activities:write").own("greeting").at("2026-02-27T09:30:00.000000Z")
contact = host.insert("contact", {"firstName": "Ada"})
host.on_event(Welcome, Event.new("contact.created", "contact", contact, {"firstName": "Ada"}))
assert host.records("activity")[0]["subject"] == "Welcome Ada"
```

It does not know your objects' field kinds nor run Kith's field validation: test those end to
end against a running Kith.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from . import _host, _read
from . import aggregate as sdk_aggregate
from . import http as sdk_http
from .errors import ErrorCode, HostError, OperationError
from .plugin import BatchFailure, Plugin
from .types import Call, Change, Event, Page, Record, RouteRequest, RouteResponse, Verdict

T = TypeVar("T")

_CORE_PLURALS = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "ticket": "tickets",
    "activity": "activities",
    "consent": "consents",
    "segment": "segments",
}


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL, lower-cased, default ports dropped."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{suffix}"


class TestHost:
    """A host with no grants, no records and the clock at `2026-01-01T00:00:00.000000Z`.
    Configure it by chaining (`TestHost().grant("kv").own("gift")`); run plugin code with its
    methods (`on_event`, `before_write`, `call`, ...) or inside `with host:`."""

    __test__ = False  # not a test case, whatever a test runner thinks of its name

    def __init__(self) -> None:
        self._now = "2026-01-01T00:00:00.000000Z"
        self._grants: set[str] = set()
        self._own: set[str] = set()
        self._foreign: dict[str, str] = {}
        self._settings: dict[str, Any] = {}
        self._records: dict[str, list[Record]] = {}
        self._kv: dict[str, bytes] = {}
        self._logs: list[str] = []
        self._denied: list[str] = []
        self._stubs: dict[str, sdk_http.Response] = {}
        self._requests: list[sdk_http.Request] = []
        self._next_id = 0
        self._read_only = False

    # Configuration.

    def grant(self, capability: str) -> TestHost:
        """Grants a capability (`contacts:read`, `activities:write`, `kv`, `http:ORIGIN`)."""
        self._grants.add(capability)
        return self

    def own(self, object: str) -> TestHost:
        """Declares one of the plugin's own objects: read and written without capabilities."""
        self._own.add(object)
        return self

    def foreign(self, plugin: str, object: str, plural: str) -> TestHost:
        """Declares another plugin's object: readable with `PLUGIN/PLURAL:read`, never writable."""
        self._foreign[object] = f"{plugin}/{plural}:read"
        return self

    def setting(self, key: str, value: Any) -> TestHost:
        """Sets a setting (as the admin would, or as its manifest default)."""
        self._settings[key] = value
        return self

    def at(self, now: str) -> TestHost:
        """Sets the clock (`now()` and the times stamped on created records)."""
        self._now = now
        return self

    # What the plugin did.

    def insert(self, object: str, fields: dict[str, Any]) -> str:
        """Stores a record as if it existed already (no checks); returns its id."""
        self._next_id += 1
        id = f"00000000-0000-7000-8000-{self._next_id:012x}"
        stored = dict(fields)
        stored["id"] = id
        self._records.setdefault(object, []).append(Record(object, id, 1, stored))
        return id

    def records(self, object: str) -> list[Record]:
        """Every stored record of `object`, in insertion order (copies)."""
        return copy.deepcopy(self._records.get(object, []))

    def record(self, object: str, id: str) -> Record | None:
        """One stored record (a copy)."""
        found = self._find(object, id)
        return copy.deepcopy(found) if found else None

    def logs(self) -> list[str]:
        """The log lines so far, as `LEVEL message`."""
        return list(self._logs)

    def denied(self) -> list[str]:
        """The capabilities calls were refused for, in order."""
        return list(self._denied)

    def kv(self, key: str) -> bytes | None:
        """A kv value."""
        return self._kv.get(key)

    def http_stub(self, url: str, response: sdk_http.Response) -> None:
        """Answers requests to `url` with `response` (others fail with `UNAVAILABLE`)."""
        self._stubs[url] = response

    def http_requests(self) -> list[sdk_http.Request]:
        """The HTTP requests sent, in order."""
        return list(self._requests)

    # Running plugin code.

    def __enter__(self) -> TestHost:
        _host.install(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _host.uninstall(self)

    def run(self, f: Callable[[], T], read_only: bool = False) -> T:
        """Calls `f` with this host installed (writes unavailable when `read_only`)."""
        previous = self._read_only
        self._read_only = read_only
        try:
            with self:
                return f()
        finally:
            self._read_only = previous

    def on_event(self, plugin: type[Plugin], event: Event) -> None:
        """Delivers `event` to a fresh `plugin()`, as Kith does."""
        try:
            self.on_events(plugin, [event])
        except BatchFailure as failure:
            raise failure.error from None

    def on_events(self, plugin: type[Plugin], events: list[Event]) -> None:
        """Delivers `events` as one batch; a failure raises `BatchFailure` with the index."""

        def deliver() -> None:
            try:
                plugin().on_events(events)
            except BatchFailure:
                raise
            except Exception as err:
                raise BatchFailure(0, err) from err

        self.run(deliver)

    def before_write(self, plugin: type[Plugin], change: Change) -> Verdict:
        """Asks a fresh `plugin()` about `change`, writes unavailable, as in Kith."""
        return self.run(lambda: plugin().before_write(change), read_only=True)

    def compute_field(self, plugin: type[Plugin], object: str, field: str, ids: list[str]) -> list[Any]:
        """A computed field's values for `ids`, writes unavailable, as in Kith."""
        values = self.run(lambda: plugin().compute_field(object, field, list(ids)), read_only=True)
        if len(values) != len(ids):
            raise OperationError(ErrorCode.INTERNAL, f"{len(values)} values for {len(ids)} ids")
        # What Kith receives: JSON.
        return [json.loads(json.dumps(v)) for v in values]

    def call(
        self, plugin: type[Plugin], name: str, arguments: dict[str, Any] | None = None, write: bool = False
    ) -> Any:
        """Calls a query (`write=False`: writes unavailable) or a mutation; an error comes out as
        `OperationError`, as Kith answers it."""
        try:
            result = self.run(lambda: plugin().call(Call(name, dict(arguments or {}))), read_only=not write)
        except Exception as err:
            raise OperationError.of(err) from err
        return json.loads(json.dumps(result))

    def run_job(self, plugin: type[Plugin], job: str) -> None:
        """Runs job `job` of a fresh `plugin()`, due at the host's clock."""
        self.run(lambda: plugin().run_job(job, self._now))

    def handle_request(self, plugin: type[Plugin], request: RouteRequest) -> RouteResponse:
        """Calls `handle_request`, as Kith does for a declared route."""
        return self.run(lambda: plugin().handle_request(request))

    # The backend the SDK calls.

    def _check(self, capability: str) -> None:
        if capability not in self._grants:
            self._denied.append(capability)
            raise HostError(ErrorCode.DENIED, f"the plugin was not granted `{capability}`")

    def _check_object(self, object: str, access: str) -> None:
        if access == "write" and self._read_only:
            raise HostError(
                ErrorCode.UNAVAILABLE, "writes are not available in before_write, computed fields and queries"
            )
        if object in self._own:
            return
        if object in self._foreign:
            if access == "write":
                raise HostError(ErrorCode.INVALID_INPUT, f"`{object}` belongs to another plugin: read only")
            self._check(self._foreign[object])
            return
        plural = _CORE_PLURALS.get(object)
        if plural is None:
            raise HostError(ErrorCode.INVALID_INPUT, f"unknown object `{object}`")
        self._check(f"{plural}:{access}")

    def _find(self, object: str, id: str) -> Record | None:
        return next((r for r in self._records.get(object, []) if r.id == id), None)

    def log(self, level: str, message: str) -> None:
        self._logs.append(f"{level.upper()} {message}")

    def now(self) -> str:
        return self._now

    def get_record(self, object: str, id: str) -> Record | None:
        self._check_object(object, "read")
        return self.record(object, id)

    def query_records(
        self, object: str, filter: str | None, order_by: str | None, first: int, after: str | None
    ) -> Page:
        self._check_object(object, "read")
        if not 1 <= first <= 200:
            raise HostError(ErrorCode.INVALID_INPUT, "first must be between 1 and 200")
        try:
            fields = [r.fields for r in self._records.get(object, [])]
            matching = _read.select(
                fields,
                None if filter is None else json.loads(filter),
                None if order_by is None else json.loads(order_by),
            )
        except _read.ReadError as err:
            raise HostError(ErrorCode.INVALID_INPUT, str(err)) from None
        try:
            start = int(after) if after is not None else 0
        except ValueError:
            raise HostError(ErrorCode.INVALID_INPUT, f"bad cursor `{after}`") from None
        end = min(start + first, len(matching))
        by_id = {r.id: r for r in self._records.get(object, [])}
        page = [copy.deepcopy(by_id[f["id"]]) for f in matching[start:end]]
        return Page(page, str(end) if end < len(matching) else None)

    def create_record(self, object: str, fields: str) -> Record:
        self._check_object(object, "write")
        given = json.loads(fields)
        if not isinstance(given, dict):
            raise HostError(ErrorCode.INVALID_INPUT, "fields must be a JSON object")
        given.setdefault("createdAt", self._now)
        given.setdefault("updatedAt", self._now)
        id = self.insert(object, given)
        return self.record(object, id)  # type: ignore[return-value]

    def update_record(self, object: str, id: str, fields: str, expected_version: int | None) -> Record:
        self._check_object(object, "write")
        changes = json.loads(fields)
        if not isinstance(changes, dict):
            raise HostError(ErrorCode.INVALID_INPUT, "fields must be a JSON object")
        record = self._find(object, id)
        if record is None:
            raise HostError(ErrorCode.NOT_FOUND, f"no {object} {id}")
        if expected_version is not None and expected_version != record.version:
            raise HostError(ErrorCode.CONFLICT, f"{object} {id} is at version {record.version}")
        record.fields.update(changes)
        record.fields["updatedAt"] = self._now
        record.version += 1
        return copy.deepcopy(record)

    def kv_get(self, key: str) -> bytes | None:
        self._check("kv")
        return self._kv.get(key)

    def kv_set(self, key: str, value: bytes) -> None:
        self._check("kv")
        if self._read_only:
            raise HostError(
                ErrorCode.UNAVAILABLE, "writes are not available in before_write, computed fields and queries"
            )
        if not 1 <= len(key.encode()) <= 256:
            raise HostError(ErrorCode.INVALID_INPUT, "keys are 1 to 256 bytes")
        if len(value) > 64 * 1024:
            raise HostError(ErrorCode.LIMIT_EXCEEDED, "values are at most 64 KiB")
        self._kv[key] = bytes(value)

    def kv_delete(self, key: str) -> bool:
        self._check("kv")
        if self._read_only:
            raise HostError(
                ErrorCode.UNAVAILABLE, "writes are not available in before_write, computed fields and queries"
            )
        return self._kv.pop(key, None) is not None

    def kv_keys(self, prefix: str) -> list[str]:
        self._check("kv")
        return sorted(k for k in self._kv if k.startswith(prefix))[:1000]

    def setting_value(self, key: str) -> str | None:
        return json.dumps(self._settings[key]) if key in self._settings else None

    def http_send(self, request: sdk_http.Request) -> sdk_http.Response:
        if self._read_only:
            raise HostError(ErrorCode.UNAVAILABLE, "HTTP is not available inside before_write")
        origin = origin_of(request.url)
        if origin is None:
            raise HostError(ErrorCode.INVALID_INPUT, f"`{request.url}` is not an absolute URL")

        def grants(grant: str) -> bool:
            for prefix in ("http-private:", "http:"):
                if grant.startswith(prefix):
                    rest: Any = grant[len(prefix) :]
                    if rest.startswith("setting:"):
                        rest = self._settings.get(rest[len("setting:") :])
                    return isinstance(rest, str) and origin_of(rest) == origin
            return False

        if not any(grants(g) for g in self._grants):
            self._denied.append(f"http:{origin}")
            raise HostError(ErrorCode.DENIED, f"the plugin was not granted `http:{origin}`")
        self._requests.append(request)
        stub = self._stubs.get(request.url)
        if stub is None:
            raise HostError(ErrorCode.UNAVAILABLE, f"no stub for {request.url}")
        return copy.deepcopy(stub)

    def aggregate(self, object: str, query: sdk_aggregate.Aggregate) -> list[sdk_aggregate.Row]:
        self._check_object(object, "read")
        try:
            rows = _read.aggregate(
                [r.fields for r in self._records.get(object, [])],
                query.filter_,
                list(query.groups),
                list(query.metrics),
                query.limit_,
                query.order,
            )
        except _read.ReadError as err:
            raise HostError(ErrorCode.INVALID_INPUT, str(err)) from None
        return [sdk_aggregate.Row(list(keys), list(values)) for keys, values in rows]
