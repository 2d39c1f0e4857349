//! `credwatch check`: the real binary against the simulator. Every cause a
//! user can hit gets a scenario asserting the verdict, the evidence and the
//! key facts of the fix, in text and in JSON, with an exit code a script can
//! use — and that no secret ever appears in what `check` prints.
//!
//! The binary runs on a blocking thread (`spawn_blocking`) so the simulator,
//! served by this test's runtime, keeps answering meanwhile.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use credwatch_sim::twilio::AUTH_TOKEN_SENTINEL;
use credwatch_sim::{
    AccountBlock, AccountStatus, Agent, ApiKey, AssignedAgent, CreditLimitExtension, ElAccount,
    ElKey, ElPhoneNumber, Fault, KeyKind, Simulator, Subscription, TwilioAccount, World,
};
use serde::Deserialize;
use serde_json::json;

use crate::harness::{Daemon, sample, tempdir::TempDir};
use crate::support::{
    Doc, FAST_DETAILS, Item, ac_sid, cred, el_key, lines_of, register, sk_sid, tw_key_secret,
    tw_token, wait_sample,
};

mod elevenlabs;
mod output;
mod phone_numbers;
mod schema;
mod twilio;

pub use schema::*;

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `credwatch args…` with `env` on a blocking thread.
pub async fn credwatch(args: Vec<String>, env: Vec<(String, String)>) -> Run {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_credwatch"))
            .args(&args)
            .envs(env)
            .env_remove("CREDWATCH_CONFIG")
            .env_remove("CREDWATCH_LOG")
            .env_remove("CREDWATCH_LOG_FORMAT")
            .output()
            .expect("run credwatch");
        Run {
            code: out.status.code().expect("exit code, not a signal"),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

/// Fails if any secret (or the Twilio account body's token sentinel) shows up.
pub fn assert_no_secret(run: &Run, secrets: &[String]) {
    for s in secrets
        .iter()
        .map(String::as_str)
        .chain([AUTH_TOKEN_SENTINEL])
    {
        assert!(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "a secret leaked into check's output: {s}\n{run:?}"
        );
    }
}

/// A simulator, a config file and the secrets it holds.
struct Scenario {
    sim: Simulator,
    dir: TempDir,
    secrets: Vec<String>,
    env: Vec<(String, String)>,
}

impl Scenario {
    async fn start(world: World) -> Scenario {
        Scenario {
            sim: Simulator::start(world).await.expect("simulator"),
            dir: TempDir::new(),
            secrets: Vec::new(),
            env: Vec::new(),
        }
    }

    fn el_url(&self) -> String {
        self.sim.elevenlabs_url()
    }

    fn tw_url(&self) -> String {
        self.sim.twilio_url()
    }

    /// Remembers a secret for the leak assertion.
    fn secret(&mut self, s: &str) -> String {
        register(s);
        self.secrets.push(s.to_string());
        s.to_string()
    }

    fn write(&self, yaml: &str) -> PathBuf {
        let path = self.dir.path().join("config.yaml");
        std::fs::write(&path, yaml).expect("write config");
        path
    }

    /// `credwatch check --config … <args>`, with the leak and GET-only checks.
    async fn run(&self, args: &[&str]) -> Run {
        let mut all = vec![
            "check".to_string(),
            "--config".to_string(),
            self.dir
                .path()
                .join("config.yaml")
                .to_string_lossy()
                .into_owned(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let run = credwatch(all, self.env.clone()).await;
        assert_no_secret(&run, &self.secrets);
        assert!(
            !run.stdout.contains('\x1b') && !run.stderr.contains('\x1b'),
            "no ANSI escape codes when stdout is not a TTY\n{run:?}"
        );
        let forbidden = self.sim.forbidden_requests();
        assert!(
            forbidden.is_empty(),
            "check sent requests a read-only prober must not: {forbidden:?}"
        );
        run
    }

    /// Text and JSON for the given arguments: same exit code, schema-checked JSON.
    async fn both(&self, args: &[&str]) -> (Run, Run, Report) {
        let text = self.run(args).await;
        let mut json_args = args.to_vec();
        json_args.extend(["--output", "json"]);
        let json = self.run(&json_args).await;
        assert_eq!(text.code, json.code, "text: {text:?}\njson: {json:?}");
        let report = parse(&json);
        (text, json, report)
    }

    /// One credential, text and JSON.
    async fn one(&self, name: &str) -> (Run, CredReport) {
        let (text, json, mut report) = self.both(&["--credential", name]).await;
        assert_eq!(report.credentials.len(), 1, "{json:?}");
        let c = report.credentials.remove(0);
        assert_eq!(c.name, name);
        assert_eq!(
            text.code,
            if report.ok { 0 } else { 1 },
            "exit 0 exactly when ok\n{text:?}"
        );
        assert_text_explains(&text, &c);
        (text, c)
    }
}

pub fn parse(run: &Run) -> Report {
    let value: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("--output json is one JSON document: {e}\n{run:?}"));
    assert_all_keys(&value);
    let report: Report = serde_json::from_value(value)
        .unwrap_or_else(|e| panic!("the JSON matches the documented schema: {e}\n{run:?}"));
    assert_values(&report);
    report
}

/// The text report agrees with the JSON one: a healthy credential in one
/// line; otherwise its reason and, for each finding, the summary, the
/// evidence and the fix, within the credential's own block. A cross-check of
/// the two renderings; what the text must say is written out in the scenarios.
fn assert_text_explains(text: &Run, c: &CredReport) {
    let lines: Vec<&str> = text.stdout.lines().collect();
    // Labels follow the provider as in a Prometheus selector.
    let labels = if c.labels.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = c
            .labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        format!(" {{{}}}", pairs.join(","))
    };
    let head = format!(" {} ({}){labels}: ", c.name, c.provider);
    let at = lines
        .iter()
        .position(|l| l.contains(&head))
        .unwrap_or_else(|| panic!("no line for {}\n{text:?}", c.name));
    // The credential's block: its line and the indented ones below it.
    let block: Vec<&str> = std::iter::once(lines[at])
        .chain(
            lines[at + 1..]
                .iter()
                .copied()
                .take_while(|l| l.starts_with(' ')),
        )
        .collect();
    let joined = block.join("\n");
    let ok = c.status == "healthy" && c.phone_numbers().iter().all(|p| p.ready);
    if ok {
        assert!(
            lines[at].starts_with(&format!("✓{head}healthy — ")),
            "{text:?}"
        );
        // Advice is a note on the line; each warning is marked `!` below
        // it, with its evidence and fix; nothing else.
        let warnings: Vec<&Finding> = c
            .findings
            .iter()
            .filter(|f| f.severity == "warning")
            .collect();
        assert_eq!(
            block[1..]
                .iter()
                .filter(|l| l.starts_with("    ! "))
                .count(),
            warnings.len(),
            "one `!` per warning\n{text:?}"
        );
        assert!(
            block[1..]
                .iter()
                .all(|l| l.starts_with("    ! ") || l.starts_with("      ")),
            "only warnings under a healthy credential\n{text:?}"
        );
        for f in &c.findings {
            if f.severity == "warning" {
                assert!(
                    joined.contains(&format!("    ! {}\n", f.summary))
                        && joined.contains(&format!("fix: {}", f.fix)),
                    "warnings are marked below: {f:?}\n{text:?}"
                );
            } else {
                assert!(
                    lines[at].contains(&f.summary),
                    "notes are on the line: {f:?}\n{text:?}"
                );
            }
        }
        return;
    }
    if c.status == "pending" {
        // Why, in words; its times differ between the text and JSON runs.
        let pending = c.pending.as_ref().expect("a pending credential says why");
        let check = pending["check"]
            .as_str()
            .expect("the check without a verdict");
        assert!(
            lines[at].starts_with(&format!("✗{head}no verdict: ")) && lines[at].contains(check),
            "{text:?}"
        );
    } else {
        assert_eq!(c.pending, None, "only a pending credential says why it is");
        let why = match &c.reason {
            Some(r) => r.clone(),
            None => "imported numbers not ready".to_string(),
        };
        assert_eq!(lines[at], format!("✗{head}{why}"), "{text:?}");
    }
    for f in &c.findings {
        assert!(joined.contains(&f.summary), "{f:?}\n{text:?}");
        assert!(
            joined.contains(&format!("fix: {}", f.fix)),
            "{f:?}\n{text:?}"
        );
        if let Some(e) = &f.evidence {
            // The text run is another run: same answers, other request ids.
            let mut start = format!("evidence: {} → ", e.request);
            if let Some(s) = e.http_status {
                start += &format!("HTTP {s}");
            }
            let line = block
                .iter()
                .find(|l| l.trim_start().starts_with(&start))
                .unwrap_or_else(|| panic!("no `{start}`: {f:?}\n{text:?}"));
            for part in [
                e.upstream_code.as_ref().map(|c| format!("code {c}")),
                e.permission.as_ref().map(|p| format!("permission {p}")),
                e.request_id.as_ref().map(|_| "request id ".to_string()),
            ]
            .into_iter()
            .flatten()
            {
                assert!(line.contains(&part), "{part}: {f:?}\n{text:?}");
            }
        }
    }
    assert!(
        joined.contains(&format!("fingerprint {}", c.fingerprint)),
        "{text:?}"
    );
}

fn finding<'a>(c: &'a CredReport, code: &str) -> &'a Finding {
    c.findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no `{code}` finding: {c:#?}"))
}

fn evidence_of(f: &Finding) -> &Evidence {
    f.evidence
        .as_ref()
        .unwrap_or_else(|| panic!("no evidence: {f:?}"))
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "`{n}` not in: {haystack}");
    }
}

