use std::collections::HashMap;
use std::path::Path;

use crate::config::{Config, ConfigError};

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

/// A `*_file` pointing at a `/proc` file (size 0, any content: here the
/// process's own status, elsewhere its environment) used to be read whole as
/// the secret. It is refused, naming the file.
#[cfg(target_os = "linux")]
#[test]
fn pseudo_files_and_directories_are_not_secret_files() {
    let e = errors("elevenlabs:\n  - name: a\n    api_key_file: /proc/self/status\n");
    has(
        &e,
        "elevenlabs[0].api_key_file",
        "cannot read `/proc/self/status`: its size is 0 bytes but",
    );
    has(&e, "elevenlabs[0].api_key_file", "pseudo-file");
    let e = errors("elevenlabs:\n  - name: a\n    api_key_file: /etc/\n");
    has(&e, "elevenlabs[0].api_key_file", "not a regular file");
}

#[test]
fn surrounding_whitespace_is_trimmed_with_a_warning_and_never_echoed() {
    let c = load(
        "elevenlabs:\n  - name: a\n    api_key_env: K\n",
        &env(&[("K", " sk_secretvalue\n")]),
    )
    .expect("valid");
    assert_eq!(c.credentials[0].secret().value.expose(), "sk_secretvalue");
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].path, "elevenlabs[0].api_key_env");
    assert!(c.warnings[0].message.contains("surrounding whitespace"));
    assert!(!c.warnings[0].message.contains("sk_secretvalue"));
}

#[test]
fn twilio_sids_are_checked() {
    let e = errors(
        "twilio:\n  - name: t\n    account_sid: AC123\n    auth_token: 0123456789abcdef0123456789abcdef\n",
    );
    has(
        &e,
        "twilio[0].account_sid",
        "`AC` followed by 32 hex digits",
    );
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {AC}\n    api_key_sid: SK12\n    api_key_secret: abcdefghijklmnopqrstuvwxyzABCDEF\n"
    ));
    has(
        &e,
        "twilio[0].api_key_sid",
        "`SK` followed by 32 hex digits",
    );
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {SK}\n    api_key_sid: {SK}\n    api_key_secret: abcdefghijklmnopqrstuvwxyzABCDEF\n"
    ));
    has(&e, "twilio[0].account_sid", "API key SID");
}

#[test]
fn swapped_sid_and_token_are_called_swapped() {
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {TOKEN}\n    auth_token: {AC}\n"
    ));
    has(&e, "twilio[0].account_sid", "these look swapped");
    assert_eq!(e.len(), 1, "one message for one mistake: {e:?}");
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {AC}\n    api_key_sid: abcdefghijklmnopqrstuvwxyzABCDEF\n    api_key_secret: {SK}\n"
    ));
    has(&e, "twilio[0].api_key_sid", "these look swapped");
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {AC}\n    auth_token: {SK}\n"
    ));
    has(&e, "twilio[0].auth_token", "API key SID");
}

#[test]
fn token_and_key_together_are_refused() {
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {AC}\n    auth_token: {TOKEN}\n    api_key_sid: {SK}\n    api_key_secret: x\n"
    ));
    has(&e, "twilio[0]", "has both an auth token and an API key");
}

#[test]
fn an_elevenlabs_key_id_is_not_a_key() {
    let e = errors("elevenlabs:\n  - name: a\n    api_key: J3Pbu5gP6NNKBscdCdwB\n");
    has(&e, "elevenlabs[0].api_key", "looks like an API key ID");
    let e = errors(&format!("elevenlabs:\n  - name: a\n    api_key: {AC}\n"));
    has(&e, "elevenlabs[0].api_key", "Twilio SID");
}

#[test]
fn permissions_without_a_probe_are_refused_with_the_list() {
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    required_permissions: [convai_write, voices_read]\n",
    );
    has(
        &e,
        "elevenlabs[0].required_permissions[1]",
        "no side-effect-free probe for this permission",
    );
    has(
        &e,
        "elevenlabs[0].required_permissions[1]",
        "convai_write, convai_read, user_read, models_read",
    );
}

