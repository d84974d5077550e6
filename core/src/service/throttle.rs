//! The login throttle: failed logins are counted per account and per client address, and past
//! a few free tries each further try must wait longer (1 s, 2 s, 4 s, … up to 15 minutes),
//! so guessing a password at the speed of the network is impossible.
//!
//! While a key waits, a login is refused before its password is checked, so even the right
//! password does not get through: the throttle is not an oracle. A success clears its
//! account's and its address's failures; failures are forgotten an hour after the last one.
//! The counts live in this process (several Kith processes behind a balancer each keep their
//! own, which multiplies an attacker's budget by their number and no more).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failures an account may have before it must wait.
pub const FREE_ACCOUNT_FAILURES: u32 = 5;
/// Failures one client address may have before it must wait: higher than an account's, as
/// many people may share an address behind one NAT.
pub const FREE_ADDRESS_FAILURES: u32 = 20;
/// The longest wait.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Most keys kept; beyond, the oldest are forgotten first.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No login for this key before then.
    until: Instant,
}

/// What is throttled: an account (by lower-case e-mail) or a client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Failed logins by account and by client address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<Key, Failures>>,
}

impl LoginThrottle {
    /// How long a login for `email` from `address` must still wait; `None` when it may try now.
    pub fn wait(&self, email: &str, address: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        keys(email, address)
            .iter()
            .filter_map(|key| failures.get(key))
            .filter(|f| f.until > now)
            .map(|f| f.until - now)
            .max()
    }

    /// Counts a failed login, and sets when the next try is allowed.
    pub fn failed(&self, email: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if failures.len() >= MAX_KEYS {
                // Still full (a flood of distinct keys): drop the older half.
                let mut lasts: Vec<Instant> = failures.values().map(|f| f.last).collect();
                lasts.sort_unstable();
                let cut = lasts[lasts.len() / 2];
                failures.retain(|_, f| f.last > cut);
            }
        }
        for key in keys(email, address) {
            let free = match key {
                Key::Account(_) => FREE_ACCOUNT_FAILURES,
                Key::Address(_) => FREE_ADDRESS_FAILURES,
            };
            let entry = failures.entry(key).or_insert(Failures { count: 0, last: now, until: now });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            entry.until = now + delay(entry.count, free);
        }
    }

    /// Clears the failures of `email` and `address` after a successful login.
    pub fn succeeded(&self, email: &str, address: Option<IpAddr>) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys(email, address) {
            failures.remove(&key);
        }
    }
}

/// The wait after the `count`th failure of a key allowed `free` failures: none up to `free`,
/// then doubling from one second, capped at [`MAX_WAIT`].
pub fn delay(count: u32, free: u32) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_WAIT)
}

fn keys(email: &str, address: Option<IpAddr>) -> Vec<Key> {
    let mut keys = vec![Key::Account(email.trim().to_lowercase())];
    if let Some(address) = address {
        keys.push(Key::Address(address));
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_start_after_the_free_tries_and_double_up_to_the_cap() {
        let waits: Vec<u64> = (1..=8).map(|n| delay(n, 5).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(delay(40, 5), MAX_WAIT);
    }

    #[test]
    fn an_account_waits_after_its_free_failures_whatever_the_case_of_its_address_and_a_success_clears_it() {
        let throttle = LoginThrottle::default();
        let address: Option<IpAddr> = "127.0.0.9".parse().ok();
        for _ in 0..FREE_ACCOUNT_FAILURES - 1 {
            throttle.failed("Ada@Example.org", address);
            assert_eq!(throttle.wait("ada@example.org", address), None);
        }
        throttle.failed("ada@example.org", None);
        let wait = throttle.wait(" ADA@example.org", None).expect("the account waits");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO, "{wait:?}");
        // Another account from the same address is not held by this account's failures.
        assert_eq!(throttle.wait("grace@example.org", address), None);
        throttle.succeeded("ada@example.org", address);
        assert_eq!(throttle.wait("ada@example.org", address), None);
    }

    #[test]
    fn an_address_that_tries_many_accounts_waits() {
        let throttle = LoginThrottle::default();
        let address: Option<IpAddr> = "10.1.2.3".parse().ok();
        for n in 0..FREE_ADDRESS_FAILURES {
            throttle.failed(&format!("user{n}@example.org"), address);
        }
        assert!(throttle.wait("someone-new@example.org", address).is_some());
        assert_eq!(throttle.wait("someone-new@example.org", "10.1.2.4".parse().ok()), None);
    }
}
