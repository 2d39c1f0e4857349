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

use crate::harness::{Daemon, sample, tempdir::TempDir};
use crate::support::{
    FAST_DETAILS, ac_sid, cred, el_key, lines_of, register, sk_sid, tw_key_secret, tw_token,
    wait_sample,
};

// ---------------------------------------------------------------------------
// The documented JSON schema (docs/check-output.md), as test-local types that
// refuse any field the documentation does not name.
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub version: u32,
    pub ok: bool,
    pub credentials: Vec<CredReport>,
    pub call_paths: Vec<PathReport>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathReport {
    pub name: String,
    pub critical: bool,
    pub labels: BTreeMap<String, String>,
    pub elevenlabs: String,
    pub twilio: String,
    pub agent_id: String,
    pub agent_phone_number_id: String,
    pub destinations: Vec<String>,
    pub status: String,
    pub links: Vec<LinkReport>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkReport {
    pub link: String,
    pub country: Option<String>,
    pub status: String,
    pub problem: Option<String>,
    pub summary: String,
    pub fix: Option<String>,
    pub inferred: bool,
    pub evidence: Option<Evidence>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredReport {
    pub name: String,
    pub provider: String,
    pub critical: bool,
    pub labels: BTreeMap<String, String>,
    pub status: String,
    pub reason: Option<String>,
    pub pending: Option<serde_json::Value>,
    pub valid: Option<bool>,
    pub fingerprint: String,
    pub permissions: BTreeMap<String, bool>,
    pub permission_basis: BTreeMap<String, String>,
    /// Version 2: the provider's fields, in an object whose shape
    /// `provider` says.
    pub details: Details,
    pub findings: Vec<Finding>,
    pub evidence: Vec<Evidence>,
}

/// `details` of an ElevenLabs or a Twilio credential: exactly one shape
/// fits, each refusing the other's fields.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Details {
    ElevenLabs(ElDetails),
    Twilio(TwDetails),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElDetails {
    pub quota: Option<Quota>,
    pub phone_numbers: Vec<PhoneReport>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwDetails {
    pub twilio_account: Option<TwAccount>,
    pub twilio_balance: Option<TwBalance>,
    pub twilio_phone_numbers: Option<u64>,
}

impl CredReport {
    fn el(&self) -> Option<&ElDetails> {
        match &self.details {
            Details::ElevenLabs(d) => Some(d),
            Details::Twilio(_) => None,
        }
    }

    fn tw(&self) -> Option<&TwDetails> {
        match &self.details {
            Details::Twilio(d) => Some(d),
            Details::ElevenLabs(_) => None,
        }
    }

    pub fn quota(&self) -> Option<&Quota> {
        self.el().and_then(|d| d.quota.as_ref())
    }

    pub fn phone_numbers(&self) -> &[PhoneReport] {
        self.el().map_or(&[], |d| d.phone_numbers.as_slice())
    }

    pub fn twilio_account(&self) -> Option<&TwAccount> {
        self.tw().and_then(|d| d.twilio_account.as_ref())
    }

    pub fn twilio_balance(&self) -> Option<&TwBalance> {
        self.tw().and_then(|d| d.twilio_balance.as_ref())
    }

    pub fn twilio_phone_numbers(&self) -> Option<u64> {
        self.tw().and_then(|d| d.twilio_phone_numbers)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub used: u64,
    pub limit: u64,
    pub reset_at: Option<i64>,
    pub tier: String,
    pub status: String,
    pub ceiling: Option<u64>,
    pub open_invoices: Option<bool>,
    pub exhausted: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwAccount {
    pub status: String,
    pub kind: String,
    pub subaccount: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwBalance {
    pub amount: f64,
    pub currency: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneReport {
    pub phone_number_id: String,
    pub number: String,
    pub label: String,
    pub ready: bool,
    pub agent_id: Option<String>,
    pub problems: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub severity: String,
    pub code: String,
    pub check: String,
    pub summary: String,
    pub fix: String,
    pub evidence: Option<Evidence>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub request: String,
    pub http_status: Option<u16>,
    pub upstream_code: Option<String>,
    pub permission: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

const STATUSES: [&str; 3] = ["healthy", "unhealthy", "pending"];
const REASONS: [&str; 10] = [
    "invalid_credentials",
    "missing_permission",
    "quota_exhausted",
    "account_blocked",
    "invalid_config",
    "rate_limited",
    "upstream_error",
    "timeout",
    "network",
    "unexpected_response",
];
/// `Problem::code` of src/outcome.rs.
const PROBLEM_CODES: [&str; 14] = [
    "invalid_api_key",
    "key_not_received",
    "key_id_used_as_key",
    "permission_missing",
    "quota_exhausted",
    "unusual_activity",
    "payment_issue",
    "payment_required",
    "subscription_disabled",
    "twilio_authenticate",
    "account_not_found",
    "account_suspended",
    "restricted_key",
    "key_sid_in_path",
];
const PHONE_PROBLEMS: [&str; 8] = [
    "not_outbound_capable",
    "outbound_unknown",
    "no_agent",
    "agent_missing",
    "agent_unchecked",
    "agent_not_ulaw",
    "not_on_twilio_account",
    "reimport_needed",
];
const OTHER_CODES: [&str; 8] = [
    "phone_numbers_not_checked",
    "secret_whitespace",
    "config_warning",
    "standard_key",
    "billing_at_risk",
    "quota_high",
    "balance_low",
    "trial_account",
];
const CHECKS: [&str; 9] = [
    "subscription",
    "permission_convai_write",
    "permission_convai_read",
    "permission_user_read",
    "permission_models_read",
    "phone_numbers",
    "account",
    "balance",
    "config",
];

/// Every key of every object is present (never omitted, `null` when empty),
/// in addition to `deny_unknown_fields` refusing any extra one.
fn assert_all_keys(v: &serde_json::Value) {
    fn keys(v: &serde_json::Value, want: &[&str], what: &str) {
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
        for k in want {
            assert!(obj.contains_key(*k), "{what} lacks `{k}`: {v}");
        }
    }
    const EVIDENCE: [&str; 6] = [
        "request",
        "http_status",
        "upstream_code",
        "permission",
        "request_id",
        "detail",
    ];
    keys(v, &["version", "ok", "credentials", "call_paths"], "report");
    for p in v["call_paths"].as_array().expect("call_paths array") {
        for l in p["links"].as_array().expect("links array") {
            keys(
                l,
                &[
                    "link", "country", "status", "problem", "summary", "fix", "inferred",
                    "evidence",
                ],
                "call-path link",
            );
        }
    }
    for c in v["credentials"].as_array().expect("credentials array") {
        keys(
            c,
            &[
                "name",
                "provider",
                "critical",
                "status",
                "reason",
                "pending",
                "valid",
                "fingerprint",
                "permissions",
                "details",
                "findings",
                "evidence",
            ],
            "credential",
        );
        let details = &c["details"];
        let own: &[&str] = match c["provider"].as_str() {
            Some("elevenlabs") => &["quota", "phone_numbers"],
            Some("twilio") => &["twilio_account", "twilio_balance", "twilio_phone_numbers"],
            other => panic!("provider {other:?}"),
        };
        keys(details, own, "details");
        if !details["quota"].is_null() {
            keys(
                &details["quota"],
                &["used", "limit", "reset_at", "tier", "status", "exhausted"],
                "quota",
            );
        }
        for p in details["phone_numbers"].as_array().into_iter().flatten() {
            keys(
                p,
                &[
                    "phone_number_id",
                    "number",
                    "label",
                    "ready",
                    "agent_id",
                    "problems",
                ],
                "phone number",
            );
        }
        for f in c["findings"].as_array().expect("findings array") {
            keys(
                f,
                &["severity", "code", "check", "summary", "fix", "evidence"],
                "finding",
            );
            if !f["evidence"].is_null() {
                keys(&f["evidence"], &EVIDENCE, "finding evidence");
            }
        }
        for e in c["evidence"].as_array().expect("evidence array") {
            keys(e, &EVIDENCE, "evidence");
        }
    }
}

/// The enumerated values and formats the documentation promises.
fn assert_values(r: &Report) {
    assert_eq!(r.version, 2);
    assert_eq!(
        r.ok,
        r.credentials
            .iter()
            .all(|c| c.status == "healthy" && c.phone_numbers().iter().all(|p| p.ready)),
        "`ok` is every credential healthy with every number ready"
    );
    for c in &r.credentials {
        assert!(
            ["elevenlabs", "twilio"].contains(&c.provider.as_str()),
            "{c:?}"
        );
        assert!(STATUSES.contains(&c.status.as_str()), "{c:?}");
        match (&c.status[..], &c.reason) {
            ("unhealthy", Some(r)) => assert!(REASONS[..5].contains(&r.as_str()), "{c:?}"),
            ("unhealthy", None) => panic!("unhealthy without a reason: {c:?}"),
            (_, Some(_)) => panic!("a reason without being unhealthy: {c:?}"),
            _ => {}
        }
        assert!(
            c.fingerprint.len() == 12 && c.fingerprint.chars().all(|h| h.is_ascii_hexdigit()),
            "fingerprint is 12 hex digits: {}",
            c.fingerprint
        );
        for p in c.phone_numbers() {
            for problem in &p.problems {
                assert!(PHONE_PROBLEMS.contains(&problem.as_str()), "{p:?}");
            }
        }
        let mut last = 0;
        for f in &c.findings {
            let rank = ["error", "warning", "info"]
                .iter()
                .position(|s| *s == f.severity)
                .unwrap_or_else(|| panic!("unknown severity: {f:?}"));
            assert!(rank >= last, "findings are sorted by severity: {c:?}");
            last = rank;
            assert!(
                REASONS[5..].contains(&f.code.as_str())
                    || f.code == "invalid_config"
                    || PROBLEM_CODES.contains(&f.code.as_str())
                    || PHONE_PROBLEMS.contains(&f.code.as_str())
                    || OTHER_CODES.contains(&f.code.as_str()),
                "unknown finding code: {f:?}"
            );
            assert!(CHECKS.contains(&f.check.as_str()), "unknown check: {f:?}");
            assert!(!f.summary.is_empty() && !f.fix.is_empty(), "{f:?}");
            assert_eq!(
                f.evidence.is_none(),
                f.check == "config",
                "evidence on every finding but config ones: {f:?}"
            );
        }
        for e in c
            .evidence
            .iter()
            .chain(c.findings.iter().filter_map(|f| f.evidence.as_ref()))
        {
            assert!(e.request.starts_with("GET /"), "{e:?}");
            assert!(!e.detail.is_empty(), "{e:?}");
        }
    }
}

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

fn el_item(name: &str, key: &str, url: &str, extra: &str) -> String {
    format!("  - name: {name}\n    api_key: {key}\n    base_url: {url}\n{extra}")
}

fn tw_item(name: &str, sid: &str, token: &str, url: &str) -> String {
    format!(
        "  - name: {name}\n    account_sid: {sid}\n    auth_token: {token}\n    base_url: {url}\n"
    )
}

fn tw_key_item(name: &str, sid: &str, key_sid: &str, secret: &str, url: &str) -> String {
    format!(
        "  - name: {name}\n    account_sid: {sid}\n    api_key_sid: {key_sid}\n    api_key_secret: {secret}\n    base_url: {url}\n"
    )
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

// ---------------------------------------------------------------------------
// ElevenLabs
// ---------------------------------------------------------------------------

/// A key ID that starts with `sk_`: the config check lets it through, and
/// ElevenLabs itself answers 400 `api_key_id_used_as_api_key`.
const KEY_ID_LIKE_A_KEY: &str = "sk_chkkeyid_0123456789abcdef0123456789abcdef012";
/// A key ID as the dashboard shows it: refused at config load.
const PLAIN_KEY_ID: &str = "keyChkAgentProd00001";

/// When the exhausted workspace's quota resets: fixed, so the report's
/// date is a literal (2100-01-01T00:00:00Z).
const RESET_AT: i64 = 4_102_444_800;

fn el_world() -> World {
    let mut w = World::default();
    let el = &mut w.elevenlabs;
    el.add_account(ElAccount::new("ws-main"));
    el.add_account(
        ElAccount::new("ws-exhausted").with_subscription(Subscription {
            tier: "starter".into(),
            character_count: 30_000,
            character_limit: 30_000,
            next_character_count_reset_unix: Some(RESET_AT),
            can_extend_character_limit: false,
            allowed_to_extend_character_limit: false,
            max_credit_limit_extension: CreditLimitExtension::Limit(0),
            max_character_limit_extension: Some(0),
            ..Subscription::default()
        }),
    );
    el.add_account(ElAccount::new("ws-unusual").with_block(AccountBlock::DetectedUnusualActivity));
    el.add_account(ElAccount::new("ws-payment-issue").with_block(AccountBlock::PaymentIssue));
    el.add_account(ElAccount::new("ws-payment-required").with_block(AccountBlock::PaymentRequired));
    el.add_key(el_key("chk-full"), ElKey::new(PLAIN_KEY_ID, "ws-main"));
    el.add_key(
        el_key("chk-no-write"),
        ElKey::new("keyChkNoWrite", "ws-main").with_permissions(&["user_read", "convai_read"]),
    );
    el.add_key(
        el_key("chk-restricted"),
        ElKey::new("keyChkRestricted", "ws-main")
            .with_permissions(&["convai_write", "convai_read"]),
    );
    el.add_key(
        el_key("chk-exhausted"),
        ElKey::new("keyChkExhausted", "ws-exhausted"),
    );
    el.add_key(
        el_key("chk-unusual"),
        ElKey::new("keyChkUnusual", "ws-unusual"),
    );
    el.add_key(
        el_key("chk-payment-issue"),
        ElKey::new("keyChkPaymentIssue", "ws-payment-issue"),
    );
    el.add_key(
        el_key("chk-payment-required"),
        ElKey::new("keyChkPaymentRequired", "ws-payment-required"),
    );
    el.add_key(
        el_key("chk-owner-of-id"),
        ElKey::new(KEY_ID_LIKE_A_KEY, "ws-main"),
    );
    w
}

const SUBSCRIPTION: &str = "GET /v1/user/subscription";
const SIGNED_URL: &str =
    "GET /v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_causes_are_explained() {
    let mut s = Scenario::start(el_world()).await;
    let url = s.el_url();
    let mut yaml = "elevenlabs:\n".to_string();
    for (name, key) in [
        ("el-invalid", el_key("chk-unknown")),
        ("el-no-write", el_key("chk-no-write")),
        ("el-restricted", el_key("chk-restricted")),
        ("el-key-id", KEY_ID_LIKE_A_KEY.to_string()),
        ("el-exhausted", el_key("chk-exhausted")),
        ("el-unusual", el_key("chk-unusual")),
        ("el-payment-issue", el_key("chk-payment-issue")),
        ("el-payment-required", el_key("chk-payment-required")),
    ] {
        yaml += &el_item(name, &s.secret(&key), &url, "");
    }
    s.secret(&el_key("chk-owner-of-id"));
    s.write(&yaml);
    let cases = [
        Case {
            credential: "el-invalid",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "0e13ed9dc469",
            finding: "invalid_api_key",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(401),
            upstream_code: Some("invalid_api_key"),
            request_id: Some(""),
            fix: &["Settings → API Keys", "xi-api-key"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-invalid (elevenlabs): invalid_credentials\n",
                "    ✗ ElevenLabs does not accept this API key (401 invalid_api_key).\n",
                "      evidence: GET /v1/user/subscription → HTTP 401, code invalid_api_key, request id …\n",
                "      fix: The key was deleted, regenerated or mistyped. Create a key in ElevenLabs → Settings → API Keys (enable Conversational AI write access if it places calls) and put it in the config file. Applications must send it in the `xi-api-key` header — `Authorization: Bearer` with an API key gets 401 too. (evidence: docs/upstream-evidence.md#elevenlabs-invalid-api-key)\n",
                "      (fingerprint 0e13ed9dc469)\n",
            )
            .into(),
        },
        Case {
            credential: "el-no-write",
            exit: 1,
            verdict: ("unhealthy", Some("missing_permission"), Some(true)),
            fingerprint: "9401a0847bc2",
            finding: "permission_missing",
            severity: "error",
            check: "permission_convai_write",
            request: SIGNED_URL.into(),
            http_status: Some(401),
            upstream_code: Some("missing_permissions"),
            request_id: Some(""),
            fix: &["Conversational AI → Write", "Settings → API Keys", "401"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-no-write (elevenlabs): missing_permission\n",
                "    ✗ This key lacks `convai_write`.\n",
                "      evidence: GET /v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000 → HTTP 401, code missing_permissions, permission convai_write, request id …\n",
                "      fix: Create a key with Conversational AI → Write (\"ElevenLabs Agents: Write\") in ElevenLabs → Settings → API Keys, or edit this key's permissions there, then put it in the config file. Without it, outbound calls fail with 401 and signed URLs cannot be issued. (evidence: docs/upstream-evidence.md#elevenlabs-missing-permissions)\n",
                "      (user_read granted (inferred); 1000 of 10000 characters used (5% of the ceiling of 20000 with usage-based billing), resets 2025-01-31T20:54:18Z; fingerprint 9401a0847bc2)\n",
            )
            .into(),
        },
        Case {
            credential: "el-restricted",
            exit: 0,
            verdict: ("healthy", None, Some(true)),
            fingerprint: "8054fac39d02",
            finding: "permission_missing",
            severity: "info",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(401),
            upstream_code: Some("missing_permissions"),
            request_id: Some(""),
            fix: &["User → Read"],
            text: concat!(
                "credwatch check: 1 credential(s), 1 ok, 0 with problems, 0 warning(s)\n",
                "\n",
                "✓ el-restricted (elevenlabs): healthy — convai_write granted (inferred); fingerprint 8054fac39d02 — note: This key lacks `user_read`. It is not required here, so the related data is unavailable.\n",
            )
            .into(),
        },
        Case {
            credential: "el-key-id",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "56ef75577178",
            finding: "key_id_used_as_key",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(400),
            upstream_code: Some("invalid_api_key"),
            request_id: Some(""),
            fix: &["sk_", "Settings → API Keys", "the config file"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-key-id (elevenlabs): invalid_credentials\n",
                "    ✗ This is an API key ID, not the key (400 api_key_id_used_as_api_key).\n",
                "      evidence: GET /v1/user/subscription → HTTP 400, code invalid_api_key, request id …\n",
                "      fix: The ID shown next to a key in the dashboard cannot authenticate. Use the secret value shown once when the key was created (it starts with `sk_`); if it is lost, create a new key in ElevenLabs → Settings → API Keys. Put it in the config file. (evidence: docs/upstream-evidence.md#elevenlabs-key-id-used-as-key)\n",
                "      (fingerprint 56ef75577178)\n",
            )
            .into(),
        },
        Case {
            credential: "el-exhausted",
            exit: 1,
            verdict: ("unhealthy", Some("quota_exhausted"), Some(true)),
            fingerprint: "5f1b722ae2ac",
            finding: "quota_exhausted",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(200),
            upstream_code: None,
            request_id: Some(""),
            fix: &["2100-01-01T00:00:00Z", "usage-based billing"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-exhausted (elevenlabs): quota_exhausted\n",
                "    ✗ The account's character/credit quota is used up.\n",
                "      evidence: GET /v1/user/subscription → HTTP 200, request id …\n",
                "      fix: Requests that spend credits (calls, speech) fail until 2100-01-01T00:00:00Z. Upgrade the plan or enable usage-based billing in ElevenLabs → Subscription, or wait for the reset. The counters cover the whole workspace; a key can also hit a credit limit of its own, which credwatch cannot see (only a workspace admin's key can list keys' limits). (evidence: docs/upstream-evidence.md#elevenlabs-quota)\n",
                "      (convai_write, user_read granted (inferred); 30000 of 30000 characters used (100%), resets 2100-01-01T00:00:00Z; fingerprint 5f1b722ae2ac)\n",
            )
            .into(),
        },
        Case {
            credential: "el-unusual",
            exit: 1,
            verdict: ("unhealthy", Some("account_blocked"), Some(true)),
            fingerprint: "a58c4c85727c",
            finding: "unusual_activity",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(401),
            upstream_code: Some("detected_unusual_activity"),
            request_id: Some(""),
            fix: &["paid plan", "VPN"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-unusual (elevenlabs): account_blocked\n",
                "    ✗ ElevenLabs disabled this account's free tier (detected_unusual_activity).\n",
                "      evidence: GET /v1/user/subscription → HTTP 401, code detected_unusual_activity, request id …\n",
                "      fix: ElevenLabs' own message says free-tier use was disabled by its abuse detection, that proxies or VPNs may trigger it, and that a paid subscription lifts it. Subscribe to a paid plan, or contact ElevenLabs support. (evidence: docs/upstream-evidence.md#elevenlabs-detected-unusual-activity)\n",
                "      (fingerprint a58c4c85727c)\n",
            )
            .into(),
        },
        Case {
            credential: "el-payment-issue",
            exit: 1,
            verdict: ("unhealthy", Some("account_blocked"), Some(true)),
            fingerprint: "de6db2f4a00a",
            finding: "payment_issue",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(401),
            upstream_code: Some("payment_issue"),
            request_id: Some(""),
            fix: &["payment method", "Billing"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-payment-issue (elevenlabs): account_blocked\n",
                "    ✗ The subscription has a failed or incomplete payment (payment_issue).\n",
                "      evidence: GET /v1/user/subscription → HTTP 401, code payment_issue, request id …\n",
                "      fix: Update the payment method or pay the open invoice in ElevenLabs → Subscription → Billing. (evidence: docs/upstream-evidence.md#elevenlabs-payment-issue)\n",
                "      (fingerprint de6db2f4a00a)\n",
            )
            .into(),
        },
        // `payment_required` restricts one feature of the plan (its only real
        // body: "Free users cannot use library voices via the API"): no verdict.
        Case {
            credential: "el-payment-required",
            exit: 1,
            verdict: ("pending", None, None),
            fingerprint: "b48ff20d66ab",
            finding: "unexpected_response",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(402),
            upstream_code: Some("payment_required"),
            request_id: Some(""),
            fix: &["not a verdict"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-payment-required (elevenlabs): no verdict: no answer credwatch can classify (`subscription`)\n",
                "    ✗ No verdict: `payment_required`: a feature restriction of the plan, not a verdict on the key or the account.\n",
                "      evidence: GET /v1/user/subscription → HTTP 402, code payment_required, request id …\n",
                "      fix: ElevenLabs refused one feature for this plan (its only recorded `payment_required` says \"Free users cannot use library voices via the API\"). This is not a verdict on the key or the account.\n",
                "    ✗ No verdict: `payment_required`: a feature restriction of the plan, not a verdict on the key or the account.\n",
                "      evidence: GET /v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000 → HTTP 402, code payment_required, request id …\n",
                "      fix: ElevenLabs refused one feature for this plan (its only recorded `payment_required` says \"Free users cannot use library voices via the API\"). This is not a verdict on the key or the account.\n",
                "      (fingerprint b48ff20d66ab)\n",
            )
            .into(),
        },
    ];
    let mut reports = BTreeMap::new();
    for case in &cases {
        reports.insert(case.credential, assert_case(&s, case).await);
    }

    let no_write = &reports["el-no-write"];
    assert_eq!(no_write.permissions.get("convai_write"), Some(&false));
    let f = finding(no_write, "permission_missing");
    assert_eq!(evidence_of(f).permission.as_deref(), Some("convai_write"));
    assert_contains(&f.summary, &["convai_write"]);

    // Without `user_read`: healthy, the quota unreadable, a note.
    let restricted = &reports["el-restricted"];
    assert!(
        restricted.quota().is_none(),
        "quota unreadable without user_read"
    );
    assert_eq!(restricted.permissions.get("user_read"), Some(&false));
    assert_eq!(restricted.permissions.get("convai_write"), Some(&true));
    let f = finding(restricted, "permission_missing");
    assert_eq!(evidence_of(f).permission.as_deref(), Some("user_read"));
    assert_contains(&f.summary, &["user_read", "not required"]);

    let f = finding(&reports["el-key-id"], "key_id_used_as_key");
    assert_contains(&f.summary, &["api_key_id_used_as_api_key"]);

    // The reset date, and no usage-based billing: the ceiling is the limit.
    let q = reports["el-exhausted"].quota().expect("quota");
    assert_eq!(
        (q.used, q.limit, q.reset_at, q.exhausted),
        (30_000, 30_000, Some(RESET_AT), true)
    );
    assert_eq!(q.ceiling, Some(30_000));
    assert!(
        q.open_invoices.is_some(),
        "the simulator sends has_open_invoices"
    );

    let f = finding(&reports["el-payment-required"], "unexpected_response");
    assert_contains(&f.summary, &["payment_required", "feature restriction"]);

    // All at once: exit 1, a summary, then each credential as above.
    let (text, _, report) = s.both(&[]).await;
    assert_eq!(text.code, 1);
    assert!(!report.ok);
    assert_eq!(report.credentials.len(), cases.len());
    let blocks: String = cases
        .iter()
        .map(|c| c.text.split_once("\n\n").expect("header").1)
        .collect();
    assert_eq!(
        masked(&text.stdout),
        format!(
            "credwatch check: 8 credential(s), 1 ok, 7 with problems, 0 warning(s)\n\n{blocks}"
        ),
        "{text:?}"
    );
    for c in &report.credentials {
        assert_text_explains(&text, c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn el_secret_with_trailing_newline_warns_but_is_healthy() {
    let mut s = Scenario::start(el_world()).await;
    let key = s.secret(&el_key("chk-full"));
    let var = "CREDWATCH_IT_CHECK_KEY";
    s.env.push((var.into(), format!("{key}\n")));
    let yaml = format!(
        "elevenlabs:\n  - name: el\n    api_key_env: {var}\n    base_url: {}\n",
        s.el_url()
    );
    s.write(&yaml);
    let (text, c) = s.one("el").await;
    assert_eq!(
        text.stdout,
        concat!(
            "credwatch check: 1 credential(s), 1 ok, 0 with problems, 1 warning(s)\n",
            "\n",
            "✓ el (elevenlabs): healthy — convai_write, user_read granted (inferred); 1000 of 10000 characters used (5% of the ceiling of 20000 with usage-based billing), resets 2025-01-31T20:54:18Z; fingerprint e1b071da291d\n",
            "    ! elevenlabs[0].api_key_env: the value from environment variable CREDWATCH_IT_CHECK_KEY has surrounding whitespace (a trailing newline?); credwatch trimmed it, but other clients of this secret will send it as-is and get 401: fix the source\n",
            "      fix: Remove the surrounding whitespace (often a trailing newline from `echo` or an editor) at the source: credwatch trims it, but your application may send it as-is and get 401.\n",
        ),
        "{text:?}"
    );
    assert_eq!(text.code, 0, "{text:?}");
    assert_eq!(c.status, "healthy");
    assert_eq!(c.fingerprint, "e1b071da291d", "the trimmed key is used");
    let f = finding(&c, "secret_whitespace");
    assert_eq!(
        (f.severity.as_str(), f.check.as_str()),
        ("warning", "config")
    );
    assert!(f.evidence.is_none());
    assert_contains(&f.summary, &["elevenlabs[0].api_key_env", "whitespace"]);
    assert_contains(&f.fix, &["trailing newline", "401"]);
    assert!(text.stdout.contains("whitespace"), "{text:?}");
}

/// Answers that are no verdict on the key: a CDN's HTML page, a server
/// error, no answer in time. Not ok (exit 1), and not a credential problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_answers_without_a_verdict() {
    let mut world = el_world();
    let (cloudflare, server_error, hang) = (
        el_key("chk-full"),
        el_key("chk-restricted"),
        el_key("chk-no-write"),
    );
    for (key, fault) in [
        (&cloudflare, Fault::CloudflareHtml),
        (&server_error, Fault::ServerError),
        (&hang, Fault::Hang),
    ] {
        world.elevenlabs.key_mut(key).expect("key").fault = Some(fault);
    }
    let mut s = Scenario::start(world).await;
    let url = s.el_url();
    let yaml = format!(
        "elevenlabs:\n{}{}{}",
        el_item("el-cloudflare", &s.secret(&cloudflare), &url, ""),
        el_item("el-5xx", &s.secret(&server_error), &url, ""),
        el_item("el-hang", &s.secret(&hang), &url, "    timeout: 300ms\n")
    );
    s.write(&yaml);
    let cases = [
        Case {
            credential: "el-cloudflare",
            exit: 1,
            verdict: ("pending", None, None),
            fingerprint: "e1b071da291d",
            finding: "unexpected_response",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(403),
            upstream_code: None,
            request_id: None,
            fix: &["not a credential problem", "Cloudflare"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-cloudflare (elevenlabs): no verdict: no answer credwatch can classify (`subscription`)\n",
                "    ✗ No verdict: HTTP 403 with a non-JSON (HTML) page: a CDN or firewall (e.g. a Cloudflare challenge) answered before the API saw the credential; this is not a credential problem.\n",
                "      evidence: GET /v1/user/subscription → HTTP 403\n",
                "      fix: A CDN or firewall in front of the API answered instead of the API (e.g. a Cloudflare challenge for hosting or VPN IPs, or a corporate proxy): this is not a credential problem. Run from another network, or ask the provider to allow this IP.\n",
                "    ✗ No verdict: HTTP 403 with a non-JSON (HTML) page: a CDN or firewall (e.g. a Cloudflare challenge) answered before the API saw the credential; this is not a credential problem.\n",
                "      evidence: GET /v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000 → HTTP 403\n",
                "      fix: A CDN or firewall in front of the API answered instead of the API (e.g. a Cloudflare challenge for hosting or VPN IPs, or a corporate proxy): this is not a credential problem. Run from another network, or ask the provider to allow this IP.\n",
                "      (fingerprint e1b071da291d)\n",
            )
            .into(),
        },
        Case {
            credential: "el-5xx",
            exit: 1,
            verdict: ("pending", None, None),
            fingerprint: "8054fac39d02",
            finding: "upstream_error",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: Some(500),
            upstream_code: Some("something_went_wrong"),
            request_id: Some(""),
            fix: &["Nothing to fix on your side"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-5xx (elevenlabs): no verdict: upstream unreachable (`subscription`: upstream_error)\n",
                "    ✗ No verdict: HTTP 500 `something_went_wrong`: server error.\n",
                "      evidence: GET /v1/user/subscription → HTTP 500, code something_went_wrong, request id …\n",
                "      fix: Upstream had a server error. Nothing to fix on your side; retry later or check the provider's status page.\n",
                "      (fingerprint 8054fac39d02)\n",
            )
            .into(),
        },
        Case {
            credential: "el-hang",
            exit: 1,
            verdict: ("pending", None, None),
            fingerprint: "9401a0847bc2",
            finding: "timeout",
            severity: "error",
            check: "subscription",
            request: SUBSCRIPTION.into(),
            http_status: None,
            upstream_code: None,
            request_id: None,
            fix: &["timeout"],
            text: concat!(
                "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                "\n",
                "✗ el-hang (elevenlabs): no verdict: upstream unreachable (`subscription`: timeout)\n",
                "    ✗ No verdict: no complete answer within 300ms.\n",
                "      evidence: GET /v1/user/subscription → no complete answer within 300ms\n",
                "      fix: No answer within the timeout. Check egress from this host (firewall, proxy, DNS) or raise `timeout`.\n",
                "      (fingerprint 9401a0847bc2)\n",
            )
            .into(),
        },
    ];
    let mut reports = BTreeMap::new();
    for case in &cases {
        reports.insert(case.credential, assert_case(&s, case).await);
    }
    let f = finding(&reports["el-cloudflare"], "unexpected_response");
    assert_contains(&f.summary, &["No verdict", "HTML"]);
}

// ---------------------------------------------------------------------------
// Twilio
// ---------------------------------------------------------------------------

/// One Twilio account per cause in the simulator's world, each with the
/// credential that meets it; returns the `twilio:` items.
fn tw_causes(s: &mut Scenario) -> String {
    let url = s.tw_url();
    let mut w = World::default();
    let mut items = String::new();

    // Wrong token: the account's token was rotated.
    let sid = ac_sid("chk-wrong-token");
    w.twilio.add_account(
        TwilioAccount::new(&sid, tw_token("chk-current")).with_numbers(&["+15005550001"]),
    );
    items += &tw_item(
        "tw-wrong-token",
        &sid,
        &s.secret(&tw_token("chk-old")),
        &url,
    );

    // Test credentials.
    let sid = ac_sid("chk-test-creds");
    let test_token = tw_token("chk-test-creds-test");
    let mut account = TwilioAccount::new(&sid, tw_token("chk-test-creds-live"));
    account.test_auth_token = Some(test_token.clone());
    w.twilio.add_account(account);
    items += &tw_item("tw-test-credentials", &sid, &s.secret(&test_token), &url);

    // A Standard API key: may not read the account.
    let sid = ac_sid("chk-standard");
    let (key_sid, secret) = (sk_sid("chk-standard"), tw_key_secret("chk-standard"));
    w.twilio.add_account(
        TwilioAccount::new(&sid, tw_token("chk-standard"))
            .with_numbers(&["+15005550011", "+15005550012"])
            .with_balance(Some("18.03"), "USD")
            .with_key(ApiKey::new(&key_sid, &secret, KeyKind::Standard)),
    );
    items += &tw_key_item("tw-standard-key", &sid, &key_sid, &s.secret(&secret), &url);

    // The parent's Main key used on a subaccount.
    let parent = ac_sid("chk-parent");
    let sub = ac_sid("chk-sub");
    let (key_sid, secret) = (sk_sid("chk-parent-main"), tw_key_secret("chk-parent-main"));
    w.twilio.add_account(
        TwilioAccount::new(&parent, tw_token("chk-parent")).with_key(ApiKey::new(
            &key_sid,
            &secret,
            KeyKind::Main,
        )),
    );
    w.twilio.add_account(
        TwilioAccount::new(&sub, tw_token("chk-sub"))
            .with_parent(&parent)
            .with_numbers(&["+15005550021"]),
    );
    items += &tw_key_item("tw-parent-key", &sub, &key_sid, &s.secret(&secret), &url);

    // A suspended account.
    let sid = ac_sid("chk-suspended");
    let token = tw_token("chk-suspended");
    w.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_status(AccountStatus::Suspended)
            .with_numbers(&["+15005550031"]),
    );
    items += &tw_item("tw-suspended", &sid, &s.secret(&token), &url);

    // A Main key with another account's SID.
    let own = ac_sid("chk-own");
    let other = ac_sid("chk-other");
    let (key_sid, secret) = (sk_sid("chk-own"), tw_key_secret("chk-own"));
    w.twilio.add_account(
        TwilioAccount::new(&own, tw_token("chk-own")).with_key(ApiKey::new(
            &key_sid,
            &secret,
            KeyKind::Main,
        )),
    );
    w.twilio
        .add_account(TwilioAccount::new(&other, tw_token("chk-other")));
    items += &tw_key_item(
        "tw-wrong-account-sid",
        &other,
        &key_sid,
        &s.secret(&secret),
        &url,
    );

    s.sim.update(|world| *world = w);
    items
}

/// The liveness request of an account, as the evidence names it.
fn numbers_request(sid: &str) -> String {
    format!("GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_causes_are_explained() {
    let mut s = Scenario::start(World::default()).await;
    let items = tw_causes(&mut s);
    s.write(&format!("twilio:\n{items}"));
    let wrong_token = ac_sid("chk-wrong-token");
    let test_creds = ac_sid("chk-test-creds");
    let standard = ac_sid("chk-standard");
    let sub = ac_sid("chk-sub");
    let suspended = ac_sid("chk-suspended");
    let other = ac_sid("chk-other");
    let cases = [
        Case {
            credential: "tw-wrong-token",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "b17b2f527392",
            finding: "twilio_authenticate",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&wrong_token),
            http_status: Some(401),
            upstream_code: Some("20003"),
            request_id: Some("RQ"),
            fix: &[
                "rotated",
                "Auth Token",
                "fingerprint b17b2f527392",
                "sha256sum",
                "re-import",
            ],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-wrong-token (twilio): invalid_credentials\n",
                    "    ✗ Twilio rejected the credentials (401, code 20003 Authenticate): rotated, deleted, or the account was suspended or closed.\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 401, code 20003, request id RQ…\n",
                    "      fix: Twilio's 20003 page lists both kinds of cause. The credential: the Auth Token was rotated or deleted (Console → Account → API keys & tokens; promoting the secondary Auth Token deletes the old primary); the SID and the Auth Token belong to different accounts (live vs test, parent vs subaccount {sid}: here it needs its own Auth Token, since credwatch sends an Auth Token with the Account SID it checks and so cannot use the parent's — parent API keys cannot reach subaccounts); an API key from another region. The account: suspended or closed (check Console → Billing, or log in to the Console). Compare fingerprint b17b2f527392 with `printf %s \"$TOKEN\" | sha256sum | cut -c1-12` of the value in the Console, then put the current value in the config file. If ElevenLabs holds the same Auth Token for imported numbers, re-import them too. (evidence: docs/upstream-evidence.md#twilio-20003)\n",
                    "      (fingerprint b17b2f527392)\n",
                ),
                sid = wrong_token
            ),
        },
        Case {
            credential: "tw-test-credentials",
            exit: 1,
            // Test credentials authenticate but read nothing: neither valid nor invalid.
            verdict: ("pending", None, None),
            fingerprint: "476e8c7c77a8",
            finding: "unexpected_response",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&test_creds),
            http_status: Some(403),
            upstream_code: Some("20008"),
            request_id: Some("RQ"),
            fix: &["test credentials", "live Account SID"],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-test-credentials (twilio): no verdict: no answer credwatch can classify (`phone_numbers`)\n",
                    "    ✗ No verdict: test credentials (20008): Twilio answers them for nothing credwatch may read, so they can be neither confirmed nor rejected.\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 403, code 20008, request id RQ…\n",
                    "      fix: These are Twilio test credentials: Twilio accepts them only to simulate buying numbers, sending messages and placing calls, and answers 403 to every other request, so credwatch cannot tell whether they work. Monitor the live Account SID and Auth Token (Console → Account → API keys & tokens) instead. (evidence: docs/upstream-evidence.md#twilio-20008)\n",
                    "      (fingerprint 476e8c7c77a8)\n",
                ),
                sid = test_creds
            ),
        },
        Case {
            credential: "tw-standard-key",
            exit: 0,
            verdict: ("healthy", None, Some(true)),
            fingerprint: "328a6b665ec5",
            finding: "standard_key",
            severity: "info",
            check: "account",
            request: format!("GET /2010-04-01/Accounts/{standard}.json"),
            http_status: Some(401),
            upstream_code: Some("20003"),
            request_id: Some("RQ"),
            fix: &["Main API key", "Auth Token"],
            text: concat!(
                "credwatch check: 1 credential(s), 1 ok, 0 with problems, 0 warning(s)\n",
                "\n",
                "✓ tw-standard-key (twilio): healthy — incoming_phone_numbers_read granted (direct); 2 number(s); balance 18.03 USD; fingerprint 328a6b665ec5 — note: This API key may not read the account: it is a Standard (or restricted) key.\n",
            )
            .into(),
        },
        Case {
            credential: "tw-parent-key",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "831e1349a534",
            finding: "twilio_authenticate",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&sub),
            http_status: Some(401),
            upstream_code: Some("20003"),
            request_id: Some("RQ"),
            fix: &[
                "API key secret",
                "subaccount",
                "parent API keys cannot reach subaccounts",
            ],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-parent-key (twilio): invalid_credentials\n",
                    "    ✗ Twilio rejected the credentials (401, code 20003 Authenticate): rotated, deleted, or the account was suspended or closed.\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 401, code 20003, request id RQ…\n",
                    "      fix: Twilio's 20003 page lists both kinds of cause. The credential: the API key secret was rotated or deleted (Console → Account → API keys & tokens; promoting the secondary Auth Token deletes the old primary); the SID and the API key secret belong to different accounts (live vs test, parent vs subaccount {sid}: here it needs its own Auth Token, since credwatch sends an Auth Token with the Account SID it checks and so cannot use the parent's — parent API keys cannot reach subaccounts); an API key from another region. The account: suspended or closed (check Console → Billing, or log in to the Console). Compare fingerprint 831e1349a534 with `printf %s \"$TOKEN\" | sha256sum | cut -c1-12` of the value in the Console, then put the current value in the config file. If ElevenLabs holds the same Auth Token for imported numbers, re-import them too. (evidence: docs/upstream-evidence.md#twilio-20003)\n",
                    "      (fingerprint 831e1349a534)\n",
                ),
                sid = sub
            ),
        },
        Case {
            credential: "tw-suspended",
            exit: 1,
            verdict: ("unhealthy", Some("account_blocked"), Some(true)),
            fingerprint: "75424390abc1",
            finding: "account_suspended",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&suspended),
            http_status: Some(403),
            upstream_code: Some("20403"),
            request_id: Some("RQ"),
            fix: &["Billing", "Twilio support"],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-suspended (twilio): account_blocked\n",
                    "    ✗ The Twilio account is suspended or closed (20403): it cannot use the API.\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 403, code 20403, request id RQ…\n",
                    "      fix: Check Console → Billing and the account's status, and contact Twilio support; calls through this account fail until it is active. (evidence: docs/upstream-evidence.md#twilio-account-status)\n",
                    "      (account suspended (Full); fingerprint 75424390abc1)\n",
                ),
                sid = suspended
            ),
        },
        Case {
            credential: "tw-wrong-account-sid",
            exit: 1,
            verdict: ("unhealthy", Some("invalid_credentials"), Some(false)),
            fingerprint: "6ae8db31b292",
            finding: "account_not_found",
            severity: "error",
            check: "phone_numbers",
            request: numbers_request(&other),
            http_status: Some(404),
            upstream_code: Some("20404"),
            request_id: Some("RQ"),
            fix: &["Account SID", "Console → Account info"],
            text: format!(
                concat!(
                    "credwatch check: 1 credential(s), 0 ok, 1 with problems, 0 warning(s)\n",
                    "\n",
                    "✗ tw-wrong-account-sid (twilio): invalid_credentials\n",
                    "    ✗ No such Twilio account for these credentials (404, code 20404).\n",
                    "      evidence: GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json?PageSize=1000 → HTTP 404, code 20404, request id RQ…\n",
                    "      fix: The Account SID is mistyped, the account was closed, or the secret belongs to a different account. Copy the Account SID from Console → Account info. (evidence: docs/upstream-evidence.md#twilio-20404)\n",
                    "      (fingerprint 6ae8db31b292)\n",
                ),
                sid = other
            ),
        },
    ];
    let mut reports = BTreeMap::new();
    for case in &cases {
        reports.insert(case.credential, assert_case(&s, case).await);
    }

    // A Standard key counts the numbers but may not read the account.
    let standard_key = &reports["tw-standard-key"];
    assert_eq!(standard_key.twilio_phone_numbers(), Some(2));
    assert!(
        standard_key.twilio_account().is_none(),
        "a Standard key may not read the account"
    );
    // The parent's key on a subaccount: the fix names the subaccount.
    assert_contains(
        &finding(&reports["tw-parent-key"], "twilio_authenticate").fix,
        &[&sub],
    );
}

