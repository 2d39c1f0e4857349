//! ElevenLabs: validity and quota (`/v1/user/subscription`), permissions
//! (one table row per permission, each a side-effect-free GET), and the
//! classification of every error envelope ElevenLabs is known to send.
//!
//! Classification reads the error `code`, then the legacy `status`, then the
//! HTTP status — never the human message, except to extract the permission
//! name from `missing the permission <name>`.

pub mod phone_numbers;

use serde::Deserialize;
use serde_json::Value;

use super::http::{Answer, Auth, TransportError};
use super::{Clock, Context, Plan};
use crate::config::{Credential, ElevenLabs, PermissionProbe, Provider, StatusMatch};
use crate::outcome::{Attempt, Evidence, Fact, Failure, Problem, Quota, Reason};

/// A well-formed agent ID (`agent_` + 28 lowercase alphanumerics) that no
/// agent has: get-signed-url answers 404 `agent_not_found` when the key holds
/// `convai_write`, and mints nothing.
pub const NONEXISTENT_AGENT_ID: &str = "agent_credwatchprobe00000000000000";

/// The built-in permission probes. Adding a permission is one row.
pub fn default_permission_probes() -> Vec<PermissionProbe> {
    let denied = || {
        vec![
            StatusMatch {
                status: 401,
                code: Some("missing_permissions".into()),
            },
            StatusMatch {
                status: 403,
                code: Some("insufficient_permissions".into()),
            },
            StatusMatch {
                status: 403,
                code: Some("missing_permissions".into()),
            },
        ]
    };
    let row = |permission: &str, path: String, granted: StatusMatch| PermissionProbe {
        permission: permission.into(),
        path,
        granted: vec![granted],
        not_granted: denied(),
        overridden: false,
    };
    vec![
        row(
            "convai_write",
            format!("/v1/convai/conversation/get-signed-url?agent_id={NONEXISTENT_AGENT_ID}"),
            StatusMatch {
                status: 404,
                code: Some("agent_not_found".into()),
            },
        ),
        row(
            "convai_read",
            "/v1/convai/agents?page_size=1".into(),
            StatusMatch {
                status: 200,
                code: None,
            },
        ),
        row(
            "user_read",
            "/v1/user".into(),
            StatusMatch {
                status: 200,
                code: None,
            },
        ),
        row(
            "models_read",
            "/v1/models".into(),
            StatusMatch {
                status: 200,
                code: None,
            },
        ),
    ]
}

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

fn string_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.chars().take(512).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn fields_of(obj: &serde_json::Map<String, Value>) -> ErrorFields {
    ErrorFields {
        code: string_of(obj.get("code")),
        status: string_of(obj.get("status")),
        kind: string_of(obj.get("type")),
        message: string_of(obj.get("message")),
        request_id: string_of(obj.get("request_id")),
    }
}

