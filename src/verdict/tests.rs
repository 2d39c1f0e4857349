//! The verdict rules for a changed or refused secret and for "why pending",
//! on recorded attempts (no I/O).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::config::Config;
use crate::outcome::{Evidence, Failure};

const AT: Duration = Duration::from_secs(1_800_000_000);

fn credential() -> CredentialState {
    let yaml = format!(
        "elevenlabs:\n  - name: el\n    api_key: sk_{:048x}\n    base_url: http://127.0.0.1:9\n",
        7
    );
    let config = Config::from_yaml(
        &yaml,
        Path::new("t.yaml"),
        &HashMap::<String, String>::new(),
    )
    .expect("test config is valid");
    CredentialState::new(&config.credentials[0])
}

fn attempt(check: &str, secs: u64, result: Result<Vec<Fact>, Failure>, detail: &str) -> Attempt {
    Attempt {
        check: check.into(),
        started_at: SystemTime::UNIX_EPOCH + AT + Duration::from_secs(secs),
        duration: Duration::from_millis(42),
        evidence: Evidence {
            detail: detail.into(),
            ..Evidence::default()
        },
        result,
    }
}

fn healthy_cycle(secs: u64) -> Vec<Attempt> {
    let p = Provider::ElevenLabs;
    vec![
        attempt(
            "subscription",
            secs,
            Ok(vec![Fact::Valid, p.sample_detail(secs)]),
            "",
        ),
        attempt(
            "permission_convai_write",
            secs,
            Ok(vec![Fact::Permission {
                name: "convai_write".into(),
                granted: true,
                basis: crate::outcome::Basis::Inferred,
            }]),
            "",
        ),
    ]
}

fn server_error(check: &str, secs: u64) -> Attempt {
    attempt(
        check,
        secs,
        Err(Failure::new(Reason::UpstreamError)),
        "HTTP 500",
    )
}

#[test]
fn a_changed_secret_starts_from_nothing_until_the_new_value_is_answered() {
    let mut s = credential();
    let empty_details = serde_json::to_string(&s.verdict.details).unwrap();
    assert_eq!(
        s.pending_why().map(|p| p.why),
        Some(PendingCause::NotChecked)
    );
    s.record(&healthy_cycle(0));
    assert_eq!(s.health(), Health::Healthy);
    assert_ne!(
        serde_json::to_string(&s.verdict.details).unwrap(),
        empty_details
    );

    let changed = SystemTime::UNIX_EPOCH + AT + Duration::from_secs(60);
    assert!(s.secret_changed("0123456789ab".into(), changed));
    assert_eq!(s.fingerprint, "0123456789ab");
    assert_eq!(s.health(), Health::Pending);
    assert_eq!(s.verdict.valid, None);
    assert!(s.verdict.permissions.is_empty());
    assert_eq!(
        serde_json::to_string(&s.verdict.details).unwrap(),
        empty_details
    );
    let why = s.pending_why().expect("pending");
    assert_eq!(why.why, PendingCause::SecretChanged);
    assert_eq!(why.secret_changed, Some(changed));
    let entry: serde_json::Value =
        serde_json::from_str(&crate::render::health::credential(&s)).unwrap();
    assert_eq!(entry["status"], "pending", "{entry}");
    assert_eq!(entry["valid"], serde_json::Value::Null, "{entry}");
    assert_eq!(entry["pending"]["why"], "secret_changed", "{entry}");
    // The probe-inconclusive series of the old value is gone too.
    assert!(s.checks.iter().all(|(_, c)| c.inconclusive.is_none()));

    // The new value gets only 5xx: still pending, now saying why.
    s.record(&[server_error("subscription", 70)]);
    assert_eq!(s.health(), Health::Pending);
    let why = s.pending_why().expect("pending");
    assert_eq!(why.why, PendingCause::UpstreamUnreachable);
    assert_eq!(why.reason, Some(Reason::UpstreamError));
    assert_eq!(
        why.since,
        Some(SystemTime::UNIX_EPOCH + AT + Duration::from_secs(70))
    );
    assert_eq!(why.secret_changed, Some(changed), "still unconfirmed");
    s.record(&[server_error("subscription", 80)]);
    assert_eq!(
        s.pending_why().and_then(|p| p.since),
        Some(SystemTime::UNIX_EPOCH + AT + Duration::from_secs(70)),
        "since the first failure of the run"
    );

    // A definitive answer for the new value: a verdict again.
    s.record(&healthy_cycle(90));
    assert_eq!(s.health(), Health::Healthy);
    assert!(!s.unconfirmed);
    assert_eq!(s.pending_why(), None);

    // The same fingerprint again is no change.
    assert!(!s.secret_changed("0123456789ab".into(), changed));
    assert_eq!(s.health(), Health::Healthy);
}

