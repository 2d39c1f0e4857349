//! The runbooks, the alert texts and the Kubernetes config comment say how
//! often each check runs and which secrets are re-read; these scenarios hold
//! them to what the code does.
//!
//! The schedule is observed, not restated: the real daemon runs against the
//! simulator with `interval: 1s` and `detail_interval: 1h`, and a check that
//! ran again after the first cycle runs every `interval`, one that did not
//! every `detail_interval`. Then every clause of the documents that names a
//! check (by the words the documents use for it) and an interval must name
//! the one the check runs at.
//!
//! Re-reading: a secret source the scheduler polls is a file
//! (`Credential::secret_files`); an environment variable is not polled. So
//! every clause that promises a re-read (or "no restart") must be about a
//! file, and every clause about an `*_env` secret must say it needs a restart.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use credwatch::config::Config;
use credwatch_sim::{ElAccount, ElKey, Simulator, TwilioAccount, World};

use crate::harness::Daemon;
use crate::support::{Doc, Item, ac_sid, el, el_key, eventually, tw, tw_token};
use serde_json::json;

/// The documents that make such claims, with how to cut them into clauses.
const DOCUMENTS: [(&str, &str); 3] = [
    ("docs/runbooks.md", include_str!("../../docs/runbooks.md")),
    (
        "deploy/prometheus/credwatch-rules.yml",
        include_str!("../../deploy/prometheus/credwatch-rules.yml"),
    ),
    (
        "deploy/kubernetes/base/config.yaml",
        include_str!("../../deploy/kubernetes/base/config.yaml"),
    ),
];

/// The words the documents use for a check, and the check (provider, name).
const PHRASES: [(&str, (&str, &str)); 7] = [
    ("account status", ("twilio", "account")),
    ("balance", ("twilio", "balance")),
    ("number count", ("twilio", "phone_numbers_count")),
    ("cross-check", ("elevenlabs", "phone_numbers")),
    ("quota", ("elevenlabs", "subscription")),
    ("permissions", ("elevenlabs", "permission_convai_write")),
    ("probed", ("elevenlabs", "permission_convai_write")),
];

