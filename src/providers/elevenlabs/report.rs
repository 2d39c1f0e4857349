//! How ElevenLabs' details show: its metric families and their samples,
//! and its part of `credwatch check`'s report (quota, imported numbers,
//! billing at risk).

use serde::Serialize;

use super::explain;
use super::facts::{Detail, Details, PhoneNumber, QUOTA_HIGH_SHARE, Quota};
use crate::exposition::Samples;
use crate::providers::outcome::{Attempt, Fact};
use crate::providers::report::{Finding, Severity, Shown, ShownNumber};
use crate::providers::{self, Linked, words};

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
    NumbersLeftOut = "credwatch_elevenlabs_phone_numbers_not_exported", "gauge",
        "Imported Twilio numbers beyond max_phone_numbers: counted, neither exported one by one nor cross-checked";
    AccountUsed = "credwatch_elevenlabs_account_characters_used", "gauge",
        "Characters (credits) used in the current billing period, once per account (workspace): the same value as credwatch_elevenlabs_characters_used of its keys";
    AccountLimit = "credwatch_elevenlabs_account_characters_limit", "gauge",
        "Character (credit) limit of the current billing period, once per account (workspace)";
    AccountCeiling = "credwatch_elevenlabs_account_characters_ceiling", "gauge",
        "Characters (credits) at which the account's quota is used up, once per account (workspace); absent when the extension is unlimited";
    AccountReset = "credwatch_elevenlabs_account_characters_reset_timestamp_seconds", "gauge",
        "Unix time of the next character-count reset, once per account (workspace)";
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
        // The account's series, from the one key of the account that exports them.
        out.account_sample(F::AccountUsed as usize, &[], q.used as f64);
        out.account_sample(F::AccountLimit as usize, &[], q.limit as f64);
        if let Some(ceiling) = q.ceiling {
            out.account_sample(F::AccountCeiling as usize, &[], ceiling as f64);
        }
        if let Some(reset) = q.reset_at {
            out.account_sample(F::AccountReset as usize, &[], reset as f64);
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
    if d.phone_numbers.is_some() {
        out.sample(F::NumbersLeftOut as usize, &[], d.numbers_left_out as f64);
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

impl crate::providers::ProviderReport for Report {
    fn summary(&self) -> Vec<String> {
        let r = self;
        let mut bits = Vec::new();
        if let Some(q) = &r.quota {
            let reset = q
                .reset_at
                .map(|r| format!(", resets {}", crate::providers::words::date(r)))
                .unwrap_or_default();
            bits.push(format!("{}{reset}", quota_used(q)));
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
}

/// What the status page shows: the quota (with tier and subscription
/// status) and the imported numbers.
pub(super) fn shown(d: &Details) -> Vec<Shown> {
    let mut out = Vec::new();
    if let Some(q) = &d.quota {
        out.push(Shown::Usage {
            label: "Quota",
            unit: "characters",
            used: q.used,
            limit: q.limit,
            ceiling: q.ceiling,
            share: q.used_share(),
            high: q.high() || q.exhausted,
            threshold: QUOTA_HIGH_SHARE,
            reset_at: q.reset_at,
        });
        out.push(Shown::Text {
            label: "Subscription",
            value: format!("{} ({})", q.tier, q.status),
            warn: q.billing_at_risk() || q.open_invoices == Some(true),
        });
    }
    if let Some(numbers) = &d.phone_numbers {
        out.push(Shown::Numbers(
            numbers
                .iter()
                .map(|n| ShownNumber {
                    id: n.phone_number_id.clone(),
                    number: n.number.clone(),
                    label: n.label.clone(),
                    ready: n.ready(),
                    problems: n.problems.iter().map(|p| p.as_str()).collect(),
                })
                .collect(),
        ));
    }
    out
}

/// "N of L characters used (P%)": P is the share of the ceiling
/// ([`Quota::used_share`]), rounded down so it never reads as the alert
/// threshold or as exhausted before it is.
pub fn quota_used(q: &Quota) -> String {
    let share = match (q.used_share(), q.ceiling) {
        (Some(s), Some(c)) if c == q.limit => format!("{}%", words::percent(s)),
        (Some(s), Some(c)) => format!(
            "{}% of the ceiling of {c} with usage-based billing",
            words::percent(s)
        ),
        _ => "usage-based billing without a cap: no ceiling".into(),
    };
    format!("{} of {} characters used ({share})", q.used, q.limit)
}

/// This provider's details, if `fact` is one.
fn detail(fact: &Fact) -> Option<&Detail> {
    match fact {
        Fact::Detail(providers::Detail::ElevenLabs(d)) => Some(d),
        _ => None,
    }
}

pub(super) fn findings(d: &Details, attempts: &[Attempt], linked: Option<&Linked>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for a in attempts {
        for fact in a.result.iter().flatten() {
            if let Some(Detail::Quota { quota }) = detail(fact)
                && quota.high()
            {
                let (summary, fix) = explain::quota_high(quota);
                findings.push(Finding {
                    severity: Severity::Warning,
                    code: "quota_high".into(),
                    check: a.check.clone(),
                    summary,
                    fix,
                    evidence: Some(a.evidence.clone()),
                });
            }
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
    if d.phone_numbers.is_some() && d.numbers_left_out > 0 {
        findings.push(Finding {
            severity: Severity::Warning,
            code: "phone_numbers_not_checked".into(),
            check: "phone_numbers".into(),
            summary: format!(
                "{} imported number(s) beyond `max_phone_numbers` are counted but not checked: whether they can place calls is unknown.",
                d.numbers_left_out
            ),
            fix: "Raise `max_phone_numbers` of this credential to check every imported number (one series per number), or release the numbers you do not use.".into(),
            evidence: phone_evidence.map(|a| a.evidence.clone()),
        });
    }
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
    let changed = n.twilio_changed_at.map(crate::providers::words::time);
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
