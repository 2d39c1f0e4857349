//! What the test asks of Prometheus: the demo's series, exactly the
//! expected alerts, the loaded rules, every dashboard query; and the test
//! copy of the rules, `promtool check metrics` on a scrape.

use super::*;

/// `Ok(Done)` when the condition holds, `Ok(NotYet)` to poll again, `Err` to
/// fail at once (something was seen that must never be).
pub(crate) enum Poll<T> {
    Done(T),
    NotYet(String),
}

/// The series of the demo in Prometheus, with their values per credential.
pub(crate) async fn check_series(p: &Prom) -> Result<(), String> {
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

/// Done when the alerts are exactly [`expected_alerts`], all firing, with the
/// expected labels and rendered annotations. Fails at once on an alert for any
/// other (alertname, credential), pending or firing, and on a firing alert
/// without a credential (CredwatchDown, CredwatchConfigReloadFailed); such an
/// alert merely pending is waited out (it must be gone by the end).
pub(crate) async fn check_alerts(p: &Prom, demo_addr: &str) -> Result<Poll<Value>, String> {
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
    let expected_alerts = expected_alerts();
    let expected: BTreeMap<(&str, &str), &str> = expected_alerts
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
                 {expected_alerts:?}; alerts: {all}"
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
    for &(name, cred, _) in &expected_alerts {
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
pub(crate) async fn check_loaded_rules(p: &Prom, root: &Path) {
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
    for (a, _, _) in expected_alerts() {
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
pub(crate) fn write_test_rules(root: &Path, out: &Path) {
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
pub(crate) fn dashboard_queries(root: &Path) -> Vec<(String, String)> {
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
pub(crate) fn promtool_check_metrics(scrape: &str) -> (bool, String) {
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
