//! Every report path takes any upstream answer (issue #21): arbitrary but
//! bounded upstream fields (a subscription with any numbers, dates past
//! year 9999 included, hostile strings; any answer to the permission
//! probes, the Twilio account and balance: every classifier of each
//! credential's provider, through its replay hook) and facts (imported numbers
//! with any problems and change times) go through the classifiers, the
//! verdict, and then `check`'s text and JSON, `/metrics`, `/health` and
//! `/`. Nothing panics, and nothing a terminal would act on comes out.

use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use proptest::prelude::*;

use crate::config::Config;
use crate::outcome::{Attempt, Fact, clean};
use crate::providers::elevenlabs::{self, PhoneNumber, PhoneProblem};
use crate::providers::http::Answer;
use crate::providers::{Detail, twilio};
use crate::state::State;

/// Text with the characters that break outputs: escapes, CR/LF, quotes,
/// braces, bidi overrides, non-ASCII, up to 200 characters.
fn hostile() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z_]{0,12}",
        "[ -~]{0,60}",
        "(\u{1b}\\]0;[a-z]{0,5}\u{7}|\u{1b}\\[2J|\r\n|\"|\\{|\\}|\u{202e}|\u{2705}|[a-z]){0,40}",
        any::<String>().prop_map(|s| s.chars().take(200).collect()),
    ]
    .boxed()
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A subscription body with any counts, any reset time and hostile words.
fn subscription() -> BoxedStrategy<String> {
    (
        any::<u64>(),
        any::<u64>(),
        prop_oneof![
            any::<i64>(),
            Just(300_000_000_000),
            Just(253_402_300_800),
            Just(-1)
        ],
        hostile(),
        prop_oneof![Just("active".to_string()), Just("past_due".to_string()), hostile()],
        any::<bool>(),
        prop_oneof![
            Just("null".to_string()),
            Just("\"unlimited\"".to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
        ],
        any::<Option<bool>>(),
    )
        .prop_map(|(count, limit, reset, tier, status, extend, ext, invoices)| {
            format!(
                "{{\"character_count\":{count},\"character_limit\":{limit},\"next_character_count_reset_unix\":{reset},\"tier\":{},\"status\":{},\"can_extend_character_limit\":{extend},\"max_credit_limit_extension\":{ext},\"has_open_invoices\":{}}}",
                json_str(&tier),
                json_str(&status),
                invoices.map_or("null".to_string(), |b| b.to_string()),
            )
        })
        .boxed()
}

/// Any answer: a status, JSON or not, an envelope with hostile contents.
fn answer() -> BoxedStrategy<Answer> {
    let body = prop_oneof![
        subscription(),
        (hostile(), hostile()).prop_map(|(c, m)| format!(
            "{{\"detail\":{{\"status\":{},\"code\":{},\"message\":{}}}}}",
            json_str(&c),
            json_str(&c),
            json_str(&m)
        )),
        (any::<i64>(), hostile()).prop_map(|(c, m)| format!(
            "{{\"code\":{c},\"message\":{},\"status\":401}}",
            json_str(&m)
        )),
        (hostile(), hostile()).prop_map(|(st, t)| format!(
            "{{\"sid\":\"AC1\",\"status\":{},\"type\":{}}}",
            json_str(&st),
            json_str(&t)
        )),
        (hostile(), hostile()).prop_map(|(b, c)| format!(
            "{{\"balance\":{},\"currency\":{}}}",
            json_str(&b),
            json_str(&c)
        )),
        hostile(),
    ];
    (
        prop_oneof![
            Just(200u16),
            Just(401),
            Just(403),
            Just(404),
            Just(429),
            Just(500),
            100u16..600
        ],
        prop_oneof![
            Just(Some("application/json".to_string())),
            Just(Some("text/html".to_string())),
            Just(None)
        ],
        body,
        proptest::option::of(hostile()),
    )
        .prop_map(|(status, content_type, body, request_id)| Answer {
            status,
            content_type,
            body: Bytes::from(body),
            request_id,
            retry_after: None,
        })
        .boxed()
}

/// Imported numbers as the cross-check reports them: strings cleaned at
/// parse, any problems, any change time.
fn phone_numbers() -> BoxedStrategy<Vec<PhoneNumber>> {
    let problem = prop_oneof![
        Just(PhoneProblem::NotOutboundCapable),
        Just(PhoneProblem::OutboundUnknown),
        Just(PhoneProblem::NoAgent),
        Just(PhoneProblem::AgentMissing),
        Just(PhoneProblem::AgentNotUlaw),
        Just(PhoneProblem::NotOnTwilioAccount),
        Just(PhoneProblem::ReimportNeeded),
    ];
    proptest::collection::vec(
        (
            hostile(),
            hostile(),
            hostile(),
            proptest::collection::vec(problem, 0..4),
            proptest::option::of(any::<u64>()),
        )
            .prop_map(|(id, number, label, mut problems, changed)| {
                problems.sort();
                problems.dedup();
                PhoneNumber {
                    phone_number_id: clean(&id),
                    number: clean(&number),
                    label: clean(&label),
                    agent_id: None,
                    agent_formats: None,
                    problems,
                    twilio_changed_at: changed
                        .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s))),
                }
            }),
        0..3,
    )
    .boxed()
}

