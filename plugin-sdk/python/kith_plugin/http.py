"""Outbound HTTP, to the origins the admin granted (`http:https://api.example.org` in the
manifest's capabilities). Kith checks every hop, caps time and size, and puts secret settings
where a header or body says `{{secret:KEY}}`, so secrets never enter the plugin.

>>> from kith_plugin.testing import TestHost
>>> with TestHost().grant("http:https://api.example.org") as host:
...     host.http_stub("https://api.example.org/ping", Response(200, b"pong"))
...     get("https://api.example.org/ping").text()
'pong'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import _host


@dataclass
class Request:
    """A request: `method` is GET, POST, PUT, PATCH, DELETE or HEAD; `url` absolute."""

    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    timeout_ms: int | None = None


@dataclass
class Response:
    """A response, after redirects (`url` is the one that answered)."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def text(self) -> str:
        """The body as UTF-8 text (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises `ValueError` when it is not)."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """The first header called `name`, ignoring case."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300


def send(request: Request) -> Response:
    """Sends `request`. Raises `HostError` (`DENIED` for an origin not granted)."""
    return _host.current().http_send(request)


def get(url: str, headers: list[tuple[str, str]] | None = None, timeout_ms: int | None = None) -> Response:
    """A GET request."""
    return send(Request("GET", url, headers or [], None, timeout_ms))


def post_json(url: str, value: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    """A POST of `value` as JSON."""
    all_headers = [("content-type", "application/json"), *(headers or [])]
    return send(Request("POST", url, all_headers, json.dumps(value).encode()))
