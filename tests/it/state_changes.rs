//! A credential without a verdict says why (issue #18.3), and its state
//! changes are logged once, a persisting failure at most every
//! `STILL_FAILING_LOG_EVERY` (#18.7). The real daemon against the simulator.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use credwatch::config::Config;
use credwatch::scheduler::STILL_FAILING_LOG_EVERY;
use credwatch_sim::{Agent, ElAccount, ElKey, Simulator, World};

use crate::harness::{Daemon, sample};
use crate::support::{FAST_DETAILS, config, cred, el, el_key, lines_of, wait_sample};

/// The log lines about one credential at `level` (`WARN`, `INFO`).
fn lines_about(name: &str, level: &str) -> Vec<String> {
    let needle = format!("credential={name} ");
    let end = format!("credential={name}");
    crate::harness::logs()
        .lines()
        .filter(|l| l.contains(&format!(" {level} ")))
        .filter(|l| l.contains(&needle) || l.ends_with(&end))
        .map(str::to_owned)
        .collect()
}

/// The `convai_write` probe answers 200 (an agent exists under the probe's
/// id, so ElevenLabs mints a signed URL): that proves nothing about the
/// permission. Every cycle the credential stays pending and says so, with
/// the permission, the answer and the fix, in `/health` (verbose and
/// `?credential=`), `/metrics` and `check`; the log says it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_answering_200_is_pending_probe_inconclusive_every_cycle() {
    let key = el_key("probe-200");
    let mut world = World::default();
    world
        .elevenlabs
        .add_account(ElAccount::new("ws-probe-200").with_agent(Agent::new(
            // The id credwatch's `convai_write` probe asks for (README,
            // "What credwatch sends upstream").
            "agent_0000000000000000000000000000",
            "an agent under the probe's id",
            "ulaw_8000",
        )));
    world
        .elevenlabs
        .add_key(key.clone(), ElKey::new("keyItProbe200", "ws-probe-200"));
    let sim = Simulator::start(world).await.expect("simulator");
    let yaml = config(
        FAST_DETAILS,
        &[el("el-probe-200", &key, &sim.elevenlabs_url(), "")],
        &[],
    );
    let d = Daemon::start(&yaml).await;
    let me = cred("el-probe-200");
    // Several cycles.
    wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_checks_total",
        &[&me, "check=\"permission_convai_write\""],
        |n| n >= 4.0,
    )
    .await;

    let (_, all) = d.get("/health?verbose=1").await;
    let all: serde_json::Value = serde_json::from_str(&all).expect("JSON");
    let (code, one) = d.get("/health?credential=el-probe-200").await;
    assert_eq!(code, 503, "{one}");
    let one: serde_json::Value = serde_json::from_str(&one).expect("JSON");
    for c in [&all["credentials"][0], &one["credentials"][0]] {
        assert_eq!(c["status"], "pending", "{c}");
        assert_eq!(c["valid"], true, "{c}");
        let p = &c["pending"];
        assert_eq!(p["why"], "probe_inconclusive", "{c}");
        assert_eq!(p["check"], "permission_convai_write", "{c}");
        assert_eq!(p["permission"], "convai_write", "{c}");
        assert!(
            p["answer"].as_str().is_some_and(|a| a.contains("HTTP 200")),
            "{c}"
        );
        assert!(
            p["fix"]
                .as_str()
                .is_some_and(|f| f.contains("credwatch calibrate")),
            "{c}"
        );
        assert!(p["since"].is_string(), "{c}");
    }
    let m = d.metrics().await;
    assert_eq!(
        sample(
            &m,
            "credwatch_credential_pending_info",
            &[&me, "why=\"probe_inconclusive\""]
        ),
        Some(1.0),
        "{}",
        lines_of(&m, "el-probe-200")
    );

    // Said once in the log, with the fix, not once per cycle.
    let warned: Vec<String> = lines_about("el-probe-200", "WARN");
    assert_eq!(
        warned
            .iter()
            .filter(|l| l.contains("credential has no verdict"))
            .count(),
        1,
        "{warned:#?}"
    );
    assert!(
        warned.iter().any(|l| l.contains("credwatch calibrate")),
        "{warned:#?}"
    );
    assert!(warned.len() <= 2, "{warned:#?}");

    // `credwatch check` says the same.
    let checked = Config::from_yaml(
        &yaml,
        Path::new("check.yaml"),
        &HashMap::<String, String>::new(),
    )
    .expect("config");
    let report = credwatch::check::run(&checked, credwatch::check::Only::All)
        .await
        .expect("check");
    let c = &report.credentials[0];
    assert_eq!(c.status, "pending");
    let pending = c.pending.as_ref().expect("pending says why");
    assert_eq!(pending.why.as_str(), "probe_inconclusive", "{pending:?}");
    let mut text = Vec::new();
    credwatch::render::text::render_text(
        &report,
        &credwatch::render::text::Style::plain(),
        &mut text,
    )
    .expect("render");
    let text = String::from_utf8(text).expect("UTF-8");
    assert!(
        text.contains("el-probe-200 (elevenlabs): no verdict: the probe `permission_convai_write` is inconclusive: `convai_write` unknown, run `credwatch calibrate`"),
        "{text}"
    );
    assert!(text.contains("credwatch calibrate"), "{text}");
    d.stop().await;
}