use crate::support::el as el_item;

fn tw_item(name: &str, sid: &str, token: &str, url: &str) -> Item {
    crate::support::tw(name, sid, token, url, "")
}

fn tw_key_item(name: &str, sid: &str, key_sid: &str, secret: &str, url: &str) -> Item {
    crate::support::tw_api_key(name, sid, key_sid, secret, url, "")
}

/// The text report with the request ids (new on every run) replaced by `…`,
/// keeping Twilio's `RQ` prefix.
fn masked(text: &str) -> String {
    const AT: &str = "request id ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(AT) {
        let (head, tail) = rest.split_at(at + AT.len());
        out += head;
        out += if tail.starts_with("RQ") {
            "RQ…"
        } else {
            "…"
        };
        let end = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out + rest
}

/// What `check --credential <credential>` must report for one cause: the
/// verdict, the finding that explains it with its evidence, and the whole
/// text report, written out (request ids masked, see [`masked`]).
struct Case {
    credential: &'static str,
    exit: i32,
    /// `(status, reason, valid)`.
    verdict: (&'static str, Option<&'static str>, Option<bool>),
    fingerprint: &'static str,
    finding: &'static str,
    severity: &'static str,
    check: &'static str,
    request: String,
    http_status: Option<u16>,
    upstream_code: Option<&'static str>,
    /// The start of the upstream's request id, when it sent one.
    request_id: Option<&'static str>,
    /// Key phrases of the JSON `fix` (the text report shows it whole).
    fix: &'static [&'static str],
    text: String,
}

