//! The vocabulary of `credwatch check`'s report that providers contribute
//! to: a [`Finding`] and its [`Severity`].

use serde::Serialize;

use super::outcome::Evidence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One thing worth saying about a credential.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable code: a reason, a problem code, a phone problem or a config code.
    pub code: String,
    /// The check that produced it (`subscription`, `phone_numbers`, …); `config` for config findings.
    pub check: String,
    pub summary: String,
    pub fix: String,
    /// What upstream said; absent for config findings.
    pub evidence: Option<Evidence>,
}

/// What the status page (`/`) shows of a provider's details, in words that
/// name no provider: the page draws each kind its own way (a bar for a
/// usage, an amount with its currency, a list of numbers).
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// A quota: `share` is "quota used" as `check` and the alerts define it
    /// (used / ceiling), `None` without a ceiling.
    Usage {
        label: &'static str,
        unit: &'static str,
        used: u64,
        limit: u64,
        ceiling: Option<u64>,
        share: Option<f64>,
        /// At or above the alert threshold (`threshold`, a 0–1 share).
        high: bool,
        threshold: f64,
        reset_at: Option<i64>,
    },
    /// An amount of money in its currency; `low` below the alert threshold.
    Money {
        label: &'static str,
        amount: f64,
        currency: String,
        low: bool,
        threshold: f64,
    },
    /// A plain value; `warn` when it deserves a warning (a Trial account).
    Text {
        label: &'static str,
        value: String,
        warn: bool,
    },
    /// Numbers imported elsewhere and what the cross-check found.
    Numbers(Vec<ShownNumber>),
}

/// One imported number on the status page.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownNumber {
    pub id: String,
    pub number: String,
    pub label: String,
    pub ready: bool,
    /// Stable problem labels (as exported), blocking or advice.
    pub problems: Vec<&'static str>,
}
