"""What Kith hands a plugin and what it answers: records, events, writes about to happen,
verdicts and operation calls, with their fields as Python values (Kith's GraphQL field names,
`firstName`, `companyId`, ...)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass
class Record:
    """A stored record: its object, id, optimistic-concurrency version and fields.

    >>> r = Record("contact", "c-1", 3, {"firstName": "Ada"})
    >>> r["firstName"], r.get("lastName"), r.str("firstName")
    ('Ada', None, 'Ada')
    """

    object: str
    id: str
    version: int
    fields: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A field's value, or `default` when it is missing or null."""
        value = self.fields.get(name)
        return default if value is None else value

    def str(self, name: str) -> str | None:
        """A text field, or None when it is missing, null or not text."""
        value = self.fields.get(name)
        return value if isinstance(value, str) else None


@dataclass
class Page:
    """A page of records; pass `next_cursor` as `after` to read the next one (None on the last)."""

    records: list[Record]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class Event:
    """A committed change, delivered at least once, in order per record. Use `id` to make a
    handler idempotent.

    >>> e = Event.new("contact.created", "contact", "c-1", {"firstName": "Ada"})
    >>> e.record["firstName"], e.record_str("firstName")
    ('Ada', 'Ada')
    """

    id: str
    seq: int
    kind: str
    object: str
    record_id: str | None
    occurred_at: str
    actor: str
    origin_plugin: str | None
    depth: int
    payload: dict[str, Any]

    @classmethod
    def new(cls, kind: str, object: str, record_id: str | None, record: dict[str, Any]) -> Event:
        """An event as Kith would deliver it for `record` (for tests)."""
        return cls(
            id=f"evt-{kind}-{record_id or ''}",
            seq=1,
            kind=kind,
            object=object,
            record_id=record_id,
            occurred_at="2026-01-01T00:00:00.000000Z",
            actor="user:test@example.org",
            origin_plugin=None,
            depth=0,
            payload={"record": record},
        )

    @property
    def record(self) -> dict[str, Any]:
        """The record after the change (an empty dict when the event carries none)."""
        record = self.payload.get("record")
        return record if isinstance(record, dict) else {}

    def record_str(self, name: str) -> str | None:
        """A text field of the record after the change."""
        value = self.record.get(name)
        return value if isinstance(value, str) else None


@dataclass
class Change:
    """A write about to happen, as `before_write` sees it.

    >>> c = Change.create("contact", {"email": "ada@example.org"})
    >>> c.operation, c.after_str("email")
    ('create', 'ada@example.org')
    """

    object: str
    operation: str
    """`create`, `update` or `delete`."""
    id: str
    before: dict[str, Any] | None
    after: dict[str, Any]
    actor: str = "user:test@example.org"

    @classmethod
    def create(cls, object: str, after: dict[str, Any]) -> Change:
        """A create of `after` (for tests)."""
        return cls(object, "create", "00000000-0000-7000-8000-000000000000", None, after)

    @classmethod
    def update(cls, object: str, id: str, before: dict[str, Any], after: dict[str, Any]) -> Change:
        """An update from `before` to `after` (for tests)."""
        return cls(object, "update", id, before, after)

    def after_str(self, name: str) -> str | None:
        """A text field of the record as it will be stored."""
        value = self.after.get(name)
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Allow:
    """Let the write through unchanged."""


@dataclass(frozen=True)
class Deny:
    """Refuse the write; `reason` is shown to whoever attempted it."""

    reason: str


@dataclass(frozen=True)
class Modify:
    """Let the write through with these fields changed."""

    fields: dict[str, Any] = field(default_factory=dict)


Verdict = Allow | Deny | Modify
"""What `before_write` answers."""

ALLOW = Allow()


@dataclass
class Call:
    """A call of one of the plugin's declared queries or mutations.

    >>> Call("greetAgain", {"contactId": "c-1"}).str("contactId")
    'c-1'
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    caller: str = "user:test@example.org"

    def get(self, name: str, default: Any = None) -> Any:
        """An argument, or `default` when it is missing or null."""
        value = self.arguments.get(name)
        return default if value is None else value

    def str(self, name: str) -> str | None:
        """A text argument, or None."""
        value = self.arguments.get(name)
        return value if isinstance(value, str) else None


@dataclass
class RouteRequest:
    """A request to one of the plugin's declared routes (`[[routes]]`)."""

    method: str
    route: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    caller: str | None


@dataclass
class RouteResponse:
    """The answer to a route request."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> RouteResponse:
        """A JSON answer."""
        return cls(status, json.dumps(value).encode(), [("content-type", "application/json")])
