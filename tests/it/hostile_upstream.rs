//! A hostile or broken upstream sends huge strings with escape sequences
//! where a short word belongs (`tier`, `currency`). They must not blow up
//! `/metrics`, forge lines in it or in the text log, or reach a terminal:
//! every upstream string is capped and cleaned where it is parsed.

use std::time::Duration;

use credwatch_sim::{ElAccount, ElKey, Simulator, Subscription, TwilioAccount, World};

use crate::harness::{Daemon, logs, sample};
use crate::support::{FAST_DETAILS, ac_sid, config, cred, el, el_key, tw, tw_token, wait_sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_escape_laden_upstream_strings_are_capped_and_cleaned() {
    // 40 kB each (the subscription and the balance are read up to 64 KiB,
    // `http::SMALL_BODY_LIMIT`), with a forged metric line, CR/LF and ANSI escapes.
    let evil = format!(
        "pro\r\ncredwatch_credential_healthy{{credential=\"forged\"}} 1\n\u{1b}[2J\u{1b}[31m{}",
        "A".repeat(40_000)
    );
    let key = el_key("hostile-tier");
    let sid = ac_sid("hostile-currency");
    let token = tw_token("hostile-currency");
    let mut w = World::default();
    w.elevenlabs.add_account(
        ElAccount::new("ws-hostile").with_subscription(Subscription {
            tier: evil.clone(),
            ..Subscription::default()
        }),
    );
    w.elevenlabs
        .add_key(key.clone(), ElKey::new("keyItHostile", "ws-hostile"));
    w.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_balance(Some("3.50"), &evil)
            .with_numbers(&["+15005550006"]),
    );
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = config(
        FAST_DETAILS,
        &[el("el-hostile", &key, &sim.elevenlabs_url(), "")],
        &[tw("tw-hostile", &sid, &token, &sim.twilio_url(), "")],
    );
    let d = Daemon::start(&yaml).await;
    wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_elevenlabs_subscription_info",
        &[&cred("el-hostile")],
        |_| true,
    )
    .await;
    wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_twilio_balance",
        &[&cred("tw-hostile")],
        |_| true,
    )
    .await;
    let m = d.metrics().await;
    assert!(
        m.len() < 40_000,
        "/metrics grew with the upstream string: {} bytes",
        m.len()
    );
    assert!(!m.contains('\u{1b}'), "an escape sequence reached /metrics");
    assert!(!m.contains('\r'), "a carriage return reached /metrics");
    assert_eq!(
        sample(
            &m,
            "credwatch_credential_healthy",
            &["credential=\"forged\""]
        ),
        None,
        "a forged line reached /metrics"
    );
    let tier = m
        .lines()
        .find(|l| l.starts_with("credwatch_elevenlabs_subscription_info{"))
        .expect("subscription_info");
    assert!(tier.len() < 300, "{tier}");
    let (_, health) = d.get("/health?verbose=1").await;
    assert!(health.len() < 10_000, "{} bytes", health.len());
    let (_, page) = d.get("/").await;
    assert!(!page.contains('\u{1b}'), "an escape sequence reached /");
    d.stop().await;
    assert!(
        !logs().contains('\u{1b}'),
        "an escape sequence reached the log"
    );
}

/// The attack of issue #21: a Twilio page whose `next_page_uri` (a path
/// credwatch follows, and used to show verbatim as evidence) sets the
/// terminal title (OSC 0 … BEL), clears the screen, homes the cursor and
/// forges a healthy line after a newline.
const FORGED: &str = "\u{2705} tw-evil (twilio): healthy";

fn hostile_uri(sid: &str) -> String {
    format!(
        "/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000&Page=1&PageToken=PA\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[H\n{FORGED}"
    )
}

/// Fails on anything a terminal would act on, or a forged line.
fn assert_inert(sink: &str, text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{sink}: a control character got through: {text:?}"
    );
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with('\u{2705}')),
        "{sink}: the forged line got through: {text:?}"
    );
}

/// Every string in a JSON document (the escape is JSON-encoded in the text,
/// so the decoded values are what a consumer prints).
fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| {
            out.push(k.clone());
            json_strings(v, out);
        }),
        _ => {}
    }
}

fn assert_inert_json(sink: &str, text: &str) {
    let v: serde_json::Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{sink} is not JSON ({e}): {text}"));
    let mut strings = Vec::new();
    json_strings(&v, &mut strings);
    for s in strings {
        assert!(
            !s.chars().any(char::is_control),
            "{sink}: a control character got through: {s:?}"
        );
        assert!(
            !s.contains(&format!("\n{FORGED}")),
            "{sink}: the forged line got through: {s:?}"
        );
    }
}

