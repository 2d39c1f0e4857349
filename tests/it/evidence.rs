//! Replays every recorded upstream answer of `tests/fixtures/upstream/`
//! through credwatch's classifiers and compares the outcome with the
//! entry's `expect` (the format is described in `docs/upstream-evidence.md`).
//!
//! Nothing here names a provider: each fake of the simulator
//! (`credwatch_sim::FAKES`) brings its corpus file (`Fake::corpus`), and each
//! entry goes through its provider's replay hook (`Provider::replay`, the
//! classifier its cycle runs on that answer, with no network).
//!
//! Every mismatch is collected and reported at once, by entry id.

use std::time::{Duration, SystemTime};

use credwatch::outcome::{Attempt, Evidence, Fact, Failure, Reason};
use credwatch::providers::http::Answer;
use credwatch::providers::{Detail, Provider, elevenlabs};
use serde_json::Value;

/// The provider a fake stands for: the one whose config section it is.
fn provider_of(fake: &str) -> Provider {
    Provider::ALL
        .iter()
        .copied()
        .find(|p| p.as_str() == fake)
        .unwrap_or_else(|| panic!("the simulator's fake `{fake}` is no provider of credwatch"))
}

/// Every recorded answer, with the provider it was recorded from.
fn corpus() -> Vec<(Provider, Value)> {
    credwatch_sim::FAKES
        .iter()
        .flat_map(|fake| {
            let name = fake.name();
            let v: Value = serde_json::from_str(fake.corpus())
                .unwrap_or_else(|e| panic!("the corpus of {name} is not JSON: {e}"));
            let entries = v
                .as_array()
                .unwrap_or_else(|| panic!("the corpus of {name} is not a list"))
                .clone();
            entries.into_iter().map(move |e| (provider_of(name), e))
        })
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// The answer as credwatch's HTTP client would have built it.
fn answer(provider: Provider, entry: &Value) -> Answer {
    let header = |name: &str| entry["headers"][name].as_str().map(str::to_string);
    Answer {
        status: entry["status"].as_u64().expect("status") as u16,
        content_type: header("content-type"),
        body: bytes::Bytes::from(str_of(entry, "body").to_string()),
        request_id: provider.request_id_headers().iter().find_map(|h| header(h)),
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

/// Classifies `entry` for `check` with its provider's replay hook.
fn classify(provider: Provider, entry: &Value, check: &str) -> Attempt {
    let (result, _detail) = provider
        .replay(check, &answer(provider, entry))
        .unwrap_or_else(|| panic!("{provider} has no check `{check}`"));
    attempt(check, result)
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

#[test]
fn every_recorded_answer_produces_its_expected_verdict() {
    let corpus = corpus();
    assert!(corpus.len() >= 60, "the corpus shrank: {}", corpus.len());
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (provider, entry) in &corpus {
        let id = str_of(entry, "id");
        let expects = entry["expect"].as_array().expect("expect is a list");
        assert!(!expects.is_empty(), "{id}: nothing expected");
        for expect in expects {
            let check = str_of(expect, "check");
            let attempt = classify(*provider, entry, check);
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
    let (provider, entry) = corpus()
        .into_iter()
        .find(|(_, e)| e["id"] == "el-401-invalid-api-key")
        .expect("entry");
    let attempt = classify(provider, &entry, "subscription");
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
        .map(|(_, e)| str_of(e, "id").to_string())
        .filter(|id| !page.contains(&format!("`{id}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/upstream-evidence.md: {missing:?}"
    );
}

/// Every provider has a fake in the simulator with a corpus, with recorded
/// answers for its auth check, and every entry of a corpus is its
/// provider's. (Not every check has one: nothing was ever recorded for the
/// `models_read` probe.)
#[test]
fn every_provider_has_a_corpus_with_its_auth_check() {
    let fakes: Vec<&str> = credwatch_sim::FAKES.iter().map(|f| f.name()).collect();
    let corpus = corpus();
    let mut problems = Vec::new();
    for &provider in Provider::ALL {
        if !fakes.contains(&provider.as_str()) {
            problems.push(format!("{provider}: no fake in credwatch_sim::FAKES"));
            continue;
        }
        let check = provider.auth_check();
        let recorded = corpus.iter().any(|(p, e)| {
            *p == provider
                && e["expect"]
                    .as_array()
                    .is_some_and(|x| x.iter().any(|x| str_of(x, "check") == check))
        });
        if !recorded {
            problems.push(format!("{provider}: no recorded answer for `{check}`"));
        }
    }
    for (provider, entry) in &corpus {
        if str_of(entry, "provider") != provider.as_str() {
            problems.push(format!(
                "{}: in the corpus of {provider}, recorded from `{}`",
                str_of(entry, "id"),
                str_of(entry, "provider")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