#[test]
fn permission_probe_overrides_are_validated_and_extend_the_table() {
    let ok = "permission_probes:\n  voices_read:\n    path: /v1/convai/agents?page_size=1\n    granted: [{status: 200}]\n    not_granted: [{status: 401, code: missing_permissions}]\nelevenlabs:\n  - name: a\n    api_key: sk_x\n    required_permissions: [voices_read]\n";
    let c = load(ok, &env(&[])).expect("valid");
    assert!(
        c.shared
            .elevenlabs
            .permission_probes
            .iter()
            .any(|p| p.permission == "voices_read" && p.overridden)
    );
    let bad = "permission_probes:\n  convai_write:\n    path: /v1/convai/twilio/outbound-call\n    granted: [{status: 200}]\n    not_granted: [{status: 401}]\nelevenlabs:\n  - name: a\n    api_key: sk_x\n";
    has(
        &errors(bad),
        "permission_probes.convai_write.path",
        "read-only allow-list",
    );
}

#[test]
fn links_to_twilio_credentials_must_exist() {
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    phone_numbers: true\n    twilio: nope\n",
    );
    has(
        &e,
        "elevenlabs[0].twilio",
        "is not the name of a configured Twilio credential",
    );
}

/// `get-signed-url` with a real agent mints a signed URL: no override may
/// point the probe at one, nor ask for a conversation id.
#[test]
fn a_probe_override_cannot_point_get_signed_url_at_a_real_agent() {
    for path in [
        "/v1/convai/conversation/get-signed-url?agent_id=agent_2501k520e4p6eqs87ga1ke8a67fs",
        "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000&include_conversation_id=true",
        "/v1/convai/conversation/get-signed-url?include_conversation_id=1&agent_id=agent_0000000000000000000000000000",
    ] {
        let yaml = format!(
            "permission_probes:\n  convai_write:\n    path: \"{path}\"\n    granted: [{{status: 404, code: agent_not_found}}]\n    not_granted: [{{status: 401, code: missing_permissions}}]\nelevenlabs:\n  - name: a\n    api_key: sk_x\n"
        );
        has(
            &errors(&yaml),
            "permission_probes.convai_write.path",
            "get-signed-url",
        );
    }
}

/// ElevenLabs' import stores an Account SID + Auth Token: linking an API-key
/// credential cannot show an Auth Token rotation, and `validate` says so.
#[test]
fn linking_an_api_key_credential_warns_that_token_rotations_are_invisible() {
    let yaml = "elevenlabs:\n  - name: a\n    api_key: sk_x\n    phone_numbers: true\n    twilio: tw\ntwilio:\n  - name: tw\n    account_sid: AC0123456789abcdef0123456789abcdef\n    api_key_sid: SK0123456789abcdef0123456789abcdef\n    api_key_secret: s3cr3tvalue\n";
    let c = load(yaml, &env(&[])).expect("valid");
    let w = c
        .warnings
        .iter()
        .find(|w| w.path == "elevenlabs[0].twilio")
        .expect("a warning on the link");
    assert!(w.message.contains("Auth Token"), "{}", w.message);
    assert!(w.message.contains("auth_token"), "{}", w.message);
    assert!(!w.message.contains("s3cr3tvalue"));
}

#[test]
fn base_urls_must_be_plain_http_urls() {
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    base_url: https://user:pw@api.elevenlabs.io\n",
    );
    has(&e, "elevenlabs[0].base_url", "must not contain credentials");
    let e = errors("elevenlabs:\n  - name: a\n    api_key: sk_x\n    base_url: ftp://x\n");
    has(&e, "elevenlabs[0].base_url", "http or https");
}

/// Plain http to a host that is not loopback sends the secret in clear: an
/// error unless the credential says `allow_insecure_http: true` (then a warning).
#[test]
fn plain_http_needs_allow_insecure_http_unless_loopback() {
    for (section, item) in [
        ("elevenlabs", "  - name: a\n    api_key: sk_x\n".to_string()),
        (
            "twilio",
            format!("  - name: a\n    account_sid: {AC}\n    auth_token: {TOKEN}\n"),
        ),
    ] {
        let yaml = format!("{section}:\n{item}    base_url: http://example.com/\n");
        has(
            &errors(&yaml),
            &format!("{section}[0].base_url"),
            "would send the secret unencrypted; use https, or set `allow_insecure_http: true`",
        );
        let c =
            load(&format!("{yaml}    allow_insecure_http: true\n"), &env(&[])).expect("allowed");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.path == format!("{section}[0].base_url")
                    && w.message.contains("unencrypted")),
            "{:?}",
            c.warnings
        );
        for loopback in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:2",
        ] {
            let c = load(
                &format!("{section}:\n{item}    base_url: {loopback}\n"),
                &env(&[]),
            )
            .expect("loopback is fine");
            assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        }
        let c = load(
            &format!("{section}:\n{item}    allow_insecure_http: false\n"),
            &env(&[]),
        )
        .expect("valid");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.path == format!("{section}[0].allow_insecure_http"))
        );
    }
    assert_eq!(
        crate::config::check_base_url("https://api.elevenlabs.io/", false),
        Ok(crate::config::BaseUrl {
            url: "https://api.elevenlabs.io".into(),
            insecure: false
        })
    );
}

