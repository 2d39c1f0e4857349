//! What ElevenLabs' answers establish beyond the common facts: its
//! problems, the quota, the imported phone numbers, and how they change
//! what is known about a key ([`Details`]).

use serde::Serialize;

use crate::exposition::Samples;
use crate::providers::outcome::{Attempt, Reason};
use crate::providers::report::{Finding, Shown};
use crate::providers::{Linked, ProviderDetail, ProviderDetails, ProviderProblem};

/// A precise ElevenLabs diagnosis behind a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// 401 `invalid_api_key`.
    InvalidApiKey,
    /// 400 `api_key_id_used_as_api_key`.
    KeyIdUsedAsKey,
    /// The character/credit quota is used up.
    QuotaExhausted { reset_at: Option<i64> },
    /// `detected_unusual_activity`.
    UnusualActivity,
    /// `payment_issue`.
    PaymentIssue,
    /// A subscription status that disables the account (`free_disabled`).
    SubscriptionDisabled { status: String },
}

impl ProviderProblem for Problem {
    fn reason(&self) -> Reason {
        match self {
            Problem::InvalidApiKey | Problem::KeyIdUsedAsKey => Reason::InvalidCredentials,
            Problem::QuotaExhausted { .. } => Reason::QuotaExhausted,
            Problem::UnusualActivity
            | Problem::PaymentIssue
            | Problem::SubscriptionDisabled { .. } => Reason::AccountBlocked,
        }
    }

    /// A short code for JSON output and logs.
    fn code(&self) -> &'static str {
        match self {
            Problem::InvalidApiKey => "invalid_api_key",
            Problem::KeyIdUsedAsKey => "key_id_used_as_key",
            Problem::QuotaExhausted { .. } => "quota_exhausted",
            Problem::UnusualActivity => "unusual_activity",
            Problem::PaymentIssue => "payment_issue",
            Problem::SubscriptionDisabled { .. } => "subscription_disabled",
        }
    }
}

/// What an ElevenLabs answer established, besides validity and permissions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Detail {
    /// Subscription counters.
    Quota { quota: Quota },
    /// The subscription cannot be read with this key (no `user_read`): quota unknown.
    QuotaUnreadable,
    /// The Twilio numbers imported into Conversational AI, checked.
    PhoneNumbers {
        numbers: Vec<PhoneNumber>,
        /// Numbers beyond `max_phone_numbers`: counted, not exported or judged.
        left_out: usize,
    },
    /// The imported numbers can no longer be read (no `convai_read`).
    PhoneNumbersUnreadable,
}

impl ProviderDetail for Detail {
    /// A used-up quota counts as an error of the check that read it.
    fn error_reason(&self) -> Option<Reason> {
        match self {
            Detail::Quota { quota } if quota.exhausted => Some(Reason::QuotaExhausted),
            _ => None,
        }
    }
}

/// What is known about an ElevenLabs key beyond the common verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Details {
    pub quota: Option<Quota>,
    /// The imported Twilio numbers, when `phone_numbers: true`.
    pub phone_numbers: Option<Vec<PhoneNumber>>,
    /// Imported numbers beyond `max_phone_numbers`, not in `phone_numbers`.
    pub numbers_left_out: usize,
}

impl ProviderDetails for Details {
    type Detail = Detail;
    type Report = super::report::Report;

    fn apply(&mut self, detail: &Detail) {
        match detail {
            Detail::Quota { quota } => self.quota = Some(quota.clone()),
            Detail::QuotaUnreadable => self.quota = None,
            Detail::PhoneNumbers { numbers, left_out } => {
                self.phone_numbers = Some(numbers.clone());
                self.numbers_left_out = *left_out;
            }
            Detail::PhoneNumbersUnreadable => {
                self.phone_numbers = None;
                self.numbers_left_out = 0;
            }
        }
    }

    /// Every imported number can place calls as far as credwatch can tell
    /// (true when none are watched); numbers beyond `max_phone_numbers` were
    /// not checked, so none of them is known to.
    fn numbers_ready(&self) -> bool {
        self.numbers_left_out == 0 && self.phone_numbers.iter().flatten().all(PhoneNumber::ready)
    }

    fn account_values(&self) -> bool {
        self.quota.is_some()
    }

    fn render(&self, expose_numbers: bool, out: &mut Samples<'_>) {
        super::report::render(self, expose_numbers, out)
    }

    fn report(&self) -> Self::Report {
        super::report::report(self)
    }

    fn shown(&self) -> Vec<Shown> {
        super::report::shown(self)
    }

    fn findings(&self, attempts: &[Attempt], linked: Option<&Linked>) -> Vec<Finding> {
        super::report::findings(self, attempts, linked)
    }
}

