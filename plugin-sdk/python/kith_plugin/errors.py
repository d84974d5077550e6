"""The errors of host calls and of a plugin's operations."""

from __future__ import annotations

import enum


class ErrorCode(enum.Enum):
    """Why a host call or an operation failed (the WIT's `error-code`)."""

    DENIED = "denied"
    """The plugin was not granted the capability this call needs."""
    INVALID_INPUT = "invalid-input"
    """An argument was malformed or a value broke a validation rule."""
    NOT_FOUND = "not-found"
    """The record or key does not exist."""
    CONFLICT = "conflict"
    """A uniqueness rule or an expected version did not hold."""
    LIMIT_EXCEEDED = "limit-exceeded"
    """A size or rate limit was reached."""
    UNAVAILABLE = "unavailable"
    """The call is not allowed here (a write inside `before_write`, a query or a computed field)."""
    INTERNAL = "internal"
    """Kith (or the plugin) failed; retrying later may help."""


class HostError(Exception):
    """A host call Kith refused or failed. Let it propagate: from an event handler it fails the
    event (Kith retries it), from an operation it is answered to the caller with its code.

    >>> err = HostError(ErrorCode.DENIED, "the plugin was not granted `kv`")
    >>> err.code.value, str(err)
    ('denied', 'the plugin was not granted `kv`')
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OperationError(Exception):
    """The answer of a failed query, mutation, computed field or job, shown to the caller with
    its code (`INVALID_INPUT` is GraphQL's `BAD_USER_INPUT`) and the argument at fault.

    >>> err = OperationError.invalid("contactId", "no contact `x`")
    >>> err.code.value, err.field, err.message
    ('invalid-input', 'contactId', 'no contact `x`')
    """

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def invalid(cls, field: str, message: str) -> OperationError:
        """A bad argument: `field` names it."""
        return cls(ErrorCode.INVALID_INPUT, message, field)

    @classmethod
    def not_found(cls, message: str) -> OperationError:
        """What the caller asked for does not exist."""
        return cls(ErrorCode.NOT_FOUND, message)

    @classmethod
    def conflict(cls, message: str) -> OperationError:
        """The request clashes with the stored state."""
        return cls(ErrorCode.CONFLICT, message)

    @classmethod
    def denied(cls, message: str) -> OperationError:
        """The caller may not do this."""
        return cls(ErrorCode.DENIED, message)

    @classmethod
    def of(cls, err: BaseException) -> OperationError:
        """Any exception as an operation error: a host error keeps its code, anything else is
        `INTERNAL` with its message."""
        if isinstance(err, OperationError):
            return err
        if isinstance(err, HostError):
            return cls(err.code, err.message)
        return cls(ErrorCode.INTERNAL, f"{type(err).__name__}: {err}")