/// A secret typed under the wrong key, in every kind of slot, comes back
/// nowhere in the messages; the key path and what was expected do.
#[test]
fn a_secret_under_the_wrong_key_is_never_echoed() {
    const SECRET: &str = "sk_live_secretvalue123";
    let cases: &[(&str, &str, &str)] = &[
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    critical: {S}\n",
            "elevenlabs[0].critical",
            "expected `true` or `false`, found a string",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    critical: [{S}]\n",
            "elevenlabs[0].critical",
            "expected `true` or `false`, found a list",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    interval: {S}\n",
            "elevenlabs[0].interval",
            "expected a duration with a unit",
        ),
        (
            "defaults:\n  timeout: \"{S}\"\n",
            "defaults.timeout",
            "expected a duration with a unit",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    base_url: {S}\n",
            "elevenlabs[0].base_url",
            "is not a URL",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    base_url: \"sk-live-secretvalue123://h\"\n",
            "elevenlabs[0].base_url",
            "must be an http or https URL",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    required_permissions: {S}\n",
            "elevenlabs[0].required_permissions",
            "expected a list, found a string",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    required_permissions: [{S}]\n",
            "elevenlabs[0].required_permissions[0]",
            "no side-effect-free probe",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    phone_numbers: true\n    twilio: {S}\n",
            "elevenlabs[0].twilio",
            "is not the name of a configured Twilio credential",
        ),
        (
            "elevenlabs:\n  - name: \"{S} x\"\n    api_key: sk_x\n",
            "elevenlabs[0].name",
            "may only contain",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key_env: {S}\n",
            "elevenlabs[0].api_key_env",
            "is not set",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key_file: {S}\n",
            "elevenlabs[0].api_key_file",
            "cannot read the file this key names",
        ),
        (
            "elevenlabs:\n  - name: a\n    api_key: sk_x\n    {S}: true\n",
            "elevenlabs[0]",
            "an unknown key",
        ),
        (
            "listen: {S}\nelevenlabs:\n  - name: a\n    api_key: sk_x\n",
            "listen",
            "is not a listen address",
        ),
        (
            "max_concurrent_requests_per_host: {S}\n",
            "max_concurrent_requests_per_host",
            "expected a whole number, found a string",
        ),
        (
            "permission_probes:\n  p:\n    path: /v1/{S}\n    granted: [{status: 200}]\n    not_granted: [{status: 401}]\n",
            "permission_probes.p.path",
            "read-only allow-list",
        ),
        (
            "permission_probes:\n  p:\n    path: /v1/user\n    granted: [{status: {S}}]\n",
            "permission_probes.p.granted[0].status",
            "expected a whole number up to 65535",
        ),
        ("strict: {S}\n", "strict", "expected `true` or `false`"),
        ("{S}\n", "", "expected a mapping of keys, found a string"),
    ];
    for (template, path, needle) in cases {
        let yaml = template.replace("{S}", SECRET);
        let err = load(&yaml, &env(&[])).expect_err(&yaml);
        let text = err.to_string();
        assert!(
            !text.contains("secretvalue"),
            "the secret is echoed:\n{yaml}\n{text}"
        );
        assert!(
            err.errors
                .iter()
                .any(|d| d.path == *path && d.message.contains(needle)),
            "no error at `{path}` containing `{needle}`:\n{yaml}\n{text}"
        );
        assert!(text.contains("/etc/credwatch/config.yaml"), "{text}");
    }
    // The line and column stay; a well-formed unknown key is still named.
    let e = errors("elevenlabs:\n  - name: a\n    api_key: sk_x\n    critical: nope\n");
    has(&e, "elevenlabs[0].critical", "at line 4 column 15");
    let e = errors("elevenlabs:\n  - name: a\n    api_kye: sk_x\n");
    has(&e, "elevenlabs[0].api_kye", "unknown key `api_kye`");
}

