//! ElevenLabs scenarios: every kind of key ends in its documented verdict,
//! in `/health` and in `/metrics`, through every error envelope ElevenLabs
//! is known to send.

use std::time::{Duration, Instant};

use credwatch_sim::{
    AccountBlock, CreditLimitExtension, ElAccount, ElKey, ErrorFormat, PermissionErrorForm,
    Simulator, Subscription, World,
};

use crate::harness::{Daemon, sample};
use crate::support::Item;
use crate::support::{
    FAST_DETAILS, assert_error_counted, assert_nothing_unclassified,
    assert_only_credential_unhealthy, assert_verdict, config, cred, el, el_key, wait_status,
    wait_verdict,
};

/// A key ID that starts with `sk_`, so credwatch's config check (which refuses
/// plain key IDs) lets it through and ElevenLabs itself must say what it is.
const KEY_ID_LIKE_A_KEY: &str = "sk_itkeyid_0123456789abcdef0123456789abcdef0123";

fn exhausted() -> Subscription {
    Subscription {
        tier: "starter".into(),
        character_count: 30_000,
        character_limit: 30_000,
        can_extend_character_limit: false,
        allowed_to_extend_character_limit: false,
        max_credit_limit_extension: CreditLimitExtension::Limit(0),
        max_character_limit_extension: Some(0),
        ..Subscription::default()
    }
}

/// `credwatch_permission_granted{permission="convai_write"}` of the
/// credential matched by `me` (see [`cred`]).
fn convai_write_granted(m: &str, me: &str) -> Option<f64> {
    sample(
        m,
        "credwatch_permission_granted",
        &[me, "permission=\"convai_write\""],
    )
}

/// One workspace per state, one key per kind.
fn world() -> World {
    let mut w = World::default();
    let el = &mut w.elevenlabs;
    el.add_account(ElAccount::new("ws-main"));
    el.add_account(ElAccount::new("ws-exhausted").with_subscription(exhausted()));
    el.add_account(ElAccount::new("ws-unusual").with_block(AccountBlock::DetectedUnusualActivity));
    el.add_account(ElAccount::new("ws-payment-issue").with_block(AccountBlock::PaymentIssue));
    el.add_account(ElAccount::new("ws-payment-required").with_block(AccountBlock::PaymentRequired));
    el.add_key(el_key("full"), ElKey::new("keyItFull", "ws-main"));
    el.add_key(
        el_key("no-convai-write"),
        ElKey::new("keyItNoWrite", "ws-main").with_permissions(&["user_read", "convai_read"]),
    );
    el.add_key(
        el_key("restricted"),
        ElKey::new("keyItRestricted", "ws-main").with_permissions(&["convai_write", "convai_read"]),
    );
    el.add_key(
        el_key("exhausted"),
        ElKey::new("keyItExhausted", "ws-exhausted"),
    );
    el.add_key(el_key("unusual"), ElKey::new("keyItUnusual", "ws-unusual"));
    el.add_key(
        el_key("payment-issue"),
        ElKey::new("keyItPaymentIssue", "ws-payment-issue"),
    );
    el.add_key(
        el_key("payment-required"),
        ElKey::new("keyItPaymentRequired", "ws-payment-required"),
    );
    el.add_key(
        el_key("owner-of-id"),
        ElKey::new(KEY_ID_LIKE_A_KEY, "ws-main"),
    );
    w
}

