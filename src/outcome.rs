//! The vocabulary every provider answers in, and the only thing the rest of
//! credwatch knows about upstream answers.
//!
//! A provider classifies each HTTP answer exactly once into an [`Attempt`]:
//! either a definitive answer (a list of [`Fact`]s, which may change the
//! verdict) or a [`Failure`] with a [`Reason`] (which never does). Nothing
//! downstream re-parses HTTP.

use std::time::{Duration, SystemTime};

use serde::Serialize;

/// Why a check did not end well: the stable, documented label values of
/// `credwatch_check_errors_total{reason}` and of `/health`.
///
/// The first four are verdicts (a definitive upstream answer); the other five
/// are failures to get an answer, which never change a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Upstream rejected the credential (ElevenLabs `invalid_api_key`, Twilio 20003, …).
    InvalidCredentials,
    /// The credential authenticates but lacks a required permission.
    MissingPermission,
    /// The account's character/credit quota is used up.
    QuotaExhausted,
    /// The account is blocked, suspended, closed or has a payment problem.
    AccountBlocked,
    /// 429 from upstream.
    RateLimited,
    /// 5xx from upstream.
    UpstreamError,
    /// No complete answer within the timeout.
    Timeout,
    /// Connection, DNS or TLS failure.
    Network,
    /// An answer we cannot classify: HTML instead of JSON, a body over the size
    /// cap, malformed JSON, an unknown error code, a redirect.
    UnexpectedResponse,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidCredentials => "invalid_credentials",
            Reason::MissingPermission => "missing_permission",
            Reason::QuotaExhausted => "quota_exhausted",
            Reason::AccountBlocked => "account_blocked",
            Reason::RateLimited => "rate_limited",
            Reason::UpstreamError => "upstream_error",
            Reason::Timeout => "timeout",
            Reason::Network => "network",
            Reason::UnexpectedResponse => "unexpected_response",
        }
    }
}

/// A precise, provider-specific diagnosis behind a verdict. `credwatch check`
/// turns each into an explanation and a fix; metrics only see its [`Reason`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// ElevenLabs 401 `invalid_api_key`.
    InvalidApiKey,
    /// ElevenLabs 400 `api_key_id_used_as_api_key`.
    KeyIdUsedAsKey,
    /// A required permission is missing.
    PermissionMissing { permission: String },
    /// The character/credit quota is used up.
    QuotaExhausted { reset_at: Option<i64> },
    /// ElevenLabs `detected_unusual_activity`.
    UnusualActivity,
    /// ElevenLabs `payment_issue`.
    PaymentIssue,
    /// ElevenLabs subscription status that disables the account (`free_disabled`).
    SubscriptionDisabled { status: String },
    /// Twilio 401 20003: bad, deleted or rotated token/key, wrong region, or
    /// (per Twilio's 20003 page) a suspended or closed account.
    TwilioAuthenticate,
    /// Twilio 20005 "Account not active", whatever the HTTP status.
    AccountNotActive,
    /// Twilio 403 20008: test credentials.
    TestCredentials,
    /// Twilio 404 20404 on the account: the Account SID does not exist for these credentials.
    AccountNotFound,
    /// Twilio 403 20403 or account status suspended/closed.
    AccountSuspended { status: Option<String> },
    /// Twilio 403 70051: a restricted key lacks a permission.
    RestrictedKey,
    /// Twilio 400 21470/90002: an API key SID where the Account SID belongs.
    KeySidInPath,
}

impl Problem {
    pub fn reason(&self) -> Reason {
        match self {
            Problem::InvalidApiKey
            | Problem::KeyIdUsedAsKey
            | Problem::TwilioAuthenticate
            | Problem::TestCredentials
            | Problem::AccountNotFound
            | Problem::KeySidInPath => Reason::InvalidCredentials,
            Problem::PermissionMissing { .. } | Problem::RestrictedKey => Reason::MissingPermission,
            Problem::QuotaExhausted { .. } => Reason::QuotaExhausted,
            Problem::UnusualActivity
            | Problem::PaymentIssue
            | Problem::SubscriptionDisabled { .. }
            | Problem::AccountNotActive
            | Problem::AccountSuspended { .. } => Reason::AccountBlocked,
        }
    }

    /// A short code for JSON output and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::InvalidApiKey => "invalid_api_key",
            Problem::KeyIdUsedAsKey => "key_id_used_as_key",
            Problem::PermissionMissing { .. } => "permission_missing",
            Problem::QuotaExhausted { .. } => "quota_exhausted",
            Problem::UnusualActivity => "unusual_activity",
            Problem::PaymentIssue => "payment_issue",
            Problem::SubscriptionDisabled { .. } => "subscription_disabled",
            Problem::TwilioAuthenticate => "twilio_authenticate",
            Problem::TestCredentials => "test_credentials",
            Problem::AccountNotFound => "account_not_found",
            Problem::AccountSuspended { .. } => "account_suspended",
            Problem::AccountNotActive => "account_not_active",
            Problem::RestrictedKey => "restricted_key",
            Problem::KeySidInPath => "key_sid_in_path",
        }
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

impl Quota {
    /// Billing at risk (`past_due`, `incomplete`): calls still work; worth a warning, not a verdict.
    pub fn billing_at_risk(&self) -> bool {
        matches!(self.status.as_str(), "past_due" | "incomplete")
    }
}

/// The most characters of an upstream string that credwatch keeps.
pub const UPSTREAM_STRING_MAX: usize = 64;

/// An upstream string made fit for a label, a log field, `/health`, the
/// overview page or a terminal: printable characters only (control and
/// format characters such as `\r`, `\n`, ESC or bidi overrides become `?`),
/// at most [`UPSTREAM_STRING_MAX`] characters. Applied where answers are
/// parsed, so an oversized or hostile string never travels further.
pub fn clean(s: &str) -> String {
    clean_to(s, UPSTREAM_STRING_MAX)
}