// ---------------------------------------------------------------------------
// Cross-check of the Twilio numbers imported into ElevenLabs
// ---------------------------------------------------------------------------

const N_ON: &str = "+15005550101";
const N_CALLER_ID: &str = "+15005550102";
const N_ABSENT: &str = "+15005550199";
/// Well-formed (`agent_` + 28 lowercase alphanumerics), assigned, and nowhere.
const MISSING_AGENT: &str = "agent_missing000000000000000000000";

/// One ElevenLabs workspace per case, each with one imported number; one
/// Twilio account owning `N_ON` (incoming) and `N_CALLER_ID` (caller ID).
fn phone_world(tw_sid: &str, tw_tok: &str) -> World {
    let mut w = World::default();
    // Agent IDs are unique across the simulator: one pair per workspace.
    let agent_id = |kind: &str, case: &str| format!("agent_{:0<28}", format!("{kind}{case}"));
    let number = |id: &str, n: &str| {
        ElPhoneNumber::twilio(id, n, format!("{id} line")).with_twilio_credentials(tw_sid, tw_tok)
    };
    for case in [
        "ready",
        "callerid",
        "absent",
        "noagent",
        "agentmissing",
        "pcm",
    ] {
        let ulaw = Agent::new(agent_id("ulaw", case), "Phone", "ulaw_8000");
        let pcm = Agent::new(agent_id("pcm", case), "Web", "pcm_16000");
        let id = format!("phnum_{case}");
        let n = match case {
            "ready" => number(&id, N_ON).assigned_to(&ulaw),
            "callerid" => number(&id, N_CALLER_ID).assigned_to(&ulaw),
            "absent" => number(&id, N_ABSENT).assigned_to(&ulaw),
            "noagent" => number(&id, N_ON),
            "agentmissing" => ElPhoneNumber {
                assigned_agent: Some(AssignedAgent {
                    agent_id: MISSING_AGENT.into(),
                    agent_name: "Deleted".into(),
                }),
                ..number(&id, N_ON)
            },
            _ => number(&id, N_ON).assigned_to(&pcm),
        };
        w.elevenlabs.add_account(
            ElAccount::new(format!("ws-{case}"))
                .with_agent(ulaw)
                .with_agent(pcm)
                .with_phone_number(n),
        );
        w.elevenlabs.add_key(
            el_key(&format!("chk-phone-{case}")),
            ElKey::new(format!("keyChkPhone{case}"), format!("ws-{case}")),
        );
    }
    w.twilio.add_account(
        TwilioAccount::new(tw_sid, tw_tok)
            .with_numbers(&[N_ON, "+15005550103"])
            .with_caller_id(N_CALLER_ID),
    );
    w
}

