//! `credwatch calibrate`: does a permission probe tell a key that holds the
//! permission from one that does not, against the live API? Two keys, one
//! probe each, and a plain answer.

use serde::Serialize;

use super::api::PermissionProbe;
use super::calibration::{self, CalibrationFile, Record};
use super::config::{DEFAULT_URL, ElevenLabs};
use super::permission_check;
use crate::outcome::{Evidence, Fact};
use crate::providers::{Context, Credential, Provider, Shared, Spec, http::Upstream};
use crate::secret::Secret;
use crate::section::{SecretSource, SecretValue};

#[derive(Debug, Clone, Serialize)]
pub struct KeyResult {
    /// Which key: `with` or `without` the permission.
    pub key: &'static str,
    /// `granted`, `not_granted` or `unknown`.
    pub verdict: &'static str,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub permission: String,
    pub request: String,
    pub discriminates: bool,
    pub results: Vec<KeyResult>,
}

fn verdict(facts: &Result<Vec<Fact>, crate::outcome::Failure>, permission: &str) -> &'static str {
    match facts {
        Ok(f) => match f.iter().find_map(|f| match f {
            Fact::Permission { name, granted, .. } if name == permission => Some(*granted),
            _ => None,
        }) {
            Some(true) => "granted",
            Some(false) => "not_granted",
            None => "unknown",
        },
        Err(_) => "unknown",
    }
}

/// The configured probe for `permission` (the built-in table plus
/// `permission_probes:`).
pub fn probe(shared: &Shared, permission: &str) -> Result<PermissionProbe, String> {
    let probes = &shared.elevenlabs.permission_probes;
    match probes.iter().find(|p| p.permission == permission) {
        Some(p) => Ok(p.clone()),
        None => {
            let known: Vec<&str> = probes.iter().map(|p| p.permission.as_str()).collect();
            Err(format!(
                "no probe for `{permission}`; known: {}",
                known.join(", ")
            ))
        }
    }
}

/// Where to calibrate without `--base-url`: the first ElevenLabs
/// credential's base URL, else the public API.
pub fn base_url(credentials: &[Credential]) -> String {
    credentials
        .iter()
        .find(|c| c.provider() == Provider::ElevenLabs)
        .map_or(DEFAULT_URL, |c| c.base_url())
        .to_string()
}

/// Runs `probe` with both keys against `base_url`.
pub async fn run(
    probe: &PermissionProbe,
    base_url: &str,
    with: Secret,
    without: Secret,
) -> anyhow::Result<Calibration> {
    let upstream = Upstream::new(2, None)?;
    let shared = Shared::default();
    let ctx = Context {
        upstream: &upstream,
        shared: &shared,
        linked: None,
    };
    let mut results = Vec::new();
    for (label, key) in [("with", with), ("without", without)] {
        let el = ElevenLabs {
            account: format!("calibrate-{label}"),
            base_url: base_url.to_string(),
            api_key: SecretValue {
                source: SecretSource::Literal,
                value: key,
            },
            required_permissions: vec![probe.permission.clone()],
            phone_numbers: false,
            twilio: None,
            expose_numbers: false,
            max_phone_numbers: super::config::DEFAULT_MAX_PHONE_NUMBERS,
            twilio_imported_fingerprint: None,
        };
        let cred = Credential {
            name: format!("calibrate-{label}"),
            critical: false,
            labels: Default::default(),
            interval: std::time::Duration::from_secs(60),
            timeout: std::time::Duration::from_secs(10),
            detail_interval: std::time::Duration::from_secs(600),
            spec: Spec::ElevenLabs(el.clone()),
        };
        let attempt = permission_check(&cred, &el, &ctx, probe, None).await;
        results.push(KeyResult {
            key: label,
            verdict: verdict(&attempt.result, &probe.permission),
            evidence: attempt.evidence,
        });
    }
    let discriminates = results[0].verdict == "granted" && results[1].verdict == "not_granted";
    Ok(Calibration {
        permission: probe.permission.clone(),
        request: format!("GET {}", probe.path),
        discriminates,
        results,
    })
}

/// Records `c` (run against `base_url`) in the calibration file at `path`,
/// in place of any earlier result for the same permission and base URL.
pub fn record(
    shared: &super::config::Shared,
    c: &Calibration,
    base_url: &str,
    path: &std::path::Path,
) -> std::io::Result<()> {
    let existing = CalibrationFile {
        version: calibration::VERSION,
        calibrations: shared.calibrations.clone(),
    };
    let file = calibration::merged(
        existing,
        Record::of(c, base_url, std::time::SystemTime::now()),
    );
    calibration::write(path, &file)
}

pub fn render_text(c: &Calibration) -> String {
    let mut s = format!("probe for `{}`: {}\n", c.permission, c.request);
    for r in &c.results {
        let e = &r.evidence;
        s.push_str(&format!(
            "  key {} the permission: HTTP {}{}{} → {}\n",
            r.key,
            e.http_status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into()),
            e.upstream_code
                .as_deref()
                .map(|c| format!(" `{c}`"))
                .unwrap_or_default(),
            e.request_id
                .as_deref()
                .map(|r| format!(" (request id {r})"))
                .unwrap_or_default(),
            r.verdict
        ));
        if r.verdict == "unknown" {
            s.push_str(&format!("    {}\n", e.detail));
        }
    }
    if c.discriminates {
        s.push_str("The probe discriminates: its verdicts can be trusted for this API.\n");
    } else {
        s.push_str(
            "The probe does NOT discriminate: credwatch's verdict for this permission cannot be trusted. \
             Override it under `permission_probes:` with a path and the status/code pairs each key got above, \
             then calibrate again.\n",
        );
    }
    s
}
