"""Which host the SDK's calls reach: Kith, through the WIT imports componentize-py generated
(`wit_world`), or a `testing.TestHost` installed for a test. Every module of the SDK calls
`current()`; nothing else touches the WIT."""

from __future__ import annotations

from typing import Any, Protocol

from .types import Page, Record


class Backend(Protocol):
    """What a host offers, in Python values; failures raise `HostError`."""

    def log(self, level: str, message: str) -> None: ...
    def now(self) -> str: ...
    def get_record(self, object: str, id: str) -> Record | None: ...
    def query_records(
        self, object: str, filter: str | None, order_by: str | None, first: int, after: str | None
    ) -> Page: ...
    def create_record(self, object: str, fields: str) -> Record: ...
    def update_record(self, object: str, id: str, fields: str, expected_version: int | None) -> Record: ...
    def kv_get(self, key: str) -> bytes | None: ...
    def kv_set(self, key: str, value: bytes) -> None: ...
    def kv_delete(self, key: str) -> bool: ...
    def kv_keys(self, prefix: str) -> list[str]: ...
    def setting_value(self, key: str) -> str | None: ...
    def http_send(self, request: Any) -> Any: ...
    def aggregate(self, object: str, request: Any) -> list[Any]: ...


_installed: list[Backend] = []
_wit: Backend | None = None


def current() -> Backend:
    """The test host installed last, else Kith's (only inside a component)."""
    global _wit
    if _installed:
        return _installed[-1]
    if _wit is None:
        try:
            from . import _wit as wit
        except ImportError as err:  # wit_world exists only in a component built by componentize-py
            raise RuntimeError(
                "kith_plugin: host calls outside a component need a TestHost: "
                f"`with TestHost() as host:` or `host.on_event(MyPlugin, event)` ({err})"
            ) from err
        _wit = wit.WitBackend()
    return _wit


def use_wit() -> None:
    """Inside componentize-py's build (where `wit_world` exists), loads Kith's host now: a
    component holds only the modules its app imported while it was being built."""
    global _wit
    try:
        import wit_world  # noqa: F401
    except ImportError:
        return  # not in a component: unit tests install a TestHost
    from wit_world.exports import extension, http_handler  # noqa: F401

    from . import _wit as wit

    _wit = wit.WitBackend()


def install(backend: Backend) -> None:
    _installed.append(backend)


def uninstall(backend: Backend) -> None:
    if _installed and _installed[-1] is backend:
        _installed.pop()
    elif backend in _installed:
        _installed.remove(backend)
