//! Replays every recorded upstream answer of `tests/fixtures/upstream/`
//! through credwatch's classifiers and compares the outcome with the
//! entry's `expect` (the format is described in `docs/upstream-evidence.md`).
//!
//! ElevenLabs entries go through the pure classifiers (`parse_body`,
//! `subscription_outcome`, `permission_meaning` with the built-in probe
//! table); Twilio's `account` and `balance` through `account_outcome` and
//! `balance_outcome`. Twilio's auth check (`phone_numbers`) classifies
//! inside the request loop, so those entries are served over HTTP by the
//! simulator (a `Fault::Custom` with the entry's status, content type and
//! body) and go through `providers::run`, the daemon's own entry point.
//!
//! Every mismatch is collected and reported at once, by entry id.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use credwatch::config::Config;
use credwatch::outcome::{Attempt, Evidence, Fact, Failure, Reason};
use credwatch::providers::http::{Answer, Upstream};
use credwatch::providers::{self, Context, Detail, Plan, elevenlabs, twilio};
use credwatch_sim::{Fault, Simulator, World};
use serde_json::Value;

use crate::support::{ac_sid, tw_token};

const FILES: [(&str, &str); 2] = [
    (
        "elevenlabs.json",
        include_str!("../fixtures/upstream/elevenlabs.json"),
    ),
    (
        "twilio.json",
        include_str!("../fixtures/upstream/twilio.json"),
    ),
];

fn corpus() -> Vec<Value> {
    FILES
        .iter()
        .flat_map(|(name, text)| {
            let v: Value =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
            v.as_array()
                .unwrap_or_else(|| panic!("{name} is not a list"))
                .clone()
        })
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// The answer as credwatch's HTTP client would have built it.
fn answer(entry: &Value) -> Answer {
    let header = |name: &str| entry["headers"][name].as_str().map(str::to_string);
    Answer {
        status: entry["status"].as_u64().expect("status") as u16,
        content_type: header("content-type"),
        body: bytes::Bytes::from(str_of(entry, "body").to_string()),
        request_id: header("request-id")
            .or_else(|| header("x-trace-id"))
            .or_else(|| header("twilio-request-id")),
        retry_after: None,
    }
}

fn attempt(check: &str, result: Result<Vec<Fact>, Failure>) -> Attempt {
    Attempt {
        check: check.to_string(),
        started_at: SystemTime::now(),
        duration: Duration::ZERO,
        evidence: Evidence::default(),
        result,
    }
}

/// Classifies `entry` for `check` with the pure classifiers; `None` for the
/// checks that need HTTP.
fn classify(entry: &Value, check: &str) -> Option<Attempt> {
    let a = answer(entry);
    let result = match check {
        "subscription" => {
            let body = elevenlabs::parse_body(&a);
            elevenlabs::subscription_outcome(&a, &body).0
        }
        "account" => twilio::account_outcome(&a, false).0,
        "balance" => twilio::balance_outcome(&a, false).0,
        "phone_numbers" => return None,
        other => {
            let permission = other
                .strip_prefix("permission_")
                .unwrap_or_else(|| panic!("unknown check `{other}`"));
            let probe = elevenlabs::default_permission_probes()
                .into_iter()
                .find(|p| p.permission == permission)
                .unwrap_or_else(|| panic!("no built-in probe for `{permission}`"));
            let body = elevenlabs::parse_body(&a);
            elevenlabs::permission_meaning(&probe, None, &a, &body).0
        }
    };
    Some(attempt(check, result))
}

fn reason_str(r: Reason) -> &'static str {
    r.as_str()
}

