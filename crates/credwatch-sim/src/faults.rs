//! Injected failures: the ways an upstream (or whatever sits in front of it)
//! misbehaves. A fault can be set world-wide per upstream, or on one
//! ElevenLabs key / one Twilio account, and changed at runtime through
//! [`Simulator::update`](super::Simulator::update).
//!
//! Faults only change what is *answered*; they never make the simulator
//! accept a request it would otherwise refuse, and the request is still
//! recorded (and flagged as forbidden if it is).

use bytes::Bytes;
use serde_json::Value;

use super::http::{Delivery, Reply};

/// One way for an upstream to fail. Bodies are upstream-specific where the
/// upstream has a known error shape (see each variant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500. ElevenLabs: legacy-wrapped `something_went_wrong`.
    /// Twilio: `{"code": 20500, "message": "Internal Server Error", …}`.
    ServerError,
    /// HTTP 500. ElevenLabs: the unwrapped `internal_server_error` body (§2.6).
    /// Twilio: same as [`Fault::ServerError`].
    ServerErrorUnwrapped,
    /// 502 with an HTML page from a load balancer.
    BadGatewayHtml,
    /// HTTP 429. ElevenLabs: `too_many_concurrent_requests` (in the world's error
    /// format). Twilio: 20429, in the casing chosen by
    /// [`TwilioWorld::rate_limit_casing`](super::TwilioWorld::rate_limit_casing).
    /// `Retry-After` is sent only when given.
    RateLimited { retry_after_secs: Option<u64> },
    /// ElevenLabs: 429 `system_busy`. Twilio: 503 20503 "Service Unavailable".
    SystemBusy,
    /// ElevenLabs: 429 with the new-format code `rate_limit_exceeded`
    /// (wrapped in `detail` unless the world uses the top-level format).
    /// Twilio: same as [`Fault::RateLimited`] without `Retry-After`.
    RateLimitExceededNew,
    /// 403 Cloudflare "Just a moment..." challenge page (`text/html`).
    CloudflareHtml,
    /// The normal answer, cut in the middle (invalid JSON), same status.
    MalformedJson,
    /// The normal answer with every scalar of the wrong JSON type
    /// (numbers and booleans become strings, strings become numbers).
    WrongTypes,
    /// The normal answer with invalid UTF-8 bytes spliced into it.
    InvalidUtf8,
    /// 200 with a `bytes`-long body, generated while streaming.
    Oversized { bytes: usize },
    /// 200 JSON: an array of about `bytes` bytes of zeros (`[0,0,…]`, the
    /// most values per byte), streamed chunked, without Content-Length.
    Hostile { bytes: usize },
    /// Read the request and never answer.
    Hang,
    /// The normal answer, one body byte per second.
    Trickle,
    /// The normal status and headers and half of the body, then the
    /// connection is dropped.
    ResetMidBody,
    /// 302 to `location` (meant to be another host).
    Redirect { location: String },
    /// ElevenLabs: 404 `{"detail":"Not Found"}`. Twilio: 404 20404.
    StringDetail404,
    /// ElevenLabs: 422 FastAPI validation array. Twilio: 400 21481
    /// "Invalid PageToken" (Twilio's nearest validation error).
    FastApi422,
    /// 500 with an empty body.
    EmptyBody500,
    /// Anything else: a fixed status, content type and body.
    Custom {
        status: u16,
        content_type: String,
        body: String,
    },
}

/// Latency and a fault for the requests whose path and query contain
/// `contains` (e.g. `/v1/convai/agents/` or `PhoneNumber=`): one kind of
/// request slow or failing while the others answer. Added to the world's
/// and the key's or account's; the first matching rule's fault applies
/// after theirs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathRule {
    pub contains: String,
    pub latency: std::time::Duration,
    pub fault: Option<Fault>,
}

impl PathRule {
    /// The latency and fault `rules` add to a request for `path` (`?query`).
    pub(crate) fn apply<'r>(
        rules: &'r [PathRule],
        path: &str,
        query: Option<&str>,
        latency: &mut std::time::Duration,
        fault: &mut Option<&'r Fault>,
    ) {
        for rule in rules {
            let hit = path.contains(rule.contains.as_str())
                || query.is_some_and(|q| q.contains(rule.contains.as_str()));
            if hit {
                *latency += rule.latency;
                *fault = fault.or(rule.fault.as_ref());
            }
        }
    }
}

/// An error body the upstream module must render in its own envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamError {
    ServerError,
    ServerErrorUnwrapped,
    RateLimited(Option<u64>),
    SystemBusy,
    RateLimitExceededNew,
    NotFound,
    Validation,
}

/// What a fault does to a request.
pub(crate) enum FaultAction {
    /// Answer with the upstream's own error envelope.
    Envelope(UpstreamError),
    /// Answer with this reply instead of the normal one (not upstream-styled).
    Replace(Reply),
    /// Compute the normal reply, then transform or deliver it specially.
    Transform(Transform),
}

pub(crate) enum Transform {
    Deliver(Delivery),
    Truncate,
    WrongTypes,
    InvalidUtf8,
}

