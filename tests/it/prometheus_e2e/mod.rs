//! End to end against a real Prometheus: the built `credwatch demo` binary is
//! scraped by `prometheus` (1s scrape and evaluation intervals) loaded with the
//! committed alerting rules (every `for:` shortened to 5s by
//! `scripts/rules-for-test.sh`), and the test checks, through Prometheus' HTTP
//! API, that the target is up, the expected series exist for the right
//! credentials, exactly the expected alerts fire (and nothing for the healthy
//! credentials), and every query of the Grafana dashboard returns data.
//! `promtool check metrics` must find nothing wrong with a live scrape.
//!
//! Needs `prometheus`, `promtool` and `python3` on PATH: run
//! `scripts/install-prometheus.sh` (scripts/test does). The test fails, never
//! skips, without them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::tempdir::TempDir;

mod checks;
mod prom;

use checks::*;
use prom::*;

/// The whole test must finish within this (from the start of the test).
const DEADLINE: Duration = Duration::from_secs(90);
/// The `for:` every rule gets in the test copy of the rules.
const TEST_FOR: &str = "5s";

/// Exactly the alerts the demo must fire: (alertname, credential or call
/// path, severity). Each demo credential's come from its cast
/// (`CastMember::alerts`); every demo call path but sales-outbound is broken
/// on purpose, and not critical, so each broken one fires
/// CredwatchCallPathBroken with `warning`. Nothing else may be pending or
/// firing: none of the alerts without a credential (CredwatchDown,
/// CredwatchConfigReloadFailed, CredwatchProviderChecksFailing), nor
/// CredwatchChecksFailing, CredwatchCredentialRotated,
/// CredwatchCredentialInvalidAfterRotation (the demo rotates nothing), nor
/// the forecasts (the demo's numbers are steady).
fn expected_alerts() -> Vec<(&'static str, &'static str, &'static str)> {
    let credentials = credwatch_sim::demo::cast().flat_map(|c| {
        c.alerts
            .iter()
            .map(|a| (a.alert, a.on.unwrap_or(c.name), a.severity))
    });
    let paths = credwatch_sim::demo::CALL_PATHS
        .iter()
        .filter(|p| p.status == "broken")
        .map(|p| ("CredwatchCallPathBroken", p.name, "warning"));
    credentials.chain(paths).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_scrapes_the_demo_fires_the_expected_alerts_and_fills_the_dashboard() {
    let start = Instant::now();
    let deadline = start + DEADLINE;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // 1. The tools: fail (never skip) without them.
    let missing: Vec<&str> = ["prometheus", "promtool", "python3"]
        .into_iter()
        .filter(|t| on_path(t).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{missing:?} not found on PATH: the Prometheus end-to-end test needs prometheus and \
         promtool (run `bash scripts/install-prometheus.sh`, as root or with sudo; \
         scripts/test does it) and python3"
    );

    // Declared first, dropped last: the processes below are killed before
    // their directory is removed.
    let tmp = TempDir::new();
    credwatch::providers::http::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");

    // 2. The built binary's demo.
    let demo_addr = format!("127.0.0.1:{}", free_port());
    let mut demo = Proc::spawn(
        "credwatch demo",
        Command::new(env!("CARGO_BIN_EXE_credwatch"))
            .args(["demo", "--web.listen-address", &demo_addr])
            .env("NO_COLOR", "1"),
        &tmp.path().join("credwatch.log"),
    );
    let demo_url = format!("http://{demo_addr}");
    for path in ["/livez", "/readyz"] {
        wait_http_ok(&client, &mut demo, &format!("{demo_url}{path}"), deadline).await;
    }

    // 3. promtool check metrics on a live scrape reports nothing.
    let (status, scrape) = get(&client, &format!("{demo_url}/metrics"))
        .await
        .unwrap_or_else(|e| panic!("scraping the demo: {e}\n{}", demo.log_tail()));
    assert_eq!(status, 200, "/metrics: {scrape}");
    let (ok, report) = promtool_check_metrics(&scrape);
    assert!(
        ok && report.trim().is_empty(),
        "`promtool check metrics` must report nothing on credwatch's /metrics (exit ok: {ok}); \
         it reports:\n{report}"
    );

    // 4. A real Prometheus, first without rules: it only starts scraping a few
    // seconds after start-up (the scrape manager applies targets every 5s), and
    // with `for: 5s` the `absent(up{job=~".*credwatch.*"})` of CredwatchDown
    // would fire in the meantime. The committed rules, every `for:` shortened,
    // are loaded (reload) once the target is up.
    let rules = tmp.path().join("credwatch-rules.yml");
    write_test_rules(root, &rules);
    let config = tmp.path().join("prometheus.yml");
    let write_config = |rules: Option<&Path>| {
        let rule_files = match rules {
            Some(r) => format!("rule_files:\n  - {}\n", r.display()),
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 {rule_files}\
                 scrape_configs:\n  - job_name: credwatch\n    static_configs:\n      - targets: ['{demo_addr}']\n"
            ),
        )
        .expect("write prometheus.yml");
    };
    write_config(None);
    let prom_addr = format!("127.0.0.1:{}", free_port());
    let mut prometheus = Proc::spawn(
        "prometheus",
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .args([
                "--storage.tsdb.retention.time=1h",
                "--web.max-connections=16",
                "--query.max-concurrency=4",
                "--log.level=info",
                "--web.enable-lifecycle",
            ])
            .env("GOMAXPROCS", "2"),
        &tmp.path().join("prometheus.log"),
    );
    let prom = Prom {
        client: client.clone(),
        url: format!("http://{prom_addr}"),
    };
    wait_http_ok(
        &client,
        &mut prometheus,
        &format!("{}/-/ready", prom.url),
        deadline,
    )
    .await;
    let context = |prometheus: &Proc, demo: &Proc| -> String {
        format!("{}\n{}", prometheus.log_tail(), demo.log_tail())
    };

    // 5a. The target is up.
    poll(deadline, "the credwatch target to be up", || async {
        retry(
            async {
                let targets = prom.api("/api/v1/targets", &[]).await?;
                let active = targets["activeTargets"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let ours: Vec<&Value> = active
                    .iter()
                    .filter(|t| t["labels"]["job"] == "credwatch")
                    .collect();
                match ours.as_slice() {
                    [t] if t["health"] == "up" && t["labels"]["instance"] == demo_addr.as_str() => {
                        Ok(())
                    }
                    _ => Err(format!("targets: {targets:#}")),
                }
            }
            .await,
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", context(&prometheus, &demo)));

    // 5b. The expected series, for the right credentials.
    poll(deadline, "the expected series", || async {
        retry(check_series(&prom).await)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", context(&prometheus, &demo)));

    // Now the rules; the ones Prometheus loaded are the committed ones.
    write_config(Some(&rules));
    let (status, body) = post(&client, &format!("{}/-/reload", prom.url))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", context(&prometheus, &demo)));
    assert_eq!(
        status,
        200,
        "reloading Prometheus with the rules failed: {body}\n{}",
        context(&prometheus, &demo)
    );
    check_loaded_rules(&prom, root).await;

    // 5c. Exactly the expected alerts reach `firing`; none is ever seen
    // (pending or firing) for another credential.
    let alerts = poll(deadline, "the expected alerts to fire", || {
        check_alerts(&prom, &demo_addr)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", context(&prometheus, &demo)));
    let fired_after = start.elapsed();
    let fired_at = Instant::now();

    // 5d. Every dashboard query returns data. Every series has been there for
    // several seconds by now (rate() and increase() need two samples): a query
    // still empty after 20 more seconds will stay empty.
    let queries = dashboard_queries(root);
    let within = deadline.min(Instant::now() + Duration::from_secs(20));
    poll(within, "every dashboard query to return data", || async {
        retry(
            async {
                let mut failing = Vec::new();
                for (panel, q) in &queries {
                    match prom.query(q).await {
                        Ok(r) if !r.is_empty() => {}
                        Ok(_) => failing.push(format!("  panel {panel:?}: no data for\n    {q}")),
                        Err(e) => failing.push(format!("  panel {panel:?}: {e}\n    {q}")),
                    }
                }
                if failing.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "{} of {} dashboard queries return nothing:\n{}",
                        failing.len(),
                        queries.len(),
                        failing.join("\n")
                    ))
                }
            }
            .await,
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", context(&prometheus, &demo)));

    // Still exactly the expected alerts, a few evaluations later.
    let settle = Duration::from_secs(3).saturating_sub(fired_at.elapsed());
    tokio::time::sleep(settle).await;
    match check_alerts(&prom, &demo_addr).await {
        Ok(Poll::Done(_)) => {}
        Ok(Poll::NotYet(e)) | Err(e) => panic!(
            "the alerts changed after all had fired (then: {alerts:#}):\n{e}\n{}",
            context(&prometheus, &demo)
        ),
    }

    assert!(
        demo.exited().is_none() && prometheus.exited().is_none(),
        "a process exited during the test\n{}",
        context(&prometheus, &demo)
    );
    eprintln!(
        "prometheus e2e: {} dashboard queries with data, {} alerts firing after {:.1?}, total {:.1?}",
        queries.len(),
        expected_alerts().len(),
        fired_after,
        start.elapsed()
    );
}
