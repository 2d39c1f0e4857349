//! The slots and the store against a fresh rendering of every credential.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::metrics::store::BLOCK;
use crate::outcome::{Evidence, Fact, Failure, Reason};

/// credwatch's own part of `/metrics`, as the server adds it.
fn own() -> String {
    crate::metrics::own::Own::new().render(None)
}

fn config(n_el: usize, n_tw: usize) -> Config {
    let mut y = String::from("elevenlabs:\n");
    for i in 0..n_el {
        y += &format!(
            "  - name: el-{i}\n    api_key: sk_{i:048x}\n    base_url: http://127.0.0.1:9\n    critical: {}\n",
            i % 7 != 3
        );
    }
    y += "twilio:\n";
    for i in 0..n_tw {
        y += &format!(
            "  - name: tw-{i}\n    account_sid: AC{i:032x}\n    auth_token: {i:032x}\n    base_url: http://127.0.0.1:9\n"
        );
    }
    Config::from_yaml(&y, Path::new("t.yaml"), &HashMap::<String, String>::new())
        .expect("test config is valid")
}

fn attempt(check: &str, result: Result<Vec<Fact>, Failure>) -> Attempt {
    Attempt {
        check: check.into(),
        started_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        duration: Duration::from_millis(42),
        evidence: Evidence::default(),
        result,
    }
}

/// Records a mix of verdicts, some credentials several times, some never.
fn churn(state: &State, round: u64) {
    for (i, slot) in state.slots().iter().enumerate() {
        let i = i as u64;
        if (i + round) % 3 == 0 {
            continue;
        }
        let p = slot.provider;
        let attempts = match (i + round) % 4 {
            0 => vec![attempt(p.auth_check(), Err(Failure::new(Reason::Timeout)))],
            1 => vec![attempt(
                p.auth_check(),
                Ok(vec![Fact::Invalid {
                    problem: p.sample_problem(),
                }]),
            )],
            _ => vec![
                attempt(
                    p.auth_check(),
                    Ok(vec![Fact::Valid, p.sample_detail(i * 10 + round)]),
                ),
                attempt(
                    "permission_convai_write",
                    Ok(vec![Fact::Permission {
                        name: "convai_write".into(),
                        granted: round % 2 == 0,
                        basis: crate::outcome::Basis::Inferred,
                    }]),
                ),
            ],
        };
        state.record(slot, &attempts);
    }
}

/// The default `/health` body: the same, with only the credentials that
/// are not healthy.
fn expected_brief(state: &State) -> String {
    let snapshots: Vec<CredentialState> = state.slots().iter().map(|s| s.snapshot()).collect();
    let (mut healthy, mut unhealthy, mut pending, mut ok) = (0, 0, 0, true);
    let mut entries = Vec::new();
    for s in &snapshots {
        match s.health() {
            Health::Healthy => healthy += 1,
            Health::Unhealthy(_) => unhealthy += 1,
            Health::Pending => pending += 1,
        }
        ok &= !s.settings.critical || s.health() == Health::Healthy;
        if s.health() != Health::Healthy {
            entries.push(crate::render::health::credential(s));
        }
    }
    format!(
        "{{\"status\":\"{}\",\"healthy\":{healthy},\"unhealthy\":{unhealthy},\"pending\":{pending},\"credentials\":[{}]}}\n",
        if ok { "ok" } else { "fail" },
        entries.join(",")
    )
}

/// What the bodies must be: every credential rendered from scratch.
fn expected(state: &State) -> (String, String, bool) {
    let fragments: Vec<metrics::Fragments> = state
        .slots()
        .iter()
        .map(|s| metrics::render_credential(&s.snapshot()))
        .collect();
    let mut text = String::new();
    for i in 0..metrics::FAMILY_COUNT {
        if fragments.iter().all(|f| f.family(i).is_empty()) {
            continue;
        }
        text.push_str(std::str::from_utf8(&metrics::header(i).text).unwrap());
        for f in &fragments {
            text.push_str(f.family(i));
        }
    }
    let snapshots: Vec<CredentialState> = state.slots().iter().map(|s| s.snapshot()).collect();
    let (mut healthy, mut unhealthy, mut pending, mut ok) = (0, 0, 0, true);
    for s in &snapshots {
        match s.health() {
            Health::Healthy => healthy += 1,
            Health::Unhealthy(_) => unhealthy += 1,
            Health::Pending => pending += 1,
        }
        ok &= !s.settings.critical || s.health() == Health::Healthy;
    }
    let entries: Vec<String> = snapshots
        .iter()
        .map(crate::render::health::credential)
        .collect();
    let health = format!(
        "{{\"status\":\"{}\",\"healthy\":{healthy},\"unhealthy\":{unhealthy},\"pending\":{pending},\"credentials\":[{}]}}\n",
        if ok { "ok" } else { "fail" },
        entries.join(",")
    );
    (text, health, ok)
}

