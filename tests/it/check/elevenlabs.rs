//! `check` on ElevenLabs keys: every cause explained, a secret with a
//! trailing newline, answers that are no verdict.

use super::*;

/// A key ID that starts with `sk_`: the config check lets it through, and
/// ElevenLabs itself answers 400 `api_key_id_used_as_api_key`.
const KEY_ID_LIKE_A_KEY: &str = "sk_chkkeyid_0123456789abcdef0123456789abcdef012";
/// A key ID as the dashboard shows it: refused at config load.
const PLAIN_KEY_ID: &str = "keyChkAgentProd00001";

/// When the exhausted workspace's quota resets: fixed, so the report's
/// date is a literal (2100-01-01T00:00:00Z).
pub(super) const RESET_AT: i64 = 4_102_444_800;

pub(super) fn el_world() -> World {
    let mut w = World::default();
    let el = &mut w.elevenlabs;
    el.add_account(ElAccount::new("ws-main"));
    el.add_account(
        ElAccount::new("ws-exhausted").with_subscription(Subscription {
            tier: "starter".into(),
            character_count: 30_000,
            character_limit: 30_000,
            next_character_count_reset_unix: Some(RESET_AT),
            can_extend_character_limit: false,
            allowed_to_extend_character_limit: false,
            max_credit_limit_extension: CreditLimitExtension::Limit(0),
            max_character_limit_extension: Some(0),
            ..Subscription::default()
        }),
    );
    el.add_account(ElAccount::new("ws-unusual").with_block(AccountBlock::DetectedUnusualActivity));
    el.add_account(ElAccount::new("ws-payment-issue").with_block(AccountBlock::PaymentIssue));
    el.add_account(ElAccount::new("ws-payment-required").with_block(AccountBlock::PaymentRequired));
    el.add_key(el_key("chk-full"), ElKey::new(PLAIN_KEY_ID, "ws-main"));
    el.add_key(
        el_key("chk-no-write"),
        ElKey::new("keyChkNoWrite", "ws-main").with_permissions(&["user_read", "convai_read"]),
    );
    el.add_key(
        el_key("chk-restricted"),
        ElKey::new("keyChkRestricted", "ws-main")
            .with_permissions(&["convai_write", "convai_read"]),
    );
    el.add_key(
        el_key("chk-exhausted"),
        ElKey::new("keyChkExhausted", "ws-exhausted"),
    );
    el.add_key(
        el_key("chk-unusual"),
        ElKey::new("keyChkUnusual", "ws-unusual"),
    );
    el.add_key(
        el_key("chk-payment-issue"),
        ElKey::new("keyChkPaymentIssue", "ws-payment-issue"),
    );
    el.add_key(
        el_key("chk-payment-required"),
        ElKey::new("keyChkPaymentRequired", "ws-payment-required"),
    );
    el.add_key(
        el_key("chk-owner-of-id"),
        ElKey::new(KEY_ID_LIKE_A_KEY, "ws-main"),
    );
    w
}

