"""The plugin's own key-value store (needs `kv`): keys up to 256 bytes, values up to 64 KiB.

>>> from kith_plugin.testing import TestHost
>>> with TestHost().grant("kv"):
...     set_json("count", 2)
...     get_json("count", 0) + 1
3
"""

from __future__ import annotations

import json
from typing import Any

from . import _host


def get(key: str) -> bytes | None:
    """The value of `key`, or None."""
    return _host.current().kv_get(key)


def set(key: str, value: bytes | str) -> None:
    """Stores `value` (text is stored as UTF-8)."""
    _host.current().kv_set(key, value.encode() if isinstance(value, str) else bytes(value))


def delete(key: str) -> bool:
    """Deletes `key`; whether it existed."""
    return _host.current().kv_delete(key)


def keys(prefix: str = "") -> list[str]:
    """Keys starting with `prefix`, sorted, at most 1000."""
    return _host.current().kv_keys(prefix)


def get_json(key: str, default: Any = None) -> Any:
    """The value of `key` parsed as JSON, or `default` when there is none."""
    value = get(key)
    return default if value is None else json.loads(value)


def set_json(key: str, value: Any) -> None:
    """Stores `value` as JSON."""
    set(key, json.dumps(value))
