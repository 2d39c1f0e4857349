//! ElevenLabs' checks: the requests of one cycle (validity and quota from
//! `/v1/user/subscription`, one side-effect-free GET per required
//! permission) and what their answers establish. What an error envelope
//! means is `classify`'s.

use crate::providers::json::Scalar;
use serde::Deserialize;

use super::ElevenLabs;
use super::api::{PermissionProbe, StatusMatch};
use super::calibration::Calibrated;
use super::classify::{Body, ErrorFields, Meaning, classify, parse_body};
use super::facts::{Detail, Problem, Quota};
use crate::providers::ProviderProblem;
use crate::providers::http::{Answer, TransportError};
use crate::providers::outcome::{Attempt, Basis, Clean, Evidence, Fact, Failure, Reason, clean};
use crate::providers::{Clock, Context, Credential, Plan, Provider};

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
