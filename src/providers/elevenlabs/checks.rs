//! ElevenLabs' checks: the requests of one cycle (validity and quota from
//! `/v1/user/subscription`, one side-effect-free GET per required
//! permission) and the classification of every error envelope ElevenLabs is
//! known to send.
//!
//! Classification reads the error `code`, then the legacy `status`, then the
//! HTTP status — never the human message, except to extract the permission
//! name from `missing the permission <name>`.

use crate::providers::json::Scalar;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::ElevenLabs;
use super::api::{PermissionProbe, StatusMatch};
use super::calibration::Calibrated;
use super::facts::{Detail, Problem, Quota};
use crate::providers::ProviderProblem;
use crate::providers::http::{Answer, TransportError};
use crate::providers::outcome::{
    Attempt, Basis, Clean, Evidence, Fact, Failure, Reason, clean, clean_to,
};
use crate::providers::{Clock, Context, Credential, Plan, Provider};

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

#[derive(Deserialize)]
struct Subscription {
    character_count: u64,
    character_limit: u64,
    next_character_count_reset_unix: Option<i64>,
    tier: String,
    status: String,
    #[serde(default)]
    can_extend_character_limit: bool,
    #[serde(default)]
    max_credit_limit_extension: Option<Scalar>,
    #[serde(default)]
    has_open_invoices: Option<bool>,
}

impl Subscription {
    /// The count at which the quota is used up (`evidence-addendum.md`,
    /// "Quota with usage-based billing"): `"unlimited"` never; an extension
    /// N > 0 that may be used, `limit + N`; otherwise the limit. `None`
    /// means unlimited.
    fn ceiling(&self) -> Option<u64> {
        if !self.can_extend_character_limit {
            return Some(self.character_limit);
        }
        match &self.max_credit_limit_extension {
            Some(Scalar::Str(s)) if s == "unlimited" => None,
            Some(Scalar::UInt(extra)) => Some(self.character_limit.saturating_add(*extra)),
            // Not a whole number: read no extension rather than guess one.
            _ => Some(self.character_limit),
        }
    }

    /// Used up, and usage-based billing cannot take over.
    fn exhausted(&self) -> bool {
        self.ceiling().is_some_and(|c| self.character_count >= c)
    }
}

fn evidence(path: &str, answer: &Answer, body: &Body, detail: String) -> Evidence {
    // A 200 subscription has a `status` of its own (`active`): not an error code.
    let fields = match body {
        Body::Error(f) if answer.status != 200 => Some(f),
        _ => None,
    };
    let mut evidence = answer.evidence(
        path,
        fields.and_then(|f| f.key().map(str::to_string)),
        detail,
    );
    evidence.permission = fields
        .and_then(ErrorFields::permission)
        .as_deref()
        .map(Clean::new);
    if let Some(id) = fields.and_then(|f| f.request_id.as_deref()) {
        evidence.request_id = Some(Clean::new(id));
    }
    evidence
}

async fn get(
    ctx: &Context<'_>,
    el: &ElevenLabs,
    cred: &Credential,
    path: &str,
) -> Result<Answer, TransportError> {
    ctx.upstream
        .get(
            Provider::ElevenLabs,
            &el.base_url,
            path,
            el.auth(),
            cred.timeout,
        )
        .await
}

/// One cycle for one key. Everything that decides `/health` runs every
/// cycle: the subscription (validity, quota, account state) and each
/// required permission. The phone-number cross-check, informational, is
/// not part of it (`providers::informational`). Only a failure to reach upstream (timeout, network,
/// 429, 5xx) ends the cycle early; an answer one probe cannot read does not
/// cancel the others.
pub async fn run(
    cred: &Credential,
    el: &ElevenLabs,
    ctx: &Context<'_>,
    plan: &Plan,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    let auth = subscription(cred, el, ctx).await;
    let go_on = match &auth.result {
        Ok(facts) => !facts.iter().any(|f| matches!(f, Fact::Invalid { .. })),
        Err(f) => !f.ends_cycle(),
    };
    attempts.push(auth);
    if !go_on {
        return attempts;
    }
    for permission in &el.required_permissions {
        let Some(probe) = ctx
            .shared
            .elevenlabs
            .permission_probes
            .iter()
            .find(|p| &p.permission == permission)
        else {
            continue;
        };
        let calibration = ctx.shared.elevenlabs.calibration(probe, &el.base_url);
        let attempt = permission_check(cred, el, ctx, probe, calibration).await;
        let stop = match &attempt.result {
            Ok(facts) => facts.iter().any(|f| matches!(f, Fact::Invalid { .. })),
            Err(f) => f.ends_cycle(),
        };
        attempts.push(attempt);
        if stop {
            return attempts; // upstream trouble: don't pile on.
        }
    }
    // The phone-number cross-check is informational and may need many
    // requests: `providers::informational` runs it apart from these.
    let _ = plan;
    attempts
}

