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