/// A key revoked upstream: the change is logged once (the check's answer
/// and the credential's new standing), then the same failure at most once
/// per `STILL_FAILING_LOG_EVERY`, not every interval; the recovery once.
/// Paused time at the default interval (a minute), so 40 cycles pass in
/// milliseconds.
#[tokio::test(start_paused = true)]
async fn a_revoked_key_is_logged_once_then_at_most_every_still_failing_period() {
    let key = el_key("log-once");
    let mut w = World::default();
    w.elevenlabs.add_account(ElAccount::new("ws-log-once"));
    w.elevenlabs
        .add_key(key.clone(), ElKey::new("keyItLogOnce", "ws-log-once"));
    let sim = Simulator::start(w).await.expect("simulator");
    let yaml = config(
        "",
        &[el("el-log-once", &key, &sim.elevenlabs_url(), "")],
        &[],
    );
    let d = Daemon::start(&yaml).await;
    let healthy = || async { d.get("/health?credential=el-log-once").await.0 == 200 };
    while !healthy().await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let before = lines_about("el-log-once", "WARN").len();

    let mut revoked = None;
    sim.update(|w| revoked = w.elevenlabs.revoke_key(&key));
    let period = STILL_FAILING_LOG_EVERY;
    // Forty intervals: forty answers `invalid_api_key`.
    tokio::time::sleep(Duration::from_secs(40 * 60)).await;
    let (code, body) = d.get("/health?credential=el-log-once").await;
    assert_eq!(code, 503, "{body}");
    let m = d.metrics().await;
    let attempts = sample(
        &m,
        "credwatch_check_errors_total",
        &[
            &cred("el-log-once"),
            "check=\"subscription\"",
            "reason=\"invalid_credentials\"",
        ],
    )
    .unwrap_or(0.0);
    assert!(
        attempts >= 35.0,
        "the key was checked every interval: {attempts}"
    );

    let warned: Vec<String> = lines_about("el-log-once", "WARN")[before..].to_vec();
    let became = warned
        .iter()
        .filter(|l| l.contains("credential unhealthy: invalid_credentials"))
        .count();
    assert_eq!(became, 1, "the transition once: {warned:#?}");
    let still = warned
        .iter()
        .filter(|l| l.contains("credential still unhealthy since"))
        .count();
    let most = (40 * 60 / period.as_secs()) as usize;
    assert!(
        (1..=most).contains(&still),
        "a reminder at most every {period:?}: {warned:#?}"
    );
    assert!(
        warned.len() <= 2 + 2 * most,
        "not a line per interval ({attempts} attempts): {warned:#?}"
    );

    // Restored: one line saying so.
    sim.update(|w| {
        if let Some(k) = revoked {
            w.elevenlabs.add_key(key.clone(), k);
        }
    });
    let info_before = lines_about("el-log-once", "INFO").len();
    while !healthy().await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    tokio::time::sleep(Duration::from_secs(5 * 60)).await;
    let info: Vec<String> = lines_about("el-log-once", "INFO")[info_before..].to_vec();
    assert_eq!(
        info.iter()
            .filter(|l| l.contains("credential healthy again (was invalid_credentials)"))
            .count(),
        1,
        "{info:#?}"
    );
    d.stop().await;
}

