//! What an ElevenLabs answer means: every error envelope ElevenLabs is
//! known to send, parsed in one pass ([`parse_body`] into a [`Body`]; the
//! envelope's [`Shape`] is recognised without building a value tree), and
//! [`classify`] into a [`Meaning`].
//!
//! Classification reads the error `code`, then the legacy `status`, then the
//! HTTP status — never the human message, except to extract the permission
//! name from `missing the permission <name>`.

use serde::de::IgnoredAny;

use super::facts::Problem;
use crate::providers::http::Answer;
use crate::providers::json::Scalar;
use crate::providers::outcome::{Reason, clean, clean_to};

/// The fields of an ElevenLabs error, from whichever envelope carried them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ErrorFields {
    pub code: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
    pub message: Option<String>,
    pub request_id: Option<String>,
}

impl ErrorFields {
    /// `code` first (new format), then the legacy `status`.
    pub fn key(&self) -> Option<&str> {
        self.code.as_deref().or(self.status.as_deref())
    }

    /// The permission named by `missing the permission <name>`.
    pub fn permission(&self) -> Option<String> {
        let msg = self.message.as_deref()?;
        let rest = &msg[msg.find("missing the permission ")? + "missing the permission ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .take(crate::providers::outcome::UPSTREAM_STRING_MAX)
            .collect();
        (!name.is_empty()).then_some(name)
    }
}

/// What an error body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// An error object (legacy `detail`, new `detail`, or top-level).
    Error(ErrorFields),
    /// FastAPI validation error: `detail` is an array.
    Validation,
    /// `{"detail": "Not Found"}` and friends.
    Text(String),
    /// JSON without any error fields.
    OtherJson,
    /// Not JSON at all (an HTML page from a CDN, a proxy, …).
    NotJson,
}

/// The fields of one object of an envelope; `detail` only at the top.
#[derive(Default)]
struct Fields {
    code: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
    has_code_or_status: bool,
    detail: Option<Box<Shape>>,
}

impl Fields {
    fn into_error(self) -> ErrorFields {
        ErrorFields {
            code: self.code.map(|s| clean(&s)),
            status: self.status.map(|s| clean(&s)),
            kind: self.kind.map(|s| clean(&s)),
            // Kept only to find a permission name in; cleaned like every upstream string.
            message: self.message.map(|s| clean_to(&s, 512)),
            request_id: self.request_id.map(|s| clean(&s)),
        }
    }
}

/// The shape of a JSON value, read in one pass without building a tree:
/// only what the envelopes of `elevenlabs-api.md` §2 need.
enum Shape {
    Object(Fields),
    Array,
    Text(String),
    Other,
}

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V {
            top: bool,
        }
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Shape, E> {
                Ok(Shape::Text(v.chars().take(512).collect()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Shape, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Shape::Array)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Shape, A::Error> {
                let mut f = Fields::default();
                while let Some(key) = a.next_key::<Key>()? {
                    let slot = match key {
                        Key::Code => &mut f.code,
                        Key::Status => &mut f.status,
                        Key::Type => &mut f.kind,
                        Key::Message => &mut f.message,
                        Key::RequestId => &mut f.request_id,
                        Key::Detail if self.top => {
                            let inner: Inner = a.next_value()?;
                            f.detail = Some(Box::new(inner.0));
                            continue;
                        }
                        Key::Detail | Key::Other => {
                            a.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if matches!(key, Key::Code | Key::Status) {
                        f.has_code_or_status = true;
                    }
                    let v: Scalar = a.next_value()?;
                    *slot = v.text();
                }
                Ok(Shape::Object(f))
            }
        }
        /// `detail`'s value: read with the same visitor, one level only.
        struct Inner(Shape);
        impl<'de> serde::Deserialize<'de> for Inner {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(V { top: false }).map(Inner)
            }
        }
        d.deserialize_any(V { top: true })
    }
}

/// The keys of an envelope object that matter.
#[derive(Clone, Copy)]
enum Key {
    Code,
    Status,
    Type,
    Message,
    RequestId,
    Detail,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "code" => Key::Code,
                    "status" => Key::Status,
                    "type" => Key::Type,
                    "message" => Key::Message,
                    "request_id" => Key::RequestId,
                    "detail" => Key::Detail,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Parses any of the envelopes in `shared/reference/elevenlabs-api.md` §2,
/// in one pass over the body: no tree of the body is built, whatever its size.
pub fn parse_body(answer: &Answer) -> Body {
    if !answer.is_json() {
        return Body::NotJson;
    }
    let Ok(shape) = serde_json::from_slice::<Shape>(&answer.body) else {
        return Body::NotJson;
    };
    let Shape::Object(mut top) = shape else {
        return Body::OtherJson;
    };
    match top.detail.take().map(|d| *d) {
        Some(Shape::Object(detail)) => Body::Error(detail.into_error()),
        Some(Shape::Array) => Body::Validation,
        Some(Shape::Text(s)) => Body::Text(clean(&s)),
        _ if top.has_code_or_status => Body::Error(top.into_error()),
        _ => Body::OtherJson,
    }
}

/// What an ElevenLabs answer means, independent of which check asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Meaning {
    Ok,
    Invalid(Problem),
    MissingPermission(Option<String>),
    QuotaExceeded,
    Blocked(Problem),
    AgentNotFound,
    /// A JSON 4xx from the API with no code credwatch knows (400
    /// `invalid_uid`, a 422 validation error, `{"detail":"Not Found"}`, …).
    Unrecognised(String),
    /// No definitive answer: 429, 5xx, not JSON, or an answer that says
    /// nothing about the key (`needs_authorization`, `payment_required`, …).
    Failure(Reason, String),
}

