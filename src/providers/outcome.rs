//! The vocabulary every provider answers in, and the only thing the rest of
//! credwatch knows about upstream answers. What only one provider's answers
//! establish is that provider's ([`Problem`] and [`Detail`] hold each
//! provider's own, from its `facts.rs`).
//!
//! A provider classifies each HTTP answer exactly once into an [`Attempt`]:
//! either a definitive answer (a list of [`Fact`]s, which may change the
//! verdict) or a [`Failure`] with a [`Reason`] (which never does). Nothing
//! downstream re-parses HTTP.

use std::time::{Duration, SystemTime};

use serde::Serialize;

pub use super::{Detail, Problem};

/// Why a check did not end well: the stable, documented label values of
/// `credwatch_check_errors_total{reason}` and of `/health`.
///
/// The first five are verdicts (four from a definitive upstream answer,
/// `invalid_config` from credwatch itself); the other five are failures to
/// get an answer, which never change a verdict.
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
    /// A local verdict, no request sent: credwatch refuses the secret's
    /// current value (a re-read file that is empty, holds a line break or
    /// another character not allowed in a header, or fails the load-time
    /// checks).
    InvalidConfig,
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
            Reason::InvalidConfig => "invalid_config",
            Reason::RateLimited => "rate_limited",
            Reason::UpstreamError => "upstream_error",
            Reason::Timeout => "timeout",
            Reason::Network => "network",
            Reason::UnexpectedResponse => "unexpected_response",
        }
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
    /// A permission is or is not granted, and on what evidence.
    Permission {
        name: String,
        granted: bool,
        basis: Basis,
    },
    /// A definitive problem other than invalidity: the account is blocked,
    /// suspended or out of quota, or the key may not do what the check needs.
    /// Each check owns its problems: its next definitive answer clears them.
    Blocked { problem: Problem },
    /// This key type may not read a resource (a Twilio Standard key and
    /// the account or balance): not asked again until the secret or the
    /// config changes.
    NotPermittedForKey { resource: &'static str },
    /// What only one provider's answers establish (quota, balance, numbers, …).
    #[serde(untagged)]
    Detail(Detail),
}

/// What a permission verdict rests on (`credwatch_permission_basis_info`,
/// `/health`, `check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The answer itself says so: upstream named the missing permission, or
    /// answered the very request that needs it (a Twilio listing).
    Direct,
    /// The probe's reading was proven on this API by `credwatch calibrate`
    /// (recorded in `calibration_file`).
    Calibrated,
    /// The probe's reading rests on evidence from elsewhere (the order seen
    /// on a sibling request, an endpoint's permission taken from public
    /// code), not proven on this API.
    Inferred,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Direct => "direct",
            Basis::Calibrated => "calibrated",
            Basis::Inferred => "inferred",
        }
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

impl Evidence {
    /// One line for people: the request, then what came back (status,
    /// upstream code, permission, request id), or our reading when upstream
    /// said nothing.
    pub fn line(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.http_status {
            parts.push(format!("HTTP {s}"));
        }
        if let Some(c) = &self.upstream_code {
            parts.push(format!("code {c}"));
        }
        if let Some(p) = &self.permission {
            parts.push(format!("permission {p}"));
        }
        if let Some(r) = &self.request_id {
            parts.push(format!("request id {r}"));
        }
        if parts.is_empty() {
            format!("{} → {}", self.request, self.detail)
        } else {
            format!("{} → {}", self.request, parts.join(", "))
        }
    }
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
                    ..
                } if self.check.strip_prefix("permission_") == Some(name) => {
                    Some(Reason::MissingPermission)
                }
                Fact::Detail(detail) => detail.error_reason(),
                _ => None,
            }),
        }
    }

    pub fn is_definitive(&self) -> bool {
        self.result.is_ok()
    }
}