fn hostile_world(sid: &str, token: &str) -> World {
    let mut w = World::default();
    let mut account = TwilioAccount::new(sid, token).with_numbers(&["+15005550006"]);
    account.hostile_next_page_uri = Some(hostile_uri(sid));
    w.twilio.add_account(account);
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escape_attack_in_next_page_uri_reaches_no_output() {
    let sid = ac_sid("escape-attack");
    let token = tw_token("escape-attack");
    let sim = Simulator::start(hostile_world(&sid, &token))
        .await
        .expect("simulator");
    let yaml = config(
        FAST_DETAILS,
        &[],
        &[tw("tw-evil", &sid, &token, &sim.twilio_url(), "")],
    );
    let dir = crate::harness::tempdir::TempDir::new();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &yaml).expect("write config");
    let path = path.display().to_string();

    // `check`, text and JSON (the real binary).
    for (format, json) in [("text", false), ("json", true)] {
        let run = crate::check::credwatch(
            ["check", "--config.file", &path, "--output", format]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            vec![],
        )
        .await;
        assert!((0..=2).contains(&run.code), "{run:?}");
        assert!(
            run.stdout.contains("tw-evil"),
            "check {format} reported nothing: {run:?}"
        );
        if json {
            assert_inert_json("check --output json", &run.stdout);
        } else {
            assert_inert("check text", &run.stdout);
        }
        assert_inert(&format!("check {format} stderr"), &run.stderr);
    }

    // The daemon: `/`, `/health`, `/metrics` and its log.
    let d = Daemon::start(&yaml).await;
    wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_check_duration_seconds",
        &[&cred("tw-evil"), "check=\"phone_numbers\""],
        |_| true,
    )
    .await;
    let (_, page) = d.get("/").await;
    assert_inert("/", &page);
    let (_, health) = d.get("/health?verbose=1").await;
    assert_inert_json("/health", &health);
    assert_inert("/metrics", &d.metrics().await);
    d.stop().await;
    assert_inert("the captured log", &logs());

    // The binary's log in each of its three formats, at debug level (where
    // every attempt's evidence is logged).
    for format in ["logfmt", "json", "text"] {
        let lines = crate::cli_ops::run_until(
            &[
                "serve",
                "--config.file",
                &path,
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.level",
                "debug",
                "--log.format",
                format,
            ],
            &[],
            "phone_numbers",
        );
        let log = lines.join("\n");
        assert!(log.contains("phone_numbers"), "{format}: {log}");
        if format == "json" {
            for l in &lines {
                assert_inert_json("the JSON log", l);
            }
        }
        assert_inert(&format!("the {format} log"), &log);
    }
}

/// Issue #21: `check` exited 101 (a `fmt::Error` panic) when ElevenLabs
/// answered `next_character_count_reset_unix: 300000000000` (year 11476),
/// in text, and in JSON when the quota was also used up. The date is shown
/// as what it is, and the exit code is one of the documented ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_date_past_year_9999_is_shown_not_a_panic() {
    let key = el_key("far-future-reset");
    let mut w = World::default();
    w.elevenlabs.add_account(
        ElAccount::new("ws-far-future").with_subscription(Subscription {
            character_count: 10_000,
            character_limit: 10_000,
            next_character_count_reset_unix: Some(300_000_000_000),
            can_extend_character_limit: false,
            ..Subscription::default()
        }),
    );
    w.elevenlabs
        .add_key(key.clone(), ElKey::new("keyItFarFuture", "ws-far-future"));
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = config(
        FAST_DETAILS,
        &[el("el-far-future", &key, &sim.elevenlabs_url(), "")],
        &[],
    );
    let dir = crate::harness::tempdir::TempDir::new();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &yaml).expect("write config");
    let path = path.display().to_string();
    for format in ["text", "json"] {
        let run = crate::check::credwatch(
            ["check", "--config.file", &path, "--output", format]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            vec![],
        )
        .await;
        assert!((0..=2).contains(&run.code), "{format}: {run:?}");
        assert!(
            run.stdout
                .contains("after 9999-12-31 (unix time 300000000000)"),
            "{format}: {run:?}"
        );
        assert!(run.stdout.contains("quota_exhausted"), "{format}: {run:?}");
    }
}
