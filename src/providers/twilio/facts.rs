//! What Twilio's answers establish beyond the common facts: its problems,
//! the account, its balance and its numbers, and how they change what is
//! known about a credential ([`Details`]).

use std::time::SystemTime;

use serde::Serialize;

use crate::exposition::Samples;
use crate::providers::outcome::{Attempt, Reason};
use crate::providers::report::{Finding, Shown};
use crate::providers::{Linked, ProviderDetail, ProviderDetails, ProviderProblem};

/// A precise Twilio diagnosis behind a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// 401 20003: bad, deleted or rotated token/key, wrong region, or (per
    /// Twilio's 20003 page) a suspended or closed account.
    TwilioAuthenticate,
    /// 20005 "Account not active", whatever the HTTP status.
    AccountNotActive,
    /// 404 20404 on the account: the Account SID does not exist for these credentials.
    AccountNotFound,
    /// 403 20403 or account status suspended/closed.
    AccountSuspended { status: Option<String> },
    /// 403 70051: a restricted key lacks a permission.
    RestrictedKey,
    /// 400 21470/90002: an API key SID where the Account SID belongs.
    KeySidInPath,
}

impl ProviderProblem for Problem {
    fn reason(&self) -> Reason {
        match self {
            Problem::TwilioAuthenticate | Problem::AccountNotFound | Problem::KeySidInPath => {
                Reason::InvalidCredentials
            }
            Problem::RestrictedKey => Reason::MissingPermission,
            Problem::AccountNotActive | Problem::AccountSuspended { .. } => Reason::AccountBlocked,
        }
    }

    /// A short code for JSON output and logs.
    fn code(&self) -> &'static str {
        match self {
            Problem::TwilioAuthenticate => "twilio_authenticate",
            Problem::AccountNotFound => "account_not_found",
            Problem::AccountSuspended { .. } => "account_suspended",
            Problem::AccountNotActive => "account_not_active",
            Problem::RestrictedKey => "restricted_key",
            Problem::KeySidInPath => "key_sid_in_path",
        }
    }
}

/// What a Twilio answer established, besides validity.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Detail {
    /// The numbers on the account.
    #[serde(rename = "twilio_numbers")]
    Numbers {
        count: u64,
        /// When the listing that counted them ended.
        #[serde(skip)]
        counted_at: SystemTime,
    },
    /// `Accounts/{Sid}.json`.
    #[serde(rename = "twilio_account")]
    Account {
        status: String,
        kind: String,
        subaccount: bool,
    },
    /// The balance; `None` amount when upstream sent `null`.
    #[serde(rename = "twilio_balance")]
    Balance {
        amount: Option<f64>,
        currency: String,
    },
    /// The balance does not apply (subaccount, Connect app).
    #[serde(rename = "twilio_balance_not_applicable")]
    BalanceNotApplicable,
}

impl ProviderDetail for Detail {
    /// The resource this answer proves the key may read.
    fn resource(&self) -> Option<&'static str> {
        match self {
            Detail::Account { .. } => Some("account"),
            Detail::Balance { .. } => Some("balance"),
            _ => None,
        }
    }
}

/// The balance below which it is worth a warning, in the account's
/// currency: `CredwatchTwilioBalanceLow`'s threshold
/// (deploy/prometheus/credwatch-rules.yml), so `check`, `/` and the alert
/// warn together.
pub const BALANCE_LOW_BELOW: f64 = 5.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwilioAccount {
    pub status: String,
    pub kind: String,
    pub subaccount: bool,
}

impl TwilioAccount {
    /// A Trial account (calls only to verified numbers, with a trial notice).
    pub fn trial(&self) -> bool {
        self.kind.eq_ignore_ascii_case("trial")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwilioBalance {
    pub amount: f64,
    pub currency: String,
}

impl TwilioBalance {
    /// Below [`BALANCE_LOW_BELOW`].
    pub fn low(&self) -> bool {
        self.amount < BALANCE_LOW_BELOW
    }
}

/// What is known about a Twilio credential beyond the common verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Details {
    pub numbers: Option<u64>,
    /// When `numbers` was counted: the count is as old as this.
    #[serde(skip)]
    pub numbers_counted_at: Option<SystemTime>,
    pub account: Option<TwilioAccount>,
    pub balance: Option<TwilioBalance>,
    /// The balance does not apply (subaccount).
    pub balance_not_applicable: bool,
}

impl ProviderDetails for Details {
    type Detail = Detail;
    type Report = super::report::Report;

    fn apply(&mut self, detail: &Detail) {
        match detail {
            Detail::Numbers { count, counted_at } => {
                self.numbers = Some(*count);
                self.numbers_counted_at = Some(*counted_at);
            }
            Detail::Account {
                status,
                kind,
                subaccount,
            } => {
                self.account = Some(TwilioAccount {
                    status: status.clone(),
                    kind: kind.clone(),
                    subaccount: *subaccount,
                });
            }
            Detail::Balance { amount, currency } => {
                self.balance_not_applicable = false;
                self.balance = amount.map(|amount| TwilioBalance {
                    amount,
                    currency: currency.clone(),
                });
            }
            Detail::BalanceNotApplicable => {
                self.balance_not_applicable = true;
                self.balance = None;
            }
        }
    }

    /// The key may not read `resource`: what was read of it is forgotten.
    fn not_permitted(&mut self, resource: &str) {
        match resource {
            "account" => self.account = None,
            "balance" => self.balance = None,
            _ => {}
        }
    }

    fn account_values(&self) -> bool {
        self.balance.is_some()
    }

    fn render(&self, _expose_numbers: bool, out: &mut Samples<'_>) {
        super::report::render(self, out)
    }

    fn report(&self) -> Self::Report {
        super::report::report(self)
    }

    fn shown(&self) -> Vec<Shown> {
        super::report::shown(self)
    }

    fn findings(&self, attempts: &[Attempt], _linked: Option<&Linked>) -> Vec<Finding> {
        super::report::findings(self, attempts)
    }
}
