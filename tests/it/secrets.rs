//! No secret ever leaves credwatch: not in a log line (at trace level), a
//! label, a metric, an error message, `/health` or the landing page — also
//! not encoded as a Basic credential, and not the `auth_token` Twilio puts in
//! the account body.

use std::time::Duration;

use base64::Engine as _;
use credwatch::simulator::demo as d;
use credwatch::simulator::twilio::AUTH_TOKEN_SENTINEL;
use credwatch::simulator::{Fault, Simulator};

use crate::harness::{Daemon, logs};
use crate::support::{registered_secrets, sk_sid, tw_key_secret};

fn basic(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// Every secret of the demo world and of this module's extra credentials, in
/// every form it could leak in.
fn needles() -> Vec<String> {
    let mut secrets: Vec<String> = [
        d::EL_AGENT_PROD_KEY,
        d::EL_NO_CONVAI_WRITE_KEY,
        d::EL_REVOKED_KEY,
        d::EL_QUOTA_EXHAUSTED_KEY,
        d::EL_QUOTA_HIGH_KEY,
        d::EL_RESTRICTED_KEY,
        d::EL_BLOCKED_KEY,
        d::TWILIO_PROD_TOKEN,
        d::TWILIO_ROTATED_TOKEN,
        d::TWILIO_ROTATED_CURRENT_TOKEN,
        d::TWILIO_STANDARD_ACCOUNT_TOKEN,
        d::TWILIO_STANDARD_KEY_SECRET,
        d::TWILIO_TRIAL_TOKEN,
        d::TWILIO_SUSPENDED_TOKEN,
        AUTH_TOKEN_SENTINEL,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (user, password) in [
        (d::TWILIO_PROD_SID, d::TWILIO_PROD_TOKEN),
        (d::TWILIO_ROTATED_SID, d::TWILIO_ROTATED_TOKEN),
        (d::TWILIO_STANDARD_KEY_SID, d::TWILIO_STANDARD_KEY_SECRET),
        (d::TWILIO_TRIAL_SID, d::TWILIO_TRIAL_TOKEN),
        (d::TWILIO_SUSPENDED_SID, d::TWILIO_SUSPENDED_TOKEN),
    ] {
        secrets.push(basic(user, password));
    }
    secrets.push(basic(&sk_sid("main-key"), &tw_key_secret("main-key")));
    secrets.push(basic(
        &sk_sid("restricted-key"),
        &tw_key_secret("restricted-key"),
    ));
    // Everything any scenario of this binary configured so far.
    secrets.extend(registered_secrets());
    secrets.sort();
    secrets.dedup();
    secrets
}

fn leaks(haystack: &str, needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for n in needles {
        for (i, line) in haystack.lines().enumerate() {
            if line.contains(n.as_str()) {
                found.push(format!("`{n}` on line {}: {line}", i + 1));
                break;
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_appears_in_logs_metrics_health_or_errors_even_when_upstream_misbehaves() {
    let sim = Simulator::start(crate::upstream_safety::world())
        .await
        .expect("simulator");
    let yaml = crate::upstream_safety::config(&sim);
    let dm = Daemon::start(&yaml).await;
    dm.wait_ready(Duration::from_secs(30)).await;
    // Let the details (account bodies with their auth_token) be read.
    crate::support::wait_sample(
        &dm,
        Duration::from_secs(20),
        "credwatch_twilio_account_info",
        &["credential=\"twilio-prod\""],
        |_| true,
    )
    .await;

    // Now make upstream misbehave in every way that gets logged.
    sim.update(|w| {
        let el = &mut w.elevenlabs;
        el.key_mut(d::EL_QUOTA_HIGH_KEY).unwrap().fault = Some(Fault::WrongTypes);
        el.key_mut(d::EL_NO_CONVAI_WRITE_KEY).unwrap().fault = Some(Fault::ResetMidBody);
        el.key_mut(d::EL_RESTRICTED_KEY).unwrap().fault = Some(Fault::CloudflareHtml);
        el.key_mut(d::EL_QUOTA_EXHAUSTED_KEY).unwrap().fault = Some(Fault::Hang);
        el.key_mut(d::EL_BLOCKED_KEY).unwrap().fault = Some(Fault::Redirect {
            location: format!("http://127.0.0.1:9/?key={}", d::EL_BLOCKED_KEY),
        });
        let tw = &mut w.twilio;
        tw.account_mut(d::TWILIO_TRIAL_SID).unwrap().fault = Some(Fault::MalformedJson);
        tw.account_mut(d::TWILIO_STANDARD_ACCOUNT_SID)
            .unwrap()
            .fault = Some(Fault::InvalidUtf8);
        tw.account_mut(d::TWILIO_SUSPENDED_SID).unwrap().fault = Some(Fault::Custom {
            status: 400,
            content_type: "application/json".into(),
            body: format!(
                "{{\"code\": 99999, \"message\": \"echo {}\", \"status\": 400}}",
                d::TWILIO_SUSPENDED_TOKEN
            ),
        });
    });
    for name in [
        "el-quota-high",
        "el-no-convai-write",
        "el-restricted",
        "el-quota-exhausted",
        "el-blocked",
        "twilio-trial-low-balance",
        "twilio-standard-key",
        "twilio-suspended",
    ] {
        dm.wait_for(name, Duration::from_secs(20), |c| {
            !c["check_error"].is_null()
        })
        .await;
    }

    // A reload that fails on a config holding secrets (swapped SID and token).
    let good = std::fs::read_to_string(dm.config_path()).expect("config");
    std::fs::write(
        dm.config_path(),
        format!(
            "{good}  - name: twilio-swapped\n    account_sid: {}\n    auth_token: {}\n",
            d::TWILIO_PROD_TOKEN,
            d::TWILIO_PROD_SID
        ),
    )
    .expect("write config");
    let reload = dm
        .client
        .post(format!("{}/-/reload", dm.url))
        .send()
        .await
        .expect("reload");
    assert_eq!(reload.status(), 500);
    let reload_error = reload.text().await.expect("body");
    assert_eq!(reload_error, credwatch::server::RELOAD_FAILED);

    let mut bodies = vec![
        ("POST /-/reload", reload_error),
        ("/metrics", dm.metrics().await),
        ("/health", dm.get("/health").await.1),
        ("/health?verbose=1", dm.get("/health?verbose=1").await.1),
        ("/", dm.get("/").await.1),
    ];
    let (_, h) = dm.health().await;
    for c in h["credentials"].as_array().expect("credentials") {
        let name = c["name"].as_str().expect("name");
        bodies.push((
            "/health?credential=",
            dm.get(&format!("/health?credential={name}")).await.1,
        ));
    }
    dm.stop().await;

    let needles = needles();
    let mut found = Vec::new();
    for (what, body) in &bodies {
        for leak in leaks(body, &needles) {
            found.push(format!("{what}: {leak}"));
        }
    }
    let logs = logs();
    // The capture works, and it saw the trouble.
    assert!(logs.contains("no definitive answer"), "no error was logged");
    assert!(
        logs.contains("configuration reload failed") && logs.contains("swapped"),
        "the failed reload's detail is in the log"
    );
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "not at trace level"
    );
    for leak in leaks(&logs, &needles) {
        found.push(format!("log: {leak}"));
    }
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}
