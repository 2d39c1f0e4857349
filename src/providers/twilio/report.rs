//! How Twilio's details show: its metric families and their samples, and
//! its part of `credwatch check`'s report (account, balance, numbers).

use serde::Serialize;

use super::explain;
use super::facts::{BALANCE_LOW_BELOW, Detail, Details, TwilioAccount, TwilioBalance};
use crate::exposition::Samples;
use crate::providers::outcome::{Attempt, Fact};
use crate::providers::report::{Finding, Severity, Shown};

crate::families! {
    pub(crate) enum F; pub const FAMILIES;
    Numbers = "credwatch_twilio_phone_numbers", "gauge",
        "Incoming phone numbers on the Twilio account (counted at the detail interval)";
    NumbersCounted = "credwatch_twilio_phone_numbers_counted_timestamp_seconds", "gauge",
        "Unix time credwatch_twilio_phone_numbers was last counted; time() minus it is the count's age (it stays while a later page of the listing fails)";
    Balance = "credwatch_twilio_balance", "gauge",
        "Twilio account balance in its currency";
    Account = "credwatch_twilio_account_info", "gauge",
        "Twilio account status (active, suspended, closed) and type (Trial, Full)";
    AccountBalance = "credwatch_twilio_account_balance", "gauge",
        "Twilio account balance in its currency, once per account (account=\"<Account SID>\"): the same value as credwatch_twilio_balance of its credentials";
}

pub(super) fn render(d: &Details, out: &mut Samples<'_>) {
    if let Some(n) = d.numbers {
        out.sample(F::Numbers as usize, &[], n as f64);
    }
    if let Some(at) = d.numbers_counted_at {
        out.sample(
            F::NumbersCounted as usize,
            &[],
            crate::exposition::seconds(at),
        );
    }
    if let Some(b) = &d.balance {
        out.sample(F::Balance as usize, &[("currency", &b.currency)], b.amount);
        out.account_sample(
            F::AccountBalance as usize,
            &[("currency", &b.currency)],
            b.amount,
        );
    }
    if let Some(a) = &d.account {
        out.sample(
            F::Account as usize,
            &[("status", &a.status), ("type", &a.kind)],
            1.0,
        );
    }
}

/// Twilio's fields of a credential's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub twilio_account: Option<TwilioAccount>,
    pub twilio_balance: Option<TwilioBalance>,
    pub twilio_phone_numbers: Option<u64>,
}

pub(super) fn report(d: &Details) -> Report {
    Report {
        twilio_account: d.account.clone(),
        twilio_balance: d.balance.clone(),
        twilio_phone_numbers: d.numbers,
    }
}

impl crate::providers::ProviderReport for Report {
    fn summary(&self) -> Vec<String> {
        let r = self;
        let mut bits = Vec::new();
        if let Some(a) = &r.twilio_account {
            bits.push(format!("account {} ({})", a.status, a.kind));
        }
        if let Some(n) = r.twilio_phone_numbers {
            bits.push(format!("{n} number(s)"));
        }
        if let Some(b) = &r.twilio_balance {
            bits.push(format!("balance {:.2} {}", b.amount, b.currency));
        }
        bits
    }
}

/// What the status page shows: the balance, the account, the numbers.
pub(super) fn shown(d: &Details) -> Vec<Shown> {
    let mut out = Vec::new();
    if let Some(b) = &d.balance {
        out.push(Shown::Money {
            label: "Balance",
            amount: b.amount,
            currency: b.currency.clone(),
            low: b.low(),
            threshold: BALANCE_LOW_BELOW,
        });
    } else if d.balance_not_applicable {
        out.push(Shown::Text {
            label: "Balance",
            value: "not applicable (subaccount)".into(),
            warn: false,
        });
    }
    if let Some(a) = &d.account {
        out.push(Shown::Text {
            label: "Account",
            value: format!("{} ({})", a.status, a.kind),
            warn: a.trial(),
        });
    }
    if let Some(n) = d.numbers {
        out.push(Shown::Text {
            label: "Phone numbers",
            value: n.to_string(),
            warn: false,
        });
    }
    out
}

/// `check`'s warnings about the details: a balance below the alert
/// threshold, a Trial account (each from the attempt that read it).
pub(super) fn findings(d: &Details, attempts: &[Attempt]) -> Vec<Finding> {
    let read = |pick: fn(&Detail) -> bool| {
        attempts.iter().find(|a| {
            a.result.iter().flatten().any(|f| match f {
                Fact::Detail(crate::providers::Detail::Twilio(d)) => pick(d),
                _ => false,
            })
        })
    };
    let mut findings = Vec::new();
    let mut warn = |code: &str, (summary, fix): (String, String), by: Option<&Attempt>| {
        if let Some(a) = by {
            findings.push(Finding {
                severity: Severity::Warning,
                code: code.into(),
                check: a.check.clone(),
                summary,
                fix,
                evidence: Some(a.evidence.clone()),
            });
        }
    };
    if let Some(a) = &d.account
        && a.trial()
    {
        warn(
            "trial_account",
            explain::trial_account(),
            read(|d| matches!(d, Detail::Account { .. })),
        );
    }
    if let Some(b) = &d.balance
        && b.low()
    {
        warn(
            "balance_low",
            explain::balance_low(b),
            read(|d| matches!(d, Detail::Balance { .. })),
        );
    }
    findings
}

/// A Standard (or restricted) key may not read the account or its balance.
pub(super) fn explain_not_permitted(resource: &str) -> (String, String) {
    (
        format!("This API key may not read the {resource}: it is a Standard (or restricted) key."),
        "Fine for calls and number listing. To monitor account status and balance, use a Main API key \
         or the Auth Token: only they may read /Accounts. ElevenLabs' Twilio import takes the \
         Account SID and Auth Token."
            .into(),
    )
}
