//! `check` on the cross-check of the Twilio numbers imported into
//! ElevenLabs.

use super::*;

const N_ON: &str = "+15005550101";
const N_CALLER_ID: &str = "+15005550102";
const N_ABSENT: &str = "+15005550199";
/// Well-formed (`agent_` + 28 lowercase alphanumerics), assigned, and nowhere.
const MISSING_AGENT: &str = "agent_missing000000000000000000000";

/// One ElevenLabs workspace per case, each with one imported number; one
/// Twilio account owning `N_ON` (incoming) and `N_CALLER_ID` (caller ID).
pub(super) fn phone_world(tw_sid: &str, tw_tok: &str) -> World {
    let mut w = World::default();
    // Agent IDs are unique across the simulator: one pair per workspace.
    let agent_id = |kind: &str, case: &str| format!("agent_{:0<28}", format!("{kind}{case}"));
    let number = |id: &str, n: &str| {
        ElPhoneNumber::twilio(id, n, format!("{id} line")).with_twilio_credentials(tw_sid, tw_tok)
    };
    for case in [
        "ready",
        "callerid",
        "absent",
        "noagent",
        "agentmissing",
        "pcm",
    ] {
        let ulaw = Agent::new(agent_id("ulaw", case), "Phone", "ulaw_8000");
        let pcm = Agent::new(agent_id("pcm", case), "Web", "pcm_16000");
        let id = format!("phnum_{case}");
        let n = match case {
            "ready" => number(&id, N_ON).assigned_to(&ulaw),
            "callerid" => number(&id, N_CALLER_ID).assigned_to(&ulaw),
            "absent" => number(&id, N_ABSENT).assigned_to(&ulaw),
            "noagent" => number(&id, N_ON),
            "agentmissing" => ElPhoneNumber {
                assigned_agent: Some(AssignedAgent {
                    agent_id: MISSING_AGENT.into(),
                    agent_name: "Deleted".into(),
                }),
                ..number(&id, N_ON)
            },
            _ => number(&id, N_ON).assigned_to(&pcm),
        };
        w.elevenlabs.add_account(
            ElAccount::new(format!("ws-{case}"))
                .with_agent(ulaw)
                .with_agent(pcm)
                .with_phone_number(n),
        );
        w.elevenlabs.add_key(
            el_key(&format!("chk-phone-{case}")),
            ElKey::new(format!("keyChkPhone{case}"), format!("ws-{case}")),
        );
    }
    w.twilio.add_account(
        TwilioAccount::new(tw_sid, tw_tok)
            .with_numbers(&[N_ON, "+15005550103"])
            .with_caller_id(N_CALLER_ID),
    );
    w
}

struct PhoneScenario {
    s: Scenario,
    tw_fingerprint: String,
}

/// Every case as `el-<case>` linked to `tw`, plus `el-rotated` (the ready
/// number, imported with an older token) and `el-confirmed` (re-import confirmed).
async fn phone_scenario() -> PhoneScenario {
    let sid = ac_sid("chk-phone");
    let token = tw_token("chk-phone");
    let mut s = Scenario::start(phone_world(&sid, &token)).await;
    // `printf %s "$token" | sha256sum | cut -c1-12`
    let tw_fingerprint = "b30fe963434f".to_string();
    let url = s.el_url();
    let link = |item: Item| item.set("phone_numbers", true).set("twilio", "tw");
    let mut yaml = Doc::new();
    for case in [
        "ready",
        "callerid",
        "absent",
        "noagent",
        "agentmissing",
        "pcm",
    ] {
        let key = s.secret(&el_key(&format!("chk-phone-{case}")));
        yaml = yaml.push(
            "elevenlabs",
            link(el_item(&format!("el-{case}"), &key, &url, "")),
        );
    }
    let ready_key = el_key("chk-phone-ready");
    let yaml = yaml
        .push(
            "elevenlabs",
            link(el_item("el-rotated", &ready_key, &url, ""))
                .set("twilio_imported_fingerprint", "0123456789ab"),
        )
        .push(
            "elevenlabs",
            link(el_item("el-confirmed", &ready_key, &url, ""))
                .set("twilio_imported_fingerprint", tw_fingerprint.as_str()),
        )
        .push(
            "twilio",
            tw_item("tw", &sid, &s.secret(&token), &s.tw_url()),
        );
    s.write(&yaml.render());
    PhoneScenario { s, tw_fingerprint }
}

