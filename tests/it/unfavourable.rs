//! The unfavourable branches of the evidence (issue #9, point 8): each
//! simulator switch that makes upstream answer the awkward way the public
//! record says it may, and credwatch's fail-safe outcome, read from the
//! daemon's `/health` and `/metrics`.

use std::time::Duration;

use credwatch_sim::{
    AccountBlock, AccountStatus, ApiKey, CreditLimitExtension, ElAccount, ElKey, InactiveAnswer,
    KeyKind, SignedUrlMode, Simulator, Subscription, SubscriptionStatus, TwilioAccount, World,
};

use crate::harness::{Daemon, sample};
use crate::support::Item;
use crate::support::{
    FAST_DETAILS, ac_sid, assert_nothing_unclassified, assert_verdict, config, cred, el, el_key,
    sk_sid, tw, tw_api_key, tw_key_secret, tw_token, wait_sample, wait_status, wait_verdict,
};

/// Starts the simulator and a daemon watching ElevenLabs keys (name, key, extra YAML)
/// and Twilio items built from the simulator's URL.
async fn watch(
    world: World,
    head: &str,
    elevenlabs: &[(&str, String, &str)],
    twilio: impl Fn(&str) -> Vec<Item>,
) -> (Simulator, Daemon) {
    let sim = Simulator::start(world).await.expect("simulator");
    let url = sim.elevenlabs_url();
    let items: Vec<Item> = elevenlabs
        .iter()
        .map(|(name, key, extra)| el(name, key, &url, extra))
        .collect();
    let d = Daemon::start(&config(head, &items, &twilio(&sim.twilio_url()))).await;
    (sim, d)
}

fn no_twilio(_: &str) -> Vec<Item> {
    Vec::new()
}

/// `/health`'s status and reason of one credential, once it has a verdict.
async fn status_and_reason(d: &Daemon, name: &str) -> (String, Option<String>) {
    let c = wait_verdict(d, name).await;
    (
        c["status"].as_str().unwrap_or_default().to_string(),
        c["reason"].as_str().map(str::to_string),
    )
}

fn permission(m: &str, name: &str, p: &str) -> Option<f64> {
    sample(
        m,
        "credwatch_permission_granted",
        &[&cred(name), &format!("permission=\"{p}\"")],
    )
}

// ---------------------------------------------------------------------------
// ElevenLabs: agent ids validated (400 `invalid_uid`)
// ---------------------------------------------------------------------------

fn two_keys_world(validate: bool) -> World {
    let mut w = World::default();
    w.elevenlabs.validate_agent_ids = validate;
    w.elevenlabs.add_account(ElAccount::new("ws-ids"));
    w.elevenlabs
        .add_key(el_key("ids-full"), ElKey::new("keyIdsFull", "ws-ids"));
    w.elevenlabs.add_key(
        el_key("ids-no-write"),
        ElKey::new("keyIdsNoWrite", "ws-ids").with_permissions(&["user_read", "convai_read"]),
    );
    w
}

/// When ElevenLabs finds the probe's agent id malformed (an id format
/// credwatch does not know) it answers 400 `invalid_uid` for every key: the
/// probe did not work, so `convai_write` stays unknown for both keys — never
/// "not granted" — the answer is counted as unexpected, and
/// `credwatch_permission_probe_inconclusive` says the probe needs attention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_probe_id_answered_invalid_uid_leaves_the_permission_unknown() {
    let creds = [
        ("ids-full", el_key("ids-full"), ""),
        ("ids-no-write", el_key("ids-no-write"), ""),
    ];
    let mut world = two_keys_world(true);
    world.elevenlabs.signed_url_mode = SignedUrlMode::RejectEveryIdInvalidUid;
    let (sim, d) = watch(world, FAST_DETAILS, &creds, no_twilio).await;
    for (name, _, _) in &creds {
        wait_sample(
            &d,
            Duration::from_secs(20),
            "credwatch_check_errors_total",
            &[
                &cred(name),
                "check=\"permission_convai_write\"",
                "reason=\"unexpected_response\"",
            ],
            |v| v >= 1.0,
        )
        .await;
        let m = d.metrics().await;
        assert_ne!(
            permission(&m, name, "convai_write"),
            Some(0.0),
            "{name}: a probe that did not work must not say `not granted`"
        );
        assert_ne!(
            permission(&m, name, "convai_write"),
            Some(1.0),
            "{name}: nor `granted`"
        );
        assert_eq!(
            sample(
                &m,
                "credwatch_permission_probe_inconclusive",
                &[&cred(name), "permission=\"convai_write\""]
            ),
            Some(1.0),
            "{name}"
        );
        let c = d.credential(name).await;
        assert_eq!(c["valid"], true, "{name}: {c}");
        assert_ne!(c["reason"], "missing_permission", "{name}: {c}");
    }
    let answered_400 = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/convai/conversation/get-signed-url")
        .count();
    assert!(answered_400 >= 2);
}

