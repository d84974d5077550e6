//! The one error type of the domain layer.

use std::fmt;

/// Why a domain operation was refused. Each variant maps to one GraphQL error code and one CLI
/// message; none of them carries an internal detail a caller should not see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A value is missing, malformed or out of range.
    #[error("{field}: {reason}")]
    Validation {
        /// The API name of the offending field (`email`, `customFields.tier`, `row 12.email`).
        field: String,
        /// What is wrong with it, in words a user understands.
        reason: String,
    },
    /// The record does not exist (or is soft-deleted where a live one is needed).
    #[error("{object} {id} not found")]
    NotFound {
        /// The object kind, e.g. `contact`.
        object: String,
        /// The id that was looked up.
        id: String,
    },
    /// The change clashes with the current state: a stale version, a duplicate unique value or
    /// a transition the workflow does not allow.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Too many attempts (failed logins): try again after the given number of seconds.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    Throttled {
        /// Seconds until the next attempt is allowed.
        retry_after_secs: u64,
    },
    /// A plugin's `before-write` hook refused the change (or failed under a fail-closed policy).
    #[error("rejected by plugin `{plugin}`: {reason}")]
    Rejected {
        /// The plugin id.
        plugin: String,
        /// Its reason, shown to the writer.
        reason: String,
    },
}

impl DomainError {
    /// Shorthand for [`DomainError::Validation`].
    pub fn invalid(field: impl fmt::Display, reason: impl fmt::Display) -> DomainError {
        DomainError::Validation { field: field.to_string(), reason: reason.to_string() }
    }

    /// Shorthand for [`DomainError::NotFound`].
    pub fn not_found(object: impl fmt::Display, id: impl fmt::Display) -> DomainError {
        DomainError::NotFound { object: object.to_string(), id: id.to_string() }
    }

    /// Shorthand for [`DomainError::Conflict`].
    pub fn conflict(reason: impl fmt::Display) -> DomainError {
        DomainError::Conflict(reason.to_string())
    }
}

/// Result of a domain operation.
pub type Result<T, E = DomainError> = std::result::Result<T, E>;
