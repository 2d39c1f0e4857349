//! Quota and balance once per account: two ElevenLabs keys of one workspace
//! (`account:`) and two Twilio credentials of one Account SID export their
//! account's series once, labelled `account`, so an exhausted workspace or
//! an empty balance pages once, not once per key. The per-credential
//! series stay. A rejected key does not hold its account's series.

use std::time::Duration;

use credwatch_sim::{ElAccount, ElKey, Simulator, TwilioAccount, World};

use crate::harness::Daemon;
use crate::support::{
    FAST, ac_sid, config, el, el_key, tw, tw_token, wait_sample, wait_status, wait_verdict,
};

fn lines<'a>(metrics: &'a str, family: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_workspace_and_one_twilio_account_export_their_series_once() {
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-shared"));
    for k in ["shared-a", "shared-b"] {
        world
            .elevenlabs
            .add_key(el_key(k), ElKey::new(format!("key-{k}"), "ws-shared"));
    }
    let sid = ac_sid("shared");
    let token = tw_token("shared");
    world
        .twilio
        .add_account(TwilioAccount::new(&sid, &token).with_balance(Some("42.17"), "USD"));
    let sim = Simulator::start(world).await.expect("simulator");
    let shared = "    account: ws-shared\n";
    let yaml = config(
        FAST,
        &[
            // Listed first, rejected: it must not hold the workspace's series.
            el(
                "el-revoked",
                &el_key("never-issued"),
                &sim.elevenlabs_url(),
                shared,
            ),
            el("el-a", &el_key("shared-a"), &sim.elevenlabs_url(), shared),
            el("el-b", &el_key("shared-b"), &sim.elevenlabs_url(), shared),
        ],
        &[
            tw("tw-1", &sid, &token, &sim.twilio_url(), ""),
            tw("tw-2", &sid, &token, &sim.twilio_url(), ""),
        ],
    );
    let d = Daemon::start(&yaml).await;
    for name in ["el-a", "el-b", "tw-1", "tw-2"] {
        wait_status(&d, name, "healthy").await;
    }
    let revoked = wait_verdict(&d, "el-revoked").await;
    assert_eq!(revoked["reason"], "invalid_credentials", "{revoked}");
    wait_sample(
        &d,
        Duration::from_secs(20),
        "credwatch_twilio_account_balance",
        &[&format!("account=\"{sid}\"")],
        |v| v == 42.17,
    )
    .await;
    let m = d.metrics().await;

    assert_eq!(
        lines(&m, "credwatch_elevenlabs_account_characters_used"),
        [
            "credwatch_elevenlabs_account_characters_used{provider=\"elevenlabs\",account=\"ws-shared\"} 1000"
        ],
        "{m}"
    );
    assert_eq!(
        lines(&m, "credwatch_elevenlabs_account_characters_limit").len(),
        1,
        "{m}"
    );
    // Each key keeps its own series, as before.
    assert_eq!(
        lines(&m, "credwatch_elevenlabs_characters_used").len(),
        2,
        "{m}"
    );
    assert_eq!(
        lines(&m, "credwatch_twilio_account_balance"),
        [format!(
            "credwatch_twilio_account_balance{{provider=\"twilio\",account=\"{sid}\",currency=\"USD\"}} 42.17"
        )],
        "{m}"
    );
    assert_eq!(lines(&m, "credwatch_twilio_balance").len(), 2, "{m}");
    // credential_info ties each credential to its account, for joins.
    for (name, account) in [
        ("el-a", "ws-shared"),
        ("el-revoked", "ws-shared"),
        ("tw-2", sid.as_str()),
    ] {
        assert!(
            lines(&m, "credwatch_credential_info")
                .iter()
                .any(|l| l.contains(&format!("credential=\"{name}\""))
                    && l.contains(&format!("account=\"{account}\""))),
            "{name}: {m}"
        );
    }
    d.stop().await;
}