/// With ids validated, the built-in probe (a well-formed id no agent has)
/// still tells the two keys apart.
/// Expected to pass after the lead's merge (new probe id `agent_` + 28 zeros).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ids_validated_the_built_in_probe_still_discriminates() {
    let creds = [
        ("ids-full", el_key("ids-full"), ""),
        ("ids-no-write", el_key("ids-no-write"), ""),
    ];
    let (_sim, d) = watch(two_keys_world(true), FAST_DETAILS, &creds, no_twilio).await;
    wait_status(&d, "ids-no-write", "unhealthy").await;
    assert_verdict(
        &d,
        "ids-no-write",
        "unhealthy",
        Some("missing_permission"),
        Some(true),
    )
    .await;
    wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_permission_granted",
        &[&cred("ids-full"), "permission=\"convai_write\""],
        |v| v == 1.0,
    )
    .await;
    assert_verdict(&d, "ids-full", "healthy", None, Some(true)).await;
    let m = d.metrics().await;
    assert_nothing_unclassified(&m, "ids-full");
}

// ---------------------------------------------------------------------------
// ElevenLabs: a flagged account whose reads answer 200
// ---------------------------------------------------------------------------

/// No capture shows `/v1/user/subscription` refusing a flagged account; it
/// most likely answers 200 `active`. credwatch then reports what its reads
/// show (valid, healthy, status `active`) and invents nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flagged_account_whose_reads_answer_200_is_reported_from_what_the_reads_show() {
    let mut w = World::default();
    w.elevenlabs.add_account(
        ElAccount::new("ws-flagged")
            .with_block_on_generation_only(AccountBlock::DetectedUnusualActivity),
    );
    w.elevenlabs
        .add_key(el_key("flagged"), ElKey::new("keyFlagged", "ws-flagged"));
    let creds = [("el-flagged", el_key("flagged"), "")];
    let (sim, d) = watch(w, FAST_DETAILS, &creds, no_twilio).await;
    wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_permission_granted",
        &[&cred("el-flagged"), "permission=\"convai_write\""],
        |_| true,
    )
    .await;
    assert_verdict(&d, "el-flagged", "healthy", None, Some(true)).await;
    let m = d.metrics().await;
    assert!(
        sample(
            &m,
            "credwatch_elevenlabs_subscription_info",
            &[&cred("el-flagged"), "status=\"active\""]
        )
        .is_some(),
        "{m}"
    );
    // credwatch did not go looking for the block where it would cost something.
    assert!(sim.forbidden_requests().is_empty());
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.method == "GET" && !r.path.contains("outbound-call"))
    );
}

// ---------------------------------------------------------------------------
// ElevenLabs: subscription status and usage-based billing
// ---------------------------------------------------------------------------

