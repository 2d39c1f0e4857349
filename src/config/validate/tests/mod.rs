//! The config loader on literal YAML text: keys, durations, names and
//! generated documents here; secrets, provider sections and base URLs in
//! their own modules.

use std::collections::HashMap;
use std::path::Path;

use crate::config::{Config, ConfigError};

mod base_urls;
mod providers;
mod secrets;

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const SK: &str = "SK0123456789abcdef0123456789abcdef";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(yaml: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
    Config::from_yaml(yaml, Path::new("/etc/credwatch/config.yaml"), env)
}

fn errors(yaml: &str) -> Vec<String> {
    match load(yaml, &env(&[])) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(e) => {
            assert_eq!(e.file, Path::new("/etc/credwatch/config.yaml"));
            e.errors.iter().map(|d| d.to_string()).collect()
        }
    }
}

fn has(errors: &[String], path: &str, needle: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(needle)),
        "no error at `{path}` containing `{needle}` in {errors:#?}"
    );
}

#[test]
fn a_full_config_loads_with_defaults() {
    let yaml = format!(
        "listen: 127.0.0.1:9999\ndefaults:\n  interval: 30s\n  timeout: 5s\nelevenlabs:\n  - name: agent-prod\n    api_key_env: EL_KEY\ntwilio:\n  - name: tel\n    account_sid: {AC}\n    auth_token_env: TW_TOKEN\n"
    );
    let c = load(&yaml, &env(&[("EL_KEY", "sk_abc123"), ("TW_TOKEN", TOKEN)])).expect("valid");
    assert_eq!(c.listen, Some("127.0.0.1:9999".parse().expect("addr")));
    assert_eq!(c.credentials.len(), 2);
    let el = &c.credentials[0];
    assert_eq!(el.interval.as_secs(), 30);
    assert_eq!(el.timeout.as_secs(), 5);
    assert!(el.critical);
    assert_eq!(el.provider().as_str(), "elevenlabs");
    assert_eq!(el.required_permissions(), ["convai_write"]);
    assert_eq!(el.base_url(), "https://api.elevenlabs.io");
    assert_eq!(el.secret().value.expose(), "sk_abc123");
    let tw = &c.credentials[1];
    assert_eq!(tw.provider().as_str(), "twilio");
    assert_eq!(tw.account(), Some(AC));
    assert_eq!(tw.secret_name(), "Auth Token");
    assert_eq!(tw.secret().value.expose(), TOKEN);
    assert_eq!(tw.base_url(), "https://api.twilio.com");
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn unknown_keys_are_named_with_their_path() {
    let e = errors("twilio:\n  - name: a\n    auth_tokn: x\n");
    assert!(
        e.iter()
            .any(|e| e.starts_with("twilio[0].auth_tokn: unknown key `auth_tokn`")),
        "{e:?}"
    );
    let e = errors("defaults:\n  intervall: 5s\n");
    assert!(
        e.iter()
            .any(|e| e.contains("defaults.intervall") && e.contains("unknown key")),
        "{e:?}"
    );
}

#[test]
fn the_file_is_named_in_the_message() {
    let err = load("twilio: []\nelevenlabs: []\n", &env(&[])).expect_err("no credentials");
    let text = err.to_string();
    assert!(text.contains("/etc/credwatch/config.yaml"), "{text}");
    assert!(text.contains("no credentials configured"), "{text}");
}

#[test]
fn durations_need_units_and_sane_values() {
    let e = errors("defaults:\n  interval: 60\nelevenlabs:\n  - name: a\n    api_key: sk_x\n");
    assert!(
        e.iter().any(|e| e.starts_with("defaults.interval")),
        "{e:?}"
    );
    let e = errors(
        "defaults:\n  interval: 500ms\n  timeout: 100ms\nelevenlabs:\n  - name: a\n    api_key: sk_x\n",
    );
    has(&e, "defaults.interval", "at least 1s");
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    interval: 10s\n    timeout: 10s\n",
    );
    has(&e, "elevenlabs[0].timeout", "below the interval");
}

