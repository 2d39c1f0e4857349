//! `credwatch check`: every probe once, then per credential a verdict and,
//! for each problem, the evidence and the fix.
//!
//! It uses the same providers and the same verdict rules as the daemon (the
//! attempts go through [`State::record`]), so `check` and `/health` never
//! disagree. Its JSON output is a stable interface (`version: 1`).

/// `credwatch calibrate` lives with the provider whose probes it proves.
pub use crate::providers::calibrate;
pub mod explain;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, Credential};
use crate::outcome::{Evidence, Fact, Reason};
use crate::providers::{self, Context, Plan, http::Upstream};
use crate::state::State;
use crate::verdict::{CredentialState, Health};

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

#[derive(Debug, Clone, Serialize)]
pub struct PhoneNumberReport {
    pub phone_number_id: String,
    pub number: String,
    pub label: String,
    pub ready: bool,
    pub agent_id: Option<String>,
    pub problems: Vec<String>,
}

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
    pub quota: Option<crate::outcome::Quota>,
    pub twilio_account: Option<crate::verdict::TwilioAccount>,
    pub twilio_balance: Option<crate::verdict::TwilioBalance>,
    pub twilio_phone_numbers: Option<u64>,
    pub phone_numbers: Vec<PhoneNumberReport>,
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
                let (summary, fix) = explain::failure(f.reason, &a.evidence.detail);
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
                            crate::outcome::Problem::PermissionMissing {
                                permission: name.clone(),
                            },
                        ),
                        Fact::NotPermittedForKey { resource } => {
                            findings.push(Finding {
                                severity: Severity::Info,
                                code: "standard_key".into(),
                                check: a.check.clone(),
                                summary: format!("This API key may not read the {resource}: it is a Standard (or restricted) key."),
                                fix: "Fine for calls and number listing. To monitor account status and balance, use a Main API key \
                                      or the Auth Token: only they may read /Accounts. ElevenLabs' Twilio import takes the \
                                      Account SID and Auth Token."
                                    .into(),
                                evidence: Some(a.evidence.clone()),
                            });
                            continue;
                        }
                        Fact::Quota { quota }
                            if quota.billing_at_risk() || quota.open_invoices == Some(true) =>
                        {
                            let (summary, fix) = explain::billing_at_risk(quota);
                            findings.push(Finding {
                                severity: Severity::Warning,
                                code: "billing_at_risk".into(),
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
    // The attempt that read the imported numbers.
    let phone_evidence = attempts.iter().find(|a| {
        a.result.as_ref().is_ok_and(|facts| {
            facts
                .iter()
                .any(|f| matches!(f, Fact::PhoneNumbers { .. } | Fact::PhoneNumbersUnreadable))
        })
    });
    let linked_fingerprint = linked.map(|l| l.cred.fingerprint());
    let mut phone_numbers = Vec::new();
    for n in s.verdict.phone_numbers.iter().flatten() {
        let changed = n
            .twilio_changed_at
            .map(|t| humantime::format_rfc3339_seconds(t).to_string());
        for p in &n.problems {
            let shown = if n.number.is_empty() {
                n.phone_number_id.clone()
            } else {
                format!("{} ({})", n.number, n.phone_number_id)
            };
            let (summary, fix) = explain::phone(
                *p,
                &shown,
                linked.map(|l| l.cred.name.as_str()),
                linked_fingerprint.as_deref(),
                changed.as_deref(),
            );
            findings.push(Finding {
                severity: if p.blocking() {
                    Severity::Error
                } else {
                    Severity::Info
                },
                code: p.as_str().into(),
                check: "phone_numbers".into(),
                summary,
                fix,
                evidence: phone_evidence.map(|a| a.evidence.clone()),
            });
        }
        phone_numbers.push(PhoneNumberReport {
            phone_number_id: n.phone_number_id.clone(),
            number: n.number.clone(),
            label: n.label.clone(),
            ready: n.ready(),
            agent_id: n.agent_id.clone(),
            problems: n.problems.iter().map(|p| p.as_str().to_string()).collect(),
        });
    }
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
        quota: s.verdict.quota.clone(),
        twilio_account: s.verdict.twilio_account.clone(),
        twilio_balance: s.verdict.twilio_balance.clone(),
        twilio_phone_numbers: s.verdict.twilio_numbers,
        phone_numbers,
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
    if let Some(q) = &c.quota {
        let pct = if q.limit > 0 {
            q.used as f64 * 100.0 / q.limit as f64
        } else {
            0.0
        };
        let reset = q
            .reset_at
            .map(|r| {
                format!(
                    ", resets {}",
                    humantime::format_rfc3339_seconds(
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(r.max(0) as u64)
                    )
                )
            })
            .unwrap_or_default();
        bits.push(format!(
            "{} of {} characters used ({pct:.0}%){reset}",
            q.used, q.limit
        ));
    }
    if let Some(a) = &c.twilio_account {
        bits.push(format!("account {} ({})", a.status, a.kind));
    }
    if let Some(n) = c.twilio_phone_numbers {
        bits.push(format!("{n} number(s)"));
    }
    if let Some(b) = &c.twilio_balance {
        bits.push(format!("balance {:.2} {}", b.amount, b.currency));
    }
    if !c.phone_numbers.is_empty() {
        bits.push(format!(
            "{}/{} imported numbers ready",
            c.phone_numbers.iter().filter(|p| p.ready).count(),
            c.phone_numbers.len()
        ));
    }
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