fn account_with(id: &str, subscription: Subscription) -> ElAccount {
    ElAccount::new(id).with_subscription(subscription)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_status_free_disabled_blocks_and_billing_at_risk_does_not() {
    let mut w = World::default();
    for (id, status, open_invoices) in [
        ("ws-free-disabled", SubscriptionStatus::FreeDisabled, false),
        ("ws-past-due", SubscriptionStatus::PastDue, true),
        ("ws-incomplete", SubscriptionStatus::Incomplete, true),
    ] {
        w.elevenlabs.add_account(account_with(
            id,
            Subscription {
                status,
                has_open_invoices: open_invoices,
                ..Subscription::default()
            },
        ));
        w.elevenlabs
            .add_key(el_key(id), ElKey::new(format!("key-{id}"), id));
    }
    let creds = [
        ("el-free-disabled", el_key("ws-free-disabled"), ""),
        ("el-past-due", el_key("ws-past-due"), ""),
        ("el-incomplete", el_key("ws-incomplete"), ""),
    ];
    let (_sim, d) = watch(w, FAST_DETAILS, &creds, no_twilio).await;
    wait_status(&d, "el-free-disabled", "unhealthy").await;
    assert_verdict(
        &d,
        "el-free-disabled",
        "unhealthy",
        Some("account_blocked"),
        Some(true),
    )
    .await;
    for (name, status) in [("el-past-due", "past_due"), ("el-incomplete", "incomplete")] {
        wait_status(&d, name, "healthy").await;
        assert_verdict(&d, name, "healthy", None, Some(true)).await;
        let m = d.metrics().await;
        assert!(
            sample(
                &m,
                "credwatch_elevenlabs_subscription_info",
                &[&cred(name), &format!("status=\"{status}\"")]
            )
            .is_some(),
            "{name}: the billing state is exported\n{m}"
        );
    }
}

fn usage_based(count: u64, extension: CreditLimitExtension) -> Subscription {
    Subscription {
        character_count: count,
        character_limit: 10_000,
        can_extend_character_limit: true,
        allowed_to_extend_character_limit: true,
        max_credit_limit_extension: extension,
        ..Subscription::default()
    }
}

/// Usage-based billing under its ceiling is healthy even above the plan's
/// limit; at `character_limit + max_credit_limit_extension` it is exhausted.
/// The "at cap" half is expected to pass after the lead's merge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_based_billing_is_exhausted_at_its_ceiling_not_at_the_plan_limit() {
    let mut w = World::default();
    for (id, sub) in [
        (
            "ws-ubb-under",
            usage_based(15_000, CreditLimitExtension::Limit(10_000)),
        ),
        (
            "ws-ubb-at-cap",
            usage_based(20_000, CreditLimitExtension::Limit(10_000)),
        ),
        (
            "ws-ubb-unlimited",
            usage_based(244_469, CreditLimitExtension::Unlimited),
        ),
    ] {
        w.elevenlabs.add_account(account_with(id, sub));
        w.elevenlabs
            .add_key(el_key(id), ElKey::new(format!("key-{id}"), id));
    }
    let creds = [
        ("el-ubb-under", el_key("ws-ubb-under"), ""),
        ("el-ubb-at-cap", el_key("ws-ubb-at-cap"), ""),
        ("el-ubb-unlimited", el_key("ws-ubb-unlimited"), ""),
    ];
    let (_sim, d) = watch(w, FAST_DETAILS, &creds, no_twilio).await;
    for (name, used) in [("el-ubb-under", 15_000.0), ("el-ubb-unlimited", 244_469.0)] {
        wait_status(&d, name, "healthy").await;
        assert_verdict(&d, name, "healthy", None, Some(true)).await;
        let m = d.metrics().await;
        assert_eq!(
            sample(&m, "credwatch_elevenlabs_characters_used", &[&cred(name)]),
            Some(used)
        );
    }
    wait_status(&d, "el-ubb-at-cap", "unhealthy").await;
    assert_verdict(
        &d,
        "el-ubb-at-cap",
        "unhealthy",
        Some("quota_exhausted"),
        Some(true),
    )
    .await;
}

// ---------------------------------------------------------------------------
// Twilio: inactive accounts and restricted keys
// ---------------------------------------------------------------------------

/// A suspended account answering 401 20003 to everything looks exactly like
/// a rotated token: credwatch says invalid credentials (the 20003 page lists
/// both causes) and exports no account state it did not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_answering_20003_everywhere_is_invalid_credentials() {
    let sid = ac_sid("suspended-20003");
    let token = tw_token("suspended-20003");
    let mut w = World::default();
    w.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_numbers(&["+15005550007"])
            .inactive(AccountStatus::Suspended, InactiveAnswer::Authenticate20003),
    );
    let (sim, d) = watch(w, FAST_DETAILS, &[], |url| {
        vec![tw("tw-suspended-20003", &sid, &token, url, "")]
    })
    .await;
    wait_verdict(&d, "tw-suspended-20003").await;
    assert_verdict(
        &d,
        "tw-suspended-20003",
        "unhealthy",
        Some("invalid_credentials"),
        Some(false),
    )
    .await;
    let m = d.metrics().await;
    assert_eq!(
        sample(
            &m,
            "credwatch_twilio_account_info",
            &[&cred("tw-suspended-20003")]
        ),
        None
    );
    // An invalid credential is not asked for more than the auth check.
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.path.ends_with("/IncomingPhoneNumbers.json")),
        "{:?}",
        sim.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}