/// ElevenLabs quota, from `/v1/user/subscription`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quota {
    pub used: u64,
    pub limit: u64,
    pub reset_at: Option<i64>,
    pub tier: String,
    /// `trialing | active | incomplete | past_due | free | free_disabled` (open set).
    pub status: String,
    /// The count at which the quota is used up: the limit plus what
    /// usage-based billing may add. `None` when the extension is unlimited.
    pub ceiling: Option<u64>,
    /// `has_open_invoices`, when upstream sent it.
    pub open_invoices: Option<bool>,
    /// `used >= ceiling`: used up, and usage-based billing cannot extend it.
    pub exhausted: bool,
}

/// The share of the ceiling at or above which a quota is worth a warning:
/// `CredwatchQuotaHigh`'s threshold (deploy/prometheus/credwatch-rules.yml),
/// so `check`, `/` and the alert warn together.
pub const QUOTA_HIGH_SHARE: f64 = 0.9;

impl Quota {
    /// "Quota used", the one definition `check`, `/`, the alerts and the
    /// dashboard share: `used / ceiling`, the share of what may be used
    /// before the quota is exhausted (the limit plus what usage-based
    /// billing may add). `None` when there is no ceiling (usage-based
    /// billing without a cap) or it is 0.
    pub fn used_share(&self) -> Option<f64> {
        self.ceiling
            .filter(|c| *c > 0)
            .map(|c| self.used as f64 / c as f64)
    }

    /// At or above [`QUOTA_HIGH_SHARE`] of the ceiling, not yet exhausted.
    pub fn high(&self) -> bool {
        !self.exhausted && self.used_share().is_some_and(|s| s >= QUOTA_HIGH_SHARE)
    }

    /// Billing at risk (`past_due`, `incomplete`): calls still work; worth a warning, not a verdict.
    pub fn billing_at_risk(&self) -> bool {
        matches!(self.status.as_str(), "past_due" | "incomplete")
    }
}

/// A problem with a Twilio number imported into ElevenLabs: the stable label
/// values of `credwatch_elevenlabs_phone_number_problem_info{problem}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PhoneProblem {
    /// `supports_outbound: false`: the number cannot place calls.
    NotOutboundCapable,
    /// `supports_outbound` absent: unknown (advice, not blocking).
    OutboundUnknown,
    /// No agent is assigned to the number (advice: inbound calls need one).
    NoAgent,
    /// The assigned agent does not exist (404 `agent_not_found`).
    AgentMissing,
    /// Nothing proves the assigned agent exists: its lookup got no answer
    /// (no time left in the cross-check, a 429, an error).
    AgentUnchecked,
    /// The agent's audio formats are not `ulaw_8000` (advice: needed with a custom Twilio server).
    AgentNotUlaw,
    /// The number is on neither the linked Twilio account's incoming numbers nor its verified caller IDs.
    NotOnTwilioAccount,
    /// The linked Twilio credential changed since the numbers were imported.
    ReimportNeeded,
    /// The linked Twilio credential is rejected or blocked: calls from the
    /// number fail whatever else is right.
    TwilioCredentialUnhealthy,
    /// The linked Twilio credential has no verdict yet.
    TwilioCredentialUnknown,
    /// Nothing proves the number is on a Twilio account (no `twilio:` link,
    /// or the lookup got no answer).
    OwnershipUnchecked,
}

impl PhoneProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneProblem::NotOutboundCapable => "not_outbound_capable",
            PhoneProblem::OutboundUnknown => "outbound_unknown",
            PhoneProblem::NoAgent => "no_agent",
            PhoneProblem::AgentMissing => "agent_missing",
            PhoneProblem::AgentUnchecked => "agent_unchecked",
            PhoneProblem::AgentNotUlaw => "agent_not_ulaw",
            PhoneProblem::NotOnTwilioAccount => "not_on_twilio_account",
            PhoneProblem::ReimportNeeded => "reimport_needed",
            PhoneProblem::TwilioCredentialUnhealthy => "twilio_credential_unhealthy",
            PhoneProblem::TwilioCredentialUnknown => "twilio_credential_unknown",
            PhoneProblem::OwnershipUnchecked => "ownership_unchecked",
        }
    }

    /// Advice does not make a number "not ready".
    /// An unassigned number can still place outbound calls (the call names
    /// its agent); it just cannot answer.
    pub fn blocking(self) -> bool {
        !matches!(
            self,
            PhoneProblem::OutboundUnknown | PhoneProblem::AgentNotUlaw | PhoneProblem::NoAgent
        )
    }
}

/// One imported Twilio number and what the cross-check found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhoneNumber {
    pub phone_number_id: String,
    /// E.164; only exported as a label with `expose_numbers: true`.
    pub number: String,
    pub label: String,
    pub agent_id: Option<String>,
    /// `tts.agent_output_audio_format` / `asr.user_input_audio_format` of the agent.
    pub agent_formats: Option<(String, String)>,
    pub problems: Vec<PhoneProblem>,
    /// When the linked Twilio credential changed (for `ReimportNeeded`).
    #[serde(skip)]
    pub twilio_changed_at: Option<std::time::SystemTime>,
}

impl PhoneNumber {
    pub fn ready(&self) -> bool {
        !self.problems.iter().any(|p| p.blocking())
    }
}