#[test]
fn syntax_errors_quote_nothing_from_the_file() {
    for yaml in [
        "elevenlabs:\n  - name: a\n    api_key \"sk_live_secretvalue123\n",
        "elevenlabs:\n  - name: a\n    api_key: 'sk_live_secretvalue123\n    critical: true\n",
        "elevenlabs:\n  - name: a\n    api_key: \"sk_live_\\qsecretvalue123\"\n",
        "elevenlabs:\n  - name: a\n    api_key: *sk_live_secretvalue123\n",
        "elevenlabs:\n  - name: a\n    api_key: sk_live_secretvalue123\n   critical: true\n",
        "%TAG !sk_live_secretvalue123! tag:x\n---\na: 1\n",
        "elevenlabs:\n  - name: a\n    critical: `sk_live_secretvalue123\n",
    ] {
        let err = load(yaml, &env(&[])).expect_err(yaml);
        let text = err.to_string();
        assert!(!text.contains("secretvalue"), "{yaml}\n{text}");
        assert!(text.contains("line "), "no location in {text}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = errors(
        "elevenlabs:\n  - name: a\n  - name: b\n    api_key: sk_x\n    interval: 10s\n    timeout: 20s\n",
    );
    assert!(e.len() >= 2, "{e:?}");
}

#[test]
fn debug_output_of_a_config_never_shows_secrets() {
    let c = load(
        &format!("elevenlabs:\n  - name: a\n    api_key: sk_topsecret\ntwilio:\n  - name: t\n    account_sid: {AC}\n    auth_token: fedcba9876543210fedcba9876543210\n"),
        &env(&[]),
    )
    .expect("valid");
    let debug = format!("{c:?}");
    assert!(!debug.contains("sk_topsecret"), "{debug}");
    assert!(
        !debug.contains("fedcba9876543210fedcba9876543210"),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"));
}

#[cfg(unix)]
#[test]
fn world_readable_secret_files_warn_and_strict_refuses() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("credwatch-mode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("key");
    std::fs::write(&file, "sk_filekey\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let yaml = format!(
        "elevenlabs:\n  - name: a\n    api_key_file: {}\n",
        file.display()
    );
    let c = load(&yaml, &env(&[])).expect("a warning, not an error");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.path == "elevenlabs[0].api_key_file" && w.message.contains("every user")),
        "{:?}",
        c.warnings
    );
    let strict = format!("strict: true\n{yaml}");
    let e = load(&strict, &env(&[])).expect_err("strict refuses");
    assert!(
        e.errors.iter().any(|d| d.message.contains("strict: true")),
        "{e}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let c = load(&strict, &env(&[])).expect("0600 is fine");
    assert!(
        !c.warnings.iter().any(|w| w.message.contains("readable by")),
        "{:?}",
        c.warnings
    );
    let _ = std::fs::remove_dir_all(&dir);
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

/// No key of credwatch's is an enum today; the message shape serde gives one
/// is covered anyway, so adding one cannot bring the echo back.
#[test]
fn unknown_enum_values_and_unforeseen_messages_are_not_echoed() {
    let d = super::explain_serde(
        "twilio[0].mode".into(),
        "unknown variant `sk_live_secretvalue123`, expected `token` or `key` at line 3 column 11",
    );
    assert_eq!(d.path, "twilio[0].mode");
    assert!(!d.message.contains("secretvalue"), "{d}");
    assert!(d.message.contains("expected `token` or `key`"), "{d}");
    assert!(d.message.ends_with("at line 3 column 11"), "{d}");
    let d = super::explain_serde(
        String::new(),
        "duplicate entry with key \"sk_live_secretvalue123\" at line 1 column 1",
    );
    assert!(!d.message.contains("secretvalue"), "{d}");
    let d = super::explain_serde(
        "a".into(),
        "invalid value: string \"x, expected y\", expected a boolean",
    );
    assert_eq!(
        d.message,
        "expected `true` or `false`; a string that is not one was found (the value is not shown, in case it is a secret)"
    );
}

#[test]
fn max_phone_numbers_is_at_least_one_and_defaults_to_a_thousand() {
    let item = |extra: &str| {
        format!(
            "elevenlabs:\n  - name: el\n    api_key: sk_{:048}\n    phone_numbers: true\n{extra}",
            0
        )
    };
    let e = errors(&item("    max_phone_numbers: 0\n"));
    has(&e, "elevenlabs[0].max_phone_numbers", "at least 1");
    let c = load(&item(""), &env(&[])).expect("valid");
    let crate::config::Spec::ElevenLabs(el) = &c.credentials[0].spec else {
        panic!("not ElevenLabs");
    };
    assert_eq!(el.max_phone_numbers, 1000);
    let c = load(&item("    max_phone_numbers: 25000\n"), &env(&[])).expect("valid");
    let crate::config::Spec::ElevenLabs(el) = &c.credentials[0].spec else {
        panic!("not ElevenLabs");
    };
    assert_eq!(el.max_phone_numbers, 25000);
}

/// Spellings a URL parser repairs silently are refused, each with its own
/// message (issue #21: `http:127.0.0.1:…` and `\@evil.example` reached
/// loopback with odd request paths). `calibrate --base-url` uses the same
/// check.
#[test]
fn malformed_base_urls_are_refused_not_normalised() {
    const CANONICAL: &str = "is not written the way URL parsers read it (an IP address in another notation, percent-encoding, a default port, `.` or `..` in the path, or non-ASCII); write it plainly, e.g. `https://api.elevenlabs.io` or `http://127.0.0.1:8080`";
    let cases: &[(&str, &str)] = &[
        (
            "http:127.0.0.1:8080",
            "the scheme must be followed by `//`, e.g. `http://127.0.0.1:8080`",
        ),
        (
            "https:/api.elevenlabs.io",
            "the scheme must be followed by `//`, e.g. `https://127.0.0.1:8080`",
        ),
        (
            "http://x\\@evil.example",
            "contains a backslash, which URL parsers read as `/`; write the URL with `/` only, e.g. `https://api.elevenlabs.io`",
        ),
        (
            "https:\\\\api.elevenlabs.io",
            "contains a backslash, which URL parsers read as `/`; write the URL with `/` only, e.g. `https://api.elevenlabs.io`",
        ),
        ("http:///127.0.0.1:8080", "has no host"),
        (
            "http://@127.0.0.1:8080",
            "must not contain credentials; use the credential's secret keys",
        ),
        (
            " http://127.0.0.1:8080",
            "contains whitespace or control characters",
        ),
        (
            "http://127.0.0.1:8080/a\tb",
            "contains whitespace or control characters",
        ),
        ("http://0x7f.1:8080", CANONICAL),
        ("http://2130706433:8080", CANONICAL),
        ("https://api.elevenlabs.io:443", CANONICAL),
        ("http://127.0.0.1:8080/a/../b", CANONICAL),
        ("http://127.0.0.1:8080/{v1}", CANONICAL),
        ("https://bücher.example", CANONICAL),
        (
            "http://127.0.0.1:8080/?",
            "must not have a query or fragment",
        ),
        (
            "http://127.0.0.1:8080#",
            "must not have a query or fragment",
        ),
    ];
    for (url, want) in cases {
        assert_eq!(
            crate::config::check_base_url(url, true).map(|b| b.url),
            Err(want.to_string()),
            "{url:?}"
        );
    }
    // Through the loader: the key path and the message.
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    base_url: \"http:127.0.0.1:8080\"\n",
    );
    has(
        &e,
        "elevenlabs[0].base_url",
        "the scheme must be followed by `//`",
    );
    // What is written plainly passes, as written (case of the host aside).
    for ok in [
        "https://api.elevenlabs.io",
        "https://API.ElevenLabs.io/",
        "http://127.0.0.1:8080",
        "http://[::1]:8080/prefix/v1",
        "http://localhost:9",
    ] {
        assert_eq!(
            crate::config::check_base_url(ok, false).map(|b| b.url),
            Ok(ok.trim_end_matches('/').to_string()),
            "{ok}"
        );
    }
}

/// A rotated `*_file` value goes through the load path again (issue #21,
/// #18): the reader, the mode check under `strict`, and the provider's
/// shape checks. Each refusal names the key path and what is wrong, never
/// the value.
#[cfg(unix)]
#[test]
fn a_rotated_secret_file_is_checked_like_at_load() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "credwatch-reread-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let write = |name: &str, value: &str| {
        let file = dir.join(name);
        let _ = std::fs::remove_file(&file);
        std::fs::write(&file, value).expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        file
    };
    let key = write("el-key", "sk_first_key_value\n");
    let sid = write("tw-sid", AC);
    let token = write("tw-token", TOKEN);
    let yaml = format!(
        "strict: true\nelevenlabs:\n  - name: el\n    api_key_file: {}\ntwilio:\n  - name: tw\n    account_sid_file: {}\n    auth_token_file: {}\n",
        key.display(),
        sid.display(),
        token.display()
    );
    let c = load(&yaml, &env(&[])).expect("valid");
    let (el, tw) = (&c.credentials[0], &c.credentials[1]);
    let reread = |cred: &crate::config::Credential| {
        let at = cred.key_path(&c.credentials).expect("key path");
        cred.reread_files(&at, c.strict)
    };
    let refused = |cred: &crate::config::Credential, path: &str, needle: &str, secret: &str| {
        let e = reread(cred).expect_err("refused");
        let shown = e.to_string();
        assert!(
            e.errors
                .iter()
                .any(|d| d.path == path && d.message.contains(needle)),
            "no `{needle}` at `{path}`: {shown}"
        );
        assert!(!shown.contains(secret), "the value is shown: {shown}");
    };

    // Unchanged: nothing to do.
    assert!(matches!(reread(el), Ok(None)));
    // A good rotation, with the load-time whitespace warning.
    write("el-key", "  sk_second_key_value\n");
    let r = reread(el).expect("readable").expect("changed");
    assert_eq!(r.credential.secret().value.expose(), "sk_second_key_value");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.path == "elevenlabs[0].api_key_file" && w.message.contains("whitespace")),
        "{:?}",
        r.warnings
    );
    // A key ID where the key belongs.
    write("el-key", "AbCdEf0123456789");
    refused(
        el,
        "elevenlabs[0].api_key_file",
        "looks like an API key ID",
        "AbCdEf0123456789",
    );
    // Readable by every user, with `strict: true`.
    let file = write("el-key", "sk_third_key_value");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    refused(
        el,
        "elevenlabs[0].api_key_file",
        "refused because `strict: true`",
        "sk_third_key_value",
    );
    // A FIFO, a directory, /dev/zero behind a symlink, an oversized file.
    std::fs::remove_file(&file).expect("rm");
    let made = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    refused(
        el,
        "elevenlabs[0].api_key_file",
        "not a regular file",
        "sk_",
    );
    std::fs::remove_file(&file).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &file).expect("symlink");
    refused(
        el,
        "elevenlabs[0].api_key_file",
        "not a regular file",
        "sk_",
    );
    std::fs::remove_file(&file).expect("rm");
    std::fs::create_dir(&file).expect("mkdir");
    refused(
        el,
        "elevenlabs[0].api_key_file",
        "not a regular file",
        "sk_",
    );
    std::fs::remove_dir(&file).expect("rmdir");
    write("el-key", &format!("sk_{}", "x".repeat(70_000)));
    refused(el, "elevenlabs[0].api_key_file", "larger than", "xxxx");

    // Twilio: the SID and the token swapped by a rotation.
    write("tw-sid", TOKEN);
    write("tw-token", AC);
    refused(
        tw,
        "twilio[0].account_sid_file",
        "these look swapped",
        TOKEN,
    );
    // An API key SID where the Auth Token belongs.
    write("tw-sid", AC);
    write("tw-token", SK);
    refused(tw, "twilio[0].auth_token_file", "is an API key SID", SK);
    // Empty.
    write("tw-token", "\n");
    refused(tw, "twilio[0].auth_token_file", "is empty", TOKEN);
    // And a good rotation.
    let next = "fedcba9876543210fedcba9876543210";
    write("tw-token", next);
    let r = reread(tw).expect("readable").expect("changed");
    assert_eq!(r.credential.secret().value.expose(), next);
    let _ = std::fs::remove_dir_all(&dir);
}