#[test]
fn a_refused_value_is_unhealthy_invalid_config_until_the_value_changes() {
    let mut s = credential();
    s.record(&healthy_cycle(0));
    let why = "elevenlabs[0]: the new API key from file /run/k contains a line break".to_string();
    s.refuse(why.clone());
    assert_eq!(s.health(), Health::Unhealthy(Reason::InvalidConfig));
    assert!(!s.usable());
    assert_eq!(s.verdict.valid, None, "the old verdict is dropped");
    let entry: serde_json::Value =
        serde_json::from_str(&crate::render::health::credential(&s)).unwrap();
    assert_eq!(entry["reason"], "invalid_config", "{entry}");
    assert_eq!(entry["config_error"], why.as_str(), "{entry}");
    assert!(s.settled());

    assert_eq!(s.changed_at, None, "a refused value is no new secret");
    // Back to the value in use: pending until it is answered again, and
    // still no new secret.
    let fingerprint = s.fingerprint.clone();
    assert!(s.secret_changed(fingerprint, SystemTime::UNIX_EPOCH + AT));
    assert_eq!(s.refused, None);
    assert_eq!(s.changed_at, None);
    assert_eq!(s.health(), Health::Pending);
    s.record(&healthy_cycle(10));
    assert_eq!(s.health(), Health::Healthy);
}

#[test]
fn an_inconclusive_probe_is_pending_naming_the_permission_the_answer_and_the_fix() {
    let mut s = credential();
    let cycle = |secs| {
        vec![
            attempt("subscription", secs, Ok(vec![Fact::Valid]), ""),
            attempt(
                "permission_convai_write",
                secs,
                Err(Failure::inconclusive()),
                "HTTP 200 does not tell whether `convai_write` is granted",
            ),
        ]
    };
    let first = s.record(&cycle(0));
    assert_eq!(first.after.pending, Some(PendingCause::ProbeInconclusive));
    // A first clean answer is no change; a first inconclusive one is.
    assert_eq!(first.changed, vec![false, true]);
    for n in 1..4 {
        let again = s.record(&cycle(n * 60));
        assert_eq!(again.before, again.after, "no change to log");
        assert_eq!(again.changed, vec![false, false]);
        let why = s.pending_why().expect("pending every cycle");
        assert_eq!(why.why, PendingCause::ProbeInconclusive);
        assert_eq!(why.permission.as_deref(), Some("convai_write"));
        assert!(
            why.answer
                .as_deref()
                .is_some_and(|a| a.contains("HTTP 200"))
        );
        assert!(why.fix().is_some_and(|f| f.contains("credwatch calibrate")));
        assert!(why.message().contains("convai_write"), "{}", why.message());
    }
    let entry: serde_json::Value =
        serde_json::from_str(&crate::render::health::credential(&s)).unwrap();
    assert_eq!(entry["pending"]["why"], "probe_inconclusive", "{entry}");
    assert_eq!(entry["pending"]["permission"], "convai_write", "{entry}");
    assert!(
        entry["pending"]["fix"]
            .as_str()
            .unwrap()
            .contains("calibrate")
    );
}

#[test]
fn a_revoked_key_changes_standing_once() {
    let mut s = credential();
    s.record(&healthy_cycle(0));
    let revoked = |secs| {
        vec![attempt(
            "subscription",
            secs,
            Ok(vec![Fact::Invalid {
                problem: Provider::ElevenLabs.sample_problem(),
            }]),
            "invalid_api_key",
        )]
    };
    let first = s.record(&revoked(60));
    assert_eq!(first.before.health, Health::Healthy);
    assert_eq!(
        first.after.health,
        Health::Unhealthy(Reason::InvalidCredentials)
    );
    assert_eq!(first.changed, vec![true]);
    let second = s.record(&revoked(120));
    assert_eq!(second.before, second.after);
    assert_eq!(second.changed, vec![false]);
    assert!(second.after.failing());
}

#[test]
fn unsendable_values_are_refused_naming_the_key_and_source_not_the_value() {
    for (value, what) in [
        ("sk_abc\ndef", "line break"),
        ("", "is empty"),
        ("sk_\u{0}x", "control"),
    ] {
        let yaml = "elevenlabs:\n  - name: el\n    api_key: sk_placeholder\n    base_url: http://127.0.0.1:9\n";
        let config =
            Config::from_yaml(yaml, Path::new("t.yaml"), &HashMap::<String, String>::new())
                .expect("test config is valid");
        let mut cred = config.credentials[0].clone();
        if let crate::providers::Spec::ElevenLabs(el) = &mut cred.spec {
            el.api_key.value = crate::secret::Secret::new(value);
        }
        let why = refusal(&cred, "elevenlabs[0]", "new ").expect("refused");
        assert!(
            why.starts_with("elevenlabs[0]: the new API key from the config file"),
            "{why}"
        );
        assert!(why.contains(what), "{why}");
        if !value.is_empty() {
            assert!(!why.contains(value), "{why}");
        }
    }
    let config = Config::from_yaml(
        "elevenlabs:\n  - name: el\n    api_key: sk_fine\n    base_url: http://127.0.0.1:9\n",
        Path::new("t.yaml"),
        &HashMap::<String, String>::new(),
    )
    .expect("valid");
    assert_eq!(refusal(&config.credentials[0], "elevenlabs[0]", ""), None);
}
