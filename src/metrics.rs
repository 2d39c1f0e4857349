//! Prometheus text exposition.
//!
//! Each credential's lines are rendered when its state changes
//! ([`render_credential`], called by [`crate::state`]); a scrape only
//! concatenates fragments family by family ([`assemble`]). Values come from
//! background checks; every HELP text says so. Unknown values are absent,
//! never a made-up 0 or -1.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

use crate::outcome::Reason;
use crate::state::{CredentialState, Health, Rendered, State};

/// A metric family: name, type and help.
pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
}

const BG: &str = "(from the background check, not measured at scrape time)";

macro_rules! families {
    ($($id:ident = $name:literal, $kind:literal, $help:literal;)*) => {
        /// Index of each family in [`FAMILIES`] and in [`Rendered::metrics`].
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        pub enum F { $($id),* }
        pub const FAMILIES: &[Family] = &[$(Family { name: $name, kind: $kind, help: $help }),*];
    };
}

families! {
    Valid = "credwatch_credential_valid", "gauge",
        "1 if upstream accepted the credential at the last definitive check, 0 if it rejected it; absent before the first definitive answer";
    Healthy = "credwatch_credential_healthy", "gauge",
        "1 if the credential is valid, holds every required permission and its account is usable (what /health reports); 0 otherwise, including before the first verdict";
    ProblemInfo = "credwatch_credential_problem_info", "gauge",
        "Why the credential is unhealthy, as a stable reason label; present only while it is";
    Info = "credwatch_credential_info", "gauge",
        "Static facts about a configured credential; critical=\"true\" means it counts for /health";
    Permission = "credwatch_permission_granted", "gauge",
        "1 if the required permission is granted, 0 if upstream said it is missing; absent while unknown";
    CheckSuccess = "credwatch_check_success", "gauge",
        "1 if the last attempt of this check got a definitive answer from upstream, 0 if it failed (timeout, 5xx, 429, unexpected answer)";
    CheckDuration = "credwatch_check_duration_seconds", "gauge",
        "Duration of the last attempt of this check";
    CheckInterval = "credwatch_check_interval_seconds", "gauge",
        "Configured interval of the credential's authentication check";
    LastCheck = "credwatch_last_check_timestamp_seconds", "gauge",
        "Unix time the authentication check last finished, answered or not";
    LastSuccess = "credwatch_last_success_timestamp_seconds", "gauge",
        "Unix time the authentication check last got a definitive answer";
    CheckErrors = "credwatch_check_errors_total", "counter",
        "Check attempts that failed or found a problem, by stable reason; a series appears at its first error";
    ElUsed = "credwatch_elevenlabs_characters_used", "gauge",
        "Characters (credits) used in the current billing period, account-wide";
    ElLimit = "credwatch_elevenlabs_characters_limit", "gauge",
        "Character (credit) limit of the current billing period";
    ElReset = "credwatch_elevenlabs_characters_reset_timestamp_seconds", "gauge",
        "Unix time of the next character-count reset";
    ElSubscription = "credwatch_elevenlabs_subscription_info", "gauge",
        "ElevenLabs subscription tier and status";
    TwNumbers = "credwatch_twilio_phone_numbers", "gauge",
        "Incoming phone numbers on the Twilio account (counted at the detail interval)";
    TwBalance = "credwatch_twilio_balance", "gauge",
        "Twilio account balance in its currency";
    TwAccount = "credwatch_twilio_account_info", "gauge",
        "Twilio account status (active, suspended, closed) and type (Trial, Full)";
    Fingerprint = "credwatch_credential_fingerprint_info", "gauge",
        "First 12 hex digits of the SHA-256 of the secret in use; changes when the secret is rotated";
    Changed = "credwatch_credential_changed_timestamp_seconds", "gauge",
        "Unix time credwatch saw the secret change while running; absent until it does";
    PhoneReady = "credwatch_elevenlabs_phone_number_ready", "gauge",
        "1 if the imported Twilio number can place outbound calls as far as credwatch can tell, 0 if a problem was found";
    PhoneProblem = "credwatch_elevenlabs_phone_number_problem", "gauge",
        "A problem found with an imported Twilio number, by stable problem label";
}

