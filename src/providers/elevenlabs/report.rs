//! How ElevenLabs' details show: its metric families and their samples,
//! and its part of `credwatch check`'s report (quota, imported numbers,
//! billing at risk).

use serde::Serialize;

use super::explain;
use super::facts::{Detail, Details, PhoneNumber, Quota};
use crate::exposition::Samples;
use crate::providers::outcome::{Attempt, Fact};
use crate::providers::report::{Finding, Severity};
use crate::providers::{self, Linked};

crate::families! {
    pub(crate) enum F; pub const FAMILIES;
    Used = "credwatch_elevenlabs_characters_used", "gauge",
        "Characters (credits) used in the current billing period, account-wide";
    Limit = "credwatch_elevenlabs_characters_limit", "gauge",
        "Character (credit) limit of the current billing period";
    Ceiling = "credwatch_elevenlabs_characters_ceiling", "gauge",
        "Characters (credits) at which the quota is used up: the limit plus what usage-based billing may add; absent when the extension is unlimited";
    Reset = "credwatch_elevenlabs_characters_reset_timestamp_seconds", "gauge",
        "Unix time of the next character-count reset";
    Subscription = "credwatch_elevenlabs_subscription_info", "gauge",
        "ElevenLabs subscription tier and status (past_due and incomplete: billing at risk; free_disabled: disabled)";
    OpenInvoices = "credwatch_elevenlabs_open_invoices", "gauge",
        "1 if the ElevenLabs subscription has open invoices, 0 if not; absent when upstream does not say";
    PhoneReady = "credwatch_elevenlabs_phone_number_ready", "gauge",
        "1 if the imported Twilio number can place outbound calls as far as credwatch can tell, 0 if a problem was found";
    PhoneProblemInfo = "credwatch_elevenlabs_phone_number_problem_info", "gauge",
        "A problem found with an imported Twilio number, by stable problem label";
    PhoneProblem = "credwatch_elevenlabs_phone_number_problem", "gauge",
        "Deprecated: the same series as credwatch_elevenlabs_phone_number_problem_info, under its old name";
}

pub(super) fn render(d: &Details, expose_numbers: bool, out: &mut Samples<'_>) {
    if let Some(q) = &d.quota {
        out.sample(F::Used as usize, &[], q.used as f64);
        out.sample(F::Limit as usize, &[], q.limit as f64);
        if let Some(ceiling) = q.ceiling {
            out.sample(F::Ceiling as usize, &[], ceiling as f64);
        }
        if let Some(reset) = q.reset_at {
            out.sample(F::Reset as usize, &[], reset as f64);
        }
        out.sample(
            F::Subscription as usize,
            &[("tier", &q.tier), ("status", &q.status)],
            1.0,
        );
        if let Some(open) = q.open_invoices {
            out.flag(F::OpenInvoices as usize, &[], open);
        }
    }
    for n in d.phone_numbers.iter().flatten() {
        let mut labels: Vec<(&str, &str)> = vec![("phone_number_id", &n.phone_number_id)];
        if expose_numbers {
            labels.push(("number", &n.number));
        }
        out.flag(F::PhoneReady as usize, &labels, n.ready());
        for p in &n.problems {
            let mut l = labels.clone();
            l.push(("problem", p.as_str()));
            out.sample(F::PhoneProblemInfo as usize, &l, 1.0);
            out.sample(F::PhoneProblem as usize, &l, 1.0);
        }
    }
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

/// ElevenLabs' fields of a credential's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub quota: Option<Quota>,
    pub phone_numbers: Vec<PhoneNumberReport>,
}

pub(super) fn report(d: &Details) -> Report {
    Report {
        quota: d.quota.clone(),
        phone_numbers: d
            .phone_numbers
            .iter()
            .flatten()
            .map(|n| PhoneNumberReport {
                phone_number_id: n.phone_number_id.clone(),
                number: n.number.clone(),
                label: n.label.clone(),
                ready: n.ready(),
                agent_id: n.agent_id.clone(),
                problems: n.problems.iter().map(|p| p.as_str().to_string()).collect(),
            })
            .collect(),
    }
}

pub(super) fn summary(r: &Report) -> Vec<String> {
    let mut bits = Vec::new();
    if let Some(q) = &r.quota {
        let pct = if q.limit > 0 {
            q.used as f64 * 100.0 / q.limit as f64
        } else {
            0.0
        };
        let reset = q
            .reset_at
            .map(|r| {
format!(", resets {}", crate::providers::words::date(r))
            })
            .unwrap_or_default();
        bits.push(format!(
            "{} of {} characters used ({pct:.0}%){reset}",
            q.used, q.limit
        ));
    }
    if !r.phone_numbers.is_empty() {
        bits.push(format!(
            "{}/{} imported numbers ready",
            r.phone_numbers.iter().filter(|p| p.ready).count(),
            r.phone_numbers.len()
        ));
    }
    bits
}

/// This provider's details, if `fact` is one.
fn detail(fact: &Fact) -> Option<&Detail> {
    match fact {
        Fact::Detail(providers::Detail::ElevenLabs(d)) => Some(d),
        _ => None,
    }
}

pub(super) fn findings(
    d: &Details,
    attempts: &[Attempt],
    linked: Option<&Linked>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for a in attempts {
        for fact in a.result.iter().flatten() {
            if let Some(Detail::Quota { quota }) = detail(fact)
                && (quota.billing_at_risk() || quota.open_invoices == Some(true))
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
            }
        }
    }
    // The attempt that read the imported numbers.
    let phone_evidence = attempts.iter().find(|a| {
        a.result.iter().flatten().any(|f| {
            matches!(
                detail(f),
                Some(Detail::PhoneNumbers { .. } | Detail::PhoneNumbersUnreadable)
            )
        })
    });
    let linked_fingerprint = linked.map(|l| l.cred.fingerprint());
    for n in d.phone_numbers.iter().flatten() {
        findings.extend(phone_findings(
            n,
            linked,
            linked_fingerprint.as_deref(),
            phone_evidence,
        ));
    }
    findings
}

fn phone_findings(
    n: &PhoneNumber,
    linked: Option<&Linked>,
    linked_fingerprint: Option<&str>,
    evidence: Option<&Attempt>,
) -> Vec<Finding> {
    let changed = n
        .twilio_changed_at
        .map(crate::providers::words::time);
    let shown = if n.number.is_empty() {
        n.phone_number_id.clone()
    } else {
        format!("{} ({})", n.number, n.phone_number_id)
    };
    n.problems
        .iter()
        .map(|p| {
            let (summary, fix) = explain::phone(
                *p,
                &shown,
                linked.map(|l| l.cred.name.as_str()),
                linked_fingerprint,
                changed.as_deref(),
            );
            Finding {
                severity: if p.blocking() {
                    Severity::Error
                } else {
                    Severity::Info
                },
                code: p.as_str().into(),
                check: "phone_numbers".into(),
                summary,
                fix,
                evidence: evidence.map(|a| a.evidence.clone()),
            }
        })
        .collect()
}