/// Starts the simulator on `world` and a daemon watching `creds` (name, key, extra YAML).
async fn watch(world: World, creds: &[(&str, String, &str)]) -> (Simulator, Daemon) {
    let sim = Simulator::start(world).await.expect("simulator");
    let url = sim.elevenlabs_url();
    let items: Vec<Item> = creds
        .iter()
        .map(|(name, key, extra)| el(name, key, &url, extra))
        .collect();
    let d = Daemon::start(&config(FAST_DETAILS, &items, &[])).await;
    for (name, _, _) in creds {
        wait_verdict(&d, name).await;
    }
    (sim, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_convai_write_is_healthy_and_exports_its_quota() {
    let (_sim, d) = watch(world(), &[("el-full", el_key("full"), "")]).await;
    assert_verdict(&d, "el-full", "healthy", None, Some(true)).await;
    let (code, health) = d.health().await;
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["status"], "ok");

    let m = d.metrics().await;
    let me = cred("el-full");
    assert_eq!(convai_write_granted(&m, &me), Some(1.0));
    assert_eq!(
        sample(&m, "credwatch_elevenlabs_characters_used", &[&me]),
        Some(1000.0)
    );
    assert_eq!(
        sample(&m, "credwatch_elevenlabs_characters_limit", &[&me]),
        Some(10000.0)
    );
    assert!(
        sample(
            &m,
            "credwatch_elevenlabs_subscription_info",
            &[&me, "tier=\"starter\"", "status=\"active\""]
        )
        .is_some()
    );
    assert_eq!(
        sample(
            &m,
            "credwatch_check_success",
            &[&me, "check=\"subscription\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "credwatch_check_success",
            &[&me, "check=\"permission_convai_write\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "credwatch_check_errors_total", &[&me]),
        None,
        "a healthy key has no error series"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_convai_write_is_valid_but_misses_the_permission() {
    let (_sim, d) = watch(world(), &[("el-no-write", el_key("no-convai-write"), "")]).await;
    // The permission probe runs after the subscription: wait for it to answer.
    let c = wait_status(&d, "el-no-write", "unhealthy").await;
    assert_eq!(
        c["missing_permissions"],
        serde_json::json!(["convai_write"])
    );
    let m = assert_only_credential_unhealthy(&d, "el-no-write", "missing_permission", true).await;
    let me = cred("el-no-write");
    assert_eq!(convai_write_granted(&m, &me), Some(0.0));
    assert_error_counted(
        &m,
        "el-no-write",
        "permission_convai_write",
        "missing_permission",
    );
    // The quota is still readable (user_read is granted).
    assert_eq!(
        sample(&m, "credwatch_elevenlabs_characters_used", &[&me]),
        Some(1000.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_is_invalid_credentials() {
    let (_sim, d) = watch(world(), &[("el-invalid", el_key("never-issued"), "")]).await;
    let m = assert_only_credential_unhealthy(&d, "el-invalid", "invalid_credentials", false).await;
    let me = cred("el-invalid");
    // A definitive answer: the check succeeded in getting one, and it counts as an error.
    assert_eq!(
        sample(
            &m,
            "credwatch_check_success",
            &[&me, "check=\"subscription\""]
        ),
        Some(1.0)
    );
    assert_error_counted(&m, "el-invalid", "subscription", "invalid_credentials");
    assert_eq!(
        sample(&m, "credwatch_elevenlabs_characters_used", &[&me]),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_key_without_user_read_is_valid_and_has_no_quota_series() {
    let (_sim, d) = watch(world(), &[("el-restricted", el_key("restricted"), "")]).await;
    let c = wait_status(&d, "el-restricted", "healthy").await;
    assert_eq!(c["check_error"], serde_json::Value::Null, "{c}");
    assert_verdict(&d, "el-restricted", "healthy", None, Some(true)).await;
    let m = d.metrics().await;
    let me = cred("el-restricted");
    for family in [
        "credwatch_elevenlabs_characters_used",
        "credwatch_elevenlabs_characters_limit",
        "credwatch_elevenlabs_characters_reset_timestamp_seconds",
        "credwatch_elevenlabs_subscription_info",
    ] {
        assert_eq!(
            sample(&m, family, &[&me]),
            None,
            "{family} must be absent, not 0"
        );
    }
    assert_eq!(convai_write_granted(&m, &me), Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_quota_is_unhealthy_with_the_counters_exported() {
    let (_sim, d) = watch(world(), &[("el-exhausted", el_key("exhausted"), "")]).await;
    assert_verdict(
        &d,
        "el-exhausted",
        "unhealthy",
        Some("quota_exhausted"),
        Some(true),
    )
    .await;
    let m = d.metrics().await;
    let me = cred("el-exhausted");
    assert_eq!(
        sample(&m, "credwatch_elevenlabs_characters_used", &[&me]),
        Some(30000.0)
    );
    assert_eq!(
        sample(&m, "credwatch_elevenlabs_characters_limit", &[&me]),
        Some(30000.0)
    );
    assert_error_counted(&m, "el-exhausted", "subscription", "quota_exhausted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_accounts_are_account_blocked_whatever_the_block() {
    let creds = [
        ("el-unusual-activity", el_key("unusual"), ""),
        ("el-payment-issue", el_key("payment-issue"), ""),
    ];
    let (_sim, d) = watch(world(), &creds).await;
    for (name, _, _) in &creds {
        assert_verdict(&d, name, "unhealthy", Some("account_blocked"), Some(true)).await;
        let m = d.metrics().await;
        assert!(
            sample(
                &m,
                "credwatch_check_errors_total",
                &[&cred(name), "reason=\"account_blocked\""]
            )
            .is_some_and(|v| v >= 1.0),
            "{name}"
        );
    }
}

/// `payment_required` restricts one feature ("Free users cannot use library
/// voices via the API"), and `needs_authorization` means the key header never
/// arrived: neither is a verdict on the key or the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_required_is_not_a_blocked_account() {
    let sim = Simulator::start(world()).await.expect("simulator");
    let items = [el(
        "el-payment-required",
        &el_key("payment-required"),
        &sim.elevenlabs_url(),
        "",
    )];
    let d = Daemon::start(&config(FAST_DETAILS, &items, &[])).await;
    let c = d
        .wait_for("el-payment-required", Duration::from_secs(20), |c| {
            c["check_error"] == "unexpected_response"
        })
        .await;
    assert_eq!(c["status"], "pending", "{c}");
    assert_eq!(c["valid"], serde_json::Value::Null, "{c}");
    let m = d.metrics().await;
    assert_eq!(
        sample(
            &m,
            "credwatch_credential_problem_info",
            &[&cred("el-payment-required")]
        ),
        None,
        "{m}"
    );
}

/// Each error envelope of elevenlabs-api.md §2, end to end: the same keys
/// reach the same verdicts whichever envelope the server uses.
async fn envelope_scenario(format: ErrorFormat, permission_form: PermissionErrorForm) {
    let mut w = world();
    w.elevenlabs.error_format = format;
    w.elevenlabs.permission_error = permission_form;
    let creds = [
        ("invalid", el_key("never-issued"), ""),
        ("no-write", el_key("no-convai-write"), ""),
        ("restricted", el_key("restricted"), ""),
        ("payment-issue", el_key("payment-issue"), ""),
        ("key-id", KEY_ID_LIKE_A_KEY.to_string(), ""),
    ];
    let (_sim, d) = watch(w, &creds).await;
    let ctx = format!("{format:?}/{permission_form:?}");
    for (name, status, reason, valid) in [
        ("invalid", "unhealthy", Some("invalid_credentials"), false),
        ("no-write", "unhealthy", Some("missing_permission"), true),
        ("restricted", "healthy", None, true),
        ("payment-issue", "unhealthy", Some("account_blocked"), true),
        ("key-id", "unhealthy", Some("invalid_credentials"), false),
    ] {
        let c = wait_status(&d, name, status).await;
        assert_eq!(c["reason"].as_str(), reason, "{ctx} {name}: {c}");
        assert_verdict(&d, name, status, reason, Some(valid)).await;
    }
    let m = d.metrics().await;
    // Nothing was left unclassified.
    assert_nothing_unclassified(&m, &ctx);
    assert_eq!(
        sample(
            &m,
            "credwatch_elevenlabs_characters_used",
            &[&cred("restricted")]
        ),
        None,
        "{ctx}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_envelope_reaches_the_documented_verdicts() {
    envelope_scenario(ErrorFormat::Legacy, PermissionErrorForm::Unauthorized401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_wrapped_envelope_reaches_the_documented_verdicts() {
    envelope_scenario(
        ErrorFormat::NewWrapped,
        PermissionErrorForm::Unauthorized401,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_top_level_envelope_reaches_the_documented_verdicts() {
    envelope_scenario(
        ErrorFormat::NewTopLevel,
        PermissionErrorForm::Unauthorized401,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_403_insufficient_permissions_form_is_a_missing_permission() {
    envelope_scenario(ErrorFormat::Legacy, PermissionErrorForm::Forbidden403).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_id_used_as_the_key_is_invalid_credentials_upstream_and_refused_at_load() {
    // Upstream: 400 `api_key_id_used_as_api_key` (top-level body) → invalid.
    let (sim, d) = watch(world(), &[("el-key-id", KEY_ID_LIKE_A_KEY.to_string(), "")]).await;
    assert_verdict(
        &d,
        "el-key-id",
        "unhealthy",
        Some("invalid_credentials"),
        Some(false),
    )
    .await;
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.header("xi-api-key") == Some(KEY_ID_LIKE_A_KEY)),
        "the key ID was sent"
    );
    // A key ID in its usual form never leaves the machine: the config is refused.
    let yaml = config(
        FAST_DETAILS,
        &[el("el-key-id", "keyItFull", "http://127.0.0.1:9", "")],
        &[],
    );
    let err = credwatch::config::Config::from_yaml(
        &yaml,
        std::path::Path::new("/etc/credwatch/ids.yaml"),
        &std::collections::HashMap::<String, String>::new(),
    )
    .expect_err("a key ID is refused");
    let text = err.to_string();
    assert!(text.contains("elevenlabs[0].api_key"), "{text}");
    assert!(text.contains("api_key_id_used_as_api_key"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_upstream_flips_health_to_503_within_one_interval() {
    let key = el_key("to-be-revoked");
    let mut w = world();
    w.elevenlabs
        .add_key(key.clone(), ElKey::new("keyItToBeRevoked", "ws-main"));
    let (sim, d) = watch(w, &[("el-revoked-live", key.clone(), "")]).await;
    wait_status(&d, "el-revoked-live", "healthy").await;
    assert_eq!(d.health().await.0, 200);

    sim.update(|w| {
        w.elevenlabs.revoke_key(&key);
    });
    let revoked = Instant::now();
    // interval 1s + timeout 500ms + slack for a loaded machine.
    let bound = Duration::from_millis(1000 + 500 + 2000);
    let c = d
        .wait_for("el-revoked-live", bound, |c| c["status"] == "unhealthy")
        .await;
    let took = revoked.elapsed();
    assert!(took <= bound, "took {took:?}");
    assert_eq!(c["reason"], "invalid_credentials", "{c}");
    let (code, health) = d.health().await;
    assert_eq!(code, 503, "{health}");
    assert_eq!(health["status"], "fail");
    assert_verdict(
        &d,
        "el-revoked-live",
        "unhealthy",
        Some("invalid_credentials"),
        Some(false),
    )
    .await;
}

/// A permission probe that gets an answer it cannot read (here a configured
/// probe whose agent does not exist) leaves that permission unknown, says
/// the probe needs `credwatch calibrate` (log line and metric), and does
/// not cancel the credential's other checks: the phone-number check still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inconclusive_probe_is_unknown_and_does_not_cancel_the_cycle() {
    let sim = Simulator::start(world()).await.expect("simulator");
    let yaml = crate::support::Doc::new()
        .with_lines(FAST_DETAILS)
        .set(
            "permission_probes",
            serde_json::json!({"workspace_read": {
                "path": "/v1/convai/agents/agent_0000000000000000000000000000",
                "granted": [{"status": 200}],
                "not_granted": [{"status": 401, "code": "missing_permissions"}],
            }}),
        )
        .push(
            "elevenlabs",
            el("el-odd-probe", &el_key("full"), &sim.elevenlabs_url(), "")
                .set("required_permissions", ["workspace_read", "convai_write"])
                .set("phone_numbers", true),
        );
    let d = Daemon::start(&yaml.render()).await;
    let me = cred("el-odd-probe");
    crate::support::wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_check_success",
        &[&me, "check=\"phone_numbers\""],
        |_| true,
    )
    .await;
    let m = d.metrics().await;
    assert_eq!(
        sample(
            &m,
            "credwatch_permission_probe_inconclusive",
            &[&me, "permission=\"workspace_read\""]
        ),
        Some(1.0),
        "{m}"
    );
    // Never granted, never missing.
    assert_eq!(
        sample(
            &m,
            "credwatch_permission_granted",
            &[&me, "permission=\"workspace_read\""]
        ),
        None
    );
    // The other permission and the phone-number check still ran.
    assert_eq!(
        sample(
            &m,
            "credwatch_permission_probe_inconclusive",
            &[&me, "permission=\"convai_write\""]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "credwatch_check_success",
            &[&me, "check=\"phone_numbers\""]
        ),
        Some(1.0),
        "{m}"
    );
    assert_error_counted(
        &m,
        "el-odd-probe",
        "permission_workspace_read",
        "unexpected_response",
    );
    let c = d.credential("el-odd-probe").await;
    assert_eq!(c["status"], "pending", "{c}");
    assert!(
        crate::harness::logs().contains("credwatch calibrate"),
        "the log names the fix"
    );
}
