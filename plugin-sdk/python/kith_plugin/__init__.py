"""Kith's plugin SDK for Python: write a plugin as a `Plugin` subclass, build it with
componentize-py against Kith's committed WIT (`python -m kith_plugin.build`), and unit-test it
with `kith_plugin.testing.TestHost`.

```python
from kith_plugin import Event, Plugin, export, log, records

class Hello(Plugin):
    def on_event(self, event: Event) -> None:
        log.info(f"hello, {event.record_str('firstName') or 'there'}")

WitWorld, Extension, HttpHandler = export(Hello)
```
"""

from . import aggregate, filters, http, kv, log, records, settings
from ._host import current as _current
from .errors import ErrorCode, HostError, OperationError
from .plugin import BatchFailure, Plugin, export
from .types import ALLOW, Allow, Call, Change, Deny, Event, Modify, Page, Record, RouteRequest, RouteResponse, Verdict

WIT_VERSION = "1.4.0"
"""The `kith:plugin` version this SDK builds against (the manifest's `sdk_version`)."""


def now() -> str:
    """The current time, RFC 3339 UTC with microseconds (the host's clock)."""
    return _current().now()


__all__ = [
    "ALLOW",
    "Allow",
    "BatchFailure",
    "Call",
    "Change",
    "Deny",
    "ErrorCode",
    "Event",
    "HostError",
    "Modify",
    "OperationError",
    "Page",
    "Plugin",
    "Record",
    "RouteRequest",
    "RouteResponse",
    "Verdict",
    "WIT_VERSION",
    "aggregate",
    "export",
    "filters",
    "http",
    "kv",
    "log",
    "now",
    "records",
    "settings",
]
