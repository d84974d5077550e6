"""A plugin is a subclass of `Plugin` overriding what it handles; `export` turns it into the
classes componentize-py looks for in the app module (`WitWorld`, `Extension`, `HttpHandler`,
for the `kith:plugin` world `plugin`).

```python
class Welcome(Plugin):
    def on_event(self, event):
        ...

WitWorld, Extension, HttpHandler = export(Welcome)
```
"""

from __future__ import annotations

import json
from typing import Any

from . import _host
from .errors import ErrorCode, HostError, OperationError
from .types import ALLOW, Allow, Call, Change, Deny, Event, Modify, RouteRequest, RouteResponse, Verdict


class Plugin:
    """The extension points, each with a default that does nothing (or refuses what the
    manifest cannot have declared). Kith makes a fresh instance for every call: keep state in
    `kv` or in records, not in `self`."""

    def on_event(self, event: Event) -> None:
        """Handles one event the manifest subscribes to (`events = [...]`). Raising fails the
        event: Kith retries it later, then dead-letters it."""

    def on_events(self, events: list[Event]) -> None:
        """Handles a batch, in order; the default calls `on_event` for each. An exception is
        reported for the event at fault; the ones before it count as handled."""
        for index, event in enumerate(events):
            try:
                self.on_event(event)
            except BatchFailure:
                raise
            except Exception as err:
                raise BatchFailure(index, err) from err

    def before_write(self, change: Change) -> Verdict:
        """Allows (`ALLOW`), refuses (`Deny(reason)`) or amends (`Modify(fields)`) a write to an
        object of `[before_write] objects`. Host writes are unavailable here."""
        return ALLOW

    def compute_field(self, object: str, field: str, ids: list[str]) -> list[Any]:
        """The values of a declared computed field (`[[fields]]`) for a page of records: one per
        id, in order (None for none). Reads only."""
        raise OperationError(ErrorCode.INTERNAL, f"no computed field `{field}` of `{object}`")

    def call(self, call: Call) -> Any:
        """Runs a declared query or mutation (`[[queries]]`, `[[mutations]]`); the result is
        checked against the declared type. Raise `OperationError` to answer an error."""
        raise OperationError(ErrorCode.INTERNAL, f"no operation `{call.name}`")

    def run_job(self, job: str, scheduled_for: str) -> None:
        """Runs a declared job (`[[jobs]]`) due at `scheduled_for` (RFC 3339 UTC)."""
        raise OperationError(ErrorCode.INTERNAL, f"no job `{job}`")

    def handle_request(self, request: RouteRequest) -> RouteResponse:
        """Answers a request to a declared route (`[[routes]]`)."""
        return RouteResponse(404, b"no such route")


class BatchFailure(Exception):
    """Handling the event at `index` of a batch failed."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(f"event {index}: {error}")
        self.index = index
        self.error = error


def describe(err: BaseException) -> str:
    """An exception as a message for Kith's log and dead letters: a host or operation error's own
    message (Kith's say what failed), anything else with its type."""
    if isinstance(err, (HostError, OperationError)):
        return err.message
    return f"{type(err).__name__}: {err}"


def event_of(event: Any) -> Event:
    """A WIT event as an SDK `Event`."""
    return Event(
        event.id,
        event.seq,
        event.kind,
        event.object,
        event.record_id,
        event.occurred_at,
        event.actor,
        event.origin_plugin,
        event.depth,
        json.loads(event.payload) if event.payload else {},
    )


def change_of(change: Any) -> Change:
    """A WIT change as an SDK `Change`."""
    return Change(
        change.object,
        change.operation.name.lower(),
        change.id,
        json.loads(change.before) if change.before else None,
        json.loads(change.after),
        change.actor,
    )


def export(plugin: type[Plugin]) -> tuple[type, type, type]:
    """The classes componentize-py instantiates for the world `plugin`, calling a fresh
    `plugin()` for each call: assign them in the app module,
    `WitWorld, Extension, HttpHandler = export(MyPlugin)`."""
    _host.use_wit()

    class WitWorld:
        def on_event(self, events: list[Any]) -> None:
            from componentize_py_types import Err
            from wit_world.imports import types as wit_types

            try:
                plugin().on_events([event_of(e) for e in events])
            except BatchFailure as failure:
                raise Err(wit_types.EventFailure(failure.index, describe(failure.error))) from None
            except Exception as err:
                raise Err(wit_types.EventFailure(0, describe(err))) from None

        def before_write(self, change: Any) -> Any:
            from wit_world.imports import types as wit_types

            try:
                verdict = plugin().before_write(change_of(change))
            except Exception as err:
                # Kith applies the manifest's `on_failure` to a hook that fails.
                raise RuntimeError(describe(err)) from None
            if isinstance(verdict, Deny):
                return wit_types.Verdict_Deny(verdict.reason)
            if isinstance(verdict, Modify):
                return wit_types.Verdict_Modify(json.dumps(verdict.fields))
            if isinstance(verdict, Allow):
                return wit_types.Verdict_Allow()
            raise TypeError(f"before_write answered {verdict!r}, not ALLOW, Deny(...) or Modify(...)")

    class Extension:
        def compute_field(self, object: str, field: str, ids: list[str]) -> list[str]:
            from componentize_py_types import Err

            try:
                values = plugin().compute_field(object, field, list(ids))
            except Exception as err:
                raise Err(describe(err)) from None
            if len(values) != len(ids):
                raise Err(f"compute_field answered {len(values)} values for {len(ids)} ids")
            return [json.dumps(v) for v in values]

        def call_operation(self, name: str, arguments: str, caller: str) -> str:
            from componentize_py_types import Err
            from wit_world.imports import types as wit_types
            from wit_world.exports import extension as wit_extension

            try:
                result = plugin().call(Call(name, json.loads(arguments) if arguments else {}, caller))
                return json.dumps(result)
            except Exception as err:
                failure = OperationError.of(err)
                code = getattr(wit_types.ErrorCode, failure.code.name)
                raise Err(wit_extension.OperationError(code, failure.message, failure.field)) from None

        def run_job(self, job: str, scheduled_for: str) -> None:
            from componentize_py_types import Err

            try:
                plugin().run_job(job, scheduled_for)
            except Exception as err:
                raise Err(describe(err)) from None

    class HttpHandler:
        def handle(self, request: Any) -> Any:
            from wit_world.exports import http_handler as wit_handler

            sdk_request = RouteRequest(
                request.method,
                request.route,
                request.path,
                request.query,
                [(h.name, h.value) for h in request.headers],
                bytes(request.body),
                request.caller,
            )
            try:
                response = plugin().handle_request(sdk_request)
            except Exception as err:
                response = RouteResponse(500, describe(err).encode())
            headers = [wit_handler.Header(n, v) for n, v in response.headers]
            return wit_handler.Response(response.status, headers, response.body)

    return WitWorld, Extension, HttpHandler