/// `GET /v1/user/subscription`: validity, quota, subscription state.
pub async fn subscription(cred: &Credential, el: &ElevenLabs, ctx: &Context<'_>) -> Attempt {
    const PATH: &str = "/v1/user/subscription";
    let clock = Clock::start();
    let answer = match get(ctx, el, cred, PATH).await {
        Ok(a) => a,
        Err(e) => return clock.failed("subscription", PATH, e),
    };
    let body = parse_body(&answer);
    let (result, detail) = subscription_outcome(&answer, &body);
    clock.finish(
        "subscription",
        evidence(PATH, &answer, &body, detail),
        result,
    )
}

/// What a `/v1/user/subscription` answer means: pure, so it is fuzzed.
pub fn subscription_outcome(answer: &Answer, body: &Body) -> (Result<Vec<Fact>, Failure>, String) {
    let (result, detail) = match classify(answer, body) {
        Meaning::Ok => match serde_json::from_slice::<Subscription>(&answer.body) {
            Ok(sub) => {
                let exhausted = sub.exhausted();
                let quota = Quota {
                    used: sub.character_count,
                    limit: sub.character_limit,
                    reset_at: sub.next_character_count_reset_unix,
                    tier: clean(&sub.tier),
                    status: clean(&sub.status),
                    ceiling: sub.ceiling(),
                    open_invoices: sub.has_open_invoices,
                    exhausted,
                };
                let mut facts = vec![
                    Fact::Valid,
                    // That the subscription needs `user_read` is itself inferred
                    // (elevenlabs-api.md §5.2).
                    Fact::Permission {
                        name: "user_read".into(),
                        granted: true,
                        basis: Basis::Inferred,
                    },
                    Detail::Quota {
                        quota: quota.clone(),
                    }
                    .into(),
                ];
                if exhausted {
                    facts.push(Fact::Problem {
                        problem: Problem::QuotaExhausted {
                            reset_at: quota.reset_at,
                        }
                        .into(),
                    });
                }
                // Only `free_disabled` is evidence of a disabled account;
                // `past_due`/`incomplete` are exported as billing at risk.
                if sub.status == "free_disabled" {
                    facts.push(Fact::Problem {
                        problem: Problem::SubscriptionDisabled {
                            status: quota.status.clone(),
                        }
                        .into(),
                    });
                }
                let detail = format!(
                    "key accepted; {} of {} characters used{} ({} plan, {}{})",
                    sub.character_count,
                    sub.character_limit,
                    match quota.ceiling {
                        Some(c) if c != sub.character_limit => {
                            format!(", usage-based billing up to {c}")
                        }
                        Some(_) => String::new(),
                        None => ", usage-based billing without a cap".into(),
                    },
                    quota.tier,
                    quota.status,
                    if quota.billing_at_risk() {
                        "; billing at risk"
                    } else {
                        ""
                    }
                );
                (Ok(facts), detail)
            }
            Err(e) => (
                Err(Failure::new(Reason::UnexpectedResponse)),
                format!(
                    "HTTP 200 but the subscription could not be read: {}",
                    short(&e.to_string())
                ),
            ),
        },
        Meaning::Invalid(problem) => (
            Ok(vec![Fact::Invalid {
                problem: problem.into(),
            }]),
            "the key was rejected".into(),
        ),
        Meaning::MissingPermission(named) => {
            let mut facts = vec![Fact::Valid, Detail::QuotaUnreadable.into()];
            if let Some(p) = &named {
                facts.push(Fact::Permission {
                    name: p.clone(),
                    granted: false,
                    basis: Basis::Direct,
                });
            }
            (
                Ok(facts),
                format!(
                    "key accepted, but it may not read the subscription (missing `{}`): quota unknown",
                    named.as_deref().unwrap_or("a permission")
                ),
            )
        }
        Meaning::QuotaExceeded => (
            Ok(vec![
                Fact::Valid,
                Fact::Problem {
                    problem: Problem::QuotaExhausted { reset_at: None }.into(),
                },
            ]),
            "key accepted; quota exceeded".into(),
        ),
        Meaning::Blocked(problem) => (
            Ok(vec![
                Fact::Valid,
                Fact::Problem {
                    problem: problem.into(),
                },
            ]),
            "key accepted; the account is blocked".into(),
        ),
        Meaning::AgentNotFound => (
            Err(Failure::new(Reason::UnexpectedResponse)),
            "unexpected `agent_not_found` from the subscription endpoint".into(),
        ),
        Meaning::Unrecognised(detail) => (Err(failure(Reason::UnexpectedResponse, answer)), detail),
        Meaning::Failure(reason, detail) => (Err(failure(reason, answer)), detail),
    };
    (result, detail)
}

/// One row of the permission table, read in the light of its recorded
/// calibration (`calibration_file:`), if any.
pub async fn permission_check(
    cred: &Credential,
    el: &ElevenLabs,
    ctx: &Context<'_>,
    probe: &PermissionProbe,
    calibration: Option<Calibrated<'_>>,
) -> Attempt {
    let check = format!("permission_{}", probe.permission);
    let clock = Clock::start();
    let answer = match get(ctx, el, cred, &probe.path).await {
        Ok(a) => a,
        Err(e) => return clock.failed(&check, &probe.path, e),
    };
    let body = parse_body(&answer);
    let (result, detail) = permission_meaning(probe, calibration, &answer, &body);
    clock.finish(
        &check,
        evidence(&probe.path, &answer, &body, detail),
        result,
    )
}

