//! `check`'s output contract: exit codes, credential selection, one line
//! per healthy credential, colour, the JSON schema, and warnings under a
//! healthy verdict.

use super::elevenlabs::{RESET_AT, el_world};
use super::phone_numbers::{phone_world, the_number};
use super::*;

/// A config with one healthy ElevenLabs key, one healthy Twilio account and
/// one revoked ElevenLabs key.
async fn mixed_scenario() -> Scenario {
    let sid = ac_sid("chk-mixed");
    let token = tw_token("chk-mixed");
    let mut world = el_world();
    world.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_numbers(&["+15005550041"])
            .with_balance(Some("42.17"), "USD"),
    );
    let mut s = Scenario::start(world).await;
    let url = s.el_url();
    let yaml = Doc::new()
        .push(
            "elevenlabs",
            el_item("el-ok", &s.secret(&el_key("chk-full")), &url, ""),
        )
        .push(
            "elevenlabs",
            el_item("el-revoked", &s.secret(&el_key("chk-revoked")), &url, ""),
        )
        .push(
            "twilio",
            tw_item("tw-ok", &sid, &s.secret(&token), &s.tw_url()),
        );
    s.write(&yaml.render());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_credential_selection() {
    let s = mixed_scenario().await;

    // Everything: one unhealthy → 1; each credential is in the report.
    let (text, _, report) = s.both(&[]).await;
    assert_eq!(text.code, 1, "{text:?}");
    assert!(!report.ok);
    let names: Vec<&str> = report.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["el-ok", "el-revoked", "tw-ok"]);
    for c in &report.credentials {
        assert_text_explains(&text, c);
    }
    assert!(
        text.stdout
            .starts_with("credwatch check: 3 credential(s), 2 ok, 1 with problems, 0 warning(s)\n"),
        "{text:?}"
    );
    // --fail-on-warning changes nothing without a warning.
    let strict = s.run(&["--fail-on-warning", "--credential", "el-ok"]).await;
    assert_eq!(strict.code, 0, "{strict:?}");

    // Only the healthy ones, one at a time: 0, and only that one is printed.
    for (name, other) in [("el-ok", "el-revoked"), ("tw-ok", "el-ok")] {
        let (text, c) = s.one(name).await;
        assert_eq!(text.code, 0, "{text:?}");
        assert_eq!(c.status, "healthy");
        assert!(!text.stdout.contains(other), "{text:?}");
        let non_empty: Vec<&str> = text.stdout.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(non_empty.len(), 2, "a header and one line\n{text:?}");
    }

    // Unknown credential: 2, naming the configured ones; nothing sent.
    let before = s.sim.request_count();
    for args in [
        &["--credential", "nope"][..],
        &["--credential", "nope", "--output", "json"][..],
    ] {
        let run = s.run(args).await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        assert_contains(&run.stderr, &["`nope`", "el-ok", "el-revoked", "tw-ok"]);
    }
    assert_eq!(s.sim.request_count(), before);

    // Usage errors: 2.
    let run = s.run(&["--output", "yaml"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = credwatch(
        vec![
            "check".into(),
            "--config".into(),
            s.dir
                .path()
                .join("missing.yaml")
                .to_string_lossy()
                .into_owned(),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("cannot read the config file"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_credentials_take_one_line() {
    let s = mixed_scenario().await;
    let text = s.run(&[]).await;
    let lines: Vec<&str> = text.stdout.lines().collect();
    for name in ["el-ok", "tw-ok"] {
        let mine: Vec<&&str> = lines.iter().filter(|l| l.contains(name)).collect();
        assert_eq!(mine.len(), 1, "{name}\n{text:?}");
        assert!(mine[0].starts_with(&format!("✓ {name} (")), "{text:?}");
    }
    // The unhealthy one gets its block: header, finding, evidence, fix, summary.
    let at = lines
        .iter()
        .position(|l| l.starts_with("✗ el-revoked (elevenlabs): invalid_credentials"))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(lines[at + 1].starts_with("    ✗ "), "{text:?}");
    assert!(lines[at + 2].starts_with("      evidence: "), "{text:?}");
    assert!(lines[at + 3].starts_with("      fix: "), "{text:?}");
}

/// Runs the check under a pseudo-terminal (`script`), so stdout is a TTY.
async fn on_a_tty(s: &Scenario, no_color: Option<&str>) -> String {
    let cmd = format!(
        "{} check --config {}",
        env!("CARGO_BIN_EXE_credwatch"),
        s.dir.path().join("config.yaml").display()
    );
    crate::support::on_a_tty(cmd, &[], no_color).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_only_on_a_tty_and_never_with_no_color() {
    let s = mixed_scenario().await;
    // Piped (what `run` does): never colour, with or without NO_COLOR.
    let piped = s.run(&[]).await;
    assert!(!piped.stdout.contains('\x1b'), "{piped:?}");

    let tty = on_a_tty(&s, None).await;
    assert!(
        tty.contains("credwatch check:") && tty.contains("\x1b[31;1m✗"),
        "colour on a TTY:\n{tty:?}"
    );
    let no_color = on_a_tty(&s, Some("1")).await;
    assert!(no_color.contains("credwatch check:"), "{no_color:?}");
    assert!(
        !no_color.contains('\x1b'),
        "NO_COLOR turns colour off on a TTY:\n{no_color:?}"
    );
    for out in [&tty, &no_color] {
        for secret in &s.secrets {
            assert!(!out.contains(secret.as_str()), "secret leaked: {secret}");
        }
    }
}

/// The full schema, over a config that fills every part of it: quota,
/// permissions, Twilio account/balance/count, imported numbers, findings with
/// and without evidence, and a credential without any verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_matches_the_documented_schema() {
    let sid = ac_sid("chk-phone");
    let token = tw_token("chk-phone");
    let mut world = phone_world(&sid, &token);
    let restricted = el_key("chk-schema-restricted");
    world.elevenlabs.add_key(
        restricted.clone(),
        ElKey::new("keyChkSchemaRestricted", "ws-absent")
            .with_permissions(&["convai_write", "convai_read"]),
    );
    let hang = el_key("chk-schema-hang");
    let mut hanging = ElKey::new("keyChkSchemaHang", "ws-ready");
    hanging.fault = Some(Fault::Hang);
    world.elevenlabs.add_key(hang.clone(), hanging);
    world.twilio.account_mut(&sid).expect("account").balance = Some("42.17".into());

    let mut s = Scenario::start(world).await;
    let url = s.el_url();
    let var = format!("CREDWATCH_IT_SCHEMA_KEY_{:x}", fastrand::u32(..));
    let ready = s.secret(&el_key("chk-phone-ready"));
    s.env.push((var.clone(), format!(" {ready}\n")));
    let link = |item: Item| item.set("phone_numbers", true).set("twilio", "tw");
    let yaml = Doc::new()
        .push(
            "elevenlabs",
            link(Item::new(
                json!({"name": "el-ready", "api_key_env": var, "base_url": url}),
            ))
            .set("critical", false),
        )
        .push(
            "elevenlabs",
            link(el_item("el-restricted", &s.secret(&restricted), &url, "")),
        )
        .push(
            "elevenlabs",
            el_item("el-hang", &s.secret(&hang), &url, "").set("timeout", "300ms"),
        )
        .push(
            "twilio",
            tw_item("tw", &sid, &s.secret(&token), &s.tw_url()),
        );
    s.write(&yaml.render());
    let run = s.run(&["--output", "json"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let report = parse(&run);
    assert!(!report.ok);
    let by = |n: &str| {
        report
            .credentials
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("{n} in {report:#?}"))
    };

    let ready = by("el-ready");
    assert_eq!(
        (ready.provider.as_str(), ready.critical),
        ("elevenlabs", false)
    );
    let q = ready.quota().expect("quota");
    assert_eq!((q.used, q.limit, q.exhausted), (1000, 10000, false));
    assert_eq!((q.tier.as_str(), q.status.as_str()), ("starter", "active"));
    assert!(q.reset_at.is_some());
    assert_eq!(ready.permissions.get("convai_write"), Some(&true));
    assert!(finding(ready, "secret_whitespace").evidence.is_none());
    let n = the_number(ready);
    assert_eq!(
        (n.label.as_str(), n.agent_id.as_deref()),
        (
            "phnum_ready line",
            Some("agent_ulawready0000000000000000000")
        )
    );
    assert!(ready.evidence.len() >= 3, "{ready:#?}");

    let restricted = by("el-restricted");
    assert_eq!(restricted.status, "healthy");
    assert!(!restricted.phone_numbers()[0].ready);
    assert_eq!(finding(restricted, "permission_missing").severity, "info");

    let hang = by("el-hang");
    assert_eq!((hang.status.as_str(), hang.valid), ("pending", None));
    assert_eq!(finding(hang, "timeout").severity, "error");

    let tw = by("tw");
    assert_eq!(tw.provider, "twilio");
    assert!(tw.critical, "critical by default");
    let a = tw.twilio_account().expect("account");
    assert_eq!(
        (a.status.as_str(), a.kind.as_str(), a.subaccount),
        ("active", "Full", false)
    );
    let b = tw.twilio_balance().expect("balance");
    assert_eq!((b.amount, b.currency.as_str()), (42.17, "USD"));
    assert_eq!(tw.twilio_phone_numbers(), Some(2));
    // The auth check's own request is the permission a restricted key may lack.
    assert_eq!(
        tw.permissions,
        BTreeMap::from([("incoming_phone_numbers_read".to_string(), true)])
    );
    assert_eq!(
        tw.permission_basis
            .get("incoming_phone_numbers_read")
            .map(String::as_str),
        Some("direct")
    );
    assert!(tw.quota().is_none());
    assert_eq!(
        tw.evidence
            .iter()
            .map(|e| e.request.split('?').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>(),
        [
            format!("GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"),
            format!("GET /2010-04-01/Accounts/{sid}.json"),
            format!("GET /2010-04-01/Accounts/{sid}/Balance.json"),
        ]
    );
}

// ---------------------------------------------------------------------------
// Warnings under a healthy verdict
// ---------------------------------------------------------------------------

/// Healthy credentials that deserve attention: a quota at or above 90 % of
/// its ceiling, a subscription past due, a Trial account with a low balance.
async fn warnings_scenario() -> Scenario {
    let sid = ac_sid("chk-trial");
    let token = tw_token("chk-trial");
    let mut w = World::default();
    w.elevenlabs
        .add_account(ElAccount::new("ws-high").with_subscription(Subscription {
            tier: "pro".into(),
            character_count: 475_000,
            character_limit: 500_000,
            next_character_count_reset_unix: Some(RESET_AT),
            ..Subscription::default()
        }));
    w.elevenlabs.add_account(
        ElAccount::new("ws-past-due").with_subscription(Subscription {
            status: credwatch_sim::SubscriptionStatus::PastDue,
            next_character_count_reset_unix: Some(RESET_AT),
            ..Subscription::default()
        }),
    );
    w.elevenlabs
        .add_key(el_key("chk-high"), ElKey::new("keyChkHigh", "ws-high"));
    w.elevenlabs.add_key(
        el_key("chk-past-due"),
        ElKey::new("keyChkPastDue", "ws-past-due"),
    );
    w.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_type(credwatch_sim::AccountType::Trial)
            .with_balance(Some("0.85"), "USD")
            .with_numbers(&["+15005550042"]),
    );
    let mut s = Scenario::start(w).await;
    let url = s.el_url();
    let yaml = Doc::new()
        .push(
            "elevenlabs",
            el_item("el-high", &s.secret(&el_key("chk-high")), &url, ""),
        )
        .push(
            "elevenlabs",
            el_item("el-past-due", &s.secret(&el_key("chk-past-due")), &url, ""),
        )
        .push(
            "twilio",
            tw_item("tw-trial", &sid, &s.secret(&token), &s.tw_url()),
        );
    s.write(&yaml.render());
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_are_marked_under_a_healthy_verdict_and_counted() {
    let s = warnings_scenario().await;
    let (text, _, report) = s.both(&[]).await;
    assert_eq!(text.code, 0, "warnings alone keep exit 0: {text:?}");
    assert!(report.ok);
    for c in &report.credentials {
        assert_text_explains(&text, c);
    }
    assert_eq!(
        masked(&text.stdout),
        [
            "credwatch check: 3 credential(s), 3 ok, 0 with problems, 4 warning(s)\n",
            "\n",
            "✓ el-high (elevenlabs): healthy — convai_write, user_read granted (inferred); 475000 of 500000 characters used (93% of the ceiling of 510000 with usage-based billing), resets 2100-01-01T00:00:00Z; fingerprint 8428dfbc1406\n",
            "    ! 93% of the quota is used (475000 of 510000 characters; the alert threshold is 90%).\n",
            "      evidence: GET /v1/user/subscription → HTTP 200, request id …\n",
            "      fix: Calls and speech fail once the quota is used up (it resets 2100-01-01T00:00:00Z). Decide before then: upgrade the plan or enable usage-based billing in ElevenLabs → Subscription, or move traffic to another workspace's key. (evidence: docs/upstream-evidence.md#elevenlabs-quota)\n",
            "✓ el-past-due (elevenlabs): healthy — convai_write, user_read granted (inferred); 1000 of 10000 characters used (5% of the ceiling of 20000 with usage-based billing), resets 2100-01-01T00:00:00Z; fingerprint 7ae40c33e338\n",
            "    ! The ElevenLabs subscription is `past_due`: billing is at risk, calls still work for now.\n",
            "      evidence: GET /v1/user/subscription → HTTP 200, request id …\n",
            "      fix: Pay the open invoice or update the payment method in ElevenLabs → Subscription → Billing. What ElevenLabs does when a subscription stays unpaid is not documented; credwatch reports a blocked account only when ElevenLabs says so (`free_disabled`, `payment_issue`). (evidence: docs/upstream-evidence.md#elevenlabs-subscription-status)\n",
            "✓ tw-trial (twilio): healthy — incoming_phone_numbers_read granted (direct); account active (Trial); 1 number(s); balance 0.85 USD; fingerprint 477868c313e7\n",
            "    ! This is a Twilio Trial account: it can call only verified numbers, and callers hear a trial notice first.\n",
            "      evidence: GET /2010-04-01/Accounts/SID.json → HTTP 200, request id RQ…\n",
            "      fix: Upgrade the account in Twilio Console → Billing before real callers use it.\n",
            "    ! The Twilio balance is 0.85 USD, below the alert threshold of 5 USD.\n",
            "      evidence: GET /2010-04-01/Accounts/SID/Balance.json → HTTP 200, request id RQ…\n",
            "      fix: Top up the balance or enable auto-recharge in Twilio Console → Billing: when it runs out, calls and messages through this account fail.\n",
        ]
        .concat()
        .replace("SID", &ac_sid("chk-trial")),
        "{text:?}"
    );
    let codes: Vec<(&str, &str, &str)> = report
        .credentials
        .iter()
        .flat_map(|c| {
            c.findings
                .iter()
                .map(|f| (c.name.as_str(), f.code.as_str(), f.severity.as_str()))
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("el-high", "quota_high", "warning"),
            ("el-past-due", "billing_at_risk", "warning"),
            ("tw-trial", "trial_account", "warning"),
            ("tw-trial", "balance_low", "warning"),
        ]
    );

    // --fail-on-warning: the same report, exit 1.
    let strict = s.run(&["--fail-on-warning"]).await;
    assert_eq!(strict.code, 1, "{strict:?}");
    assert_eq!(
        masked(&strict.stdout),
        masked(&text.stdout),
        "the same report"
    );
}
