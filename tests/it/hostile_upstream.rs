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
    // 100 kB each, with a forged metric line, CR/LF and ANSI escapes.
    let evil = format!(
        "pro\r\ncredwatch_credential_healthy{{credential=\"forged\"}} 1\n\u{1b}[2J\u{1b}[31m{}",
        "A".repeat(100_000)
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
