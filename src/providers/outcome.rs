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

/// A string that came from outside (an upstream answer, a path built from
/// one), cleaned by [`clean_to`] when it was made: the only way to put text
/// into [`Evidence`], so no field that reaches `check`, a log line,
/// `/health` or `/` can carry a control character, an escape sequence or an
/// unbounded length. Serialized as the plain string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Clean(String);

impl Clean {
    /// At most [`UPSTREAM_STRING_MAX`] characters (codes, ids, words).
    pub fn new(s: &str) -> Self {
        Clean(clean(s))
    }

    /// At most `max` characters (request paths, our one-line readings).
    pub fn capped(s: &str, max: usize) -> Self {
        Clean(clean_to(s, max))
    }

    /// `GET ` and the path asked, at most [`REQUEST_MAX`] characters.
    pub fn request(path: &str) -> Self {
        Clean::capped(&format!("GET {path}"), REQUEST_MAX)
    }

    /// One line in our words, which may quote upstream: at most [`DETAIL_MAX`].
    pub fn detail(s: &str) -> Self {
        Clean::capped(s, DETAIL_MAX)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Clean {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Clean {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Cleaned and capped like a detail ([`DETAIL_MAX`]): whatever the source,
/// a `Clean` is clean.
impl From<&str> for Clean {
    fn from(s: &str) -> Self {
        Clean::detail(s)
    }
}

impl From<String> for Clean {
    fn from(s: String) -> Self {
        Clean::detail(&s)
    }
}

impl PartialEq<str> for Clean {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Clean {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Clean {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

/// An upstream-supplied URI to follow (Twilio's `next_page_uri`), taken as
/// it is or not at all: cleaning it would make a different request. Only
/// printable ASCII without spaces (what a URI is made of; anything else is
/// percent-encoded by a well-behaved server), at most [`URI_MAX`] bytes.
pub fn upstream_uri(s: &str) -> Option<String> {
    (!s.is_empty() && s.len() <= URI_MAX && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_string())
}

/// The longest upstream-supplied URI credwatch follows.
pub const URI_MAX: usize = 1024;

/// The most characters of a request line kept in [`Evidence`].
pub const REQUEST_MAX: usize = 256;
/// The most characters of an evidence detail.
pub const DETAIL_MAX: usize = 512;

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
    /// A definitive problem other than invalidity, named by its [`Problem`]
    /// (whose reason says what kind: an account blocked or suspended, a
    /// quota used up, a key restricted from what the check needs, which
    /// comes with the [`Fact::Permission`] it lacks). Each check owns its
    /// problems: its next definitive answer clears them.
    Problem { problem: Problem },
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
/// Every text field is [`Clean`].
pub struct Evidence {
    /// `GET` plus the path (query included) that was asked.
    pub request: Clean,
    pub http_status: Option<u16>,
    /// ElevenLabs `code`/`status`, or the Twilio error code.
    pub upstream_code: Option<Clean>,
    /// The permission an ElevenLabs message named.
    pub permission: Option<Clean>,
    /// `request-id`, `x-trace-id` or `Twilio-Request-Id`, for support tickets.
    pub request_id: Option<Clean>,
    /// One line in our words: what the answer was.
    pub detail: Clean,
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
                Fact::Invalid { problem } | Fact::Problem { problem } => Some(problem.reason()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_string_has_no_control_or_format_character_and_is_capped() {
        let evil = "GET /x?\u{1b}]0;t\u{7}\u{1b}[2J\r\n\u{202e}ok";
        let c = Clean::request(evil);
        assert_eq!(c, "GET GET /x??]0;t??[2J???ok");
        assert_eq!(Clean::new(&"a".repeat(1000)).len(), UPSTREAM_STRING_MAX);
        assert_eq!(Clean::request(&"a".repeat(1000)).len(), REQUEST_MAX);
        assert_eq!(Clean::from("x".repeat(1000)).len(), DETAIL_MAX);
        assert_eq!(
            serde_json::to_string(&Clean::new("a\nb")).ok().as_deref(),
            Some("\"a?b\"")
        );
    }

    #[test]
    fn an_upstream_uri_is_followed_as_it_is_or_not_at_all() {
        let ok = "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers.json?PageSize=1000&Page=1&PageToken=PAPN1";
        assert_eq!(upstream_uri(ok).as_deref(), Some(ok));
        for bad in [
            "",
            "/a?PageToken=PA\u{1b}]0;x\u{7}",
            "/a?x=1\n\u{2705} healthy",
            "/a b",
            "/a?x=\u{e9}",
            &format!("/{}", "a".repeat(URI_MAX)),
        ] {
            assert_eq!(upstream_uri(bad), None, "{bad:?}");
        }
    }
}