/// The table row's verdict; anything the row does not name is unknown.
///
/// A verdict read from the table rests on the probe's assumptions (e.g.
/// that get-signed-url checks the permission before looking up the agent,
/// seen only on a sibling request): `inferred`, or `calibrated` when
/// `credwatch calibrate` proved the probe on this API. A calibration that
/// showed the probe does not discriminate makes its readings unknown. An
/// answer naming the permission is upstream's own word (`direct`), whatever
/// the calibration.
pub fn permission_meaning(
    probe: &PermissionProbe,
    calibration: Option<Calibrated<'_>>,
    answer: &Answer,
    body: &Body,
) -> (Result<Vec<Fact>, Failure>, String) {
    let fields = match body {
        Body::Error(f) => Some(f),
        _ => None,
    };
    let code = fields.and_then(|f| f.key());
    let p = &probe.permission;
    if let Meaning::Failure(reason, detail) = classify(answer, body) {
        // Not JSON, 429, 5xx, no key received: never a verdict, whatever the table says.
        return (Err(failure(reason, answer)), detail);
    }
    let matches = |list: &[StatusMatch]| {
        list.iter().any(|m| {
            m.matches(answer.status, code)
                || fields.is_some_and(|f| m.matches(answer.status, f.status.as_deref()))
        })
    };
    let shown = || {
        format!(
            "HTTP {}{}",
            answer.status,
            code.map(|c| format!(" `{c}`")).unwrap_or_default()
        )
    };
    // A reading of the table: its basis, or unknown when calibration
    // showed the probe cannot tell keys apart.
    let read = |granted: bool, what: String| -> (Result<Vec<Fact>, Failure>, String) {
        match calibration {
            Some(c) if !c.discriminates => (
                Err(Failure::inconclusive()),
                format!(
                    "{} would mean `{p}` is {}, but `credwatch calibrate` showed on {} that this probe does not tell a key with `{p}` from one without: `{p}` stays unknown",
                    shown(),
                    if granted { "granted" } else { "not granted" },
                    c.at
                ),
            ),
            _ => {
                let basis = if calibration.is_some() {
                    Basis::Calibrated
                } else {
                    Basis::Inferred
                };
                (
                    Ok(vec![
                        Fact::Valid,
                        Fact::Permission {
                            name: p.clone(),
                            granted,
                            basis,
                        },
                    ]),
                    match calibration {
                        Some(c) => format!("{what} (probe calibrated on {})", c.at),
                        None => format!("{what} (inferred: probe not calibrated)"),
                    },
                )
            }
        }
    };
    if matches(&probe.granted) {
        return read(
            true,
            format!("HTTP {} means `{p}` is granted", answer.status),
        );
    }
    if matches(&probe.not_granted) {
        let named = fields.and_then(ErrorFields::permission);
        return match named {
            Some(q) if &q == p => (
                Ok(vec![
                    Fact::Valid,
                    Fact::Permission {
                        name: p.clone(),
                        granted: false,
                        basis: Basis::Direct,
                    },
                ]),
                format!("the key lacks `{p}`"),
            ),
            Some(q) => (
                Err(Failure::inconclusive()),
                format!(
                    "the probe for `{p}` was refused for another permission, `{q}`: `{p}` stays unknown (run `credwatch calibrate`)"
                ),
            ),
            None if probe.overridden => read(
                false,
                format!(
                    "HTTP {} means `{p}` is not granted (configured probe)",
                    answer.status
                ),
            ),
            None => (
                Err(Failure::inconclusive()),
                format!(
                    "a permission error that names no permission: `{p}` stays unknown (run `credwatch calibrate`)"
                ),
            ),
        };
    }
    match classify(answer, body) {
        Meaning::Invalid(problem) => (
            Ok(vec![Fact::Invalid {
                problem: problem.into(),
            }]),
            "the key was rejected".into(),
        ),
        // The subscription check owns the account's state; here it only
        // means this permission cannot be read for now.
        Meaning::Blocked(problem) => (
            Ok(vec![Fact::Valid]),
            format!(
                "the account is blocked (`{}`): `{p}` stays unknown",
                problem.code()
            ),
        ),
        // A JSON answer from the API that the table does not name (400
        // `invalid_uid`, 422, an unknown code, …): the probe itself needs
        // attention. Never granted, never missing.
        _ => (
            Err(Failure::inconclusive()),
            format!(
                "HTTP {}{} does not tell whether `{p}` is granted: the probe needs attention (run `credwatch calibrate`)",
                answer.status,
                code.map(|c| format!(" `{c}`")).unwrap_or_default()
            ),
        ),
    }
}

fn failure(reason: Reason, answer: &Answer) -> Failure {
    answer.failure(reason)
}

fn short(s: &str) -> String {
    crate::outcome::clean_to(s, 160)
}

#[cfg(test)]
mod tests;
