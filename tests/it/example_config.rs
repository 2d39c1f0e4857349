//! `config.example.yaml` is what users copy: it must stay valid, complete and
//! free of warnings when its environment variables hold realistic values.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use credwatch::config::{Config, Provider, SecretSource, Spec};
use credwatch::providers::twilio::TwilioAuth;

const EXAMPLE: &str = include_str!("../../config.example.yaml");

/// Realistic values in the formats each provider issues (none of them real).
const ENV: [(&str, &str); 5] = [
    (
        "ELEVENLABS_API_KEY",
        "sk_3f9a1c7e5b2d4f60a8e1c3b5d7f9a2c4e6b8d0f1a3c5e7b9",
    ),
    ("TWILIO_ACCOUNT_SID", "AC5c1e3a7b9d2f4e6a8c0b1d3f5e7a9c2b"),
    ("TWILIO_AUTH_TOKEN", "9e2b4d6f8a1c3e5b7d9f0a2c4e6b8d1f"),
    ("TWILIO_API_KEY_SID", "SK7d9f1b3e5a7c9e2b4d6f8a0c1e3b5d7f"),
    ("TWILIO_API_KEY_SECRET", "qT4vX8zB2nM6kP0rW3yH7jL1sD5fG9cA"),
];

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml")
}

fn env() -> HashMap<String, String> {
    ENV.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_example_config_is_valid_without_warnings_when_its_env_vars_are_set() {
    let config = Config::from_yaml(EXAMPLE, &example_path(), &env())
        .unwrap_or_else(|e| panic!("config.example.yaml does not validate:\n{e}"));
    assert!(
        config.warnings.is_empty(),
        "config.example.yaml has warnings: {:?}",
        config.warnings
    );
    assert_eq!(config.listen, Some("0.0.0.0:9863".parse().unwrap()));
    assert_eq!(config.max_concurrent_requests_per_host, 16);
    assert_eq!(config.secret_poll_interval, Duration::from_secs(10));

    let names: Vec<(&str, Provider, bool)> = config
        .credentials
        .iter()
        .map(|c| (c.name.as_str(), c.provider(), c.critical))
        .collect();
    assert_eq!(
        names,
        [
            ("elevenlabs-agents", Provider::ElevenLabs, true),
            ("twilio-main", Provider::Twilio, true),
            ("twilio-api-key", Provider::Twilio, false),
        ]
    );
    for c in &config.credentials {
        assert_eq!(c.interval, Duration::from_secs(60), "{}", c.name);
        assert_eq!(c.timeout, Duration::from_secs(10), "{}", c.name);
        assert_eq!(c.detail_interval, Duration::from_secs(600), "{}", c.name);
    }

    let Spec::ElevenLabs(el) = &config.credentials[0].spec else {
        panic!("the first credential is ElevenLabs");
    };
    assert_eq!(el.required_permissions, ["convai_write"]);
    assert_eq!(el.base_url, "https://api.elevenlabs.io");
    assert_eq!(
        el.api_key.source,
        SecretSource::Env("ELEVENLABS_API_KEY".into())
    );
    assert_eq!(el.api_key.value.expose(), ENV[0].1);

    let Spec::Twilio(main) = &config.credentials[1].spec else {
        panic!("the second credential is Twilio");
    };
    assert_eq!(main.account_sid, ENV[1].1);
    assert!(
        matches!(&main.auth, TwilioAuth::AuthToken(t) if t.source == SecretSource::Env("TWILIO_AUTH_TOKEN".into()))
    );

    let Spec::Twilio(keyed) = &config.credentials[2].spec else {
        panic!("the third credential is Twilio");
    };
    match &keyed.auth {
        TwilioAuth::ApiKey { sid, secret, .. } => {
            assert_eq!(sid, ENV[3].1);
            assert_eq!(
                secret.source,
                SecretSource::Env("TWILIO_API_KEY_SECRET".into())
            );
        }
        other => panic!("twilio-api-key should use an API key, got {other:?}"),
    }

    // The built-in probe table, untouched by the example.
    let probes: Vec<&str> = config
        .shared
        .elevenlabs
        .permission_probes
        .iter()
        .map(|p| p.permission.as_str())
        .collect();
    assert_eq!(
        probes,
        ["convai_write", "convai_read", "user_read", "models_read"]
    );
    assert!(
        config
            .shared
            .elevenlabs
            .permission_probes
            .iter()
            .all(|p| !p.overridden)
    );
}

#[test]
fn credwatch_validate_accepts_the_example_config() {
    let out = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["validate", "--config"])
        .arg(example_path())
        .env_remove("CREDWATCH_CONFIG")
        .envs(ENV)
        .output()
        .expect("run credwatch validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("valid (3 credentials)"), "{stdout}");
    assert!(!stderr.contains("warning"), "{stderr}");
    for (_, value) in ENV {
        assert!(!stdout.contains(value) && !stderr.contains(value));
    }
}

#[test]
fn credwatch_validate_names_the_missing_env_var_and_exits_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_credwatch"))
        .args(["validate", "--config"])
        .arg(example_path())
        .env_remove("CREDWATCH_CONFIG")
        .envs(
            ENV.iter()
                .filter(|(k, _)| *k != "TWILIO_AUTH_TOKEN")
                .copied(),
        )
        .env_remove("TWILIO_AUTH_TOKEN")
        .output()
        .expect("run credwatch validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("twilio[0].auth_token_env") && stderr.contains("TWILIO_AUTH_TOKEN"),
        "{stderr}"
    );
}
