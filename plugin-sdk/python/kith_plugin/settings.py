"""The plugin's settings (`[settings.KEY]` in plugin.toml), as the admin set them or their
defaults. Secret settings are never readable: use `{{secret:KEY}}` in an HTTP request.

>>> from kith_plugin.testing import TestHost
>>> with TestHost().setting("greeting", "Hi"):
...     get("greeting"), get("missing", "fallback")
('Hi', 'fallback')
"""

from __future__ import annotations

import json
from typing import Any

from . import _host


def get(key: str, default: Any = None) -> Any:
    """The setting's value, or `default` when it is null or the manifest declares no `key`."""
    text = _host.current().setting_value(key)
    value = json.loads(text) if text else None
    return default if value is None else value