/// The Cloudflare challenge and the load balancer's 502 come from the corpus
/// (`el-403-cloudflare-challenge`, `el-502-html-bad-gateway`); these short
/// pages stand in only if an entry were missing.
const CLOUDFLARE_FALLBACK: &str =
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>";
const BAD_GATEWAY_FALLBACK: &str = "<!DOCTYPE html><title>Error 502 (Server Error)!!1</title>";

fn recorded_page(id: &str, status: u16, fallback: &'static str) -> Reply {
    match super::corpus::entry(id) {
        Some(entry) => entry.reply(),
        None => Reply::new(status, "text/html; charset=UTF-8", fallback),
    }
}

impl Fault {
    pub(crate) fn action(&self) -> FaultAction {
        use FaultAction::{Envelope as U, Replace, Transform as T};
        match self {
            Fault::ServerError => U(UpstreamError::ServerError),
            Fault::ServerErrorUnwrapped => U(UpstreamError::ServerErrorUnwrapped),
            Fault::RateLimited { retry_after_secs } => {
                U(UpstreamError::RateLimited(*retry_after_secs))
            }
            Fault::SystemBusy => U(UpstreamError::SystemBusy),
            Fault::RateLimitExceededNew => U(UpstreamError::RateLimitExceededNew),
            Fault::StringDetail404 => U(UpstreamError::NotFound),
            Fault::FastApi422 => U(UpstreamError::Validation),
            Fault::BadGatewayHtml => Replace(
                recorded_page("el-502-html-bad-gateway", 502, BAD_GATEWAY_FALLBACK)
                    .header("via", "1.1 google"),
            ),
            Fault::CloudflareHtml => Replace(
                recorded_page("el-403-cloudflare-challenge", 403, CLOUDFLARE_FALLBACK)
                    .header("server", "cloudflare")
                    .header("cf-mitigated", "challenge")
                    .header("cf-ray", format!("{:016x}-SJC", fastrand::u64(..)))
                    .header(
                        "cache-control",
                        "private, max-age=0, no-store, no-cache, must-revalidate",
                    ),
            ),
            Fault::Redirect { location } => Replace(
                Reply::new(302, "text/html; charset=utf-8", Bytes::new())
                    .header("location", location.clone()),
            ),
            Fault::EmptyBody500 => Replace(Reply {
                status: 500,
                headers: Vec::new(),
                body: Bytes::new(),
            }),
            Fault::Custom {
                status,
                content_type,
                body,
            } => Replace(Reply::new(*status, content_type, body.clone())),
            Fault::MalformedJson => T(Transform::Truncate),
            Fault::WrongTypes => T(Transform::WrongTypes),
            Fault::InvalidUtf8 => T(Transform::InvalidUtf8),
            Fault::Oversized { bytes } => T(Transform::Deliver(Delivery::Oversized(*bytes))),
            Fault::Hostile { bytes } => T(Transform::Deliver(Delivery::Hostile(*bytes))),
            Fault::Hang => T(Transform::Deliver(Delivery::Hang)),
            Fault::Trickle => T(Transform::Deliver(Delivery::Trickle)),
            Fault::ResetMidBody => T(Transform::Deliver(Delivery::ResetMidBody)),
        }
    }
}

impl Transform {
    /// Applies the transform to the normal reply.
    pub(crate) fn apply(self, mut reply: Reply) -> (Reply, Delivery) {
        match self {
            Transform::Deliver(Delivery::Oversized(bytes)) => {
                reply.status = 200;
                reply.body = Bytes::new();
                (reply, Delivery::Oversized(bytes))
            }
            Transform::Deliver(Delivery::Hostile(bytes)) => {
                reply.status = 200;
                reply.headers.retain(|(name, _)| *name != "content-type");
                reply
                    .headers
                    .push(("content-type", "application/json".into()));
                reply.body = Bytes::new();
                (reply, Delivery::Hostile(bytes))
            }
            Transform::Deliver(d) => (reply, d),
            Transform::Truncate => {
                let cut = (reply.body.len() / 2).max(1).min(reply.body.len());
                reply.body = reply.body.slice(..cut);
                if reply.body.is_empty() {
                    reply.body = Bytes::from_static(b"{\"");
                }
                (reply, Delivery::Normal)
            }
            Transform::WrongTypes => {
                if let Ok(value) = serde_json::from_slice::<Value>(&reply.body)
                    && let Ok(body) = serde_json::to_vec(&wrong_types(value))
                {
                    reply.body = body.into();
                }
                (reply, Delivery::Normal)
            }
            Transform::InvalidUtf8 => {
                let mut body = Vec::with_capacity(reply.body.len() + 4);
                // Right after the first quote, so the JSON structure stays intact.
                match reply.body.iter().position(|&b| b == b'"') {
                    Some(i) => {
                        body.extend_from_slice(&reply.body[..=i]);
                        body.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
                        body.extend_from_slice(&reply.body[i + 1..]);
                    }
                    None => {
                        body.extend_from_slice(&reply.body);
                        body.extend_from_slice(&[0xff, 0xfe]);
                    }
                }
                reply.body = body.into();
                (reply, Delivery::Normal)
            }
        }
    }
}

/// Same shape, wrong scalar types.
fn wrong_types(value: Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => Value::from(s.len()),
        Value::Array(items) => Value::Array(items.into_iter().map(wrong_types).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, wrong_types(v))).collect())
        }
    }
}