/// Parses any of the envelopes in `shared/reference/elevenlabs-api.md` §2.
pub fn parse_body(answer: &Answer) -> Body {
    if !answer.is_json() {
        return Body::NotJson;
    }
    let Ok(value) = serde_json::from_slice::<Value>(&answer.body) else {
        return Body::NotJson;
    };
    let Value::Object(top) = value else {
        return Body::OtherJson;
    };
    match top.get("detail") {
        Some(Value::Object(detail)) => Body::Error(fields_of(detail)),
        Some(Value::Array(_)) => Body::Validation,
        Some(Value::String(s)) => Body::Text(s.chars().take(200).collect()),
        _ if top.contains_key("code") || top.contains_key("status") => Body::Error(fields_of(&top)),
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
    Failure(Reason, String),
}

/// Classifies a non-200 answer: code, then status, then the HTTP status.
pub fn classify(answer: &Answer, body: &Body) -> Meaning {
    let status = answer.status;
    // Only a JSON answer from the API itself is ever definitive: an HTML page
    // (a CDN challenge, a captive portal, a proxy) says nothing about the key,
    // whatever its status.
    let json = answer.is_json() && !matches!(body, Body::NotJson);
    if status == 200 && json {
        return Meaning::Ok;
    }
    if (200..300).contains(&status) {
        return Meaning::Failure(
            Reason::UnexpectedResponse,
            if json {
                format!("HTTP {status} where 200 was expected")
            } else {
                format!("HTTP {status} with a body that is not JSON (a proxy or captive portal?)")
            },
        );
    }
    if !json {
        let detail = if status == 403 {
            "HTTP 403 with an HTML page: a CDN or firewall (e.g. a Cloudflare challenge) blocked the request before ElevenLabs saw the key; this is not a key problem".to_string()
        } else {
            format!("HTTP {status} with a body that is not JSON")
        };
        let reason = match status {
            429 => Reason::RateLimited,
            500..=599 => Reason::UpstreamError,
            _ => Reason::UnexpectedResponse,
        };
        return Meaning::Failure(reason, detail);
    }
    // Rate limits and server errors are never verdicts, whatever code they carry.
    if status == 429 || status >= 500 {
        let code = match body {
            Body::Error(f) => f.key().map(|k| format!(" `{k}`")).unwrap_or_default(),
            _ => String::new(),
        };
        return if status == 429 {
            Meaning::Failure(
                Reason::RateLimited,
                format!("429{code}: upstream is busy or rate-limiting"),
            )
        } else {
            Meaning::Failure(
                Reason::UpstreamError,
                format!("HTTP {status}{code}: server error"),
            )
        };
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
                "needs_authorization" => return Meaning::Invalid(Problem::KeyNotReceived),
                "missing_permissions" | "insufficient_permissions" => {
                    return Meaning::MissingPermission(f.permission());
                }
                "quota_exceeded" => return Meaning::QuotaExceeded,
                "detected_unusual_activity" => return Meaning::Blocked(Problem::UnusualActivity),
                "payment_issue" => return Meaning::Blocked(Problem::PaymentIssue),
                "payment_required" => return Meaning::Blocked(Problem::PaymentRequired),
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
    let described = match body {
        Body::Error(f) => format!("HTTP {status} with unknown code `{}`", f.key().unwrap_or("none")),
        Body::Validation => format!("HTTP {status} with a validation error"),
        Body::Text(t) => format!("HTTP {status} `{t}`"),
        Body::OtherJson => format!("HTTP {status} with an unrecognised JSON body"),
        Body::NotJson if status == 403 => {
            "HTTP 403 with an HTML page: a CDN or firewall (e.g. a Cloudflare challenge) blocked the request before ElevenLabs saw the key; this is not a key problem".to_string()
        }
        Body::NotJson => format!("HTTP {status} with a body that is not JSON"),
    };
    let reason = match status {
        429 => Reason::RateLimited,
        500..=599 => Reason::UpstreamError,
        _ => Reason::UnexpectedResponse,
    };
    Meaning::Failure(reason, described)
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
    max_credit_limit_extension: Option<Value>,
}

impl Subscription {
    /// Used up, and usage-based billing cannot take over.
    fn exhausted(&self) -> bool {
        let extensible = self.can_extend_character_limit
            && match &self.max_credit_limit_extension {
                Some(Value::String(s)) => s == "unlimited",
                Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n > 0.0),
                _ => false,
            };
        self.character_count >= self.character_limit && !extensible
    }
}

fn evidence(path: &str, answer: &Answer, body: &Body, detail: String) -> Evidence {
    let fields = match body {
        Body::Error(f) => Some(f),
        _ => None,
    };
    Evidence {
        request: format!("GET {path}"),
        http_status: Some(answer.status),
        upstream_code: fields.and_then(|f| f.key().map(str::to_string)),
        permission: fields.and_then(ErrorFields::permission),
        request_id: fields
            .and_then(|f| f.request_id.clone())
            .or_else(|| answer.request_id.clone()),
        detail,
    }
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
            Auth::XiApiKey(&el.api_key.value),
            cred.timeout,
        )
        .await
}

/// One cycle for one key: the subscription every time; permissions when details are due.
pub async fn run(
    cred: &Credential,
    el: &ElevenLabs,
    ctx: &Context<'_>,
    plan: Plan,
) -> Vec<Attempt> {
    let mut attempts = Vec::new();
    let auth = subscription(cred, el, ctx).await;
    let go_on = matches!(&auth.result, Ok(facts) if !facts.iter().any(|f| matches!(f, Fact::Invalid { .. })));
    attempts.push(auth);
    if !go_on || !plan.details {
        return attempts;
    }
    for permission in &el.required_permissions {
        let Some(probe) = ctx
            .permission_probes
            .iter()
            .find(|p| &p.permission == permission)
        else {
            continue;
        };
        let attempt = permission_check(cred, el, ctx, probe).await;
        let stop = attempt.result.is_err();
        attempts.push(attempt);
        if stop {
            return attempts; // upstream trouble: don't pile on.
        }
    }
    if el.phone_numbers {
        attempts.push(phone_numbers::check(cred, el, ctx).await);
    }
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
                    tier: sub.tier.clone(),
                    status: sub.status.clone(),
                    exhausted,
                };
                let mut facts = vec![
                    Fact::Valid,
                    Fact::Permission {
                        name: "user_read".into(),
                        granted: true,
                    },
                    Fact::Quota {
                        quota: quota.clone(),
                    },
                ];
                if exhausted {
                    facts.push(Fact::Blocked {
                        problem: Problem::QuotaExhausted {
                            reset_at: quota.reset_at,
                        },
                    });
                }
                if sub.status == "free_disabled" {
                    facts.push(Fact::Blocked {
                        problem: Problem::SubscriptionDisabled {
                            status: sub.status.clone(),
                        },
                    });
                }
                let detail = format!(
                    "key accepted; {} of {} characters used ({} plan, {})",
                    sub.character_count, sub.character_limit, sub.tier, sub.status
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
            Ok(vec![Fact::Invalid { problem }]),
            "the key was rejected".into(),
        ),
        Meaning::MissingPermission(named) => {
            let mut facts = vec![Fact::Valid, Fact::QuotaUnreadable];
            if let Some(p) = &named {
                facts.push(Fact::Permission {
                    name: p.clone(),
                    granted: false,
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
                Fact::Blocked {
                    problem: Problem::QuotaExhausted { reset_at: None },
                },
            ]),
            "key accepted; quota exceeded".into(),
        ),
        Meaning::Blocked(problem) => (
            Ok(vec![Fact::Valid, Fact::Blocked { problem }]),
            "key accepted; the account is blocked".into(),
        ),
        Meaning::AgentNotFound => (
            Err(Failure::new(Reason::UnexpectedResponse)),
            "unexpected `agent_not_found` from the subscription endpoint".into(),
        ),
        Meaning::Failure(reason, detail) => (Err(failure(reason, answer)), detail),
    };
    (result, detail)
}

