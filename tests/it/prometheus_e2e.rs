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

/// The whole test must finish within this (from the start of the test).
const DEADLINE: Duration = Duration::from_secs(90);
/// The `for:` every rule gets in the test copy of the rules.
const TEST_FOR: &str = "5s";

/// Exactly the alerts the demo must fire: (alertname, credential, severity).
/// Every demo credential is critical, so the templated severities are
/// `critical` for what is broken and `warning` for early warnings.
/// Nothing else may be pending or firing: no alert for el-restricted,
/// twilio-prod, twilio-standard-key, only the imported number that is not on
/// the linked Twilio account for el-agent-prod, and none of the alerts
/// without a credential (CredwatchDown, CredwatchConfigReloadFailed,
/// CredwatchProviderChecksFailing), nor CredwatchChecksFailing,
/// CredwatchCredentialRotated, CredwatchCredentialInvalidAfterRotation (the
/// demo rotates nothing), nor the forecasts (the demo's numbers are steady).
/// (alert, credential or call path, severity).
const EXPECTED_ALERTS: [(&str, &str, &str); 15] = [
    ("CredwatchCredentialInvalid", "el-revoked", "critical"),
    (
        "CredwatchCredentialInvalid",
        "twilio-rotated-token",
        "critical",
    ),
    (
        "CredwatchPermissionMissing",
        "el-no-convai-write",
        "critical",
    ),
    ("CredwatchQuotaExhausted", "el-quota-exhausted", "critical"),
    ("CredwatchQuotaHigh", "el-quota-high", "warning"),
    ("CredwatchAccountBlocked", "el-blocked", "critical"),
    ("CredwatchAccountBlocked", "twilio-suspended", "critical"),
    // Per account: the Account SID, not the credential's name.
    (
        "CredwatchTwilioBalanceLow",
        credwatch_sim::demo::TWILIO_TRIAL_SID,
        "warning",
    ),
    // phnum_demo_legacy_line is not on twilio-prod (not_on_twilio_account).
    ("CredwatchPhoneNumberNotReady", "el-agent-prod", "critical"),
    // Every demo call path but sales-outbound is broken on purpose, and not critical.
    ("CredwatchCallPathBroken", "agent-deleted", "warning"),
    (
        "CredwatchCallPathBroken",
        "number-not-on-account",
        "warning",
    ),
    ("CredwatchCallPathBroken", "number-without-voice", "warning"),
    ("CredwatchCallPathBroken", "country-blocked", "warning"),
    (
        "CredwatchCallPathBroken",
        "token-rotated-since-import",
        "warning",
    ),
    (
        "CredwatchCallPathBroken",
        "twilio-token-rejected",
        "warning",
    ),
];

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
        EXPECTED_ALERTS.len(),
        fired_after,
        start.elapsed()
    );
}

// --- Checks --------------------------------------------------------------------

/// `Ok(Done)` when the condition holds, `Ok(NotYet)` to poll again, `Err` to
/// fail at once (something was seen that must never be).
enum Poll<T> {
    Done(T),
    NotYet(String),
}

