//! Secrets in the config: their sources and files, trimming, never
//! echoed in a message or `Debug`, a rotated file checked like at load.

use super::*;

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

/// No key of credwatch's is an enum today; the message shape serde gives one
/// is covered anyway, so adding one cannot bring the echo back.
#[test]
fn unknown_enum_values_and_unforeseen_messages_are_not_echoed() {
    let d = super::super::explain_serde(
        "twilio[0].mode".into(),
        "unknown variant `sk_live_secretvalue123`, expected `token` or `key` at line 3 column 11",
    );
    assert_eq!(d.path, "twilio[0].mode");
    assert!(!d.message.contains("secretvalue"), "{d}");
    assert!(d.message.contains("expected `token` or `key`"), "{d}");
    assert!(d.message.ends_with("at line 3 column 11"), "{d}");
    let d = super::super::explain_serde(
        String::new(),
        "duplicate entry with key \"sk_live_secretvalue123\" at line 1 column 1",
    );
    assert!(!d.message.contains("secretvalue"), "{d}");
    let d = super::super::explain_serde(
        "a".into(),
        "invalid value: string \"x, expected y\", expected a boolean",
    );
    assert_eq!(
        d.message,
        "expected `true` or `false`; a string that is not one was found (the value is not shown, in case it is a secret)"
    );
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