struct PhoneScenario {
    s: Scenario,
    tw_fingerprint: String,
}

/// Every case as `el-<case>` linked to `tw`, plus `el-rotated` (the ready
/// number, imported with an older token) and `el-confirmed` (re-import confirmed).
async fn phone_scenario() -> PhoneScenario {
    let sid = ac_sid("chk-phone");
    let token = tw_token("chk-phone");
    let mut s = Scenario::start(phone_world(&sid, &token)).await;
    // `printf %s "$token" | sha256sum | cut -c1-12`
    let tw_fingerprint = "b30fe963434f".to_string();
    let url = s.el_url();
    let link = "    phone_numbers: true\n    twilio: tw\n";
    let mut yaml = "elevenlabs:\n".to_string();
    for case in [
        "ready",
        "callerid",
        "absent",
        "noagent",
        "agentmissing",
        "pcm",
    ] {
        let key = s.secret(&el_key(&format!("chk-phone-{case}")));
        yaml += &el_item(&format!("el-{case}"), &key, &url, link);
    }
    let ready_key = el_key("chk-phone-ready");
    yaml += &el_item(
        "el-rotated",
        &ready_key,
        &url,
        &format!("{link}    twilio_imported_fingerprint: 0123456789ab\n"),
    );
    yaml += &el_item(
        "el-confirmed",
        &ready_key,
        &url,
        &format!("{link}    twilio_imported_fingerprint: {tw_fingerprint}\n"),
    );
    yaml += &format!(
        "twilio:\n{}",
        tw_item("tw", &sid, &s.secret(&token), &s.tw_url())
    );
    s.write(&yaml);
    PhoneScenario { s, tw_fingerprint }
}