/// In words, for evidence details (never a Rust `Option` or struct).
impl std::fmt::Display for Meaning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Meaning::Ok => f.write_str("a success"),
            Meaning::Invalid(_) => f.write_str("the key was rejected"),
            Meaning::MissingPermission(Some(p)) => write!(f, "permission {p} is missing"),
            Meaning::MissingPermission(None) => f.write_str("a permission is missing"),
            Meaning::QuotaExceeded => f.write_str("the quota is exceeded"),
            Meaning::Blocked(_) => f.write_str("the account is blocked"),
            Meaning::AgentNotFound => f.write_str("agent not found"),
            Meaning::Unrecognised(what) => write!(f, "an unrecognised error ({what})"),
            Meaning::Failure(reason, detail) => write!(f, "{}: {detail}", reason.as_str()),
        }
    }
}

/// Classifies a non-200 answer: code, then status, then the HTTP status.
pub fn classify(answer: &Answer, body: &Body) -> Meaning {
    let status = answer.status;
    let code = match body {
        Body::Error(f) => f.key(),
        _ => None,
    };
    if let Some((reason, detail)) = answer.not_definitive(!matches!(body, Body::NotJson), code) {
        return Meaning::Failure(reason, detail);
    }
    if status == 200 {
        return Meaning::Ok;
    }
    let fields = match body {
        Body::Error(f) => Some(f),
        _ => None,
    };
    if let Some(f) = fields {
        // The new format puts the precise case in `status` under a broader `code`.
        if f.status.as_deref() == Some("api_key_id_used_as_api_key") {
            return Meaning::Invalid(Problem::KeyIdUsedAsKey);
        }
        for key in [f.code.as_deref(), f.status.as_deref()]
            .into_iter()
            .flatten()
        {
            match key {
                "invalid_api_key" => return Meaning::Invalid(Problem::InvalidApiKey),
                // The header never arrived (a proxy stripping it, most
                // often): says nothing about the key itself.
                "needs_authorization" => {
                    return Meaning::Failure(
                        Reason::UnexpectedResponse,
                        "`needs_authorization`: ElevenLabs received no key header at all; a proxy between credwatch and ElevenLabs probably strips `xi-api-key` (this is not a verdict on the key)".into(),
                    );
                }
                "missing_permissions" | "insufficient_permissions" => {
                    return Meaning::MissingPermission(f.permission());
                }
                "quota_exceeded" => return Meaning::QuotaExceeded,
                "detected_unusual_activity" => return Meaning::Blocked(Problem::UnusualActivity),
                "payment_issue" => return Meaning::Blocked(Problem::PaymentIssue),
                // Its only real body restricts one feature ("Free users cannot
                // use library voices via the API"): not a blocked account.
                "payment_required" => {
                    return Meaning::Failure(
                        Reason::UnexpectedResponse,
                        "`payment_required`: a feature restriction of the plan, not a verdict on the key or the account".into(),
                    );
                }
                "agent_not_found" => return Meaning::AgentNotFound,
                "too_many_concurrent_requests"
                | "concurrent_limit_exceeded"
                | "system_busy"
                | "rate_limit_exceeded" => {
                    return Meaning::Failure(
                        Reason::RateLimited,
                        format!("429 `{key}`: upstream is busy or rate-limiting"),
                    );
                }
                "ip_not_allowed" => {
                    return Meaning::Failure(
                        Reason::UnexpectedResponse,
                        "`ip_not_allowed`: this key has an IP allowlist that does not include credwatch's address".into(),
                    );
                }
                _ => {}
            }
        }
    }
    // JSON from the API, 4xx, and no code we know: an answer, but not one we
    // can read.
    Meaning::Unrecognised(match body {
        Body::Error(f) => format!(
            "HTTP {status} with unknown code `{}`",
            f.key().unwrap_or("none")
        ),
        Body::Validation => format!("HTTP {status} with a validation error"),
        Body::Text(t) => format!("HTTP {status} `{t}`"),
        Body::OtherJson | Body::NotJson => format!("HTTP {status} with an unrecognised JSON body"),
    })
}