/// Escapes a label value for the text format.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats a sample value the way Prometheus parses it.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

struct Out {
    families: Vec<String>,
    base: String,
}

impl Out {
    fn sample(&mut self, f: F, extra: &[(&str, &str)], v: f64) {
        let s = &mut self.families[f as usize];
        s.push_str(FAMILIES[f as usize].name);
        s.push('{');
        s.push_str(&self.base);
        for (k, val) in extra {
            let _ = write!(s, ",{k}=\"{}\"", escape(val));
        }
        let _ = writeln!(s, "}} {}", value(v));
    }
}

/// All lines of one credential, one string per family.
pub fn render_credential(s: &CredentialState) -> Vec<String> {
    let mut out = Out {
        families: vec![String::new(); FAMILIES.len()],
        base: format!(
            "provider=\"{}\",credential=\"{}\"",
            s.provider.as_str(),
            escape(&s.name)
        ),
    };
    let v = &s.verdict;
    if let Some(valid) = v.valid {
        out.sample(F::Valid, &[], if valid { 1.0 } else { 0.0 });
    }
    let health = s.health();
    out.sample(
        F::Healthy,
        &[],
        if health == Health::Healthy { 1.0 } else { 0.0 },
    );
    if let Health::Unhealthy(reason) = health {
        out.sample(F::ProblemInfo, &[("reason", reason.as_str())], 1.0);
    }
    out.sample(
        F::Info,
        &[(
            "critical",
            if s.settings.critical { "true" } else { "false" },
        )],
        1.0,
    );
    for p in &s.settings.required_permissions {
        if let Some(granted) = v.permissions.get(p) {
            out.sample(
                F::Permission,
                &[("permission", p)],
                if *granted { 1.0 } else { 0.0 },
            );
        }
    }
    for (name, check) in &s.checks {
        out.sample(
            F::CheckSuccess,
            &[("check", name)],
            if check.success { 1.0 } else { 0.0 },
        );
        out.sample(
            F::CheckDuration,
            &[("check", name)],
            check.duration.as_secs_f64(),
        );
        for (reason, n) in &check.errors {
            out.sample(
                F::CheckErrors,
                &[("check", name), ("reason", reason.as_str())],
                *n as f64,
            );
        }
    }
    out.sample(F::CheckInterval, &[], s.settings.interval.as_secs_f64());
    if let Some(t) = s.last_check {
        out.sample(F::LastCheck, &[], seconds(t));
    }
    if let Some(t) = s.last_success {
        out.sample(F::LastSuccess, &[], seconds(t));
    }
    if let Some(q) = &v.quota {
        out.sample(F::ElUsed, &[], q.used as f64);
        out.sample(F::ElLimit, &[], q.limit as f64);
        if let Some(reset) = q.reset_at {
            out.sample(F::ElReset, &[], reset as f64);
        }
        out.sample(
            F::ElSubscription,
            &[("tier", &q.tier), ("status", &q.status)],
            1.0,
        );
    }
    if let Some(n) = v.twilio_numbers {
        out.sample(F::TwNumbers, &[], n as f64);
    }
    if let Some(b) = &v.twilio_balance {
        out.sample(F::TwBalance, &[("currency", &b.currency)], b.amount);
    }
    if let Some(a) = &v.twilio_account {
        out.sample(
            F::TwAccount,
            &[("status", &a.status), ("type", &a.kind)],
            1.0,
        );
    }
    for n in v.phone_numbers.iter().flatten() {
        let mut labels: Vec<(&str, &str)> = vec![("phone_number_id", &n.phone_number_id)];
        if s.settings.expose_numbers {
            labels.push(("number", &n.number));
        }
        out.sample(F::PhoneReady, &labels, if n.ready() { 1.0 } else { 0.0 });
        for p in &n.problems {
            let mut l = labels.clone();
            l.push(("problem", p.as_str()));
            out.sample(F::PhoneProblem, &l, 1.0);
        }
    }
    out.sample(F::Fingerprint, &[("fingerprint", &s.fingerprint)], 1.0);
    if let Some(t) = s.changed_at {
        out.sample(F::Changed, &[], seconds(t));
    }
    out.families
}

