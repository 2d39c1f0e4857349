//! `credwatch check`: every probe once, then per credential a verdict and,
//! for each problem, the evidence and the fix.
//!
//! It uses the same providers and the same verdict rules as the daemon (the
//! attempts go through [`State::record`]), so `check` and `/health` never
//! disagree. Its JSON output is a stable interface (`version: 1`).

/// `credwatch calibrate` lives with the provider whose probes it proves.
pub use crate::providers::calibrate;
pub mod explain;
#[cfg(test)]
mod properties;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, Credential};
use crate::outcome::{Evidence, Fact, Reason};
pub use crate::providers::report::{Finding, Severity};
use crate::providers::{self, Context, Plan, http::Upstream};
use crate::state::State;
use crate::verdict::{CredentialState, Health};

#[derive(Debug, Clone, Serialize)]
pub struct CredentialReport {
    pub name: String,
    pub provider: &'static str,
    pub critical: bool,
    /// `healthy`, `unhealthy` or `pending` (no definitive answer).
    pub status: &'static str,
    pub reason: Option<Reason>,
    pub valid: Option<bool>,
    pub fingerprint: String,
    pub permissions: BTreeMap<String, bool>,
    /// The provider's own fields (`quota`, `phone_numbers`, `twilio_account`, …).
    #[serde(flatten)]
    pub details: providers::Reports,
    pub findings: Vec<Finding>,
    /// Every request made, with what came back.
    pub evidence: Vec<Evidence>,
    #[serde(skip)]
    ready_for_calls: bool,
}