/// The series of the demo in Prometheus, with their values per credential.
async fn check_series(p: &Prom) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut expect = |what: String, ok: bool| {
        if !ok {
            problems.push(what);
        }
    };
    // The demo's cast: every credential, and the unhealthy ones with their
    // `credwatch_credential_problem_info` reason.
    let cast: Vec<&credwatch_sim::demo::CastMember> = credwatch_sim::demo::cast().collect();
    let broken: BTreeMap<&str, &str> = cast
        .iter()
        .filter_map(|c| Some((c.name, c.reason?)))
        .collect();
    let all: BTreeSet<String> = cast.iter().map(|c| c.name.to_string()).collect();

    // One value per credential, for every credential.
    let per_credential = |rows: &[Row]| -> BTreeMap<String, f64> {
        rows.iter()
            .map(|r| (r.label("credential"), r.value))
            .collect()
    };
    let valid = per_credential(
        &p.query(r#"credwatch_credential_valid{job="credwatch"}"#)
            .await?,
    );
    let want: BTreeMap<String, f64> = all
        .iter()
        .map(|c| {
            let v = matches!(broken.get(c.as_str()), Some(&"invalid_credentials"));
            (c.to_string(), if v { 0.0 } else { 1.0 })
        })
        .collect();
    expect(
        format!("credwatch_credential_valid: want {want:?}, got {valid:?}"),
        valid == want,
    );

    let healthy = per_credential(
        &p.query(r#"credwatch_credential_healthy{job="credwatch"}"#)
            .await?,
    );
    let want: BTreeMap<String, f64> = all
        .iter()
        .map(|c| {
            let h = if broken.contains_key(c.as_str()) {
                0.0
            } else {
                1.0
            };
            (c.to_string(), h)
        })
        .collect();
    expect(
        format!("credwatch_credential_healthy: want {want:?}, got {healthy:?}"),
        healthy == want,
    );

    for metric in [
        "credwatch_credential_info",
        "credwatch_credential_fingerprint_info",
        "credwatch_check_success",
        "credwatch_check_interval_seconds",
        "credwatch_last_success_timestamp_seconds",
    ] {
        let rows = p.query(&format!(r#"{metric}{{job="credwatch"}}"#)).await?;
        let got: BTreeSet<String> = rows.iter().map(|r| r.label("credential")).collect();
        expect(
            format!("{metric}: want a series for every credential {all:?}, got {got:?}"),
            got == all,
        );
    }
    let fingerprints = p
        .query(r#"credwatch_credential_fingerprint_info{job="credwatch"}"#)
        .await?;
    for r in &fingerprints {
        let f = r.label("fingerprint");
        expect(
            format!(
                "credwatch_credential_fingerprint_info: fingerprint {f:?} is not 12 hex digits"
            ),
            f.len() == 12 && f.chars().all(|c| c.is_ascii_hexdigit()),
        );
    }

    let problem: BTreeSet<(String, String)> = p
        .query(r#"credwatch_credential_problem_info{job="credwatch"} == 1"#)
        .await?
        .iter()
        .map(|r| (r.label("credential"), r.label("reason")))
        .collect();
    let want: BTreeSet<(String, String)> = broken
        .iter()
        .map(|(c, r)| (c.to_string(), r.to_string()))
        .collect();
    expect(
        format!("credwatch_credential_problem_info == 1: want {want:?}, got {problem:?}"),
        problem == want,
    );

    let permissions: BTreeMap<(String, String), f64> = p
        .query(r#"credwatch_permission_granted{job="credwatch"}"#)
        .await?
        .iter()
        .map(|r| ((r.label("credential"), r.label("permission")), r.value))
        .collect();
    for (c, perm, v) in [
        ("el-no-convai-write", "convai_write", 0.0),
        ("el-agent-prod", "convai_write", 1.0),
        ("el-agent-prod", "convai_read", 1.0),
    ] {
        expect(
            format!(
                "credwatch_permission_granted{{credential={c:?},permission={perm:?}}}: want {v}, got {permissions:?}"
            ),
            permissions.get(&(c.to_string(), perm.to_string())) == Some(&v),
        );
    }

    let used = per_credential(
        &p.query(r#"credwatch_elevenlabs_characters_used{job="credwatch"}"#)
            .await?,
    );
    for c in [
        "el-agent-prod",
        "el-no-convai-write",
        "el-quota-exhausted",
        "el-quota-high",
    ] {
        expect(
            format!("credwatch_elevenlabs_characters_used: no series for {c} ({used:?})"),
            used.contains_key(c),
        );
    }
    // A key without user_read: the quota is absent, not 0.
    expect(
        format!("credwatch_elevenlabs_characters_used: el-restricted must have none ({used:?})"),
        !used.contains_key("el-restricted"),
    );

    let balance = p
        .query(r#"credwatch_twilio_balance{job="credwatch"}"#)
        .await?;
    let bal: BTreeMap<String, (f64, String)> = balance
        .iter()
        .map(|r| (r.label("credential"), (r.value, r.label("currency"))))
        .collect();
    expect(
        format!("credwatch_twilio_balance: want twilio-prod 42.17 USD, got {bal:?}"),
        bal.get("twilio-prod") == Some(&(42.17, "USD".into())),
    );
    expect(
        format!("credwatch_twilio_balance: want twilio-trial-low-balance below 5, got {bal:?}"),
        bal.get("twilio-trial-low-balance")
            .is_some_and(|b| b.0 < 5.0),
    );
    expect(
        format!("credwatch_twilio_balance: want twilio-standard-key at or above 5, got {bal:?}"),
        bal.get("twilio-standard-key").is_some_and(|b| b.0 >= 5.0),
    );

    let accounts: BTreeMap<String, (String, String)> = p
        .query(r#"credwatch_twilio_account_info{job="credwatch"}"#)
        .await?
        .iter()
        .map(|r| (r.label("credential"), (r.label("status"), r.label("type"))))
        .collect();
    for (c, status) in [
        ("twilio-prod", "active"),
        ("twilio-trial-low-balance", "active"),
        ("twilio-suspended", "suspended"),
    ] {
        expect(
            format!("credwatch_twilio_account_info: want {c} status={status:?}, got {accounts:?}"),
            accounts.get(c).is_some_and(|a| a.0 == status),
        );
    }
    // A standard API key may not read the account.
    expect(
        format!("credwatch_twilio_account_info: twilio-standard-key must have none ({accounts:?})"),
        !accounts.contains_key("twilio-standard-key"),
    );

    let ready = p
        .query(r#"credwatch_elevenlabs_phone_number_ready{job="credwatch"}"#)
        .await?;
    let owners: BTreeSet<String> = ready.iter().map(|r| r.label("credential")).collect();
    expect(
        format!(
            "credwatch_elevenlabs_phone_number_ready: want series of el-agent-prod only, got {owners:?}"
        ),
        owners == BTreeSet::from(["el-agent-prod".to_string()]),
    );
    expect(
        format!(
            "credwatch_elevenlabs_phone_number_ready: no ready phnum_demo_support_line ({ready:?})"
        ),
        ready
            .iter()
            .any(|r| r.label("phone_number_id") == "phnum_demo_support_line" && r.value == 1.0),
    );

    let build = p.query(r#"credwatch_build_info{job="credwatch"}"#).await?;
    expect(
        format!(
            "credwatch_build_info: want one series with version {:?}, got {build:?}",
            env!("CARGO_PKG_VERSION")
        ),
        matches!(build.as_slice(), [b] if b.label("version") == env!("CARGO_PKG_VERSION")),
    );

    let up = p.query(r#"up{job="credwatch"}"#).await?;
    expect(
        format!("up{{job=\"credwatch\"}}: want 1, got {up:?}"),
        matches!(up.as_slice(), [u] if u.value == 1.0),
    );

    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "series not as expected:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Done when the alerts are exactly [`EXPECTED_ALERTS`], all firing, with the
/// expected labels and rendered annotations. Fails at once on an alert for any
/// other (alertname, credential), pending or firing, and on a firing alert
/// without a credential (CredwatchDown, CredwatchConfigReloadFailed); such an
/// alert merely pending is waited out (it must be gone by the end).
async fn check_alerts(p: &Prom, demo_addr: &str) -> Result<Poll<Value>, String> {
    let data = p
        .api("/api/v1/alerts", &[])
        .await
        .map_err(|e| e.to_string());
    let data = match data {
        Ok(d) => d,
        Err(e) => return Ok(Poll::NotYet(e)),
    };
    let alerts = data["alerts"].as_array().cloned().unwrap_or_default();
    let all = format!("{:#}", data["alerts"]);
    let expected: BTreeMap<(&str, &str), &str> = EXPECTED_ALERTS
        .iter()
        .map(|&(a, c, s)| ((a, c), s))
        .collect();
    let mut seen = BTreeMap::new();
    let mut not_yet = Vec::new();
    for a in &alerts {
        let name = a["labels"]["alertname"].as_str().unwrap_or("?");
        let state = a["state"].as_str().unwrap_or("?");
        // A per-account alert (quota, balance) is about its `account`, a
        // call-path alert about its `call_path`.
        let subject = a["labels"]["credential"]
            .as_str()
            .or_else(|| a["labels"]["account"].as_str())
            .or_else(|| a["labels"]["call_path"].as_str());
        let Some(cred) = subject else {
            if state == "firing" {
                return Err(format!(
                    "alert {name} without a credential or call path is firing; alerts: {all}"
                ));
            }
            not_yet.push(format!("{name} (no credential) is {state}"));
            continue;
        };
        let Some(severity) = expected.get(&(name, cred)) else {
            return Err(format!(
                "unexpected alert {name} for credential {cred} ({state}); expected exactly \
                 {EXPECTED_ALERTS:?}; alerts: {all}"
            ));
        };
        if seen.insert((name, cred), state).is_some() {
            return Err(format!(
                "alert {name} for {cred} appears twice; alerts: {all}"
            ));
        }
        let labels = &a["labels"];
        let mut wrong = Vec::new();
        if labels["severity"] != *severity {
            wrong.push(format!("severity {} (want {severity})", labels["severity"]));
        }
        if labels["job"] != "credwatch" || labels["instance"] != demo_addr {
            wrong.push(format!(
                "job/instance {}/{} (want credwatch/{demo_addr})",
                labels["job"], labels["instance"]
            ));
        }
        for (k, v) in a["annotations"].as_object().into_iter().flatten() {
            let v = v.as_str().unwrap_or("");
            if v.contains("error expanding template")
                || v.contains("<no value>")
                || v.trim().is_empty()
            {
                wrong.push(format!("annotation {k}: {v:?}"));
            }
        }
        let anchor = format!("docs/runbooks.md#{}", name.to_lowercase());
        if !a["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&anchor))
        {
            wrong.push(format!(
                "runbook_url {} (want …{anchor})",
                a["annotations"]["runbook_url"]
            ));
        }
        if name == "CredwatchPhoneNumberNotReady"
            && labels["phone_number_id"] != "phnum_demo_legacy_line"
        {
            wrong.push(format!(
                "phone_number_id {} (want phnum_demo_legacy_line)",
                labels["phone_number_id"]
            ));
        }
        if !a["annotations"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains(cred))
        {
            wrong.push(format!(
                "summary does not name the credential: {}",
                a["annotations"]["summary"]
            ));
        }
        if !wrong.is_empty() {
            return Err(format!(
                "alert {name} for {cred}: {}; alert: {a:#}",
                wrong.join("; ")
            ));
        }
        if state != "firing" {
            not_yet.push(format!("{name} for {cred} is {state}"));
        }
    }
    for &(name, cred, _) in &EXPECTED_ALERTS {
        if !seen.contains_key(&(name, cred)) {
            not_yet.push(format!("{name} for {cred} is absent"));
        }
    }
    if not_yet.is_empty() {
        Ok(Poll::Done(Value::Array(alerts)))
    } else {
        Ok(Poll::NotYet(format!(
            "alerts not (yet) as expected:\n  {}\nalerts: {all}",
            not_yet.join("\n  ")
        )))
    }
}

/// The rules Prometheus runs: the committed file's alerts, each with `for: 5s`.
async fn check_loaded_rules(p: &Prom, root: &Path) {
    let committed: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("deploy/prometheus/credwatch-rules.yml"))
            .expect("read deploy/prometheus/credwatch-rules.yml"),
    )
    .expect("deploy/prometheus/credwatch-rules.yml is YAML");
    let mut want = BTreeSet::new();
    for g in committed["groups"].as_sequence().into_iter().flatten() {
        for r in g["rules"].as_sequence().into_iter().flatten() {
            if let Some(a) = r["alert"].as_str() {
                want.insert(a.to_string());
            }
        }
    }
    for (a, _, _) in EXPECTED_ALERTS {
        assert!(
            want.contains(a),
            "expected alert {a} is not in deploy/prometheus/credwatch-rules.yml"
        );
    }
    let rules = p
        .api("/api/v1/rules", &[("type", "alert")])
        .await
        .unwrap_or_else(|e| panic!("/api/v1/rules: {e}"));
    let mut got = BTreeSet::new();
    for g in rules["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or("?").to_string();
            let for_secs = r["duration"].as_f64().unwrap_or(-1.0);
            assert!(
                for_secs == 0.0 || for_secs == 5.0,
                "rule {name} loaded with for: {for_secs}s, want 5s (or none): {r:#}"
            );
            assert!(
                r["health"] != "err",
                "rule {name} is unhealthy in Prometheus: {r:#}"
            );
            got.insert(name);
        }
    }
    assert_eq!(
        got, want,
        "Prometheus loaded other alerts than deploy/prometheus/credwatch-rules.yml has"
    );
}

/// The shortened copy of the committed rules (scripts/rules-for-test.sh), and a
/// check that it differs from the committed file in `for:` lines only.
fn write_test_rules(root: &Path, out: &Path) {
    let o = Command::new("bash")
        .arg(root.join("scripts/rules-for-test.sh"))
        .arg(out)
        .arg(TEST_FOR)
        .env_remove("RULES")
        .current_dir(root)
        .output()
        .expect("run scripts/rules-for-test.sh");
    assert!(
        o.status.success(),
        "scripts/rules-for-test.sh failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let committed = std::fs::read_to_string(root.join("deploy/prometheus/credwatch-rules.yml"))
        .expect("read the committed rules");
    let copy = std::fs::read_to_string(out).expect("read the shortened rules");
    let (c, t): (Vec<&str>, Vec<&str>) = (committed.lines().collect(), copy.lines().collect());
    assert_eq!(
        c.len(),
        t.len(),
        "scripts/rules-for-test.sh changed the number of lines"
    );
    let mut fors = 0;
    for (i, (a, b)) in c.iter().zip(&t).enumerate() {
        if a != b {
            let is_for = a.trim_start().starts_with("for:")
                && b.trim() == format!("for: {TEST_FOR}")
                && a.len() - a.trim_start().len() == b.len() - b.trim_start().len();
            assert!(
                is_for,
                "scripts/rules-for-test.sh changed line {} beyond its `for:`:\n  {a}\n  {b}",
                i + 1
            );
            fors += 1;
        }
    }
    assert!(fors > 0, "scripts/rules-for-test.sh shortened no `for:`");
}

/// `(panel title [refId], expression)` of every dashboard query, variables substituted.
fn dashboard_queries(root: &Path) -> Vec<(String, String)> {
    let o = Command::new("python3")
        .arg(root.join("scripts/dashboard-queries.py"))
        .arg("--with-titles")
        .current_dir(root)
        .output()
        .expect("run python3 scripts/dashboard-queries.py");
    assert!(
        o.status.success(),
        "scripts/dashboard-queries.py failed ({}):\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let queries: Vec<(String, String)> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once('\t') {
            Some((t, q)) => (t.to_string(), q.to_string()),
            None => panic!("scripts/dashboard-queries.py: line without a title: {l}"),
        })
        .collect();
    assert!(
        queries.len() >= 10,
        "scripts/dashboard-queries.py printed only {} queries",
        queries.len()
    );
    queries
}

/// Runs `promtool check metrics` with `scrape` on stdin: (exit success, stdout+stderr).
fn promtool_check_metrics(scrape: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool check metrics");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = scrape.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let o = child.wait_with_output().expect("promtool check metrics");
    writer
        .join()
        .expect("writer thread")
        .expect("write the scrape to promtool");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

// --- Prometheus' HTTP API ----------------------------------------------------------

struct Prom {
    client: reqwest::Client,
    url: String,
}

/// One sample of an instant-query result.
#[derive(Debug)]
struct Row {
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Row {
    fn label(&self, name: &str) -> String {
        self.labels.get(name).cloned().unwrap_or_default()
    }
}

impl Prom {
    /// `data` of a successful API answer.
    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let url = url::Url::parse_with_params(&format!("{}{path}", self.url), params)
            .map_err(|e| format!("{path}: {e}"))?;
        let (status, body) = get(&self.client, url.as_str()).await?;
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("{path}: HTTP {status}, not JSON ({e}): {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("{path} {params:?}: HTTP {status}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// An instant query's vector (or scalar) result.
    async fn query(&self, q: &str) -> Result<Vec<Row>, String> {
        let data = self.api("/api/v1/query", &[("query", q)]).await?;
        let parse = |v: &Value| -> Option<f64> { v[1].as_str()?.parse().ok() };
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Row {
                    labels: s["metric"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .collect(),
                    value: parse(&s["value"]).unwrap_or(f64::NAN),
                })
                .collect()),
            Some("scalar") => Ok(parse(&data["result"])
                .map(|value| Row {
                    labels: BTreeMap::new(),
                    value,
                })
                .into_iter()
                .collect()),
            _ => Err(format!("query {q}: unexpected result {data}")),
        }
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let r = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    Ok((status, body))
}

async fn post(client: &reqwest::Client, url: &str) -> Result<(u16, String), String> {
    let r = client
        .post(url)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = r.status().as_u16();
    let body = r.text().await.map_err(|e| format!("POST {url}: {e}"))?;
    Ok((status, body))
}

/// Polls `f` every 250ms until it is done, fails, or the deadline passes.
async fn poll<T, F, Fut>(deadline: Instant, what: &str, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Poll<T>, String>>,
{
    loop {
        let last = match f().await {
            Ok(Poll::Done(v)) => return Ok(v),
            Ok(Poll::NotYet(e)) => e,
            Err(e) => return Err(format!("while waiting for {what}: {e}")),
        };
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}; last state:\n{last}"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// For checks that only ever say "not yet": `Err` means poll again.
fn retry(r: Result<(), String>) -> Result<Poll<()>, String> {
    Ok(match r {
        Ok(()) => Poll::Done(()),
        Err(e) => Poll::NotYet(e),
    })
}

// --- Processes -------------------------------------------------------------------

/// A child process, killed on drop, with its output in a log file.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Proc {
        let out = File::create(log).expect("create log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name,
            child,
            log: log.to_path_buf(),
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of its output, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("--- last output of {} ---\n{tail}", self.name)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `url` to answer 200, failing early if the process exits.
async fn wait_http_ok(client: &reqwest::Client, p: &mut Proc, url: &str, deadline: Instant) {
    loop {
        if let Some(status) = p.exited() {
            panic!(
                "{} exited ({status}) before {url} answered\n{}",
                p.name,
                p.log_tail()
            );
        }
        let last = match get(client, url).await {
            Ok((200, _)) => return,
            Ok((status, body)) => format!("HTTP {status}: {body}"),
            Err(e) => e,
        };
        assert!(
            Instant::now() < deadline,
            "{} did not answer 200 on {url} in time; last: {last}\n{}",
            p.name,
            p.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}