/// 20005 "Account not active", with either HTTP status: account_blocked,
/// classified by the code. Expected to pass after the lead's merge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_not_active_20005_is_account_blocked_whatever_the_status() {
    let mut w = World::default();
    let mut items = Vec::new();
    for status in [401_u16, 403] {
        let tag = format!("not-active-{status}");
        let sid = ac_sid(&tag);
        let token = tw_token(&tag);
        w.twilio
            .add_account(TwilioAccount::new(&sid, &token).inactive(
                AccountStatus::Suspended,
                InactiveAnswer::NotActive20005 {
                    http_status: status,
                },
            ));
        items.push((format!("tw-{tag}"), sid, token));
    }
    let (_sim, d) = watch(w, FAST_DETAILS, &[], |url| {
        items
            .iter()
            .map(|(name, sid, token)| tw(name, sid, token, url, ""))
            .collect()
    })
    .await;
    for (name, _, _) in &items {
        let (status, reason) = status_and_reason(&d, name).await;
        let c = d.credential(name).await;
        assert_eq!(
            (status.as_str(), reason.as_deref()),
            ("unhealthy", Some("account_blocked")),
            "{name}: {c}"
        );
        let m = d.metrics().await;
        assert_eq!(
            sample(
                &m,
                "credwatch_credential_problem_info",
                &[&cred(name), "reason=\"account_blocked\""]
            ),
            Some(1.0),
            "{name}"
        );
    }
}

/// A restricted key without the phone-number read permission gets 403 70051
/// on the auth check: a missing permission, not an invalid credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_key_refused_70051_is_a_missing_permission() {
    let sid = ac_sid("restricted-70051");
    let key_sid = sk_sid("restricted-70051");
    let secret = tw_key_secret("restricted-70051");
    let mut w = World::default();
    w.twilio.add_account(
        TwilioAccount::new(&sid, tw_token("restricted-70051-owner"))
            .with_numbers(&["+15005550008"])
            .with_key(ApiKey::new(
                &key_sid,
                &secret,
                KeyKind::Restricted {
                    can_read_numbers: false,
                    can_read_balance: true,
                },
            )),
    );
    let (_sim, d) = watch(w, FAST_DETAILS, &[], |url| {
        vec![tw_api_key(
            "tw-restricted",
            &sid,
            &key_sid,
            &secret,
            url,
            "",
        )]
    })
    .await;
    let (status, reason) = status_and_reason(&d, "tw-restricted").await;
    assert_eq!(
        (status.as_str(), reason.as_deref()),
        ("unhealthy", Some("missing_permission"))
    );
    let c = d.credential("tw-restricted").await;
    assert_ne!(c["valid"], false, "70051 is not an invalid credential: {c}");
    // The missing permission is named like any other provider's, so the
    // operator sees what to grant and CredwatchPermissionMissing fires.
    assert_eq!(
        c["missing_permissions"],
        serde_json::json!(["incoming_phone_numbers_read"]),
        "{c}"
    );
    assert_eq!(
        c["permissions"],
        serde_json::json!([{"permission": "incoming_phone_numbers_read", "granted": false, "basis": "direct"}]),
        "{c}"
    );
    let m = d.metrics().await;
    let me = cred("tw-restricted");
    assert_ne!(sample(&m, "credwatch_credential_valid", &[&me]), Some(0.0));
    assert_eq!(
        sample(
            &m,
            "credwatch_permission_granted",
            &[
                &me,
                "provider=\"twilio\"",
                "permission=\"incoming_phone_numbers_read\""
            ]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "credwatch_permission_basis_info",
            &[
                &me,
                "permission=\"incoming_phone_numbers_read\"",
                "basis=\"direct\""
            ]
        ),
        Some(1.0)
    );
}