const SUBSCRIPTION: &str = "GET /v1/user/subscription";
const SIGNED_URL: &str =
    "GET /v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_causes_are_explained() {
    let mut s = Scenario::start(el_world()).await;
    let url = s.el_url();
    let mut yaml = Doc::new();
    for (name, key) in [
        ("el-invalid", el_key("chk-unknown")),
        ("el-no-write", el_key("chk-no-write")),
        ("el-restricted", el_key("chk-restricted")),
        ("el-key-id", KEY_ID_LIKE_A_KEY.to_string()),
        ("el-exhausted", el_key("chk-exhausted")),
        ("el-unusual", el_key("chk-unusual")),
        ("el-payment-issue", el_key("chk-payment-issue")),
        ("el-payment-required", el_key("chk-payment-required")),
    ] {
        yaml = yaml.push("elevenlabs", el_item(name, &s.secret(&key), &url, ""));
    }
    s.secret(&el_key("chk-owner-of-id"));
    s.write(&yaml.render());
    let cases = [
        Case {
            credential: "el-invalid",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "0e13ed9dc469",
            finding: "invalid_api_key",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(401),
            upstream_code: Some("invalid_api_key"),
            request_id: Some(""),
            fix: &["Settings → API Keys", "xi-api-key"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-invalid (elevenlabs): invalid_credentials\n",
                "    ✗ ElevenLabs does not accept this API key (401 invalid_api_key).\n",
                "      evidence: GET /v1/user/subscription → HTTP 401, code invalid_api_key, request id …\n",
                "      fix: The key was deleted, regenerated or mistyped. Create a key in ElevenLabs → Settings → API Keys (enable Conversational AI write access if it places calls) and put it in the config file. Applications must send it in the `xi-api-key` header — `Authorization: Bearer` with an API key gets 401 too. (evidence: docs/upstream-evidence.md#elevenlabs-invalid-api-key)\n",
                "      (fingerprint 0e13ed9dc469)\n",
            )
            .into(),
        },
        Case {
            credential: "el-no-write",
            exit: 1,
            verdict: ("unhealthy", Some("missing_permission"), Some(true)),
            fingerprint: "9401a0847bc2",
            finding: "permission_missing",
            severity: "error",
            check: "permission_convai_write",
            request: SIGNED_URL.into(),
            http_status: Some(401),
            upstream_code: Some("missing_permissions"),
            request_id: Some(""),
            fix: &["Conversational AI → Write", "Settings → API Keys", "401"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-no-write (elevenlabs): missing_permission\n",
                "    ✗ This key lacks `convai_write`.\n",
                "      evidence: GET /v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000 → HTTP 401, code missing_permissions, permission convai_write, request id …\n",
                "      fix: Create a key with Conversational AI → Write (\"ElevenLabs Agents: Write\") in ElevenLabs → Settings → API Keys, or edit this key's permissions there, then put it in the config file. Without it, outbound calls fail with 401 and signed URLs cannot be issued. (evidence: docs/upstream-evidence.md#elevenlabs-missing-permissions)\n",
                "      (user_read granted (inferred); 1000 of 10000 characters used (5% of the ceiling of 20000 with usage-based billing), resets 2025-01-31T20:54:18Z; fingerprint 9401a0847bc2)\n",
            )
            .into(),
        },
        Case {
            credential: "el-restricted",
            exit: 0,
            verdict: ("healthy", None, Some(true)),
            fingerprint: "8054fac39d02",
            finding: "permission_missing",
            severity: "info",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(401),
            upstream_code: Some("missing_permissions"),
            request_id: Some(""),
            fix: &["User → Read"],
            text: concat!(
                "credwatch check: 1 credential(s), 1 ok, 0 with problems, 0 warning(s)\n",
                "\n",
                "✓ el-restricted (elevenlabs): healthy — convai_write granted (inferred); fingerprint 8054fac39d02 — note: This key lacks `user_read`. It is not required here, so the related data is unavailable.\n",
            )
            .into(),
        },
        Case {
            credential: "el-key-id",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "56ef75577178",
            finding: "key_id_used_as_key",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(400),
            upstream_code: Some("invalid_api_key"),
            request_id: Some(""),
            fix: &["sk_", "Settings → API Keys", "the config file"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-key-id (elevenlabs): invalid_credentials\n",
                "    ✗ This is an API key ID, not the key (400 api_key_id_used_as_api_key).\n",
                "      evidence: GET /v1/user/subscription → HTTP 400, code invalid_api_key, request id …\n",
                "      fix: The ID shown next to a key in the dashboard cannot authenticate. Use the secret value shown once when the key was created (it starts with `sk_`); if it is lost, create a new key in ElevenLabs → Settings → API Keys. Put it in the config file. (evidence: docs/upstream-evidence.md#elevenlabs-key-id-used-as-key)\n",
                "      (fingerprint 56ef75577178)\n",
            )
            .into(),
        },
        Case {
            credential: "el-exhausted",
            exit: 1,
            verdict: ("unhealthy", Some("quota_exhausted"), Some(true)),
            fingerprint: "5f1b722ae2ac",
            finding: "quota_exhausted",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(200),
            upstream_code: None,
            request_id: Some(""),
            fix: &["2100-01-01T00:00:00Z", "usage-based billing"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-exhausted (elevenlabs): quota_exhausted\n",
                "    ✗ The account's character/credit quota is used up.\n",
                "      evidence: GET /v1/user/subscription → HTTP 200, request id …\n",
                "      fix: Requests that spend credits (calls, speech) fail until 2100-01-01T00:00:00Z. Upgrade the plan or enable usage-based billing in ElevenLabs → Subscription, or wait for the reset. The counters cover the whole workspace; a key can also hit a credit limit of its own, which credwatch cannot see (only a workspace admin's key can list keys' limits). (evidence: docs/upstream-evidence.md#elevenlabs-quota)\n",
                "      (convai_write, user_read granted (inferred); 30000 of 30000 characters used (100%), resets 2100-01-01T00:00:00Z; fingerprint 5f1b722ae2ac)\n",
            )
            .into(),
        },
        Case {
            credential: "el-unusual",
            exit: 1,
            verdict: ("unhealthy", Some("account_blocked"), Some(true)),
            fingerprint: "a58c4c85727c",
            finding: "unusual_activity",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(401),
            upstream_code: Some("detected_unusual_activity"),
            request_id: Some(""),
            fix: &["paid plan", "VPN"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-unusual (elevenlabs): account_blocked\n",
                "    ✗ ElevenLabs disabled this account's free tier (detected_unusual_activity).\n",
                "      evidence: GET /v1/user/subscription → HTTP 401, code detected_unusual_activity, request id …\n",
                "      fix: ElevenLabs' own message says free-tier use was disabled by its abuse detection, that proxies or VPNs may trigger it, and that a paid subscription lifts it. Subscribe to a paid plan, or contact ElevenLabs support. (evidence: docs/upstream-evidence.md#elevenlabs-detected-unusual-activity)\n",
                "      (fingerprint a58c4c85727c)\n",
            )
            .into(),
        },
        Case {
            credential: "el-payment-issue",
            exit: 1,
            verdict: ("unhealthy", Some("account_blocked"), Some(true)),
            fingerprint: "de6db2f4a00a",
            finding: "payment_issue",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(401),
            upstream_code: Some("payment_issue"),
            request_id: Some(""),
            fix: &["payment method", "Billing"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-payment-issue (elevenlabs): account_blocked\n",
                "    ✗ The subscription has a failed or incomplete payment (payment_issue).\n",
                "      evidence: GET /v1/user/subscription → HTTP 401, code payment_issue, request id …\n",
                "      fix: Update the payment method or pay the open invoice in ElevenLabs → Subscription → Billing. (evidence: docs/upstream-evidence.md#elevenlabs-payment-issue)\n",
                "      (fingerprint de6db2f4a00a)\n",
            )
            .into(),
        },
        // `payment_required` restricts one feature of the plan (its only real
        // body: "Free users cannot use library voices via the API"): no verdict.
        Case {
            credential: "el-payment-required",
            exit: 1,
            verdict: ("pending", None, None),
            fingerprint: "b48ff20d66ab",
            finding: "unexpected_response",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(402),
            upstream_code: Some("payment_required"),
            request_id: Some(""),
            fix: &["not a verdict"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-payment-required (elevenlabs): no verdict: no answer credwatch can classify (`subscription`)\n",
                "    ✗ No verdict: `payment_required`: a feature restriction of the plan, not a verdict on the key or the account.\n",
                "      evidence: GET /v1/user/subscription → HTTP 402, code payment_required, request id …\n",
                "      fix: ElevenLabs refused one feature for this plan (its only recorded `payment_required` says \"Free users cannot use library voices via the API\"). This is not a verdict on the key or the account.\n",
                "    ✗ No verdict: `payment_required`: a feature restriction of the plan, not a verdict on the key or the account.\n",
                "      evidence: GET /v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000 → HTTP 402, code payment_required, request id …\n",
                "      fix: ElevenLabs refused one feature for this plan (its only recorded `payment_required` says \"Free users cannot use library voices via the API\"). This is not a verdict on the key or the account.\n",
                "      (fingerprint b48ff20d66ab)\n",
            )
            .into(),
        },
    ];
    let mut reports = BTreeMap::new();
    for case in &cases {
        reports.insert(case.credential, assert_case(&s, case).await);
    }

    let no_write = &reports["el-no-write"];
    assert_eq!(no_write.permissions.get("convai_write"), Some(&false));
    let f = finding(no_write, "permission_missing");
    assert_eq!(evidence_of(f).permission.as_deref(), Some("convai_write"));
    assert_contains(&f.summary, &["convai_write"]);

    // Without `user_read`: healthy, the quota unreadable, a note.
    let restricted = &reports["el-restricted"];
    assert!(
        restricted.quota().is_none(),
        "quota unreadable without user_read"
    );
    assert_eq!(restricted.permissions.get("user_read"), Some(&false));
    assert_eq!(restricted.permissions.get("convai_write"), Some(&true));
    let f = finding(restricted, "permission_missing");
    assert_eq!(evidence_of(f).permission.as_deref(), Some("user_read"));
    assert_contains(&f.summary, &["user_read", "not required"]);

    let f = finding(&reports["el-key-id"], "key_id_used_as_key");
    assert_contains(&f.summary, &["api_key_id_used_as_api_key"]);

    // The reset date, and no usage-based billing: the ceiling is the limit.
    let q = reports["el-exhausted"].quota().expect("quota");
    assert_eq!(
        (q.used, q.limit, q.reset_at, q.exhausted),
        (30_000, 30_000, Some(RESET_AT), true)
    );
    assert_eq!(q.ceiling, Some(30_000));
    assert!(
        q.open_invoices.is_some(),
        "the simulator sends has_open_invoices"
    );

    let f = finding(&reports["el-payment-required"], "unexpected_response");
    assert_contains(&f.summary, &["payment_required", "feature restriction"]);

    // All at once: exit 1, a summary, then each credential as above.
    let (text, _, report) = s.both(&[]).await;
    assert_eq!(text.code, 1);
    assert!(!report.ok);
    assert_eq!(report.credentials.len(), cases.len());
    let blocks: String = cases
        .iter()
        .map(|c| c.text.split_once("\n\n").expect("header").1)
        .collect();
    assert_eq!(
        masked(&text.stdout),
        format!(
            "credwatch check: 8 credential(s), 1 ok, 7 with problems, 0 warning(s)\n\n{blocks}"
        ),
        "{text:?}"
    );
    for c in &report.credentials {
        assert_text_explains(&text, c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn el_secret_with_trailing_newline_warns_but_is_healthy() {
    let mut s = Scenario::start(el_world()).await;
    let key = s.secret(&el_key("chk-full"));
    let var = "CREDWATCH_IT_CHECK_KEY";
    s.env.push((var.into(), format!("{key}\n")));
    let yaml = Doc::new().push(
        "elevenlabs",
        Item::new(json!({"name": "el", "api_key_env": var, "base_url": s.el_url()})),
    );
    s.write(&yaml.render());
    let (text, c) = s.one("el").await;
    assert_eq!(
        text.stdout,
        concat!(
            "credwatch check: 1 credential(s), 1 ok, 0 with problems, 1 warning(s)\n",
            "\n",
            "✓ el (elevenlabs): healthy — convai_write, user_read granted (inferred); 1000 of 10000 characters used (5% of the ceiling of 20000 with usage-based billing), resets 2025-01-31T20:54:18Z; fingerprint e1b071da291d\n",
            "    ! elevenlabs[0].api_key_env: the value from environment variable CREDWATCH_IT_CHECK_KEY has surrounding whitespace (a trailing newline?); credwatch trimmed it, but other clients of this secret will send it as-is and get 401: fix the source\n",
            "      fix: Remove the surrounding whitespace (often a trailing newline from `echo` or an editor) at the source: credwatch trims it, but your application may send it as-is and get 401.\n",
        ),
        "{text:?}"
    );
    assert_eq!(text.code, 0, "{text:?}");
    assert_eq!(c.status, "healthy");
    assert_eq!(c.fingerprint, "e1b071da291d", "the trimmed key is used");
    let f = finding(&c, "secret_whitespace");
    assert_eq!(
        (f.severity.as_str(), f.check.as_str()),
        ("warning", "config")
    );
    assert!(f.evidence.is_none());
    assert_contains(&f.summary, &["elevenlabs[0].api_key_env", "whitespace"]);
    assert_contains(&f.fix, &["trailing newline", "401"]);
    assert!(text.stdout.contains("whitespace"), "{text:?}");
}

/// Answers that are no verdict on the key: a CDN's HTML page, a server
/// error, no answer in time. Not ok (exit 1), and not a credential problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_answers_without_a_verdict() {
    let mut world = el_world();
    let (cloudflare, server_error, hang) = (
        el_key("chk-full"),
        el_key("chk-restricted"),
        el_key("chk-no-write"),
    );
    for (key, fault) in [
        (&cloudflare, Fault::CloudflareHtml),
        (&server_error, Fault::ServerError),
        (&hang, Fault::Hang),
    ] {
        world.elevenlabs.key_mut(key).expect("key").fault = Some(fault);
    }
    let mut s = Scenario::start(world).await;
    let url = s.el_url();
    let yaml = Doc::new().extend(
        "elevenlabs",
        [
            el_item("el-cloudflare", &s.secret(&cloudflare), &url, ""),
            el_item("el-5xx", &s.secret(&server_error), &url, ""),
            el_item("el-hang", &s.secret(&hang), &url, "").set("timeout", "300ms"),
        ],
    );
    s.write(&yaml.render());
    let cases = [
        Case {
            credential: "el-cloudflare",
            exit: 1,
            verdict: ("pending", None, None),
            fingerprint: "e1b071da291d",
            finding: "unexpected_response",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(403),
            upstream_code: None,
            request_id: None,
            fix: &["not a credential problem", "Cloudflare"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-cloudflare (elevenlabs): no verdict: no answer credwatch can classify (`subscription`)\n",
                "    ✗ No verdict: HTTP 403 with a non-JSON (HTML) page: a CDN or firewall (e.g. a Cloudflare challenge) answered before the API saw the credential; this is not a credential problem.\n",
                "      evidence: GET /v1/user/subscription → HTTP 403\n",
                "      fix: A CDN or firewall in front of the API answered instead of the API (e.g. a Cloudflare challenge for hosting or VPN IPs, or a corporate proxy): this is not a credential problem. Run from another network, or ask the provider to allow this IP.\n",
                "    ✗ No verdict: HTTP 403 with a non-JSON (HTML) page: a CDN or firewall (e.g. a Cloudflare challenge) answered before the API saw the credential; this is not a credential problem.\n",
                "      evidence: GET /v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000 → HTTP 403\n",
                "      fix: A CDN or firewall in front of the API answered instead of the API (e.g. a Cloudflare challenge for hosting or VPN IPs, or a corporate proxy): this is not a credential problem. Run from another network, or ask the provider to allow this IP.\n",
                "      (fingerprint e1b071da291d)\n",
            )
            .into(),
        },
        Case {
            credential: "el-5xx",
            exit: 1,
            verdict: ("pending", None, None),
            fingerprint: "8054fac39d02",
            finding: "upstream_error",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(500),
            upstream_code: Some("something_went_wrong"),
            request_id: Some(""),
            fix: &["Nothing to fix on your side"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-5xx (elevenlabs): no verdict: upstream unreachable (`subscription`: upstream_error)\n",
                "    ✗ No verdict: HTTP 500 `something_went_wrong`: server error.\n",
                "      evidence: GET /v1/user/subscription → HTTP 500, code something_went_wrong, request id …\n",
                "      fix: Upstream had a server error. Nothing to fix on your side; retry later or check the provider's status page.\n",
                "      (fingerprint 8054fac39d02)\n",
            )
            .into(),
        },
        Case {
            credential: "el-hang",
            exit: 1,
            verdict: ("pending", None, None),
            fingerprint: "9401a0847bc2",
            finding: "timeout",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: None,
            upstream_code: None,
            request_id: None,
            fix: &["timeout"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-hang (elevenlabs): no verdict: upstream unreachable (`subscription`: timeout)\n",
                "    ✗ No verdict: no complete answer within 300ms.\n",
                "      evidence: GET /v1/user/subscription → no complete answer within 300ms\n",
                "      fix: No answer within the timeout. Check egress from this host (firewall, proxy, DNS) or raise `timeout`.\n",
                "      (fingerprint 9401a0847bc2)\n",
            )
            .into(),
        },
    ];
    let mut reports = BTreeMap::new();
    for case in &cases {
        reports.insert(case.credential, assert_case(&s, case).await);
    }
    let f = finding(&reports["el-cloudflare"], "unexpected_response");
    assert_contains(&f.summary, &["No verdict", "HTML"]);
}
