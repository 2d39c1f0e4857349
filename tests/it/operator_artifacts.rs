//! The operator artifacts agree with each other: every alert has a
//! `runbook_url` to its own section of `docs/runbooks.md`, and that section
//! covers what an on-call needs; every credential alert derives its severity
//! from the `critical` label; the Alertmanager inhibitions name alerts that
//! exist and labels those alerts carry. (`promtool test rules` tests what the
//! rules compute, `amtool check-config` the syntax; scripts/check-rules.sh.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const RUNBOOKS: &str = "https://github.com/credwatch/credwatch/blob/main/docs/runbooks.md#";

/// Alerts that are not about one credential, and the labels they carry
/// instead of `credential` (and `provider`): the per-account ones (quota,
/// balance) carry `account`.
const NOT_PER_CREDENTIAL: [(&str, &[&str]); 8] = [
    (
        "CredwatchQuotaExhausted",
        &["job", "instance", "provider", "account"],
    ),
    (
        "CredwatchQuotaHigh",
        &["job", "instance", "provider", "account"],
    ),
    (
        "CredwatchQuotaRunsOutBeforeReset",
        &["job", "instance", "provider", "account"],
    ),
    (
        "CredwatchTwilioBalanceLow",
        &["job", "instance", "provider", "account"],
    ),
    (
        "CredwatchTwilioBalanceRunsOut",
        &["job", "instance", "provider", "account"],
    ),
    (
        "CredwatchProviderChecksFailing",
        &["job", "instance", "provider"],
    ),
    ("CredwatchConfigReloadFailed", &["job", "instance"]),
    ("CredwatchDown", &["job", "instance"]),
];

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Every alerting rule of the committed rules file.
fn alerts() -> Vec<serde_yaml::Value> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/prometheus/credwatch-rules.yml")).expect("rules YAML");
    doc["groups"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .filter(|r| r["alert"].as_str().is_some())
        .collect()
}

