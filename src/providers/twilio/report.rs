//! How Twilio's details show: its metric families and their samples, and
//! its part of `credwatch check`'s report (account, balance, numbers).

use serde::Serialize;

use super::facts::{Details, TwilioAccount, TwilioBalance};
use crate::exposition::Samples;

crate::families! {
    pub(crate) enum F; pub const FAMILIES;
    Numbers = "credwatch_twilio_phone_numbers", "gauge",
        "Incoming phone numbers on the Twilio account (counted at the detail interval)";
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

pub(super) fn summary(r: &Report) -> Vec<String> {
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
