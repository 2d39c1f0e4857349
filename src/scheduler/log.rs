//! What the scheduler logs about each credential: a check's outcome and a
//! credential's standing when they change, once; a failure that persists at
//! most every [`STILL_FAILING_LOG_EVERY`]; the rest at debug.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::Entry;
use crate::config::Credential;
use crate::outcome::Attempt;
use crate::verdict::{Health, PendingCause, Recorded, Standing};

/// A failure that persists (the same reason, the same standing) is logged
/// when it starts, then at most once per this period ("still failing").
pub const STILL_FAILING_LOG_EVERY: Duration = Duration::from_secs(15 * 60);

/// When the log last spoke about a credential and each of its checks, so a
/// persisting failure is not repeated every interval.
pub(super) struct LogState {
    /// The standing last logged, since when (wall clock, for the message)
    /// and when it was last logged.
    standing: Standing,
    since: SystemTime,
    logged: Instant,
    /// Per check: when its persisting failure was last logged.
    checks: HashMap<String, Instant>,
}

impl LogState {
    pub(super) fn new(standing: Standing) -> Self {
        LogState {
            standing,
            since: SystemTime::now(),
            logged: Instant::now(),
            checks: HashMap::new(),
        }
    }
}

/// The log lines of one recorded cycle: each check whose outcome changed,
/// and the credential's standing when it changed, once; a failure that
/// persists at most once per [`STILL_FAILING_LOG_EVERY`]. The rest is debug.
pub(super) fn log_cycle(e: &mut Entry, attempts: &[Attempt], recorded: &Recorded) {
    let now = Instant::now();
    let cred = &e.cred;
    for (a, changed) in attempts.iter().zip(&recorded.changed) {
        let failing = a.error_reason().is_some();
        // While the credential itself is failing, its own reminder says so.
        let remind = failing
            && !changed
            && !recorded.after.failing()
            && e.log
                .checks
                .get(&a.check)
                .is_none_or(|t| now.duration_since(*t) >= STILL_FAILING_LOG_EVERY);
        if failing && (*changed || remind) {
            e.log.checks.insert(a.check.clone(), now);
        }
        log_attempt(cred, a, *changed, remind);
    }
    let after = recorded.after;
    if after != e.log.standing {
        let before = e.log.standing;
        e.log = LogState {
            standing: after,
            since: SystemTime::now(),
            logged: now,
            checks: std::mem::take(&mut e.log.checks),
        };
        log_standing(e, before, None);
    } else if after.failing() && now.duration_since(e.log.logged) >= STILL_FAILING_LOG_EVERY {
        e.log.logged = now;
        log_standing(e, after, Some(e.log.since));
    }
}

/// One line about the credential's standing: a transition from `before`,
/// or (`still`) a failure that persists since then.
pub(super) fn log_standing(e: &Entry, before: Standing, still: Option<SystemTime>) {
    let cred = &e.cred;
    let after = e.log.standing;
    let was = describe(before);
    let since = still
        .map(|t| format!(" since {}", crate::providers::words::time(t)))
        .unwrap_or_default();
    let pending = e.slot.snapshot().pending_why();
    match after.health {
        // (A refusal is logged where it happens, `Scheduler::refuse`.)
        Health::Unhealthy(reason) if still.is_some() => {
            tracing::warn!(credential = %cred.name, provider = %cred.provider(), reason = reason.as_str(), "credential still unhealthy{since}: {}", reason.as_str());
        }
        Health::Unhealthy(reason) => {
            tracing::warn!(credential = %cred.name, provider = %cred.provider(), reason = reason.as_str(), was = was, "credential unhealthy: {}", reason.as_str());
        }
        Health::Healthy
            if before.health == Health::Pending
                && before.pending == Some(PendingCause::NotChecked) =>
        {
            tracing::debug!(credential = %cred.name, provider = %cred.provider(), "credential healthy");
        }
        Health::Healthy if before.pending == Some(PendingCause::SecretChanged) => {
            tracing::info!(credential = %cred.name, provider = %cred.provider(), was = was, "credential healthy: the new secret is confirmed");
        }
        Health::Healthy => {
            tracing::info!(credential = %cred.name, provider = %cred.provider(), was = was, "credential healthy again (was {was})");
        }
        Health::Pending => {
            let why = pending
                .as_ref()
                .map(|p| p.why.as_str())
                .unwrap_or("not_checked");
            let message = pending.as_ref().map(|p| p.message()).unwrap_or_default();
            let fix = pending
                .as_ref()
                .and_then(|p| p.fix())
                .map(|f| format!("; fix: {f}"))
                .unwrap_or_default();
            if still.is_some() {
                tracing::warn!(credential = %cred.name, provider = %cred.provider(), why = why, "credential still has no verdict{since}: {message}{fix}");
            } else if after.failing() {
                tracing::warn!(credential = %cred.name, provider = %cred.provider(), why = why, was = was, "credential has no verdict: {message}{fix}");
            } else {
                tracing::info!(credential = %cred.name, provider = %cred.provider(), why = why, was = was, "credential has no verdict: {message}");
            }
        }
    }
}

pub(super) fn describe(s: Standing) -> &'static str {
    match (s.health, s.pending) {
        (Health::Healthy, _) => "healthy",
        (Health::Unhealthy(r), _) => r.as_str(),
        (Health::Pending, Some(why)) => why.as_str(),
        (Health::Pending, None) => "pending",
    }
}

/// One attempt: at warn when its check's outcome changed to a failure or a
/// negative answer (or, `remind`, when one persists), at info when it
/// recovered, at debug otherwise.
pub(super) fn log_attempt(cred: &Credential, a: &Attempt, changed: bool, remind: bool) {
    let ev = &a.evidence;
    let still = if remind && !changed { "still: " } else { "" };
    match (&a.result, a.error_reason()) {
        (Ok(_), None) if changed => tracing::info!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check,
            status = ev.http_status, duration_ms = a.duration.as_millis() as u64, "check answered: {}", ev.detail
        ),
        (Ok(_), None) => tracing::debug!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check,
            status = ev.http_status, duration_ms = a.duration.as_millis() as u64, "{}", ev.detail
        ),
        (Ok(_), Some(reason)) if changed || remind => tracing::warn!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check, reason = reason.as_str(),
            request = %ev.request, status = ev.http_status, code = ev.upstream_code.as_deref(),
            request_id = ev.request_id.as_deref(),
            "{still}{}", ev.detail
        ),
        (Err(f), _) if changed || remind => tracing::warn!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check, reason = f.reason.as_str(),
            request = %ev.request, status = ev.http_status, code = ev.upstream_code.as_deref(),
            request_id = ev.request_id.as_deref(),
            "{still}no definitive answer, keeping the last verdict: {}", ev.detail
        ),
        (_, reason) => tracing::debug!(
            credential = %cred.name, provider = %cred.provider(), check = %a.check, reason = reason.map(|r| r.as_str()),
            request = %ev.request, status = ev.http_status, code = ev.upstream_code.as_deref(),
            request_id = ev.request_id.as_deref(),
            "unchanged: {}", ev.detail
        ),
    }
}
