//! Small helpers shared by the scenario modules: fake secrets in the real
//! formats (each one registered, so the leak test can look for all of them),
//! config files built as YAML values ([`yaml`]), and polling helpers (no
//! fixed sleep is ever an assertion).
#![allow(dead_code)]

pub mod yaml;
pub use yaml::{Doc, Item};

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::harness::{Daemon, sample};

/// Every secret a scenario configured, for the leak test.
pub fn registered_secrets() -> Vec<String> {
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

static REGISTRY: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

pub fn register(secret: &str) {
    let mut r = REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !r.iter().any(|s| s == secret) {
        r.push(secret.to_string());
    }
}

fn hex_of(seed: &str) -> String {
    hex::encode(Sha256::digest(seed.as_bytes()))
}

/// A fake ElevenLabs API key (`sk_` + 48 hex), registered.
pub fn el_key(tag: &str) -> String {
    let k = format!("sk_it{}", &hex_of(&format!("el-key:{tag}"))[..46]);
    register(&k);
    k
}

/// A Twilio Account SID (`AC` + 32 hex); not a secret.
pub fn ac_sid(tag: &str) -> String {
    credwatch_sim::twilio::sid_from("AC", &format!("account:{tag}"))
}

/// A Twilio API key SID (`SK` + 32 hex); not a secret.
pub fn sk_sid(tag: &str) -> String {
    credwatch_sim::twilio::sid_from("SK", &format!("key:{tag}"))
}

/// A Twilio Auth Token (32 hex), registered.
pub fn tw_token(tag: &str) -> String {
    let t = hex_of(&format!("token:{tag}"))[..32].to_string();
    register(&t);
    t
}

/// A Twilio API key secret (32 mixed-case alphanumerics), registered.
pub fn tw_key_secret(tag: &str) -> String {
    let h = hex_of(&format!("key-secret:{tag}"));
    let s: String = h[..32]
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 3 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .map(|c| {
            if c.is_ascii_digit() && c > '6' {
                'Q'
            } else {
                c
            }
        })
        .collect();
    register(&s);
    s
}

/// `defaults:` for fast scenarios: checks every second, 500 ms timeout.
pub const FAST: &str = "defaults:\n  interval: 1s\n  timeout: 500ms\n";
/// Like [`FAST`], with the detail checks (permissions, account, balance, full lists) every second too.
pub const FAST_DETAILS: &str =
    "defaults:\n  interval: 1s\n  timeout: 500ms\n  detail_interval: 1s\n";

/// One `elevenlabs:` list item. `extra` is more `key: value` lines (at any
/// indentation), set on the item.
pub fn el(name: &str, key: &str, base_url: &str, extra: &str) -> Item {
    Item::new(serde_json::json!({"name": name, "api_key": key, "base_url": base_url}))
        .with_lines(extra)
}

/// One `twilio:` item with an Auth Token.
pub fn tw(name: &str, sid: &str, token: &str, base_url: &str, extra: &str) -> Item {
    Item::new(serde_json::json!({
        "name": name, "account_sid": sid, "auth_token": token, "base_url": base_url,
    }))
    .with_lines(extra)
}

/// One `twilio:` item with an API key.
pub fn tw_api_key(
    name: &str,
    sid: &str,
    key_sid: &str,
    secret: &str,
    base_url: &str,
    extra: &str,
) -> Item {
    Item::new(serde_json::json!({
        "name": name, "account_sid": sid, "api_key_sid": key_sid,
        "api_key_secret": secret, "base_url": base_url,
    }))
    .with_lines(extra)
}

/// A whole config file: the top-level keys of `head` (e.g. [`FAST`]) and
/// the two sections, as one YAML value rendered once.
pub fn config(head: &str, elevenlabs: &[Item], twilio: &[Item]) -> String {
    Doc::new()
        .with_lines(head)
        .extend("elevenlabs", elevenlabs.iter().cloned())
        .extend("twilio", twilio.iter().cloned())
        .render()
}

/// The label matcher of one credential, for [`sample`].
pub fn cred(name: &str) -> String {
    format!("credential=\"{name}\"")
}

/// Polls `f` (real time, every 50 ms) until it returns `Some`, or panics
/// with `what` and the last observation.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out after {within:?} waiting for {what}; last seen: {last}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the sample `name{needles}` exists and satisfies `pred`; returns its value.
pub async fn wait_sample(
    d: &Daemon,
    within: Duration,
    name: &str,
    needles: &[&str],
    pred: impl Fn(f64) -> bool,
) -> f64 {
    eventually(within, &format!("{name}{needles:?}"), || async {
        let m = d.metrics().await;
        match sample(&m, name, needles) {
            Some(v) if pred(v) => Ok(v),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Waits until credential `name` is no longer pending (its first verdict).
pub async fn wait_verdict(d: &Daemon, name: &str) -> serde_json::Value {
    d.wait_for(name, Duration::from_secs(20), |c| c["status"] != "pending")
        .await
}

/// Waits until credential `name` has `status`.
pub async fn wait_status(d: &Daemon, name: &str, status: &str) -> serde_json::Value {
    d.wait_for(name, Duration::from_secs(20), |c| c["status"] == status)
        .await
}

/// Every sample line of one credential, for failure messages.
pub fn lines_of(metrics: &str, name: &str) -> String {
    let needle = cred(name);
    metrics
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&needle))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts what `/health` and `/metrics` say about a credential with a verdict:
/// `status` (`healthy`/`unhealthy`), `reason` and `valid`, consistently in both.
pub async fn assert_verdict(
    d: &Daemon,
    name: &str,
    status: &str,
    reason: Option<&str>,
    valid: Option<bool>,
) {
    let c = d.credential(name).await;
    assert_eq!(c["status"], status, "{name} /health: {c}");
    assert_eq!(c["reason"].as_str(), reason, "{name} /health: {c}");
    assert_eq!(c["valid"].as_bool(), valid, "{name} /health: {c}");
    assert_eq!(c["healthy"], status == "healthy", "{name} /health: {c}");
    let (code, one) = d.get(&format!("/health?credential={name}")).await;
    assert_eq!(
        code,
        if status == "healthy" { 200 } else { 503 },
        "{name}: {one}"
    );
    let m = d.metrics().await;
    let me = cred(name);
    let all = lines_of(&m, name);
    assert_eq!(
        sample(&m, "credwatch_credential_valid", &[&me]),
        valid.map(|v| if v { 1.0 } else { 0.0 }),
        "{name} metrics:\n{all}"
    );
    assert_eq!(
        sample(&m, "credwatch_credential_healthy", &[&me]),
        Some(if status == "healthy" { 1.0 } else { 0.0 }),
        "{name} metrics:\n{all}"
    );
    match reason {
        Some(r) => assert_eq!(
            sample(
                &m,
                "credwatch_credential_problem_info",
                &[&me, &format!("reason=\"{r}\"")]
            ),
            Some(1.0),
            "{name} metrics:\n{all}"
        ),
        None => assert_eq!(
            sample(&m, "credwatch_credential_problem_info", &[&me]),
            None,
            "{name} metrics:\n{all}"
        ),
    }
}

/// Asserts that `credwatch_check_errors_total` counted at least one error
/// with `reason` from the `check` check of credential `name`.
pub fn assert_error_counted(metrics: &str, name: &str, check: &str, reason: &str) {
    let (me, check_label, reason_label) = (
        cred(name),
        format!("check=\"{check}\""),
        format!("reason=\"{reason}\""),
    );
    assert!(
        sample(
            metrics,
            "credwatch_check_errors_total",
            &[&me, &check_label, &reason_label]
        )
        .is_some_and(|v| v >= 1.0),
        "{name}: no {reason} error counted for the {check} check:\n{}",
        lines_of(metrics, name)
    );
}

/// [`assert_verdict`] for the only credential a daemon watches, found
/// unhealthy for `reason`: `/health` as a whole answers 503 as well. Returns
/// `/metrics`, for the scenario's own assertions.
pub async fn assert_only_credential_unhealthy(
    d: &Daemon,
    name: &str,
    reason: &str,
    valid: bool,
) -> String {
    assert_verdict(d, name, "unhealthy", Some(reason), Some(valid)).await;
    assert_eq!(d.health().await.0, 503, "{name} is the only credential");
    d.metrics().await
}

/// Asserts that no check counted an `unexpected_response` error: every
/// answer was classified.
pub fn assert_nothing_unclassified(metrics: &str, context: &str) {
    assert_eq!(
        sample(
            metrics,
            "credwatch_check_errors_total",
            &["reason=\"unexpected_response\""]
        ),
        None,
        "{context}: an answer was left unclassified:\n{metrics}"
    );
}

/// Runs `command` under a pseudo-terminal (`script`), so its stdout is a
/// TTY, with `NO_COLOR` unset or set to `no_color` and `env` added; returns
/// what it wrote.
pub async fn on_a_tty(command: String, env: &[(&str, &str)], no_color: Option<&str>) -> String {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let no_color = no_color.map(str::to_string);
    let out = tokio::task::spawn_blocking(move || {
        let mut c = std::process::Command::new("script");
        c.args(["-qefc", &command, "/dev/null"])
            .env_remove("NO_COLOR")
            .envs(env);
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        c.output().expect("script(1) runs")
    })
    .await
    .expect("join");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
