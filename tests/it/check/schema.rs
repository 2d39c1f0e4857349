//! The documented JSON schema of `check --output json`
//! (docs/check-output.md), as test-local types that refuse any field the
//! documentation does not name, and the checks of its enumerated values.

use super::*;

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
/// fits, each refusing the other's fields. Another provider's (`Other`) is
/// held to its documented keys by `assert_all_keys`, and `assert_values`
/// refuses it for these two providers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Details {
    ElevenLabs(ElDetails),
    Twilio(TwDetails),
    Other(serde::de::IgnoredAny),
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
    pub(crate) fn el(&self) -> Option<&ElDetails> {
        match &self.details {
            Details::ElevenLabs(d) => Some(d),
            Details::Twilio(_) | Details::Other(_) => None,
        }
    }

    pub(crate) fn tw(&self) -> Option<&TwDetails> {
        match &self.details {
            Details::Twilio(d) => Some(d),
            Details::ElevenLabs(_) | Details::Other(_) => None,
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

pub(crate) const STATUSES: [&str; 3] = ["healthy", "unhealthy", "pending"];
pub(crate) const REASONS: [&str; 10] = [
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
pub(crate) const PROBLEM_CODES: [&str; 14] = [
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
pub(crate) const PHONE_PROBLEMS: [&str; 8] = [
    "not_outbound_capable",
    "outbound_unknown",
    "no_agent",
    "agent_missing",
    "agent_unchecked",
    "agent_not_ulaw",
    "not_on_twilio_account",
    "reimport_needed",
];
pub(crate) const OTHER_CODES: [&str; 8] = [
    "phone_numbers_not_checked",
    "secret_whitespace",
    "config_warning",
    "standard_key",
    "billing_at_risk",
    "quota_high",
    "balance_low",
    "trial_account",
];
pub(crate) const CHECKS: [&str; 9] = [
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
pub(crate) fn assert_all_keys(v: &serde_json::Value) {
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
        // The provider's details object as docs/check-output.md documents
        // it (`### <Provider>Details`), so a new provider is documented
        // there, not listed here.
        let provider = c["provider"].as_str().expect("provider is a string");
        let own = documented(&format!("{provider}details"));
        assert!(
            !own.is_empty(),
            "docs/check-output.md documents no `{provider}` details"
        );
        let own: Vec<&str> = own.iter().map(String::as_str).collect();
        keys(details, &own, "details");
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
pub(crate) fn assert_values(r: &Report) {
    assert_eq!(r.version, 2);
    assert_eq!(
        r.ok,
        r.credentials
            .iter()
            .all(|c| c.status == "healthy" && c.phone_numbers().iter().all(|p| p.ready)),
        "`ok` is every credential healthy with every number ready"
    );
    for c in &r.credentials {
        // A provider credwatch has; the two mirrored here in their own shape.
        assert!(
            credwatch::providers::Provider::ALL
                .iter()
                .any(|p| p.as_str() == c.provider),
            "{c:?}"
        );
        let mirrored = match &c.details {
            Details::ElevenLabs(_) => Some("elevenlabs"),
            Details::Twilio(_) => Some("twilio"),
            Details::Other(_) => None,
        };
        match mirrored {
            Some(shape) => assert_eq!(shape, c.provider, "details of another shape: {c:?}"),
            None => assert!(
                !["elevenlabs", "twilio"].contains(&c.provider.as_str()),
                "{} details in no documented shape: {c:?}",
                c.provider
            ),
        }
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
                    || OTHER_CODES.contains(&f.code.as_str())
                    || documented("finding codes").contains(&f.code),
                "unknown finding code: {f:?}"
            );
            // The checks named here, or any provider's (its replay hook
            // names each of its checks).
            let any_providers = || {
                credwatch::providers::Provider::ALL
                    .iter()
                    .flat_map(|p| p.classifiers())
                    .any(|k| k.check == f.check)
            };
            assert!(
                CHECKS.contains(&f.check.as_str()) || any_providers(),
                "unknown check: {f:?}"
            );
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

/// The names in the first column of the tables of one `### ` section of
/// docs/check-output.md (the heading compared case-insensitively).
pub(crate) fn documented(heading: &str) -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/check-output.md"))
        .expect("docs/check-output.md");
    let mut names = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            inside = h.trim().eq_ignore_ascii_case(heading);
            continue;
        }
        if inside && let Some(cell) = line.strip_prefix("| `") {
            if let Some((name, _)) = cell.split_once('`') {
                names.push(name.to_string());
            }
        }
    }
    names
}