fn join(chunks: &[Chunk]) -> String {
    String::from_utf8(bytes(chunks)).unwrap()
}

fn bytes(chunks: &[Chunk]) -> Vec<u8> {
    chunks
        .iter()
        .flat_map(|c| c.clone().into_bytes().to_vec())
        .collect()
}

#[test]
fn bodies_match_a_fresh_rendering_through_changes() {
    // Three blocks and a partial one; several rounds so blocks are
    // re-joined from queued renderings and from the flush threshold.
    let state = State::new(&config(BLOCK + 40, BLOCK + 7));
    for round in 0..6 {
        if round > 0 {
            churn(&state, round);
        }
        let (text, health, ok) = expected(&state);
        let body = state.metrics_body(own(), false);
        let credentials = join(&body[..body.len() - 1]);
        assert_eq!(credentials, text, "round {round}");
        let (got_ok, chunks) = state.health_body(true);
        assert_eq!(join(&chunks), health, "round {round}");
        assert_eq!(got_ok, ok);
        serde_json::from_str::<serde_json::Value>(&join(&chunks)).unwrap();
        let (brief_ok, brief) = state.health_body(false);
        assert_eq!(join(&brief), expected_brief(&state), "round {round}");
        assert_eq!(brief_ok, ok);
        serde_json::from_str::<serde_json::Value>(&join(&brief)).unwrap();

        // gzip: one member whose CRC and length check out, same text.
        let gz = bytes(&state.metrics_body(own(), true));
        let mut decoded = String::new();
        let mut decoder = flate2::read::GzDecoder::new(&gz[..]);
        decoder.read_to_string(&mut decoded).unwrap();
        let mut rest = Vec::new();
        decoder.into_inner().read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "one gzip member");
        assert!(decoded.starts_with(&text), "round {round}");
        assert!(decoded[text.len()..].starts_with("# HELP credwatch_build_info"));

        for name in ["el-0", "el-129", "tw-3", "tw-134"] {
            let slot = state.slot(name).unwrap();
            let (_, entry) = state.health_entry(name).unwrap();
            assert_eq!(
                std::str::from_utf8(&entry).unwrap(),
                crate::render::health::credential(&slot.snapshot())
            );
        }
    }
}

#[test]
fn checks_total_counts_every_attempt_answered_or_not_from_the_first() {
    let state = State::new(&config(1, 0));
    let slot = state.slot("el-0").expect("slot");
    let text = |state: &State| join(&state.metrics_body(own(), false));
    let line = |text: &str, name: &str| -> Option<String> {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("check=\"subscription\""))
            .map(str::to_owned)
    };
    assert_eq!(line(&text(&state), "credwatch_checks_total{"), None);
    // First attempt, no answer: the series appears at 1, next to its error.
    state.record(
        &slot,
        &[attempt("subscription", Err(Failure::new(Reason::Timeout)))],
    );
    let t = text(&state);
    assert!(
        line(&t, "credwatch_checks_total{").is_some_and(|l| l.ends_with(" 1")),
        "{t}"
    );
    // Then two answers and one more failure: 4 attempts, 2 errors.
    state.record(&slot, &[attempt("subscription", Ok(vec![Fact::Valid]))]);
    state.record(&slot, &[attempt("subscription", Ok(vec![Fact::Valid]))]);
    state.record(
        &slot,
        &[attempt("subscription", Err(Failure::new(Reason::Network)))],
    );
    let t = text(&state);
    assert!(
        line(&t, "credwatch_checks_total{").is_some_and(|l| l.ends_with(" 4")),
        "{t}"
    );
    let errors: f64 = t
        .lines()
        .filter(|l| l.starts_with("credwatch_check_errors_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(errors, 2.0, "{t}");
}

#[test]
fn reload_keeps_bodies_consistent() {
    let state = State::new(&config(20, 5));
    churn(&state, 1);
    state.reconcile(&config(3, 300));
    churn(&state, 2);
    let (text, health, _) = expected(&state);
    let body = state.metrics_body(own(), false);
    assert_eq!(join(&body[..body.len() - 1]), text);
    assert_eq!(join(&state.health_body(true).1), health);
    assert_eq!(join(&state.health_body(false).1), expected_brief(&state));
}