/// The same rules at start and on reload. A key with a line break inside
/// (accepted by the YAML loader, which trims only the ends) is refused at
/// start: `invalid_config`, nothing sent, `/readyz` ready, and `check`
/// reports it. A reload to a good key gives a verdict; a reload to a key
/// that only gets 5xx starts from nothing (no verdict of the old key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_at_start_and_reset_on_reload() {
    let key_good = el_key("reload-good");
    let key_5xx = el_key("reload-5xx");
    let mut world = World::default();
    world
        .elevenlabs
        .add_account(ElAccount::new("ws-reload-fresh"));
    world.elevenlabs.add_key(
        key_good.clone(),
        ElKey::new("keyItReload1", "ws-reload-fresh"),
    );
    let mut broken = ElKey::new("keyItReload2", "ws-reload-fresh");
    broken.fault = Some(credwatch_sim::Fault::ServerError);
    world.elevenlabs.add_key(key_5xx.clone(), broken);
    let sim = Simulator::start(world).await.expect("simulator");
    let url = sim.elevenlabs_url();
    let with_key = |key: &str| {
        config(
            FAST_DETAILS,
            &[crate::support::el("el-reload-fresh", key, &url, "")],
            &[],
        )
    };
    // A line break inside the key.
    let two_lines = with_key(&format!("{key_good}\nsecond-line"));
    let d = Daemon::start(&two_lines).await;
    let c = d
        .wait_for("el-reload-fresh", Duration::from_secs(20), |c| {
            c["reason"] == "invalid_config"
        })
        .await;
    let error = c["config_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("elevenlabs[0]: the API key from the config file contains a line break"),
        "{c}"
    );
    assert!(!error.contains("second-line"), "{c}");
    d.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(d.get("/health?credential=el-reload-fresh").await.0, 503);
    assert!(sim.requests().is_empty(), "nothing was sent");

    let checked = Config::from_yaml(
        &two_lines,
        Path::new("check.yaml"),
        &HashMap::<String, String>::new(),
    )
    .expect("config");
    let report = credwatch::check::run(&checked, credwatch::check::Only::All)
        .await
        .expect("check");
    let r = &report.credentials[0];
    assert_eq!(
        (r.status, r.reason.map(|r| r.as_str())),
        ("unhealthy", Some("invalid_config"))
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.code == "invalid_config" && f.summary.contains("elevenlabs[0]"))
    );
    assert!(sim.requests().is_empty(), "check sent nothing either");

    // A reload to a good key: a verdict.
    std::fs::write(d.config_path(), with_key(&key_good)).expect("write");
    assert_eq!(d.post_reload().await.0, 200);
    crate::support::wait_status(&d, "el-reload-fresh", "healthy").await;

    // A reload to a key that only gets 5xx: nothing of the good key stays.
    std::fs::write(d.config_path(), with_key(&key_5xx)).expect("write");
    assert_eq!(d.post_reload().await.0, 200);
    let c = d
        .wait_for("el-reload-fresh", Duration::from_secs(20), |c| {
            c["pending"]["why"] == "upstream_unreachable"
        })
        .await;
    assert_eq!(c["valid"], serde_json::Value::Null, "{c}");
    assert!(c["pending"]["secret_changed"].is_string(), "{c}");
    let m = d.metrics().await;
    let me = cred("el-reload-fresh");
    for family in [
        "credwatch_credential_valid",
        "credwatch_permission_granted",
        "credwatch_elevenlabs_characters_used",
    ] {
        assert_eq!(
            sample(&m, family, &[&me]),
            None,
            "{family}:\n{}",
            lines_of(&m, "el-reload-fresh")
        );
    }
    d.stop().await;
}