impl CredentialReport {
    /// [`CredentialState::ready_for_calls`], the rule's one home.
    pub fn ok(&self) -> bool {
        self.ready_for_calls
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Output format version; bumped only on incompatible changes.
    pub version: u32,
    pub ok: bool,
    pub credentials: Vec<CredentialReport>,
}

/// Runs every check of every (or one) credential once.
pub async fn run(config: &Config, only: Option<&str>) -> anyhow::Result<Report> {
    let upstream = Upstream::new(config.max_concurrent_requests_per_host, None)?;
    let state = State::new(config);
    let mut credentials = Vec::new();
    for cred in config
        .credentials
        .iter()
        .filter(|c| only.is_none_or(|n| n == c.name))
    {
        let linked = cred
            .linked()
            .and_then(|t| config.credential(t))
            .map(|t| providers::Linked {
                cred: Arc::new(t.clone()),
                changed_at: None,
            });
        let ctx = Context {
            upstream: &upstream,
            shared: &config.shared,
            linked: linked.as_ref(),
        };
        let attempts = providers::run(
            cred,
            &ctx,
            &Plan {
                details: true,
                ..Plan::default()
            },
        )
        .await;
        let Some(slot) = state.slot(&cred.name) else {
            continue;
        };
        state.record(&slot, &attempts);
        let snapshot = slot.snapshot();
        credentials.push(report(config, cred, &snapshot, &attempts, linked.as_ref()));
    }
    Ok(Report {
        version: 1,
        ok: credentials.iter().all(CredentialReport::ok),
        credentials,
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
    let required: Vec<&str> = s
        .settings
        .required_permissions
        .iter()
        .map(String::as_str)
        .collect();
    for a in attempts {
        match &a.result {
            Err(f) => {
                let (summary, fix) =
                    explain::failure(cred.provider(), f.reason, &a.evidence.detail);
                findings.push(Finding {
                    severity: Severity::Error,
                    code: f.reason.as_str().into(),
                    check: a.check.clone(),
                    summary,
                    fix,
                    evidence: Some(a.evidence.clone()),
                });
            }
            Ok(facts) => {
                for fact in facts {
                    let (severity, problem) = match fact {
                        Fact::Invalid { problem } | Fact::Blocked { problem } => {
                            (Severity::Error, problem.clone())
                        }
                        Fact::Permission {
                            name,
                            granted: false,
                        } => (
                            if required.contains(&name.as_str()) {
                                Severity::Error
                            } else {
                                Severity::Info
                            },
                            providers::Problem::PermissionMissing {
                                permission: name.clone(),
                            },
                        ),
                        Fact::NotPermittedForKey { resource } => {
                            let (summary, fix) = cred.provider().explain_not_permitted(resource);
                            findings.push(Finding {
                                severity: Severity::Info,
                                code: "standard_key".into(),
                                check: a.check.clone(),
                                summary,
                                fix,
                                evidence: Some(a.evidence.clone()),
                            });
                            continue;
                        }
                        _ => continue,
                    };
                    let (mut summary, mut fix) = explain::problem(&problem, cred);
                    if severity == Severity::Info {
                        summary = format!(
                            "{summary} It is not required here, so the related data is unavailable."
                        );
                        fix = format!("Only if you want that data: {fix}");
                    }
                    if findings.iter().any(|f| f.code == problem.code()) {
                        continue;
                    }
                    findings.push(Finding {
                        severity,
                        code: problem.code().into(),
                        check: a.check.clone(),
                        summary,
                        fix,
                        evidence: Some(a.evidence.clone()),
                    });
                }
            }
        }
    }
    findings.extend(s.verdict.details.findings(attempts, linked));
    findings.sort_by_key(|f| f.severity);
    let health = s.health();
    CredentialReport {
        name: s.name.clone(),
        provider: s.provider.as_str(),
        critical: s.settings.critical,
        status: match health {
            Health::Healthy => "healthy",
            Health::Unhealthy(_) => "unhealthy",
            Health::Pending => "pending",
        },
        reason: match health {
            Health::Unhealthy(r) => Some(r),
            _ => None,
        },
        valid: s.verdict.valid,
        fingerprint: s.fingerprint.clone(),
        permissions: s.verdict.permissions.clone(),
        details: s.verdict.details.report(),
        findings,
        evidence: attempts.iter().map(|a| a.evidence.clone()).collect(),
        ready_for_calls: s.ready_for_calls(),
    }
}

/// Terminal styling: colour only on a TTY and never with `NO_COLOR`.
pub struct Style {
    color: bool,
}

impl Style {
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Style {
            color: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    pub fn plain() -> Self {
        Style { color: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn evidence_line(e: &Evidence) -> String {
    let mut parts = Vec::new();
    if let Some(s) = e.http_status {
        parts.push(format!("HTTP {s}"));
    }
    if let Some(c) = &e.upstream_code {
        parts.push(format!("code {c}"));
    }
    if let Some(p) = &e.permission {
        parts.push(format!("permission {p}"));
    }
    if let Some(r) = &e.request_id {
        parts.push(format!("request id {r}"));
    }
    if parts.is_empty() {
        format!("{} → {}", e.request, e.detail)
    } else {
        format!("{} → {}", e.request, parts.join(", "))
    }
}

fn summary_line(c: &CredentialReport) -> String {
    let mut bits = Vec::new();
    let granted: Vec<&str> = c
        .permissions
        .iter()
        .filter(|(_, g)| **g)
        .map(|(p, _)| p.as_str())
        .collect();
    if !granted.is_empty() {
        bits.push(format!("{} granted", granted.join(", ")));
    }
    bits.extend(c.details.summary());
    bits.push(format!("fingerprint {}", c.fingerprint));
    bits.join("; ")
}

/// The human-readable report.
pub fn render_text(report: &Report, style: &Style, out: &mut dyn Write) -> std::io::Result<()> {
    let ok = report.credentials.iter().filter(|c| c.ok()).count();
    writeln!(
        out,
        "credwatch check: {} credential(s), {ok} ok, {} with problems\n",
        report.credentials.len(),
        report.credentials.len() - ok
    )?;
    for c in &report.credentials {
        let notes: Vec<&Finding> = c
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Error)
            .collect();
        if c.ok() {
            let note = if notes.is_empty() {
                String::new()
            } else {
                format!(
                    " — note: {}",
                    notes
                        .iter()
                        .map(|f| f.summary.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            };
            writeln!(
                out,
                "{} {} ({}): healthy — {}{note}",
                style.paint("32", "✓"),
                c.name,
                c.provider,
                summary_line(c)
            )?;
            continue;
        }
        let why = match (c.status, c.reason) {
            ("pending", _) => "no verdict".to_string(),
            (_, Some(r)) => r.as_str().to_string(),
            _ => "imported numbers not ready".to_string(),
        };
        writeln!(
            out,
            "{} {} ({}): {}",
            style.paint("31;1", "✗"),
            c.name,
            c.provider,
            style.paint("31;1", &why)
        )?;
        for f in &c.findings {
            let mark = match f.severity {
                Severity::Error => style.paint("31", "✗"),
                Severity::Warning => style.paint("33", "!"),
                Severity::Info => style.paint("36", "i"),
            };
            writeln!(out, "    {mark} {}", f.summary)?;
            if let Some(e) = &f.evidence {
                writeln!(out, "      evidence: {}", evidence_line(e))?;
            }
            writeln!(out, "      fix: {}", f.fix)?;
        }
        writeln!(out, "      ({})", summary_line(c))?;
    }
    Ok(())
}