/// [`clean`] with another cap (e.g. human messages kept for a log line).
pub fn clean_to(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_control() || is_format_char(c) {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Unicode "format" characters that can reorder or hide text on a terminal.
fn is_format_char(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// What a definitive upstream answer established.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum Fact {
    /// The credential authenticates.
    Valid,
    /// Upstream rejected the credential.
    Invalid { problem: Problem },
    /// A permission is or is not granted.
    Permission { name: String, granted: bool },
    /// A definitive problem other than invalidity: the account is blocked,
    /// suspended or out of quota, or the key may not do what the check needs.
    /// Each check owns its problems: its next definitive answer clears them.
    Blocked { problem: Problem },
    /// ElevenLabs subscription counters.
    Quota { quota: Quota },
    /// The subscription cannot be read with this key (no `user_read`): quota unknown.
    QuotaUnreadable,
    /// Twilio: the numbers on the account.
    TwilioNumbers { count: u64 },
    /// Twilio: `Accounts/{Sid}.json`.
    TwilioAccount {
        status: String,
        kind: String,
        subaccount: bool,
    },
    /// Twilio: the balance; `None` amount when upstream sent `null`.
    TwilioBalance {
        amount: Option<f64>,
        currency: String,
    },
    /// Twilio: the balance does not apply (subaccount, Connect app).
    TwilioBalanceNotApplicable,
    /// Twilio: this key type may not read the account or balance (standard key).
    NotPermittedForKey { resource: &'static str },
    /// ElevenLabs: the Twilio numbers imported into Conversational AI, checked.
    PhoneNumbers { numbers: Vec<PhoneNumber> },
    /// ElevenLabs: the imported numbers can no longer be read (no `convai_read`).
    PhoneNumbersUnreadable,
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
    /// The agent's audio formats are not `ulaw_8000` (advice: needed with a custom Twilio server).
    AgentNotUlaw,
    /// The number is on neither the linked Twilio account's incoming numbers nor its verified caller IDs.
    NotOnTwilioAccount,
    /// The linked Twilio credential changed since the numbers were imported.
    ReimportNeeded,
}

impl PhoneProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            PhoneProblem::NotOutboundCapable => "not_outbound_capable",
            PhoneProblem::OutboundUnknown => "outbound_unknown",
            PhoneProblem::NoAgent => "no_agent",
            PhoneProblem::AgentMissing => "agent_missing",
            PhoneProblem::AgentNotUlaw => "agent_not_ulaw",
            PhoneProblem::NotOnTwilioAccount => "not_on_twilio_account",
            PhoneProblem::ReimportNeeded => "reimport_needed",
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

/// Why an attempt got no definitive answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Failure {
    pub reason: Reason,
    /// Upstream's `Retry-After`, when it sent one.
    #[serde(skip)]
    pub retry_after: Option<Duration>,
    /// The API answered, but not in a way this probe can read: the probe
    /// itself needs attention (`credwatch calibrate`), not upstream.
    #[serde(skip)]
    pub inconclusive: bool,
}

impl Failure {
    pub fn new(reason: Reason) -> Self {
        Failure {
            reason,
            retry_after: None,
            inconclusive: false,
        }
    }

    /// A JSON answer from the API that this probe cannot interpret.
    pub fn inconclusive() -> Self {
        Failure {
            inconclusive: true,
            ..Failure::new(Reason::UnexpectedResponse)
        }
    }

    /// Upstream is unreachable, slow or overloaded: the rest of the cycle
    /// would only pile on. A deterministic answer that is merely
    /// unreadable does not end the cycle.
    pub fn ends_cycle(&self) -> bool {
        matches!(
            self.reason,
            Reason::Timeout | Reason::Network | Reason::RateLimited | Reason::UpstreamError
        )
    }
}

/// What upstream said, for people: never a secret, never a raw body.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// `GET` plus the path (query included) that was asked.
    pub request: String,
    pub http_status: Option<u16>,
    /// ElevenLabs `code`/`status`, or the Twilio error code.
    pub upstream_code: Option<String>,
    /// The permission an ElevenLabs message named.
    pub permission: Option<String>,
    /// `request-id`, `x-trace-id` or `Twilio-Request-Id`, for support tickets.
    pub request_id: Option<String>,
    /// One line in our words: what the answer was.
    pub detail: String,
}

/// One check attempt, classified.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    /// The `check` label value (`subscription`, `permission_convai_write`, `phone_numbers`, …).
    pub check: String,
    #[serde(skip)]
    pub started_at: SystemTime,
    #[serde(skip)]
    pub duration: Duration,
    pub evidence: Evidence,
    pub result: Result<Vec<Fact>, Failure>,
}

impl Attempt {
    /// The reason this attempt counts under in `credwatch_check_errors_total`:
    /// a failure's reason, or the reason of a negative definitive answer.
    pub fn error_reason(&self) -> Option<Reason> {
        match &self.result {
            Err(failure) => Some(failure.reason),
            Ok(facts) => facts.iter().find_map(|fact| match fact {
                Fact::Invalid { problem } | Fact::Blocked { problem } => Some(problem.reason()),
                // Only the permission's own probe counts it: a subscription read
                // refused for `user_read` is a finding, not a failed check.
                Fact::Permission {
                    name,
                    granted: false,
                } if self.check.strip_prefix("permission_") == Some(name) => {
                    Some(Reason::MissingPermission)
                }
                Fact::Quota { quota } if quota.exhausted => Some(Reason::QuotaExhausted),
                _ => None,
            }),
        }
    }

    pub fn is_definitive(&self) -> bool {
        self.result.is_ok()
    }
}
