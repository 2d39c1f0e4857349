//! The `/health` body's entries: one JSON object per credential (from its
//! [`CredentialState`]) and per call path (from its [`PathState`]). Pure
//! functions of the domain's values, so the state's store renders an entry
//! when a credential or path changes and `/health` only copies them.

use std::time::SystemTime;

use serde::Serialize;
use tokio::time::Instant;

use crate::call_paths::{PathState, exposition};
use crate::outcome::{Basis, Reason};
use crate::verdict::{CredentialState, Health, PendingCause, PendingWhy};

/// One credential in the `/health` body.
#[derive(Serialize)]
struct HealthEntry<'a> {
    name: &'a str,
    provider: &'static str,
    critical: bool,
    healthy: bool,
    status: &'static str,
    valid: Option<bool>,
    /// Why it is unhealthy.
    reason: Option<Reason>,
    /// Why the last check got no definitive answer, when it did not.
    check_error: Option<Reason>,
    missing_permissions: Vec<&'a str>,
    /// Each required permission that is known: granted or not, and on what basis.
    permissions: Vec<PermissionEntry<'a>>,
    last_success: Option<String>,
    last_check: Option<String>,
    /// Why there is no verdict; only while `status` is `pending` (absent
    /// otherwise, so a healthy entry costs nothing more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pending: Option<PendingJson>,
    /// What credwatch refuses in the secret's value; only with `invalid_config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    config_error: Option<&'a str>,
}

/// [`PendingWhy`] as `/health` and `check --output json` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PendingJson {
    pub why: PendingCause,
    /// [`PendingWhy::short`].
    pub summary: String,
    pub check: String,
    pub permission: Option<String>,
    pub reason: Option<Reason>,
    pub since: Option<String>,
    pub secret_changed: Option<String>,
    pub answer: Option<String>,
    pub message: String,
    pub fix: Option<&'static str>,
}

impl PendingJson {
    fn of(p: PendingWhy) -> Self {
        PendingJson {
            summary: p.short(),
            message: p.message(),
            fix: p.fix(),
            why: p.why,
            since: rfc3339(p.since),
            secret_changed: rfc3339(p.secret_changed),
            check: p.check,
            permission: p.permission,
            reason: p.reason,
            answer: p.answer,
        }
    }
}

/// One permission verdict in the `/health` entry.
#[derive(Serialize)]
struct PermissionEntry<'a> {
    permission: &'a str,
    granted: bool,
    basis: Option<Basis>,
}

fn rfc3339(t: Option<SystemTime>) -> Option<String> {
    t.map(crate::providers::words::time)
}

impl<'a> HealthEntry<'a> {
    fn of(s: &'a CredentialState) -> Self {
        let health = s.health();
        HealthEntry {
            name: &s.name,
            provider: s.provider.as_str(),
            critical: s.settings.critical,
            healthy: health == Health::Healthy,
            status: match health {
                Health::Pending => "pending",
                Health::Healthy => "healthy",
                Health::Unhealthy(_) => "unhealthy",
            },
            valid: s.verdict.valid,
            reason: match health {
                Health::Unhealthy(r) => Some(r),
                _ => None,
            },
            check_error: s.check_error,
            missing_permissions: s.missing_permissions(),
            permissions: s
                .settings
                .required_permissions
                .iter()
                .filter_map(|p| {
                    Some(PermissionEntry {
                        permission: p,
                        granted: *s.verdict.permissions.get(p)?,
                        basis: s.verdict.permission_basis.get(p).copied(),
                    })
                })
                .collect(),
            last_success: rfc3339(s.last_success),
            last_check: rfc3339(s.last_check),
            pending: s.pending_why().map(PendingJson::of),
            config_error: s.refused.as_deref(),
        }
    }
}

/// The credential's `/health` entry, a JSON object.
pub fn credential(s: &CredentialState) -> String {
    serde_json::to_string(&HealthEntry::of(s)).unwrap_or_else(|_| "{}".into())
}

/// Why it is pending, as `/health`'s `pending` object (for `check`'s JSON).
pub fn pending(s: &CredentialState) -> Option<PendingJson> {
    s.pending_why().map(PendingJson::of)
}

/// One call path in the `/health` body.
#[derive(Serialize)]
struct PathEntry<'a> {
    call_path: &'a str,
    status: &'static str,
    critical: bool,
    elevenlabs: &'a str,
    twilio: &'a str,
    problems: Vec<String>,
}

/// The path's `/health` entry (a JSON object).
pub fn call_path(p: &PathState, now: Instant) -> String {
    let links = p.links(now);
    serde_json::to_string(&PathEntry {
        call_path: &p.path.name,
        status: exposition::status(&links),
        critical: p.path.critical,
        elevenlabs: &p.path.caller,
        twilio: &p.path.carrier,
        problems: links.iter().filter_map(exposition::problem_label).collect(),
    })
    .unwrap_or_default()
}