/// One row of the permission table.
pub async fn permission_check(
    cred: &Credential,
    el: &ElevenLabs,
    ctx: &Context<'_>,
    probe: &PermissionProbe,
) -> Attempt {
    let check = format!("permission_{}", probe.permission);
    let clock = Clock::start();
    let answer = match get(ctx, el, cred, &probe.path).await {
        Ok(a) => a,
        Err(e) => return clock.failed(&check, &probe.path, e),
    };
    let body = parse_body(&answer);
    let (result, detail) = permission_meaning(probe, &answer, &body);
    clock.finish(
        &check,
        evidence(&probe.path, &answer, &body, detail),
        result,
    )
}

/// The table row's verdict; anything the row does not name is unknown.
pub fn permission_meaning(
    probe: &PermissionProbe,
    answer: &Answer,
    body: &Body,
) -> (Result<Vec<Fact>, Failure>, String) {
    let fields = match body {
        Body::Error(f) => Some(f),
        _ => None,
    };
    let code = fields.and_then(|f| f.key());
    let p = &probe.permission;
    if let Meaning::Failure(reason, detail) = classify(answer, body)
        && (matches!(body, Body::NotJson)
            || !answer.is_json()
            || reason != Reason::UnexpectedResponse)
    {
        // Not JSON, 429, 5xx: never a verdict, whatever the table says.
        return (Err(failure(reason, answer)), detail);
    }
    let matches = |list: &[StatusMatch]| {
        list.iter().any(|m| {
            m.matches(answer.status, code)
                || fields.is_some_and(|f| m.matches(answer.status, f.status.as_deref()))
        })
    };
    if matches(&probe.granted) {
        return (
            Ok(vec![
                Fact::Valid,
                Fact::Permission {
                    name: p.clone(),
                    granted: true,
                },
            ]),
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
                    },
                ]),
                format!("the key lacks `{p}`"),
            ),
            Some(q) => (
                Ok(vec![
                    Fact::Valid,
                    Fact::Permission {
                        name: q.clone(),
                        granted: false,
                    },
                ]),
                format!(
                    "the probe for `{p}` was refused for another permission, `{q}`: `{p}` stays unknown"
                ),
            ),
            None if probe.overridden => (
                Ok(vec![
                    Fact::Valid,
                    Fact::Permission {
                        name: p.clone(),
                        granted: false,
                    },
                ]),
                format!(
                    "HTTP {} means `{p}` is not granted (configured probe)",
                    answer.status
                ),
            ),
            None => (
                Err(Failure::new(Reason::UnexpectedResponse)),
                format!("a permission error that names no permission: `{p}` stays unknown"),
            ),
        };
    }
    match classify(answer, body) {
        Meaning::Invalid(problem) => (
            Ok(vec![Fact::Invalid { problem }]),
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
        Meaning::Failure(reason, detail) => (Err(failure(reason, answer)), detail),
        _ => (
            Err(Failure::new(Reason::UnexpectedResponse)),
            format!(
                "HTTP {}{} does not tell whether `{p}` is granted (run `credwatch calibrate`)",
                answer.status,
                code.map(|c| format!(" `{c}`")).unwrap_or_default()
            ),
        ),
    }
}

fn failure(reason: Reason, answer: &Answer) -> Failure {
    Failure {
        reason,
        retry_after: answer.retry_after,
    }
}

fn short(s: &str) -> String {
    s.chars().take(160).collect()
}

#[cfg(test)]
mod tests;
