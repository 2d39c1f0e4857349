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
/// instead of `credential` (and `provider`).
const NOT_PER_CREDENTIAL: [(&str, &[&str]); 3] = [
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
    let own: BTreeSet<&str> = ["CredwatchConfigReloadFailed", "CredwatchDown"].into();
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
        if !expr.contains("credwatch_credential_info") {
            problems.push(format!(
                "{name}: the expression never reads credwatch_credential_info, so \
                 $labels.critical is empty"
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
