//! `credwatch demo`'s world: every kind of credential ends in the documented verdict.

use std::time::Duration;

use credwatch_sim::{Simulator, World};

use crate::harness::{Daemon, sample};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_world_shows_healthy_and_broken_credentials_of_both_providers() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let yaml = credwatch_sim::demo::config_yaml(&sim);
    let d = Daemon::start(&yaml).await;
    d.wait_ready(Duration::from_secs(15)).await;

    let (status, health) = d.health().await;
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "fail");
    for member in credwatch_sim::demo::cast() {
        let name = member.name;
        let c = d.credential(name).await;
        assert_eq!(c["status"], member.status, "{name}: {c}");
        assert_eq!(c["reason"].as_str(), member.reason, "{name}: {c}");
    }

    let m = d.metrics().await;
    assert_eq!(
        sample(&m, "credwatch_credential_valid", &["el-revoked"]),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "credwatch_credential_valid", &["\"el-restricted\""]),
        Some(1.0)
    );
    // A restricted key without user_read: valid, but the quota is absent, not 0.
    assert_eq!(
        sample(
            &m,
            "credwatch_elevenlabs_characters_used",
            &["\"el-restricted\""]
        ),
        None
    );
    // Its workspace's quota is there once, from a key that may read it, for
    // the three keys of workspace-prod.
    let workspace: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("credwatch_elevenlabs_account_characters_used{"))
        .filter(|l| l.contains("account=\"workspace-prod\""))
        .collect();
    assert_eq!(workspace.len(), 1, "{m}");
    assert_eq!(
        sample(
            &m,
            "credwatch_permission_granted",
            &["el-no-convai-write", "convai_write"]
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "credwatch_twilio_balance",
            &["twilio-prod", "currency=\"USD\""]
        ),
        Some(42.17)
    );
    assert_eq!(
        sample(&m, "credwatch_twilio_phone_numbers", &["twilio-prod"]),
        Some(3.0)
    );
    // A standard key may not read the account: its status is absent, and the credential stays healthy.
    assert_eq!(
        sample(
            &m,
            "credwatch_twilio_account_info",
            &["twilio-standard-key"]
        ),
        None
    );
    assert_eq!(
        sample(&m, "credwatch_credential_healthy", &["twilio-standard-key"]),
        Some(1.0)
    );
    assert!(
        sample(
            &m,
            "credwatch_twilio_account_info",
            &["twilio-suspended", "status=\"suspended\""]
        )
        .is_some()
    );
    assert!(sample(&m, "credwatch_build_info", &[]).is_some());

    assert!(
        sim.forbidden_requests().is_empty(),
        "forbidden requests: {:?}",
        sim.forbidden_requests()
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_name_credwatch_and_never_accept_compression() {
    let sim = Simulator::start(World::demo()).await.expect("simulator");
    let yaml = credwatch_sim::demo::config_yaml(&sim);
    let d = Daemon::start(&yaml).await;
    d.wait_ready(Duration::from_secs(15)).await;
    let requests = sim.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        let ua = r.header("user-agent").unwrap_or("");
        assert!(
            ua.starts_with(&format!("credwatch/{}", env!("CARGO_PKG_VERSION"))),
            "{ua}"
        );
        // No compression is negotiated, so a compression bomb cannot be sent our way.
        assert_eq!(r.header("accept-encoding"), None, "{:?}", r.headers);
        assert_eq!(r.method, "GET");
    }
    d.stop().await;
}

/// The README's table of the demo's credentials says what the cast says:
/// each credential, in order, `healthy` or `unhealthy` with its reason.
#[test]
fn the_readme_lists_the_demo_credentials() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split("| credential | verdict |")
        .nth(1)
        .expect("the README has the demo's credential table");
    let mut rows = Vec::new();
    for line in table.lines().skip(2) {
        let Some(rest) = line.strip_prefix("| `") else {
            break;
        };
        let (name, verdict) = rest.split_once("` | ").expect("two columns");
        // `healthy; …`, `healthy, …` or `unhealthy, `reason` …`.
        let status = verdict
            .split([';', ',', ' '])
            .next()
            .unwrap_or("")
            .to_string();
        let reason = match verdict.strip_prefix("unhealthy, `") {
            Some(r) => r.split('`').next().map(str::to_string),
            None => None,
        };
        rows.push((name.to_string(), status, reason));
    }
    let want: Vec<(String, String, Option<String>)> = credwatch_sim::demo::cast()
        .map(|c| {
            (
                c.name.to_string(),
                c.status.to_string(),
                c.reason.map(str::to_string),
            )
        })
        .collect();
    assert_eq!(rows, want);
}