/// Concatenates the credentials' fragments, family by family, each family once.
pub fn assemble(rendered: &[Arc<Rendered>]) -> Vec<u8> {
    let size: usize = rendered
        .iter()
        .map(|r| r.metrics.iter().map(String::len).sum::<usize>())
        .sum();
    let mut out = Vec::with_capacity(size + FAMILIES.len() * 200);
    for (i, family) in FAMILIES.iter().enumerate() {
        if rendered
            .iter()
            .all(|r| r.metrics.get(i).is_none_or(String::is_empty))
        {
            continue;
        }
        let _ = write_header(&mut out, family);
        for r in rendered {
            if let Some(fragment) = r.metrics.get(i) {
                out.extend_from_slice(fragment.as_bytes());
            }
        }
    }
    out
}

fn write_header(out: &mut Vec<u8>, family: &Family) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(out, "# HELP {} {} {BG}.", family.name, family.help)?;
    writeln!(out, "# TYPE {} {}", family.name, family.kind)
}

/// credwatch's own metrics: build, reload, upstream requests, process.
pub struct SelfMetrics {
    registry: Registry,
    pub upstream_requests: IntCounterVec,
}

impl SelfMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "credwatch_upstream_requests_total",
                "Requests credwatch sent upstream (all of them GET), by provider.",
            ),
            &["provider"],
        )
        .expect("static metric definition is valid");
        let _ = registry.register(Box::new(upstream_requests.clone()));
        #[cfg(target_os = "linux")]
        {
            let _ = registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        SelfMetrics {
            registry,
            upstream_requests,
        }
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Renders build info, reload state, upstream request counts and process metrics.
pub fn render_self(state: &State) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP credwatch_build_info Version and revision of the running credwatch."
    );
    let _ = writeln!(s, "# TYPE credwatch_build_info gauge");
    let _ = writeln!(
        s,
        "credwatch_build_info{{version=\"{}\",revision=\"{}\"}} 1",
        escape(crate::VERSION),
        escape(crate::REVISION)
    );
    let (ok, at) = state.reload_result();
    let _ = writeln!(
        s,
        "# HELP credwatch_config_last_reload_successful 1 if the last configuration load or reload succeeded."
    );
    let _ = writeln!(s, "# TYPE credwatch_config_last_reload_successful gauge");
    let _ = writeln!(
        s,
        "credwatch_config_last_reload_successful {}",
        if ok { 1 } else { 0 }
    );
    if let Some(at) = at {
        let _ = writeln!(
            s,
            "# HELP credwatch_config_last_reload_success_timestamp_seconds Unix time of the last successful configuration load or reload."
        );
        let _ = writeln!(
            s,
            "# TYPE credwatch_config_last_reload_success_timestamp_seconds gauge"
        );
        let _ = writeln!(
            s,
            "credwatch_config_last_reload_success_timestamp_seconds {}",
            value(seconds(at))
        );
    }
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        let _ = writeln!(
            s,
            "# HELP credwatch_runtime_alive_tasks Tasks alive in credwatch's async runtime (probes in flight, connections, background loops)."
        );
        let _ = writeln!(s, "# TYPE credwatch_runtime_alive_tasks gauge");
        let _ = writeln!(
            s,
            "credwatch_runtime_alive_tasks {}",
            handle.metrics().num_alive_tasks()
        );
    }
    let mut buf = Vec::new();
    if TextEncoder::new()
        .encode(&state.self_metrics.registry.gather(), &mut buf)
        .is_ok()
    {
        s.push_str(&String::from_utf8_lossy(&buf));
    }
    s
}

/// Every reason label value, for documentation and tests.
pub fn reasons() -> impl Iterator<Item = &'static str> {
    Reason::ALL.iter().map(|r| r.as_str())
}