/// The one imported number of a case.
fn the_number(c: &CredReport) -> &PhoneReport {
    assert_eq!(c.phone_numbers().len(), 1, "{c:#?}");
    &c.phone_numbers()[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_on_the_twilio_account_is_ready() {
    let p = phone_scenario().await;
    for (case, id, number) in [
        ("el-ready", "phnum_ready", N_ON),
        ("el-callerid", "phnum_callerid", N_CALLER_ID),
    ] {
        p.s.sim.clear_requests();
        let (text, c) = p.s.one(case).await;
        // Ownership is looked up number by number with Twilio's
        // `PhoneNumber=` filter: the ElevenLabs check never pages through the
        // Twilio account's lists.
        // (The linked Twilio credential itself is checked too, for its
        // verdict: one page of one number, no full listing.)
        let twilio: Vec<_> =
            p.s.sim
                .requests()
                .into_iter()
                .filter(|r| {
                    r.path.ends_with("IncomingPhoneNumbers.json")
                        || r.path.ends_with("OutgoingCallerIds.json")
                })
                .collect();
        assert!(
            twilio
                .iter()
                .any(|r| r.query.as_deref().unwrap_or("").contains("PhoneNumber=%2B")),
            "{case}: ownership was not checked"
        );
        for r in &twilio {
            let q = r.query.as_deref().unwrap_or("");
            assert!(
                q.contains("PhoneNumber=%2B") || q == "PageSize=1",
                "{case}: {} {q}",
                r.path
            );
            assert!(!q.contains("PageSize=1000"), "{case}: {} {q}", r.path);
        }
        assert_eq!(text.code, 0, "{text:?}");
        assert_eq!(c.status, "healthy");
        let n = the_number(&c);
        assert_eq!(
            (n.phone_number_id.as_str(), n.number.as_str(), n.ready),
            (id, number, true),
            "{case}"
        );
        assert!(n.problems.is_empty(), "{case}: {n:?}");
        assert!(c.findings.is_empty(), "{case}: {:?}", c.findings);
        assert!(
            text.stdout.contains("1/1 imported numbers ready"),
            "{text:?}"
        );
        assert!(
            c.evidence.iter().any(
                |e| e.request == "GET /v1/convai/phone-numbers?provider=twilio"
                    && e.http_status == Some(200)
            ),
            "{c:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_not_on_the_twilio_account() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-absent").await;
    assert_eq!(
        text.code, 1,
        "a credential with a number not ready is not ok"
    );
    assert_eq!(
        c.status, "healthy",
        "phone problems do not change the verdict"
    );
    let n = the_number(&c);
    assert!(!n.ready);
    assert_eq!(n.problems, ["not_on_twilio_account"]);
    let f = finding(&c, "not_on_twilio_account");
    assert_eq!(
        (f.severity.as_str(), f.check.as_str()),
        ("error", "phone_numbers")
    );
    let e = evidence_of(f);
    assert_eq!(e.http_status, Some(200));
    assert!(e.request_id.is_some(), "{e:?}");
    assert_contains(&f.summary, &[N_ABSENT, "phnum_absent", "`tw`"]);
    assert_contains(
        &f.fix,
        &[
            "released or moved to another Twilio account",
            "re-import",
            "Account SID and Auth Token",
        ],
    );
    assert!(
        text.stdout.contains(": imported numbers not ready"),
        "{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_without_agent_is_advice_and_still_ready() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-noagent").await;
    let n = the_number(&c);
    assert_eq!(n.problems, ["no_agent"]);
    assert_eq!(n.agent_id, None);
    let f = finding(&c, "no_agent");
    assert_eq!(f.severity, "info", "no agent is advice: {f:?}");
    assert_contains(&f.fix, &["Outbound calls", "still work", "inbound"]);
    assert!(n.ready, "outbound calls name their agent: {n:?}");
    assert_eq!(text.code, 0, "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_whose_agent_is_missing_is_not_ready() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-agentmissing").await;
    assert_eq!(text.code, 1);
    let n = the_number(&c);
    assert!(!n.ready);
    assert_eq!(n.agent_id.as_deref(), Some(MISSING_AGENT));
    assert_eq!(n.problems, ["agent_missing"]);
    let f = finding(&c, "agent_missing");
    assert_eq!(f.severity, "error");
    assert_contains(&f.summary, &["agent_not_found"]);
    assert_contains(&f.fix, &["assign an existing agent", "Phone Numbers"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_with_a_non_ulaw_agent_is_advice() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-pcm").await;
    assert_eq!(text.code, 0, "{text:?}");
    let n = the_number(&c);
    assert!(n.ready);
    assert_eq!(n.problems, ["agent_not_ulaw"]);
    let f = finding(&c, "agent_not_ulaw");
    assert_eq!(f.severity, "info");
    assert_contains(&f.fix, &["ulaw_8000", "Advice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_need_reimport_after_the_twilio_credential_changed() {
    let p = phone_scenario().await;
    let (text, c) = p.s.one("el-rotated").await;
    assert_eq!(text.code, 1);
    let n = the_number(&c);
    assert!(!n.ready);
    assert_eq!(n.problems, ["reimport_needed"]);
    let f = finding(&c, "reimport_needed");
    assert_eq!(f.severity, "error");
    assert_contains(&f.summary, &["`tw`", N_ON]);
    assert_contains(
        &f.fix,
        &["re-import", "Phone Numbers", "twilio_imported_fingerprint"],
    );
    // How to confirm, on the same screen even with `--credential` (which
    // hides `tw` and its fingerprint): the exact setting.
    assert_contains(
        &f.fix,
        &[&format!(
            "`twilio_imported_fingerprint: {}`",
            p.tw_fingerprint
        )],
    );
    assert!(text.stdout.contains(&p.tw_fingerprint), "{text:?}");

    // Confirmed: the same number, the current fingerprint → ready.
    let (text, c) = p.s.one("el-confirmed").await;
    assert_eq!(text.code, 0, "{text:?}");
    assert!(the_number(&c).problems.is_empty(), "{c:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_number_metrics_label_the_number_only_when_exposed() {
    let sid = ac_sid("chk-phone-metrics");
    let token = tw_token("chk-phone-metrics");
    let mut world = phone_world(&sid, &token);
    let second = el_key("chk-phone-absent-2");
    world.elevenlabs.add_key(
        second.clone(),
        ElKey::new("keyChkPhoneAbsent2", "ws-absent"),
    );
    let sim = Simulator::start(world).await.expect("simulator");
    let link = "    phone_numbers: true\n    twilio: tw\n";
    let yaml = format!(
        "{FAST_DETAILS}elevenlabs:\n{}{}twilio:\n{}",
        el_item(
            "el-hidden",
            &el_key("chk-phone-absent"),
            &sim.elevenlabs_url(),
            link
        ),
        el_item(
            "el-exposed",
            &second,
            &sim.elevenlabs_url(),
            &format!("{link}    expose_numbers: true\n")
        ),
        tw_item("tw", &sid, &token, &sim.twilio_url()),
    );
    let d = Daemon::start(&yaml).await;
    let within = Duration::from_secs(20);
    for name in ["el-hidden", "el-exposed"] {
        let me = cred(name);
        wait_sample(
            &d,
            within,
            "credwatch_elevenlabs_phone_number_ready",
            &[&me, "phone_number_id=\"phnum_absent\""],
            |v| v == 0.0,
        )
        .await;
        wait_sample(
            &d,
            within,
            "credwatch_elevenlabs_phone_number_problem",
            &[
                &me,
                "phone_number_id=\"phnum_absent\"",
                "problem=\"not_on_twilio_account\"",
            ],
            |v| v == 1.0,
        )
        .await;
    }
    let m = d.metrics().await;
    let hidden = lines_of(&m, "el-hidden");
    assert!(
        !hidden.contains("number=\"") && !hidden.contains(N_ABSENT),
        "no `number` label without expose_numbers:\n{hidden}"
    );
    let exposed = lines_of(&m, "el-exposed");
    let number = format!("number=\"{N_ABSENT}\"");
    for family in [
        "credwatch_elevenlabs_phone_number_ready",
        "credwatch_elevenlabs_phone_number_problem",
    ] {
        assert!(
            sample(&m, family, &[&cred("el-exposed"), &number]).is_some(),
            "{family} has the number with expose_numbers: true:\n{exposed}"
        );
    }
    d.stop().await;
}

// ---------------------------------------------------------------------------
// Output contract
// ---------------------------------------------------------------------------

/// A config with one healthy ElevenLabs key, one healthy Twilio account and
/// one revoked ElevenLabs key.
async fn mixed_scenario() -> Scenario {
    let sid = ac_sid("chk-mixed");
    let token = tw_token("chk-mixed");
    let mut world = el_world();
    world.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_numbers(&["+15005550041"])
            .with_balance(Some("42.17"), "USD"),
    );
    let mut s = Scenario::start(world).await;
    let url = s.el_url();
    let yaml = format!(
        "elevenlabs:\n{}{}twilio:\n{}",
        el_item("el-ok", &s.secret(&el_key("chk-full")), &url, ""),
        el_item("el-revoked", &s.secret(&el_key("chk-revoked")), &url, ""),
        tw_item("tw-ok", &sid, &s.secret(&token), &s.tw_url()),
    );
    s.write(&yaml);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_credential_selection() {
    let s = mixed_scenario().await;

    // Everything: one unhealthy → 1; each credential is in the report.
    let (text, _, report) = s.both(&[]).await;
    assert_eq!(text.code, 1, "{text:?}");
    assert!(!report.ok);
    let names: Vec<&str> = report.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["el-ok", "el-revoked", "tw-ok"]);
    for c in &report.credentials {
        assert_text_explains(&text, c);
    }
    assert!(
        text.stdout
            .starts_with("credwatch check: 3 credential(s), 2 ok, 1 with problems, 0 warning(s)\n"),
        "{text:?}"
    );
    // --fail-on-warning changes nothing without a warning.
    let strict = s.run(&["--fail-on-warning", "--credential", "el-ok"]).await;
    assert_eq!(strict.code, 0, "{strict:?}");

    // Only the healthy ones, one at a time: 0, and only that one is printed.
    for (name, other) in [("el-ok", "el-revoked"), ("tw-ok", "el-ok")] {
        let (text, c) = s.one(name).await;
        assert_eq!(text.code, 0, "{text:?}");
        assert_eq!(c.status, "healthy");
        assert!(!text.stdout.contains(other), "{text:?}");
        let non_empty: Vec<&str> = text.stdout.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(non_empty.len(), 2, "a header and one line\n{text:?}");
    }

    // Unknown credential: 2, naming the configured ones; nothing sent.
    let before = s.sim.request_count();
    for args in [
        &["--credential", "nope"][..],
        &["--credential", "nope", "--output", "json"][..],
    ] {
        let run = s.run(args).await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stdout.is_empty(), "{run:?}");
        assert_contains(&run.stderr, &["`nope`", "el-ok", "el-revoked", "tw-ok"]);
    }
    assert_eq!(s.sim.request_count(), before);

    // Usage errors: 2.
    let run = s.run(&["--output", "yaml"]).await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = credwatch(
        vec![
            "check".into(),
            "--config".into(),
            s.dir
                .path()
                .join("missing.yaml")
                .to_string_lossy()
                .into_owned(),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("cannot read the config file"),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_credentials_take_one_line() {
    let s = mixed_scenario().await;
    let text = s.run(&[]).await;
    let lines: Vec<&str> = text.stdout.lines().collect();
    for name in ["el-ok", "tw-ok"] {
        let mine: Vec<&&str> = lines.iter().filter(|l| l.contains(name)).collect();
        assert_eq!(mine.len(), 1, "{name}\n{text:?}");
        assert!(mine[0].starts_with(&format!("✓ {name} (")), "{text:?}");
    }
    // The unhealthy one gets its block: header, finding, evidence, fix, summary.
    let at = lines
        .iter()
        .position(|l| l.starts_with("✗ el-revoked (elevenlabs): invalid_credentials"))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(lines[at + 1].starts_with("    ✗ "), "{text:?}");
    assert!(lines[at + 2].starts_with("      evidence: "), "{text:?}");
    assert!(lines[at + 3].starts_with("      fix: "), "{text:?}");
}

/// Runs the check under a pseudo-terminal (`script`), so stdout is a TTY.
async fn on_a_tty(s: &Scenario, no_color: Option<&str>) -> String {
    let cmd = format!(
        "{} check --config {}",
        env!("CARGO_BIN_EXE_credwatch"),
        s.dir.path().join("config.yaml").display()
    );
    crate::support::on_a_tty(cmd, &[], no_color).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_only_on_a_tty_and_never_with_no_color() {
    let s = mixed_scenario().await;
    // Piped (what `run` does): never colour, with or without NO_COLOR.
    let piped = s.run(&[]).await;
    assert!(!piped.stdout.contains('\x1b'), "{piped:?}");

    let tty = on_a_tty(&s, None).await;
    assert!(
        tty.contains("credwatch check:") && tty.contains("\x1b[31;1m✗"),
        "colour on a TTY:\n{tty:?}"
    );
    let no_color = on_a_tty(&s, Some("1")).await;
    assert!(no_color.contains("credwatch check:"), "{no_color:?}");
    assert!(
        !no_color.contains('\x1b'),
        "NO_COLOR turns colour off on a TTY:\n{no_color:?}"
    );
    for out in [&tty, &no_color] {
        for secret in &s.secrets {
            assert!(!out.contains(secret.as_str()), "secret leaked: {secret}");
        }
    }
}

/// The full schema, over a config that fills every part of it: quota,
/// permissions, Twilio account/balance/count, imported numbers, findings with
/// and without evidence, and a credential without any verdict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_matches_the_documented_schema() {
    let sid = ac_sid("chk-phone");
    let token = tw_token("chk-phone");
    let mut world = phone_world(&sid, &token);
    let restricted = el_key("chk-schema-restricted");
    world.elevenlabs.add_key(
        restricted.clone(),
        ElKey::new("keyChkSchemaRestricted", "ws-absent")
            .with_permissions(&["convai_write", "convai_read"]),
    );
    let hang = el_key("chk-schema-hang");
    let mut hanging = ElKey::new("keyChkSchemaHang", "ws-ready");
    hanging.fault = Some(Fault::Hang);
    world.elevenlabs.add_key(hang.clone(), hanging);
    world.twilio.account_mut(&sid).expect("account").balance = Some("42.17".into());

    let mut s = Scenario::start(world).await;
    let url = s.el_url();
    let var = format!("CREDWATCH_IT_SCHEMA_KEY_{:x}", fastrand::u32(..));
    let ready = s.secret(&el_key("chk-phone-ready"));
    s.env.push((var.clone(), format!(" {ready}\n")));
    let link = "    phone_numbers: true\n    twilio: tw\n";
    let yaml = format!(
        "elevenlabs:\n  - name: el-ready\n    api_key_env: {var}\n    base_url: {url}\n{link}    critical: false\n{}{}twilio:\n{}",
        el_item("el-restricted", &s.secret(&restricted), &url, link),
        el_item("el-hang", &s.secret(&hang), &url, "    timeout: 300ms\n"),
        tw_item("tw", &sid, &s.secret(&token), &s.tw_url()),
    );
    s.write(&yaml);
    let run = s.run(&["--output", "json"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let report = parse(&run);
    assert!(!report.ok);
    let by = |n: &str| {
        report
            .credentials
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("{n} in {report:#?}"))
    };

    let ready = by("el-ready");
    assert_eq!(
        (ready.provider.as_str(), ready.critical),
        ("elevenlabs", false)
    );
    let q = ready.quota().expect("quota");
    assert_eq!((q.used, q.limit, q.exhausted), (1000, 10000, false));
    assert_eq!((q.tier.as_str(), q.status.as_str()), ("starter", "active"));
    assert!(q.reset_at.is_some());
    assert_eq!(ready.permissions.get("convai_write"), Some(&true));
    assert!(finding(ready, "secret_whitespace").evidence.is_none());
    let n = the_number(ready);
    assert_eq!(
        (n.label.as_str(), n.agent_id.as_deref()),
        (
            "phnum_ready line",
            Some("agent_ulawready0000000000000000000")
        )
    );
    assert!(ready.evidence.len() >= 3, "{ready:#?}");

    let restricted = by("el-restricted");
    assert_eq!(restricted.status, "healthy");
    assert!(!restricted.phone_numbers()[0].ready);
    assert_eq!(finding(restricted, "permission_missing").severity, "info");

    let hang = by("el-hang");
    assert_eq!((hang.status.as_str(), hang.valid), ("pending", None));
    assert_eq!(finding(hang, "timeout").severity, "error");

    let tw = by("tw");
    assert_eq!(tw.provider, "twilio");
    assert!(tw.critical, "critical by default");
    let a = tw.twilio_account().expect("account");
    assert_eq!(
        (a.status.as_str(), a.kind.as_str(), a.subaccount),
        ("active", "Full", false)
    );
    let b = tw.twilio_balance().expect("balance");
    assert_eq!((b.amount, b.currency.as_str()), (42.17, "USD"));
    assert_eq!(tw.twilio_phone_numbers(), Some(2));
    // The auth check's own request is the permission a restricted key may lack.
    assert_eq!(
        tw.permissions,
        BTreeMap::from([("incoming_phone_numbers_read".to_string(), true)])
    );
    assert_eq!(
        tw.permission_basis
            .get("incoming_phone_numbers_read")
            .map(String::as_str),
        Some("direct")
    );
    assert!(tw.quota().is_none());
    assert_eq!(
        tw.evidence
            .iter()
            .map(|e| e.request.split('?').next().unwrap_or_default().to_string())
            .collect::<Vec<_>>(),
        [
            format!("GET /2010-04-01/Accounts/{sid}/IncomingPhoneNumbers.json"),
            format!("GET /2010-04-01/Accounts/{sid}.json"),
            format!("GET /2010-04-01/Accounts/{sid}/Balance.json"),
        ]
    );
}

// ---------------------------------------------------------------------------
// Warnings under a healthy verdict
// ---------------------------------------------------------------------------

/// Healthy credentials that deserve attention: a quota at or above 90 % of
/// its ceiling, a subscription past due, a Trial account with a low balance.
async fn warnings_scenario() -> Scenario {
    let sid = ac_sid("chk-trial");
    let token = tw_token("chk-trial");
    let mut w = World::default();
    w.elevenlabs
        .add_account(ElAccount::new("ws-high").with_subscription(Subscription {
            tier: "pro".into(),
            character_count: 475_000,
            character_limit: 500_000,
            next_character_count_reset_unix: Some(RESET_AT),
            ..Subscription::default()
        }));
    w.elevenlabs.add_account(
        ElAccount::new("ws-past-due").with_subscription(Subscription {
            status: credwatch_sim::SubscriptionStatus::PastDue,
            next_character_count_reset_unix: Some(RESET_AT),
            ..Subscription::default()
        }),
    );
    w.elevenlabs
        .add_key(el_key("chk-high"), ElKey::new("keyChkHigh", "ws-high"));
    w.elevenlabs.add_key(
        el_key("chk-past-due"),
        ElKey::new("keyChkPastDue", "ws-past-due"),
    );
    w.twilio.add_account(
        TwilioAccount::new(&sid, &token)
            .with_type(credwatch_sim::AccountType::Trial)
            .with_balance(Some("0.85"), "USD")
            .with_numbers(&["+15005550042"]),
    );
    let mut s = Scenario::start(w).await;
    let url = s.el_url();
    let yaml = format!(
        "elevenlabs:\n{}{}twilio:\n{}",
        el_item("el-high", &s.secret(&el_key("chk-high")), &url, ""),
        el_item("el-past-due", &s.secret(&el_key("chk-past-due")), &url, ""),
        tw_item("tw-trial", &sid, &s.secret(&token), &s.tw_url()),
    );
    s.write(&yaml);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_are_marked_under_a_healthy_verdict_and_counted() {
    let s = warnings_scenario().await;
    let (text, _, report) = s.both(&[]).await;
    assert_eq!(text.code, 0, "warnings alone keep exit 0: {text:?}");
    assert!(report.ok);
    for c in &report.credentials {
        assert_text_explains(&text, c);
    }
    assert_eq!(
        masked(&text.stdout),
        [
            "credwatch check: 3 credential(s), 3 ok, 0 with problems, 4 warning(s)\n",
            "\n",
            "✓ el-high (elevenlabs): healthy — convai_write, user_read granted (inferred); 475000 of 500000 characters used (93% of the ceiling of 510000 with usage-based billing), resets 2100-01-01T00:00:00Z; fingerprint 8428dfbc1406\n",
            "    ! 93% of the quota is used (475000 of 510000 characters; the alert threshold is 90%).\n",
            "      evidence: GET /v1/user/subscription → HTTP 200, request id …\n",
            "      fix: Calls and speech fail once the quota is used up (it resets 2100-01-01T00:00:00Z). Decide before then: upgrade the plan or enable usage-based billing in ElevenLabs → Subscription, or move traffic to another workspace's key. (evidence: docs/upstream-evidence.md#elevenlabs-quota)\n",
            "✓ el-past-due (elevenlabs): healthy — convai_write, user_read granted (inferred); 1000 of 10000 characters used (5% of the ceiling of 20000 with usage-based billing), resets 2100-01-01T00:00:00Z; fingerprint 7ae40c33e338\n",
            "    ! The ElevenLabs subscription is `past_due`: billing is at risk, calls still work for now.\n",
            "      evidence: GET /v1/user/subscription → HTTP 200, request id …\n",
            "      fix: Pay the open invoice or update the payment method in ElevenLabs → Subscription → Billing. What ElevenLabs does when a subscription stays unpaid is not documented; credwatch reports a blocked account only when ElevenLabs says so (`free_disabled`, `payment_issue`). (evidence: docs/upstream-evidence.md#elevenlabs-subscription-status)\n",
            "✓ tw-trial (twilio): healthy — incoming_phone_numbers_read granted (direct); account active (Trial); 1 number(s); balance 0.85 USD; fingerprint 477868c313e7\n",
            "    ! This is a Twilio Trial account: it can call only verified numbers, and callers hear a trial notice first.\n",
            "      evidence: GET /2010-04-01/Accounts/SID.json → HTTP 200, request id RQ…\n",
            "      fix: Upgrade the account in Twilio Console → Billing before real callers use it.\n",
            "    ! The Twilio balance is 0.85 USD, below the alert threshold of 5 USD.\n",
            "      evidence: GET /2010-04-01/Accounts/SID/Balance.json → HTTP 200, request id RQ…\n",
            "      fix: Top up the balance or enable auto-recharge in Twilio Console → Billing: when it runs out, calls and messages through this account fail.\n",
        ]
        .concat()
        .replace("SID", &ac_sid("chk-trial")),
        "{text:?}"
    );
    let codes: Vec<(&str, &str, &str)> = report
        .credentials
        .iter()
        .flat_map(|c| {
            c.findings
                .iter()
                .map(|f| (c.name.as_str(), f.code.as_str(), f.severity.as_str()))
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("el-high", "quota_high", "warning"),
            ("el-past-due", "billing_at_risk", "warning"),
            ("tw-trial", "trial_account", "warning"),
            ("tw-trial", "balance_low", "warning"),
        ]
    );

    // --fail-on-warning: the same report, exit 1.
    let strict = s.run(&["--fail-on-warning"]).await;
    assert_eq!(strict.code, 1, "{strict:?}");
    assert_eq!(
        masked(&strict.stdout),
        masked(&text.stdout),
        "the same report"
    );
}