fn attempt(
    check: &str,
    path: &str,
    a: &Answer,
    result: (Result<Vec<Fact>, crate::outcome::Failure>, String),
) -> Attempt {
    Attempt {
        check: check.to_string(),
        started_at: SystemTime::now(),
        duration: Duration::ZERO,
        evidence: a.evidence(path, None, result.1),
        result: result.0,
    }
}

fn config() -> Config {
    let yaml = "elevenlabs:\n  - name: el\n    api_key: sk_property_key\n    phone_numbers: true\n    required_permissions: [convai_write, user_read]\ntwilio:\n  - name: tw\n    account_sid: AC0123456789abcdef0123456789abcdef\n    auth_token: 0123456789abcdef0123456789abcdef\ncall_paths:\n  - name: p\n    elevenlabs: el\n    agent_id: agent_1\n    agent_phone_number_id: phnum_1\n    twilio: tw\n    destinations: [US]\n";
    match Config::from_yaml(
        yaml,
        Path::new("property.yaml"),
        &std::collections::HashMap::new(),
    ) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// Nothing a terminal acts on: no control character but a newline.
fn inert(what: &str, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{} carries a control character: {:?}",
        what,
        text
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::providers::properties::cases() / 4))]

    #[test]
    fn every_report_path_takes_any_upstream_answer(
        sub in answer(),
        answers in proptest::collection::vec(answer(), 8),
        account in answer(),
        path in hostile(),
        numbers in proptest::option::of(phone_numbers()),
    ) {
        let config = config();
        let state = State::new(&config);
        // Every classifier of each credential's provider (its replay hook,
        // `Provider::classifiers`), each given an answer of its own.
        let mut pool = std::iter::once(&sub).chain(&answers).cycle();
        let mut reports = Vec::new();
        for cred in &config.credentials {
            let mut attempts: Vec<Attempt> = cred
                .spec
                .provider()
                .classifiers()
                .iter()
                .map(|c| {
                    let a = pool.next().expect("an endless pool");
                    attempt(&c.check, &path, a, (c.classify)(a))
                })
                .collect();
            if let (Some(numbers), true) = (&numbers, cred.name == "el") {
                attempts.push(Attempt {
                    check: "phone_numbers".into(),
                    started_at: SystemTime::now(),
                    duration: Duration::ZERO,
                    evidence: sub.evidence(&path, None, String::new()),
                    result: Ok(vec![Fact::Valid, Fact::Detail(Detail::ElevenLabs(elevenlabs::Detail::PhoneNumbers { numbers: numbers.clone(), left_out: 0 }))]),
                });
            }
            let slot = state.slot(&cred.name).expect("slot");
            state.record(&slot, &attempts);
            reports.push(super::report(&config, cred, &slot.snapshot(), &attempts, None));
        }
        // The call path's links, looked at with the same hostile answers.
        let (number, _) = elevenlabs::call_path::phone_number_outcome(&path, &sub);
        let (finding, detail) = twilio::voice::destination_outcome("US", &account);
        let destination = crate::call_paths::Observation::new(
            crate::call_paths::Link::Destination("US".into()),
            finding,
            account.evidence(&path, None, detail),
        );
        state.record_path("p", vec![elevenlabs::call_path::agent_outcome(&path, &sub), number, destination]);
        let call_paths = state
            .paths()
            .iter()
            .map(|p| crate::call_paths::report::report(&state.path_state(p), tokio::time::Instant::now()))
            .collect();
        let report = super::Report { version: 2, ok: false, credentials: reports, call_paths };
        let mut text = Vec::new();
        crate::render::text::render_text(&report, &crate::render::text::Style::plain(), &mut text).expect("render");
        let text = String::from_utf8(text).expect("UTF-8");
        inert("check text", &text)?;
        let json = serde_json::to_string(&report).expect("check json");
        let back: serde_json::Value = serde_json::from_str(&json).expect("check json parses");
        inert("check json", &back.to_string())?;
        let metrics: Vec<u8> = state.metrics_body(String::new(), false).into_iter().flat_map(|c| c.into_bytes()).collect();
        let metrics = String::from_utf8(metrics).expect("metrics UTF-8");
        inert("/metrics", &metrics)?;
        for line in metrics.lines() {
            prop_assert!(line.is_empty() || line.starts_with('#') || line.starts_with("credwatch_") || line.starts_with("process_"), "{}", line);
        }
        let (_, health) = state.health_body(true);
        let health: Vec<u8> = health.into_iter().flat_map(|c| c.into_bytes()).collect();
        let health: serde_json::Value = serde_json::from_slice(&health).expect("/health is JSON");
        inert("/health", &health.to_string())?;
        let credentials = state.slots().iter().map(|s| s.view()).collect();
        inert("/", &crate::render::page::overview(credentials, &state.path_states()))?;
    }
}