/// A document's clauses: sentences cut at `.`, `;` and line ends of YAML
/// comments, with the text joined across line breaks (YAML folded scalars
/// and Markdown paragraphs break sentences over lines).
fn clauses(path: &str, text: &str) -> Vec<String> {
    let joined = if path.ends_with("config.yaml") {
        // One comment per line.
        text.lines().map(|l| format!("{l};")).collect::<String>()
    } else {
        text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
    };
    joined
        .split(['.', ';'])
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// Whether `clause` names the plain `interval` (not `detail_interval`, not
/// `secret_poll_interval`): quoted as a key, or a YAML `interval:` line.
fn names_interval(clause: &str) -> bool {
    clause.contains("`interval`") || clause.trim_start().starts_with("interval:")
}

/// Which checks run every `interval` (`true`) and which wait for
/// `detail_interval` (`false`), as the daemon runs them.
async fn observed_schedule() -> BTreeMap<(String, String), bool> {
    let key = el_key("claims");
    let sid = ac_sid("claims");
    let token = tw_token("claims");
    let mut world = World::default();
    world.elevenlabs.add_account(ElAccount::new("ws-claims"));
    world
        .elevenlabs
        .add_key(key.clone(), ElKey::new("keyClaims", "ws-claims"));
    world.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_balance(Some("10.00"), "USD")
            .with_generated_numbers(1200),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let yaml = Doc::new()
        .defaults(json!({"interval": "1s", "timeout": "500ms", "detail_interval": "1h"}))
        .push(
            "elevenlabs",
            el("el", &key, &sim.elevenlabs_url(), "").set("phone_numbers", true),
        )
        .push("twilio", tw("tw", &sid, &token, &sim.twilio_url(), ""))
        .render();
    let d = Daemon::start(&yaml).await;
    let counts = eventually(Duration::from_secs(30), "four cycles of each", || {
        let d = &d;
        async move {
            let m = d.metrics().await;
            let mut counts = BTreeMap::new();
            for line in m
                .lines()
                .filter(|l| l.starts_with("credwatch_checks_total{"))
            {
                let label = |name: &str| {
                    let start = line.find(&format!("{name}=\""))? + name.len() + 2;
                    Some(line[start..start + line[start..].find('"')?].to_string())
                };
                let (Some(provider), Some(check)) = (label("provider"), label("check")) else {
                    continue;
                };
                let n: f64 = line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                counts.insert((provider, check), n);
            }
            let auth = |p: &str, c: &str| counts.get(&(p.to_string(), c.to_string())).copied();
            match (
                auth("elevenlabs", "subscription"),
                auth("twilio", "phone_numbers"),
            ) {
                (Some(a), Some(b)) if a >= 4.0 && b >= 4.0 => Ok(counts),
                _ => Err(m),
            }
        }
    })
    .await;
    d.stop().await;
    counts.into_iter().map(|(k, n)| (k, n >= 3.0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_claims_match_the_schedule_the_daemon_keeps() {
    let schedule = observed_schedule().await;
    // Every check the documents name was seen, so the comparison is real.
    for (phrase, (provider, check)) in PHRASES {
        assert!(
            schedule.contains_key(&(provider.to_string(), check.to_string())),
            "`{phrase}`: the daemon never ran {provider} `{check}`: {schedule:?}"
        );
    }
    // The schedule the documents are held to, as the daemon keeps it.
    assert!(schedule[&("twilio".into(), "account".into())]);
    assert!(!schedule[&("twilio".into(), "balance".into())]);
    let mut wrong = Vec::new();
    let mut claims = 0;
    for (path, text) in DOCUMENTS {
        for clause in clauses(path, text) {
            let lower = clause.to_lowercase();
            let detail = lower.contains("detail_interval");
            let every = names_interval(&lower);
            if detail == every {
                continue; // neither, or both in one clause: no claim to read
            }
            for (phrase, (provider, check)) in PHRASES {
                if !lower.contains(phrase) {
                    continue;
                }
                claims += 1;
                let runs_every_interval = schedule[&(provider.to_string(), check.to_string())];
                if runs_every_interval != every {
                    wrong.push(format!(
                        "{path}: \"{clause}\" says {phrase} ({provider} `{check}`) is checked every `{}`, the daemon checks it every `{}`",
                        if every { "interval" } else { "detail_interval" },
                        if runs_every_interval { "interval" } else { "detail_interval" },
                    ));
                }
            }
        }
    }
    assert!(
        claims >= 6,
        "only {claims} claims found: is the parser still reading the documents?"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn re_read_claims_are_about_files_and_env_secrets_need_a_restart() {
    // The code: a secret file is polled (re-read), an environment variable is not.
    let env: HashMap<String, String> =
        HashMap::from([("CLAIMS_KEY".to_string(), el_key("claims-env"))]);
    let dir = crate::harness::tempdir::TempDir::new();
    let file = dir.path().join("key");
    std::fs::write(&file, el_key("claims-file")).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let yaml = Doc::new()
        .push(
            "elevenlabs",
            Item::new(json!({"name": "from-env", "api_key_env": "CLAIMS_KEY"})),
        )
        .push(
            "elevenlabs",
            Item::new(json!({"name": "from-file", "api_key_file": file.display().to_string()})),
        )
        .render();
    let config = Config::from_yaml(&yaml, &dir.path().join("config.yaml"), &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let polled = |name: &str| {
        !config
            .credential(name)
            .expect("credential")
            .secret_files()
            .is_empty()
    };
    assert!(!polled("from-env"), "an *_env secret is not re-read");
    assert!(polled("from-file"), "a *_file secret is re-read");

    // The documents.
    let mut wrong = Vec::new();
    let mut rereads = 0;
    for (path, text) in DOCUMENTS {
        for clause in clauses(path, text) {
            let lower = clause.to_lowercase();
            let about_env = lower.contains("_env") || lower.contains("environment variable");
            let promises = (lower.contains("re-read") && !lower.contains("not re-read"))
                || lower.contains("no restart")
                || lower.contains("without a restart");
            let about_file = lower.contains("file") || lower.contains("secret");
            if promises {
                rereads += 1;
                if about_env || !about_file {
                    wrong.push(format!(
                        "{path}: \"{clause}\" promises a re-read without saying it is for secret files (an `*_env` secret is read at start only)"
                    ));
                }
            }
            if about_env && lower.contains("secret") && !lower.contains("restart") {
                wrong.push(format!(
                    "{path}: \"{clause}\" talks of an `*_env` secret without saying a new value needs a restart"
                ));
            }
        }
    }
    assert!(rereads >= 3, "only {rereads} re-read claims found");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