/// Compares one attempt with one expectation; the mismatches, in words.
fn compare(attempt: &Attempt, expect: &Value) -> Vec<String> {
    let mut wrong = Vec::new();
    let got = match &attempt.result {
        Ok(facts) => format!("Ok({facts:?})"),
        Err(f) => format!("Err({})", f.reason.as_str()),
    };
    let facts: &[Fact] = match &attempt.result {
        Ok(f) => f,
        Err(_) => &[],
    };
    if let Some(verdict) = expect["verdict"].as_str() {
        let error = attempt.error_reason().map(reason_str);
        let ok = attempt.result.is_ok()
            && match verdict {
                // Definitive, and no problem found.
                "valid" | "no_problem" => {
                    error.is_none() && !facts.iter().any(|f| matches!(f, Fact::Invalid { .. }))
                }
                reason => error == Some(reason),
            };
        if !ok {
            wrong.push(format!("verdict {verdict} expected, got {got}"));
        }
    }
    if let Some(reason) = expect["failure"].as_str()
        && !matches!(&attempt.result, Err(f) if f.reason.as_str() == reason)
    {
        wrong.push(format!("failure {reason} expected, got {got}"));
    }
    if let Some(valid) = expect["valid"].as_bool() {
        let has = |want_valid: bool| {
            facts.iter().any(|f| match f {
                Fact::Valid => want_valid,
                Fact::Invalid { .. } => !want_valid,
                _ => false,
            })
        };
        if !has(valid) {
            wrong.push(format!(
                "the credential should be {}, got {got}",
                if valid { "valid" } else { "invalid" }
            ));
        }
    }
    if let Some(quota) = expect["quota"].as_str() {
        let ok = match quota {
            "unreadable" => facts.iter().any(|f| {
                matches!(
                    f,
                    Fact::Detail(Detail::ElevenLabs(elevenlabs::Detail::QuotaUnreadable))
                )
            }),
            "exported" => facts.iter().any(|f| {
                matches!(
                    f,
                    Fact::Detail(Detail::ElevenLabs(elevenlabs::Detail::Quota { .. }))
                )
            }),
            other => panic!("unknown quota expectation `{other}`"),
        };
        if !ok {
            wrong.push(format!("quota {quota} expected, got {got}"));
        }
    }
    if let Some(permission) = expect["permission"].as_str() {
        let name = attempt
            .check
            .strip_prefix("permission_")
            .expect("a permission expectation needs a permission check");
        let fact = facts.iter().find_map(|f| match f {
            Fact::Permission {
                name: n, granted, ..
            } if n == name => Some(*granted),
            _ => None,
        });
        let ok = match permission {
            "granted" => fact == Some(true),
            "not_granted" => {
                fact == Some(false) && attempt.error_reason() == Some(Reason::MissingPermission)
            }
            "unknown" => fact.is_none(),
            other => panic!("unknown permission expectation `{other}`"),
        };
        if !ok {
            wrong.push(format!("`{name}` {permission} expected, got {got}"));
        }
    }
    wrong
}

/// Serves `entry` for every Twilio request and runs the daemon's Twilio
/// checks (auth check only) against it.
async fn twilio_auth_check(sim: &Simulator, entry: &Value) -> Attempt {
    let content_type = entry["headers"]["content-type"]
        .as_str()
        .unwrap_or("application/json")
        .to_string();
    let fault = Fault::Custom {
        status: entry["status"].as_u64().expect("status") as u16,
        content_type,
        body: str_of(entry, "body").to_string(),
    };
    sim.update(|w| w.twilio.fault = Some(fault));
    let yaml = format!(
        "twilio:\n  - name: replay\n    account_sid: {}\n    auth_token: {}\n    base_url: {}\n",
        ac_sid("replay"),
        tw_token("replay"),
        sim.twilio_url()
    );
    let config = Config::from_yaml(
        &yaml,
        Path::new("replay.yaml"),
        &HashMap::<String, String>::new(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let upstream = Upstream::new(4, None).expect("client");
    let ctx = Context {
        upstream: &upstream,
        shared: &config.shared,
        linked: None,
    };
    let attempts = providers::run(&config.credentials[0], &ctx, &Plan::default()).await;
    attempts
        .into_iter()
        .next()
        .expect("the auth check always runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_answer_produces_its_expected_verdict() {
    credwatch::providers::http::install_crypto_provider();
    let corpus = corpus();
    assert!(corpus.len() >= 60, "the corpus shrank: {}", corpus.len());
    let sim = Simulator::start(World::default()).await.expect("simulator");
    let mut failures = Vec::new();
    let mut replayed = 0;
    for entry in &corpus {
        let id = str_of(entry, "id");
        let expects = entry["expect"].as_array().expect("expect is a list");
        assert!(!expects.is_empty(), "{id}: nothing expected");
        for expect in expects {
            let check = str_of(expect, "check");
            let attempt = match classify(entry, check) {
                Some(a) => a,
                None => twilio_auth_check(&sim, entry).await,
            };
            replayed += 1;
            for wrong in compare(&attempt, expect) {
                failures.push(format!("{id} [{check}]: {wrong}"));
            }
        }
    }
    assert!(replayed >= corpus.len());
    assert!(
        failures.is_empty(),
        "{} of {replayed} expectations fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The comparison itself can fail: a wrong expectation is caught.
#[test]
fn a_wrong_expectation_is_reported() {
    let entry = corpus()
        .into_iter()
        .find(|e| e["id"] == "el-401-invalid-api-key")
        .expect("entry");
    let attempt = classify(&entry, "subscription").expect("pure");
    assert!(
        compare(
            &attempt,
            &serde_json::json!({"verdict": "invalid_credentials"})
        )
        .is_empty()
    );
    assert!(!compare(&attempt, &serde_json::json!({"verdict": "valid"})).is_empty());
    assert!(!compare(&attempt, &serde_json::json!({"failure": "rate_limited"})).is_empty());
    assert!(!compare(&attempt, &serde_json::json!({"valid": true})).is_empty());
}

/// `docs/upstream-evidence.md` lists every entry, so the page cannot fall
/// behind the corpus.
#[test]
fn the_evidence_page_lists_every_entry() {
    let page = include_str!("../../docs/upstream-evidence.md");
    let missing: Vec<String> = corpus()
        .iter()
        .map(|e| str_of(e, "id").to_string())
        .filter(|id| !page.contains(&format!("`{id}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/upstream-evidence.md: {missing:?}"
    );
}