#[test]
fn names_are_unique_and_well_formed() {
    let e = errors(
        "elevenlabs:\n  - name: same\n    api_key: sk_x\ntwilio:\n  - name: same\n    account_sid: AC0123456789abcdef0123456789abcdef\n    auth_token: 0123456789abcdef0123456789abcdef\n",
    );
    has(&e, "twilio[0].name", "already used by elevenlabs[0]");
    let e = errors("elevenlabs:\n  - name: \"has space\"\n    api_key: sk_x\n");
    has(&e, "elevenlabs[0].name", "may only contain");
    let e = errors("elevenlabs:\n  - api_key: sk_x\n");
    has(&e, "elevenlabs[0].name", "missing");
}

#[test]
fn exactly_one_source_per_secret() {
    let e = errors("elevenlabs:\n  - name: a\n");
    has(&e, "elevenlabs[0].api_key", "missing; set one of");
    let e = errors("elevenlabs:\n  - name: a\n    api_key: sk_x\n    api_key_env: X\n");
    has(
        &e,
        "elevenlabs[0].api_key",
        "set in several ways (api_key, api_key_env)",
    );
}

#[test]
fn env_vars_must_be_set_and_non_empty() {
    let e = errors("elevenlabs:\n  - name: a\n    api_key_env: NOPE_NOT_SET\n");
    has(&e, "elevenlabs[0].api_key_env", "`NOPE_NOT_SET` is not set");
    let err = load(
        "elevenlabs:\n  - name: a\n    api_key_env: EMPTY\n",
        &env(&[("EMPTY", "  ")]),
    )
    .expect_err("empty");
    assert!(
        err.errors
            .iter()
            .any(|d| d.path == "elevenlabs[0].api_key_env" && d.message.contains("empty")),
        "{err}"
    );
}

#[test]
fn unreadable_secret_files_are_errors_relative_to_the_config() {
    let e = errors("elevenlabs:\n  - name: a\n    api_key_file: secrets/missing\n");
    has(
        &e,
        "elevenlabs[0].api_key_file",
        "cannot read `/etc/credwatch/secrets/missing`",
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("sk_abc".to_string()),
            Just(AC.to_string()),
            Just(SK.to_string()),
            Just(TOKEN.to_string()),
            Just("60s".to_string()),
            Just("0s".to_string()),
            Just("-1".to_string()),
            Just("[]".to_string()),
            Just("{}".to_string()),
            Just("~".to_string()),
            Just("true".to_string()),
            "[ -~]{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        ]
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("name"),
            Just("api_key"),
            Just("api_key_env"),
            Just("api_key_file"),
            Just("base_url"),
            Just("required_permissions"),
            Just("critical"),
            Just("interval"),
            Just("timeout"),
            Just("detail_interval"),
            Just("account_sid"),
            Just("auth_token"),
            Just("api_key_sid"),
            Just("api_key_secret"),
            Just("phone_numbers"),
            Just("twilio"),
            Just("expose_numbers"),
            Just("twilio_imported_fingerprint"),
            Just("allow_insecure_http"),
            Just("bogus"),
        ]
        .prop_map(str::to_string)
    }

    fn document() -> impl Strategy<Value = String> {
        (
            prop::sample::select(vec![
                "elevenlabs",
                "twilio",
                "defaults",
                "listen",
                "permission_probes",
                "strict",
            ]),
            proptest::collection::vec((key(), value()), 0..8),
        )
            .prop_map(|(section, pairs)| {
                let body: String = pairs
                    .iter()
                    .map(|(k, v)| format!("    {k}: {v}\n"))
                    .collect();
                match section {
                    "elevenlabs" | "twilio" => format!("{section}:\n  - x: 1\n{body}").replacen(
                        "  - x: 1\n    ",
                        "  - ",
                        1,
                    ),
                    other => format!("{other}:\n{body}"),
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::providers::properties::cases()))]

        #[test]
        fn the_loader_never_panics_on_arbitrary_text(text in "\\PC{0,400}") {
            let _ = Config::from_yaml(&text, Path::new("fuzz.yaml"), &env(&[]));
        }

        #[test]
        fn every_rejection_names_what_is_wrong(doc in document()) {
            match Config::from_yaml(&doc, Path::new("fuzz.yaml"), &env(&[])) {
                Ok(c) => prop_assert!(!c.credentials.is_empty()),
                Err(e) => {
                    prop_assert!(!e.errors.is_empty());
                    for d in &e.errors {
                        prop_assert!(!d.message.is_empty());
                    }
                    prop_assert!(e.to_string().contains("fuzz.yaml"));
                }
            }
        }
    }
}
