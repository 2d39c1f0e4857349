//! `credwatch check`: every probe once, then per credential a verdict and,
//! for each problem, the evidence and the fix.
//!
//! It uses the same providers and the same verdict rules as the daemon (the
//! attempts go through [`State::record`]), so `check` and `/health` never
//! disagree. Its JSON output is a stable interface (`version: 2`,
//! `docs/check-output.md`).

/// `credwatch calibrate` lives with the provider whose probes it proves.
pub use crate::providers::calibrate;
pub mod explain;
pub mod findings;
#[cfg(test)]
mod properties;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use crate::call_paths::report::CallPathReport;
use crate::config::{Config, Credential};
use crate::outcome::{Evidence, Reason};
pub use crate::providers::report::{Finding, Severity};
use crate::providers::{self, Context, Plan, http::Upstream};
pub use crate::render::report::{CredentialReport, Report};
use crate::state::State;
use crate::verdict::{CredentialState, Health};

/// What `check` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only<'a> {
    /// Every credential and call path.
    All,
    /// One credential (`--credential`), no call path.
    Credential(&'a str),
    /// One call path (`--call-path`) and its two credentials; the exit code
    /// is the path's readiness.
    CallPath(&'a str),
}

/// Runs every check of every (or one) credential once, then the call paths'.
pub async fn run(config: &Config, only: Only<'_>) -> anyhow::Result<Report> {
    let upstream = Upstream::new(config.max_concurrent_requests_per_host, None)?;
    let state = State::new(config);
    let path = match only {
        Only::CallPath(name) => config.call_paths.iter().find(|p| p.name == name),
        _ => None,
    };
    let wanted = |c: &Credential| match only {
        Only::All => true,
        Only::Credential(n) => n == c.name,
        Only::CallPath(_) => path.is_some_and(|p| p.caller == c.name || p.carrier == c.name),
    };
    // What is reported, and what must be checked for it: a credential's
    // links too (an ElevenLabs key's imported numbers are judged with the
    // linked Twilio credential's verdict), which run first.
    let reported: Vec<&Credential> = config.credentials.iter().filter(|c| wanted(c)).collect();
    let needed = |c: &&Credential| {
        reported
            .iter()
            .any(|r| r.name == c.name || r.linked() == Some(c.name.as_str()))
    };
    let linked_to = |c: &&Credential| {
        config
            .credentials
            .iter()
            .any(|o| o.linked() == Some(c.name.as_str()))
    };
    let (first, rest): (Vec<&Credential>, Vec<&Credential>) = config
        .credentials
        .iter()
        .filter(needed)
        .partition(linked_to);
    let mut reports = BTreeMap::new();
    for cred in first.into_iter().chain(rest) {
        let linked = cred
            .linked()
            .and_then(|t| config.credential(t))
            .map(|t| providers::Linked {
                cred: Arc::new(t.clone()),
                changed_at: None,
                usable: state.slot(&t.name).and_then(|s| s.usable()),
            });
        let ctx = Context {
            upstream: &upstream,
            shared: &config.shared,
            linked: linked.as_ref(),
        };
        let Some(slot) = state.slot(&cred.name) else {
            continue;
        };
        // A credential checked only for its verdict (another's link) skips
        // the informational requests.
        let is_reported = reported.iter().any(|r| r.name == cred.name);
        let key_path = cred.key_path(&config.credentials).unwrap_or_default();
        let attempts = match crate::verdict::refusal(cred, &key_path, "") {
            // Refused before anything is sent, as the daemon does.
            Some(why) => {
                state.record_refusal(&slot, why);
                Vec::new()
            }
            None => {
                let mut attempts = providers::run(
                    cred,
                    &ctx,
                    &Plan {
                        details: is_reported,
                        ..Plan::default()
                    },
                )
                .await;
                if is_reported && providers::went_on(&attempts) {
                    let deadline =
                        tokio::time::Instant::now() + providers::informational_budget(cred);
                    let more = providers::informational(cred, &ctx, deadline).await;
                    attempts.extend(more.attempts);
                }
                state.record(&slot, &attempts);
                attempts
            }
        };
        if !is_reported {
            continue;
        }
        let snapshot = slot.snapshot();
        reports.insert(
            cred.name.clone(),
            report(config, cred, &snapshot, &attempts, linked.as_ref()),
        );
    }
    let credentials: Vec<CredentialReport> = reported
        .iter()
        .filter_map(|c| reports.remove(&c.name))
        .collect();
    let mut call_paths = Vec::new();
    for p in config.call_paths.iter().filter(|p| match only {
        Only::All => true,
        Only::Credential(_) => false,
        Only::CallPath(n) => n == p.name,
    }) {
        let (Some(caller), Some(carrier)) =
            (config.credential(&p.caller), config.credential(&p.carrier))
        else {
            continue;
        };
        let carrier = providers::Linked {
            cred: Arc::new(carrier.clone()),
            changed_at: None,
            usable: state.slot(&carrier.name).and_then(|s| s.usable()),
        };
        let ctx = Context {
            upstream: &upstream,
            shared: &config.shared,
            linked: None,
        };
        let observations = providers::check_call_path(p, caller, &carrier, &ctx).await;
        state.record_path(&p.name, observations);
        if let Some(slot) = state.path(&p.name) {
            let now = tokio::time::Instant::now();
            call_paths.push(crate::call_paths::report::report(
                &state.path_state(&slot),
                now,
            ));
        }
    }
    let ok = match only {
        Only::CallPath(_) => call_paths.iter().all(CallPathReport::ready),
        _ => {
            credentials.iter().all(CredentialReport::ok)
                && call_paths.iter().all(CallPathReport::ready)
        }
    };
    Ok(Report {
        version: 2,
        ok,
        credentials,
        call_paths,
    })
}

/// Config warnings that concern this credential (`elevenlabs[i]…`/`twilio[i]…`).
fn config_findings(config: &Config, cred: &Credential) -> Vec<Finding> {
    let Some(at) = cred.key_path(&config.credentials) else {
        return Vec::new();
    };
    config
        .warnings
        .iter()
        .filter(|w| w.path == at || w.path.starts_with(&format!("{at}.")))
        .map(|w| {
            let whitespace = w.message.contains("whitespace");
            Finding {
                severity: Severity::Warning,
                code: if whitespace { "secret_whitespace".into() } else { "config_warning".into() },
                check: "config".into(),
                summary: format!("{}: {}", w.path, w.message),
                fix: if whitespace {
                    "Remove the surrounding whitespace (often a trailing newline from `echo` or an editor) at the source: \
                     credwatch trims it, but your application may send it as-is and get 401."
                        .into()
                } else {
                    "See the message.".into()
                },
                evidence: None,
            }
        })
        .collect()
}

fn report(
    config: &Config,
    cred: &Credential,
    s: &CredentialState,
    attempts: &[crate::outcome::Attempt],
    linked: Option<&providers::Linked>,
) -> CredentialReport {
    let mut findings = config_findings(config, cred);
    if let Some(why) = &s.refused {
        findings.push(Finding {
            severity: Severity::Error,
            code: Reason::InvalidConfig.as_str().into(),
            check: "config".into(),
            summary: format!("credwatch refuses the secret: {why}."),
            fix: format!(
                "Put the {} alone in its source, without line breaks or other control characters (e.g. `printf %s \"$VALUE\" > FILE`, not an editor that adds lines).",
                cred.secret_name()
            ),
            evidence: None,
        });
    }
    findings.extend(findings::cycle(cred, s, attempts, linked));
    findings.sort_by_key(|f| f.severity);
    let health = s.health();
    CredentialReport {
        name: s.name.clone(),
        provider: s.provider.as_str(),
        critical: s.settings.critical,
        labels: s.settings.labels.clone(),
        status: match health {
            Health::Healthy => "healthy",
            Health::Unhealthy(_) => "unhealthy",
            Health::Pending => "pending",
        },
        reason: match health {
            Health::Unhealthy(r) => Some(r),
            _ => None,
        },
        pending: crate::render::health::pending(s),
        valid: s.verdict.valid,
        fingerprint: s.fingerprint.clone(),
        permissions: s.verdict.permissions.clone(),
        permission_basis: s.verdict.permission_basis.clone(),
        details: s.verdict.details.report(),
        findings,
        // Each request once, even when two checks read its answer (a
        // Twilio listing's page 1: the auth check and the count).
        evidence: attempts
            .iter()
            .fold(Vec::new(), |mut seen: Vec<Evidence>, a| {
                if !seen.iter().any(|e| e.request == a.evidence.request) {
                    seen.push(a.evidence.clone());
                }
                seen
            }),
        ready_for_calls: s.ready_for_calls(),
    }
}

impl CredentialReport {
    /// Its warnings: what `check` marks `!` (see [`findings`]).
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }
}

impl Report {
    /// How many warnings the report holds, over every credential.
    pub fn warnings(&self) -> usize {
        self.credentials.iter().map(|c| c.warnings().count()).sum()
    }
}