/// The one imported number of a case.
pub(super) fn the_number(c: &CredReport) -> &PhoneReport {
    assert_eq!(c.phone_numbers().len(), 1, "{c:#?}");
    &c.phone_numbers()[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_on_the_twilio_account_is_ready() {
    let p = phone_scenario().await;
    for (case, id, number) in [
        ("el-ready", "phnum_ready", N_ON),
        ("el-callerid", "phnum_callerid", N_CALLER_ID),
    ] {
        p.s.sim.clear_requests();
        let (text, c) = p.s.one(case).await;
        // Ownership is looked up number by number with Twilio's
        // `PhoneNumber=` filter: the ElevenLabs check never pages through the
        // Twilio account's lists.
        // (The linked Twilio credential itself is checked too, for its
        // verdict: one page of one number, no full listing.)
        let twilio: Vec<_> =
            p.s.sim
                .requests()
                .into_iter()
                .filter(|r| {
                    r.path.ends_with("IncomingPhoneNumbers.json")
                        || r.path.ends_with("OutgoingCallerIds.json")
                })
                .collect();
        assert!(
            twilio
                .iter()
                .any(|r| r.query.as_deref().unwrap_or("").contains("PhoneNumber=%2B")),
            "{case}: ownership was not checked"
        );
        for r in &twilio {
            let q = r.query.as_deref().unwrap_or("");
            assert!(
                q.contains("PhoneNumber=%2B") || q == "PageSize=1",
                "{case}: {} {q}",
                r.path
            );
            assert!(!q.contains("PageSize=1000"), "{case}: {} {q}", r.path);
        }
        assert_eq!(text.code, 0, "{text:?}");
        assert_eq!(c.status, "healthy");
        let n = the_number(&c);
        assert_eq!(
            (n.phone_number_id.as_str(), n.number.as_str(), n.ready),
            (id, number, true),
            "{case}"
        );
        assert!(n.problems.is_empty(), "{case}: {n:?}");
        assert!(c.findings.is_empty(), "{case}: {:?}", c.findings);
        assert!(
            text.stdout.contains("1/1 imported numbers ready"),
            "{text:?}"
        );
        assert!(
            c.evidence.iter().any(
                |e| e.request == "GET /v1/convai/phone-numbers?provider=twilio"
                    && e.http_status == Some(200)
            ),
            "{c:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_not_on_the_twilio_account() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-absent").await;
    assert_eq!(
        text.code, 1,
        "a credential with a number not ready is not ok"
    );
    assert_eq!(
        c.status, "healthy",
        "phone problems do not change the verdict"
    );
    let n = the_number(&c);
    assert!(!n.ready);
    assert_eq!(n.problems, ["not_on_twilio_account"]);
    let f = finding(&c, "not_on_twilio_account");
    assert_eq!(
        (f.severity.as_str(), f.check.as_str()),
        ("error", "phone_numbers")
    );
    let e = evidence_of(f);
    assert_eq!(e.http_status, Some(200));
    assert!(e.request_id.is_some(), "{e:?}");
    assert_contains(&f.summary, &[N_ABSENT, "phnum_absent", "`tw`"]);
    assert_contains(
        &f.fix,
        &[
            "released or moved to another Twilio account",
            "re-import",
            "Account SID and Auth Token",
        ],
    );
    assert!(
        text.stdout.contains(": imported numbers not ready"),
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_without_agent_is_advice_and_still_ready() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-noagent").await;
    let n = the_number(&c);
    assert_eq!(n.problems, ["no_agent"]);
    assert_eq!(n.agent_id, None);
    let f = finding(&c, "no_agent");
    assert_eq!(f.severity, "info", "no agent is advice: {f:?}");
    assert_contains(&f.fix, &["Outbound calls", "still work", "inbound"]);
    assert!(n.ready, "outbound calls name their agent: {n:?}");
    assert_eq!(text.code, 0, "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_whose_agent_is_missing_is_not_ready() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-agentmissing").await;
    assert_eq!(text.code, 1);
    let n = the_number(&c);
    assert!(!n.ready);
    assert_eq!(n.agent_id.as_deref(), Some(MISSING_AGENT));
    assert_eq!(n.problems, ["agent_missing"]);
    let f = finding(&c, "agent_missing");
    assert_eq!(f.severity, "error");
    assert_contains(&f.summary, &["agent_not_found"]);
    assert_contains(&f.fix, &["assign an existing agent", "Phone Numbers"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_with_a_non_ulaw_agent_is_advice() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-pcm").await;
    assert_eq!(text.code, 0, "{text:?}");
    let n = the_number(&c);
    assert!(n.ready);
    assert_eq!(n.problems, ["agent_not_ulaw"]);
    let f = finding(&c, "agent_not_ulaw");
    assert_eq!(f.severity, "info");
    assert_contains(&f.fix, &["ulaw_8000", "Advice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_need_reimport_after_the_twilio_credential_changed() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-rotated").await;
    assert_eq!(text.code, 1);
    let n = the_number(&c);
    assert!(!n.ready);
    assert_eq!(n.problems, ["reimport_needed"]);
    let f = finding(&c, "reimport_needed");
    assert_eq!(f.severity, "error");
    assert_contains(&f.summary, &["`tw`", N_ON]);
    assert_contains(
        &f.fix,
        &["re-import", "Phone Numbers", "twilio_imported_fingerprint"],
    );
    // How to confirm, on the same screen even with `--credential` (which
    // hides `tw` and its fingerprint): the exact setting.
    assert_contains(
        &f.fix,
        &[&format!(
            "`twilio_imported_fingerprint: {}`",
            p.tw_fingerprint
        )],
    );
    assert!(text.stdout.contains(&p.tw_fingerprint), "{text:?}");

    // Confirmed: the same number, the current fingerprint → ready.
    let (text, c) = p.s.one("el-confirmed").await;
    assert_eq!(text.code, 0, "{text:?}");
    assert!(the_number(&c).problems.is_empty(), "{c:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_metrics_label_the_number_only_when_exposed() {
    let sid = ac_sid("chk-phone-metrics");
    let token = tw_token("chk-phone-metrics");
    let mut world = phone_world(&sid, &token);
    let second = el_key("chk-phone-absent-2");
    world.elevenlabs.add_key(
        second.clone(),
        ElKey::new("keyChkPhoneAbsent2", "ws-absent"),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let link = |item: Item| item.set("phone_numbers", true).set("twilio", "tw");
    let url = sim.elevenlabs_url();
    let yaml = Doc::new()
        .with_lines(FAST_DETAILS)
        .push(
            "elevenlabs",
            link(el_item("el-hidden", &el_key("chk-phone-absent"), &url, "")),
        )
        .push(
            "elevenlabs",
            link(el_item("el-exposed", &second, &url, "")).set("expose_numbers", true),
        )
        .push("twilio", tw_item("tw", &sid, &token, &sim.twilio_url()));
    let d = Daemon::start(&yaml.render()).await;
    let within = Duration::from_secs(20);
    for name in ["el-hidden", "el-exposed"] {
        let me = cred(name);
        wait_sample(
            &d,
            within,
            "credwatch_elevenlabs_phone_number_ready",
            &[&me, "phone_number_id=\"phnum_absent\""],
            |v| v == 0.0,
        )
        .await;
        wait_sample(
            &d,
            within,
            "credwatch_elevenlabs_phone_number_problem",
            &[
                &me,
                "phone_number_id=\"phnum_absent\"",
                "problem=\"not_on_twilio_account\"",
            ],
            |v| v == 1.0,
        )
        .await;
    }
    let m = d.metrics().await;
    let hidden = lines_of(&m, "el-hidden");
    assert!(
        !hidden.contains("number=\"") && !hidden.contains(N_ABSENT),
        "no `number` label without expose_numbers:\n{hidden}"
    );
    let exposed = lines_of(&m, "el-exposed");
    let number = format!("number=\"{N_ABSENT}\"");
    for family in [
        "credwatch_elevenlabs_phone_number_ready",
        "credwatch_elevenlabs_phone_number_problem",
    ] {
        assert!(
            sample(&m, family, &[&cred("el-exposed"), &number]).is_some(),
            "{family} has the number with expose_numbers: true:\n{exposed}"
        );
    }
    d.stop().await;
}