/// Runs one [`Case`] in text and JSON and asserts all of it; returns the
/// JSON report for the scenario's own further assertions.
async fn assert_case(s: &Scenario, case: &Case) -> CredReport {
    let name = case.credential;
    let (text, c) = s.one(name).await;
    assert_eq!(masked(&text.stdout), case.text, "{name}: {text:?}");
    assert_eq!(text.code, case.exit, "{name}: {text:?}");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.valid),
        case.verdict,
        "{name}"
    );
    assert_eq!(c.fingerprint, case.fingerprint, "{name}");
    let f = finding(&c, case.finding);
    assert_eq!(
        (f.severity.as_str(), f.check.as_str()),
        (case.severity, case.check),
        "{name}"
    );
    let e = evidence_of(f);
    assert_eq!(e.request, case.request, "{name}");
    assert_eq!(e.http_status, case.http_status, "{name}");
    assert_eq!(e.upstream_code.as_deref(), case.upstream_code, "{name}");
    match case.request_id {
        Some(start) => assert!(
            e.request_id
                .as_deref()
                .is_some_and(|r| r.starts_with(start)),
            "{name}: the upstream sent a request id starting `{start}`: {e:?}"
        ),
        None => assert_eq!(e.request_id, None, "{name}"),
    }
    assert_contains(&f.fix, case.fix);
    c
}
