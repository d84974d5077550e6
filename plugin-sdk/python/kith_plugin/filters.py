"""The filter language of lists, segments and plugins, built with Python calls. A filter is a
plain dict (`{"email": {"ilike": "%@example.org"}}`): these helpers only spell it.

>>> all_of(field("tier").eq("GOLD"), field("score").gte(5))
{'and': [{'tier': {'eq': 'GOLD'}}, {'score': {'gte': 5}}]}
>>> any_of(field("note").is_null(), not_(field("active").eq(True)))
{'or': [{'note': {'isNull': True}}, {'not': {'active': {'eq': True}}}]}
"""

from __future__ import annotations

from typing import Any


class field:
    """Conditions on one field: `field("email").ends_with("@example.org")`.

    >>> field("email").ends_with("100%_off.test")
    {'email': {'ilike': '%100\\\\%\\\\_off.test'}}
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def _op(self, op: str, value: Any) -> dict[str, Any]:
        return {self.name: {op: value}}

    def eq(self, value: Any) -> dict[str, Any]:
        return self._op("eq", value)

    def neq(self, value: Any) -> dict[str, Any]:
        """Not equal (never matches a null, as in SQL)."""
        return self._op("neq", value)

    def in_(self, values: list[Any]) -> dict[str, Any]:
        return self._op("in", list(values))

    def not_in(self, values: list[Any]) -> dict[str, Any]:
        return self._op("notIn", list(values))

    def lt(self, value: Any) -> dict[str, Any]:
        return self._op("lt", value)

    def lte(self, value: Any) -> dict[str, Any]:
        return self._op("lte", value)

    def gt(self, value: Any) -> dict[str, Any]:
        return self._op("gt", value)

    def gte(self, value: Any) -> dict[str, Any]:
        return self._op("gte", value)

    def between(self, low: Any, high: Any) -> dict[str, Any]:
        """`low <= value <= high`."""
        return {self.name: {"gte": low, "lte": high}}

    def is_null(self, null: bool = True) -> dict[str, Any]:
        return self._op("isNull", null)

    def starts_with(self, prefix: str) -> dict[str, Any]:
        """Text starting with `prefix`, ignoring case (`%` and `_` taken literally)."""
        return self._op("startsWith", prefix)

    def ends_with(self, suffix: str) -> dict[str, Any]:
        """Text ending with `suffix`, ignoring case (an `ilike` with `suffix` escaped)."""
        return self._op("ilike", "%" + escape_like(suffix))

    def like(self, pattern: str) -> dict[str, Any]:
        """SQL LIKE, case-sensitive (`%`, `_`, `\\` escapes)."""
        return self._op("like", pattern)

    def ilike(self, pattern: str) -> dict[str, Any]:
        """SQL LIKE ignoring case."""
        return self._op("ilike", pattern)


def all_of(*filters: dict[str, Any]) -> dict[str, Any]:
    """Every filter matches (an empty list matches everything)."""
    return {"and": list(filters)}


def any_of(*filters: dict[str, Any]) -> dict[str, Any]:
    """At least one filter matches (an empty list matches nothing)."""
    return {"or": list(filters)}


def not_(filter: dict[str, Any]) -> dict[str, Any]:
    """The filter does not match (with SQL's logic: a comparison with null is not negated to true)."""
    return {"not": filter}


def asc(name: str, nulls: str | None = None) -> dict[str, str]:
    """A sort key, ascending (nulls last unless `nulls="FIRST"`)."""
    key = {"field": name, "direction": "ASC"}
    if nulls:
        key["nulls"] = nulls
    return key


def desc(name: str, nulls: str | None = None) -> dict[str, str]:
    """A sort key, descending (nulls first unless `nulls="LAST"`)."""
    key = {"field": name, "direction": "DESC"}
    if nulls:
        key["nulls"] = nulls
    return key


def escape_like(text: str) -> str:
    """`text` with LIKE's wildcards and escape character taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