/// `## Heading` → its body, for the second-level sections of a markdown file.
fn sections(markdown: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            if let Some((k, v)) = current.take() {
                out.insert(k, v);
            }
            current = Some((h.trim().to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((k, v)) = current {
        out.insert(k, v);
    }
    out
}

#[test]
fn every_alert_links_its_runbook_section_and_the_section_covers_the_on_call_questions() {
    let alerts = alerts();
    assert!(alerts.len() >= 17, "only {} alerts", alerts.len());
    let runbooks = sections(&read("docs/runbooks.md"));
    let mut problems = Vec::new();
    for a in &alerts {
        let name = a["alert"].as_str().unwrap_or("?");
        let url = a["annotations"]["runbook_url"].as_str().unwrap_or("");
        let want = format!("{RUNBOOKS}{}", name.to_lowercase());
        if url != want {
            problems.push(format!("{name}: runbook_url {url:?}, want {want:?}"));
        }
        // GitHub's anchor of "## CredwatchX" is "credwatchx".
        let Some(body) = runbooks.get(name) else {
            problems.push(format!(
                "{name}: no `## {name}` section in docs/runbooks.md"
            ));
            continue;
        };
        for part in [
            "**Means**",
            "**Breaks for callers**",
            "**Confirm**",
            "**Fix**",
            "**Resolves**",
        ] {
            if !body.contains(part) {
                problems.push(format!("docs/runbooks.md#{name}: no {part} paragraph"));
            }
        }
        if ![
            "credwatch check",
            "credwatch validate",
            "credwatch healthcheck",
        ]
        .iter()
        .any(|c| body.contains(c))
        {
            problems.push(format!(
                "docs/runbooks.md#{name}: does not say how to confirm with `credwatch check`"
            ));
        }
    }
    let named: BTreeSet<&str> = alerts.iter().filter_map(|a| a["alert"].as_str()).collect();
    for heading in runbooks.keys() {
        if heading.starts_with("Credwatch") && !named.contains(heading.as_str()) {
            problems.push(format!(
                "docs/runbooks.md has a section for {heading}, which is not an alert"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_credential_alert_takes_its_severity_from_the_critical_label() {
    let own: BTreeSet<&str> = [
        "CredwatchConfigReloadFailed",
        "CredwatchChecksLate",
        "CredwatchDown",
    ]
    .into();
    let mut problems = Vec::new();
    for a in alerts() {
        let name = a["alert"].as_str().unwrap_or("?").to_string();
        let severity = a["labels"]["severity"].as_str().unwrap_or("");
        let expr = a["expr"].as_str().unwrap_or("");
        if own.contains(name.as_str()) {
            if severity != "warning" {
                problems.push(format!("{name}: severity {severity:?}, want warning"));
            }
            continue;
        }
        if name == "CredwatchCredentialRotated" {
            if severity != "info" {
                problems.push(format!("{name}: a notice, severity {severity:?}"));
            }
            continue;
        }
        let follows = [
            r#"{{ if eq $labels.critical "true" }}critical{{ else }}warning{{ end }}"#,
            r#"{{ if eq $labels.critical "true" }}warning{{ else }}info{{ end }}"#,
        ];
        if !follows.contains(&severity) {
            problems.push(format!(
                "{name}: severity {severity:?} does not follow the critical label"
            ));
        }
        // A call path's `critical` is on its own info series.
        let info = if name.starts_with("CredwatchCallPath") {
            "credwatch_call_path_info"
        } else {
            "credwatch_credential_info"
        };
        if !expr.contains(info) {
            problems.push(format!(
                "{name}: the expression never reads {info}, so $labels.critical is empty"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Alert names an Alertmanager matcher list selects, among `known`.
fn selected<'a>(matchers: &serde_yaml::Value, known: &'a BTreeSet<String>) -> BTreeSet<&'a str> {
    let mut set: BTreeSet<&str> = known.iter().map(String::as_str).collect();
    for m in matchers.as_sequence().into_iter().flatten() {
        let m = m.as_str().unwrap_or("");
        let (label, op, value) = ["!=", "=~", "!~", "="]
            .iter()
            .find_map(|op| {
                m.split_once(op)
                    .map(|(l, v)| (l.trim(), *op, v.trim().trim_matches('"')))
            })
            .unwrap_or_else(|| panic!("matcher {m:?}"));
        assert_eq!(label, "alertname", "matcher {m:?}: only alertname is used");
        let alternatives: Vec<&str> = value.split('|').collect();
        let matches = |name: &str| -> bool {
            match op {
                "=" => name == value,
                "!=" => name != value,
                // The patterns used are alternatives of names, or `Credwatch.+`.
                "=~" => {
                    alternatives.contains(&name)
                        || (value == "Credwatch.+" && name.len() > "Credwatch".len())
                }
                _ => panic!("matcher {m:?}: operator {op} not used here"),
            }
        };
        if op == "=~" && value != "Credwatch.+" {
            for alt in &alternatives {
                assert!(
                    known.contains(*alt),
                    "matcher {m:?} names {alt}, which is not an alert in the rules"
                );
            }
        }
        if op == "=" || op == "!=" {
            assert!(
                known.contains(value),
                "matcher {m:?} names {value}, which is not an alert in the rules"
            );
        }
        set.retain(|n| matches(n));
    }
    set
}

#[test]
fn the_alertmanager_inhibitions_name_existing_alerts_and_labels_they_carry() {
    let known: BTreeSet<String> = alerts()
        .iter()
        .filter_map(|a| a["alert"].as_str().map(str::to_string))
        .collect();
    let labels_of = |alert: &str| -> BTreeSet<&str> {
        match NOT_PER_CREDENTIAL.iter().find(|(n, _)| *n == alert) {
            Some((_, labels)) => labels.iter().copied().collect(),
            None => ["job", "instance", "provider", "credential"].into(),
        }
    };
    let am: serde_yaml::Value =
        serde_yaml::from_str(&read("deploy/alertmanager/alertmanager.yml")).expect("YAML");
    let rules = am["inhibit_rules"].as_sequence().expect("inhibit_rules");
    assert!(!rules.is_empty());
    let mut outage_covered = false;
    for (i, r) in rules.iter().enumerate() {
        let sources = selected(&r["source_matchers"], &known);
        let targets = selected(&r["target_matchers"], &known);
        assert!(
            !sources.is_empty() && !targets.is_empty(),
            "inhibit rule {i} selects no source or no target: {r:?}"
        );
        let equal: Vec<&str> = r["equal"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        assert!(!equal.is_empty(), "inhibit rule {i} has no `equal`: {r:?}");
        for alert in sources.iter().chain(&targets) {
            let carried = labels_of(alert);
            for l in &equal {
                assert!(
                    carried.contains(l),
                    "inhibit rule {i}: {alert} carries no `{l}` label, so `equal: {equal:?}` \
                     never holds"
                );
            }
        }
        if sources.contains("CredwatchProviderChecksFailing")
            && targets.contains("CredwatchChecksFailing")
            && equal.contains(&"provider")
        {
            outage_covered = true;
        }
    }
    assert!(
        outage_covered,
        "no inhibition of CredwatchChecksFailing by CredwatchProviderChecksFailing (an outage \
         would notify once per credential)"
    );
}

fn yaml(rel: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The container named `name` of a Deployment manifest.
fn container(rel: &str, name: &str) -> serde_yaml::Value {
    yaml(rel)["spec"]["template"]["spec"]["containers"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{rel}: no container {name}"))
}

#[test]
fn probes_standalone_is_ready_when_serving_the_sidecar_gates_on_credentials() {
    let standalone = container("deploy/kubernetes/base/deployment.yaml", "credwatch");
    assert_eq!(
        standalone["readinessProbe"]["httpGet"]["path"], "/readyz",
        "the standalone Deployment must not leave its Service when a credential breaks"
    );
    assert_eq!(standalone["livenessProbe"]["httpGet"]["path"], "/livez");
    let sidecar = container("deploy/kubernetes/sidecar/deployment.yaml", "credwatch");
    assert_eq!(
        sidecar["readinessProbe"]["httpGet"]["path"], "/health",
        "the sidecar gates the application's pod on its credentials"
    );
    assert_eq!(sidecar["livenessProbe"]["httpGet"]["path"], "/livez");
    for c in [&standalone, &sidecar] {
        let args: Vec<&str> = c["args"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .collect();
        assert_eq!(args[..2], ["serve", "--config.file"], "{args:?}");
    }
}

#[test]
fn the_networkpolicy_admits_scrapes_from_monitoring_only_and_egress_to_dns_and_https() {
    let np = yaml("deploy/kubernetes/components/networkpolicy/networkpolicy.yaml");
    let component = yaml("deploy/kubernetes/components/networkpolicy/kustomization.yaml");
    assert_eq!(component["kind"], "Component");
    assert_eq!(np["kind"], "NetworkPolicy");
    let spec = &np["spec"];
    assert_eq!(
        spec["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "credwatch"
    );
    let ingress = spec["ingress"].as_sequence().expect("ingress");
    assert_eq!(ingress.len(), 1, "{ingress:?}");
    let from = ingress[0]["from"].as_sequence().expect("from");
    assert_eq!(from.len(), 1);
    assert_eq!(
        from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    let ports: Vec<i64> = ingress[0]["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert_eq!(ports, [9863]);
    let mut egress_ports = BTreeSet::new();
    for rule in spec["egress"].as_sequence().expect("egress") {
        for p in rule["ports"].as_sequence().into_iter().flatten() {
            egress_ports.insert((
                p["protocol"].as_str().unwrap_or("").to_string(),
                p["port"].as_i64().unwrap_or(0),
            ));
        }
    }
    let want: BTreeSet<(String, i64)> = [("UDP", 53), ("TCP", 53), ("TCP", 443)]
        .into_iter()
        .map(|(p, n)| (p.to_string(), n))
        .collect();
    assert_eq!(egress_ports, want);
}

#[test]
fn the_image_carries_the_oci_source_revision_and_version_labels() {
    let dockerfile = read("Dockerfile");
    for label in [
        "org.opencontainers.image.source=",
        "org.opencontainers.image.revision=",
        "org.opencontainers.image.version=",
    ] {
        assert!(dockerfile.contains(label), "Dockerfile has no {label}");
    }
    let default = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG CREDWATCH_VERSION="))
        .expect("ARG CREDWATCH_VERSION=…");
    assert_eq!(
        default,
        env!("CARGO_PKG_VERSION"),
        "the image's default version label must be Cargo.toml's version"
    );
    assert!(
        dockerfile.contains("COPY Cargo.toml Cargo.lock build.rs"),
        "the build stage needs build.rs"
    );
}

/// Every `credwatch_*` selector of `expr`, with its matchers (empty when it has none).
fn selectors(expr: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("credwatch_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let after = &tail[end..];
        let matchers = if after.starts_with('{') {
            after[1..after.find('}').unwrap_or(after.len())].to_string()
        } else {
            String::new()
        };
        out.push((name.to_string(), matchers));
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_dashboard_filters_every_query_by_job_and_instance_and_imports_cleanly() {
    let dash: serde_json::Value =
        serde_json::from_str(&read("dashboards/credwatch.json")).expect("dashboard JSON");
    let vars = dash["templating"]["list"].as_array().expect("variables");
    for name in ["job", "instance", "credential"] {
        let v = vars
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` variable"));
        assert_eq!(v["multi"], true, "{name}: multi-value");
        assert_eq!(v["includeAll"], true, "{name}: All");
        assert_eq!(v["allValue"], ".*", "{name}: All is .*");
    }

    let mut exprs: Vec<(String, String)> = Vec::new();
    fn panels(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in v.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((p["title"].as_str().unwrap_or("?").to_string(), e.into()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    panels(&dash["panels"], &mut exprs);
    let panel_queries = exprs.len();
    for a in dash["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            exprs.push((format!("annotation {}", a["name"]), e.into()));
        }
    }
    assert!(panel_queries >= 20, "{exprs:?}");
    let mut unfiltered = Vec::new();
    for (where_, e) in &exprs {
        for (name, matchers) in selectors(e) {
            if !(matchers.contains(r#"job=~"$job""#)
                && matchers.contains(r#"instance=~"$instance""#))
            {
                unfiltered.push(format!("{where_}: {name}{{{matchers}}}"));
            }
        }
    }
    assert!(
        unfiltered.is_empty(),
        "selectors without job/instance filters:\n{}",
        unfiltered.join("\n")
    );

    let annotations: Vec<&str> = dash["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["expr"].as_str())
        .collect();
    for metric in [
        "credwatch_credential_changed_timestamp_seconds",
        "credwatch_config_last_reload_success_timestamp_seconds",
    ] {
        assert!(
            annotations.iter().any(|e| e.contains(metric)),
            "no annotation from {metric}"
        );
    }
    assert!(
        exprs
            .iter()
            .any(|(_, e)| e.contains("credwatch_elevenlabs_phone_number_ready")),
        "no panel for imported phone numbers"
    );

    // Import metadata: one datasource input, and every panel type required.
    let inputs = dash["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs
            .iter()
            .any(|i| i["type"] == "datasource" && i["pluginId"] == "prometheus"),
        "{inputs:?}"
    );
    let required: BTreeSet<&str> = dash["__requires"]
        .as_array()
        .expect("__requires")
        .iter()
        .filter(|r| r["type"] == "panel")
        .filter_map(|r| r["id"].as_str())
        .collect();
    fn types<'a>(v: &'a serde_json::Value, out: &mut BTreeSet<&'a str>) {
        for p in v.as_array().into_iter().flatten() {
            if let Some(t) = p["type"].as_str().filter(|t| *t != "row") {
                out.insert(t);
            }
            types(&p["panels"], out);
        }
    }
    let mut used = BTreeSet::new();
    types(&dash["panels"], &mut used);
    assert_eq!(
        required, used,
        "__requires must list exactly the panel types used"
    );

    // The kustomize component ships exactly this dashboard, labelled for the sidecar.
    assert_eq!(
        read("deploy/kubernetes/components/grafana-dashboard/credwatch.json"),
        read("dashboards/credwatch.json"),
        "run scripts/sync-prometheusrule.py"
    );
    let component = yaml("deploy/kubernetes/components/grafana-dashboard/kustomization.yaml");
    assert_eq!(component["kind"], "Component");
    let generator = &component["configMapGenerator"][0];
    assert_eq!(generator["options"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(generator["files"][0], "credwatch.json");
}

#[test]
fn the_selector_finder_sees_names_and_matchers() {
    assert_eq!(
        selectors(r#"sum(credwatch_a{x="1"}) / credwatch_b_total"#),
        [
            ("credwatch_a".to_string(), r#"x="1""#.to_string()),
            ("credwatch_b_total".to_string(), String::new())
        ]
    );
}

/// `check`'s `!` and the status page warn where the alerts fire: the
/// shipped thresholds are the code's, and "quota used" is used / ceiling in
/// both (the page's server-side constant `RUNBOOKS` is the rules' base too).
#[test]
fn check_and_the_page_warn_at_the_alert_thresholds() {
    use credwatch::providers::{elevenlabs, twilio};
    let expr = |name: &str| {
        alerts()
            .into_iter()
            .find(|a| a["alert"].as_str() == Some(name))
            .and_then(|a| a["expr"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no alert {name}"))
    };
    let high = expr("CredwatchQuotaHigh");
    assert!(
        high.contains(&format!(">= {} < 1", elevenlabs::facts::QUOTA_HIGH_SHARE)),
        "CredwatchQuotaHigh fires at QUOTA_HIGH_SHARE, inclusive: {high}"
    );
    assert!(
        high.contains("credwatch_elevenlabs_account_characters_used")
            && high.contains("(credwatch_elevenlabs_account_characters_ceiling > 0)"),
        "quota used is used / ceiling: {high}"
    );
    let low = expr("CredwatchTwilioBalanceLow");
    assert!(
        low.contains(&format!(
            "credwatch_twilio_account_balance < {}",
            twilio::facts::BALANCE_LOW_BELOW
        )),
        "CredwatchTwilioBalanceLow fires below BALANCE_LOW_BELOW: {low}"
    );
    assert_eq!(
        format!("{}#", credwatch::render::page::RUNBOOKS),
        RUNBOOKS,
        "the page links the runbooks the alerts link"
    );
}

/// The dashboard's layout lint (`scripts/dashboard-queries.py --lint`, also
/// run by scripts/check-rules.sh): runbook links on the panels of what the
/// alerts fire on, panels under their area's row, the balance with its
/// currency, a Warnings panel with each of `check`'s `!` marks.
#[test]
fn the_dashboard_links_runbooks_keeps_panels_under_their_rows_and_shows_warnings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("python3")
        .arg(root.join("scripts/dashboard-queries.py"))
        .arg("--lint")
        .output()
        .expect("run python3 scripts/dashboard-queries.py --lint (python3 is needed)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
