"""The Python SDK's public API as text: every public module's names with their signatures, and
the public methods of its classes. `tests/test_public_api.py` compares it with
`public-api.txt`; `python3 scripts/public_api.py > public-api.txt` rewrites it after a
deliberate change."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODULES = [
    "kith_plugin",
    "kith_plugin.aggregate",
    "kith_plugin.build",
    "kith_plugin.errors",
    "kith_plugin.filters",
    "kith_plugin.http",
    "kith_plugin.kv",
    "kith_plugin.log",
    "kith_plugin.plugin",
    "kith_plugin.records",
    "kith_plugin.settings",
    "kith_plugin.testing",
    "kith_plugin.types",
]


def signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def describe(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    lines = []
    for name in sorted(names):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            if module_name == "kith_plugin":
                lines.append(f"{module_name}.{name}: module")
        elif inspect.isclass(obj):
            if getattr(obj, "__module__", module_name) != module_name and module_name != "kith_plugin":
                continue  # imported from elsewhere: described there
            bases = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
            lines.append(f"{module_name}.{name}: class({bases})")
            for member, value in sorted(vars(obj).items()):
                if member.startswith("_") and member != "__init__":
                    continue
                if inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
                    function = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
                    kind = "classmethod " if isinstance(value, classmethod) else ""
                    lines.append(f"    {kind}{member}{signature(function)}")
                elif isinstance(value, property):
                    lines.append(f"    property {member}")
        elif callable(obj):
            if getattr(obj, "__module__", module_name) != module_name and module_name != "kith_plugin":
                continue
            lines.append(f"{module_name}.{name}{signature(obj)}")
        elif module_name == "kith_plugin" or (
            re.search(rf"^{name}\s*[:=]", inspect.getsource(module), re.M) and type(obj).__name__ != "TypeVar"
        ):
            # A constant defined here (not an import, nor `from __future__ import annotations`).
            lines.append(f"{module_name}.{name}: {type(obj).__name__}")
    return lines


def public_api() -> str:
    return "\n".join(line for module in MODULES for line in describe(module)) + "\n"


if __name__ == "__main__":
    sys.stdout.write(public_api())
