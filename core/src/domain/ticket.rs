//! The ticket workflow: statuses, allowed transitions, priorities and SLA due times.

use chrono::{DateTime, Duration, Utc};

use crate::domain::{DomainError, Result};

/// Ticket statuses, in workflow order.
pub const STATUSES: &[&str] = &["NEW", "OPEN", "PENDING", "ON_HOLD", "SOLVED", "CLOSED"];
/// Ticket priorities, lowest first.
pub const PRIORITIES: &[&str] = &["LOW", "NORMAL", "HIGH", "URGENT"];
/// Channels a ticket can arrive through.
pub const CHANNELS: &[&str] = &["EMAIL", "PHONE", "CHAT", "WEB", "OTHER"];

/// Whether a ticket may move from `from` to `to`.
///
/// The workflow: a NEW ticket is picked up (OPEN), may wait on the customer (PENDING) or on a
/// third party (ON_HOLD), is SOLVED, and once solved is either reopened or CLOSED. CLOSED is
/// final: a new request needs a new ticket. Moving to the same status is not a transition.
pub fn can_transition(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("NEW", "OPEN" | "PENDING" | "ON_HOLD" | "SOLVED" | "CLOSED")
            | ("OPEN", "PENDING" | "ON_HOLD" | "SOLVED")
            | ("PENDING", "OPEN" | "ON_HOLD" | "SOLVED")
            | ("ON_HOLD", "OPEN" | "PENDING" | "SOLVED")
            | ("SOLVED", "OPEN" | "CLOSED")
    )
}

/// Checks a transition, with an error that says what is allowed instead.
pub fn check_transition(from: &str, to: &str) -> Result<()> {
    if !STATUSES.contains(&to) {
        return Err(DomainError::invalid("status", format!("unknown status `{to}`")));
    }
    if can_transition(from, to) {
        return Ok(());
    }
    let allowed: Vec<&str> = STATUSES.iter().copied().filter(|s| can_transition(from, s)).collect();
    let allowed = if allowed.is_empty() { "none: it is final".to_owned() } else { allowed.join(", ") };
    Err(DomainError::conflict(format!("a {from} ticket cannot become {to} (allowed: {allowed})")))
}

/// Minutes allowed until first response and until resolution, for one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaPolicy {
    /// Minutes from creation to the first public reply.
    pub first_response_minutes: i64,
    /// Minutes from creation to the solution.
    pub resolution_minutes: i64,
}

/// The due times an SLA policy gives a ticket created at `created_at`.
pub fn sla_due(created_at: DateTime<Utc>, policy: SlaPolicy) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        created_at + Duration::minutes(policy.first_response_minutes),
        created_at + Duration::minutes(policy.resolution_minutes),
    )
}

/// Checks a satisfaction rating.
pub fn check_rating(rating: i64) -> Result<()> {
    if (1..=5).contains(&rating) {
        Ok(())
    } else {
        Err(DomainError::invalid("rating", format!("must be between 1 and 5, got {rating}")))
    }
}

/// Statuses in which a ticket may be rated.
pub fn can_rate(status: &str) -> bool {
    matches!(status, "SOLVED" | "CLOSED")
}
