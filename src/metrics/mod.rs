//! Prometheus text exposition.
//!
//! Each credential's lines are rendered when its state changes
//! ([`render_credential`], called by [`crate::state`]) into one
//! [`Fragments`] string, family after family. A scrape only concatenates:
//! [`store::Store`] keeps the fragments of blocks of credentials joined per
//! family (and, for scrapers that accept gzip, compressed per family with
//! [`gzip`]), and rebuilds a block only when one of its credentials
//! changed. Values come from background checks; every HELP text says so.
//! Unknown values are absent, never a made-up 0 or -1.
//!
//! - [`gzip`]: segments, stored blocks, the gzip frame; CRCs combined.
//! - [`store`]: the only copy of every credential's `/metrics` lines and
//!   `/health` entry, by block, and the bodies assembled from them.
//! - [`own`]: credwatch's own metrics ([`render_self`], [`SelfMetrics`]).
//!
//! This module renders; it never decides. Whether a credential is healthy
//! comes from [`crate::verdict`].

pub(crate) mod gzip;
pub mod own;
pub(crate) mod store;

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::verdict::{CredentialState, Health};
use gzip::{Deflater, Segment};

pub use own::{SELF_FAMILIES, SelfMetrics, render_self};

/// A metric family: name, type and help.
pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
}

const BG: &str = "(from the background check, not measured at scrape time)";

macro_rules! families {
    ($($id:ident = $name:literal, $kind:literal, $help:literal;)*) => {
        /// Index of each family in [`FAMILIES`] and in [`Fragments`].
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Clone, Copy)]
        pub(crate) enum F { $($id),* }
        pub const FAMILIES: &[Family] = &[$(Family { name: $name, kind: $kind, help: $help }),*];
    };
}

/// How many metric families a credential can have.
pub(crate) const FAMILY_COUNT: usize = FAMILIES.len();

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
    ProbeInconclusive = "credwatch_permission_probe_inconclusive", "gauge",
        "1 while the last answer to this permission's probe was neither granted nor missing (the probe needs credwatch calibrate), 0 after a conclusive answer; absent before the first answer";
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
    Checks = "credwatch_checks_total", "counter",
        "Check attempts, answered or not; with credwatch_check_errors_total an error ratio";
    CheckErrors = "credwatch_check_errors_total", "counter",
        "Check attempts that failed or found a problem, by stable reason; a series appears at its first error";
    ElUsed = "credwatch_elevenlabs_characters_used", "gauge",
        "Characters (credits) used in the current billing period, account-wide";
    ElLimit = "credwatch_elevenlabs_characters_limit", "gauge",
        "Character (credit) limit of the current billing period";
    ElCeiling = "credwatch_elevenlabs_characters_ceiling", "gauge",
        "Characters (credits) at which the quota is used up: the limit plus what usage-based billing may add; absent when the extension is unlimited";
    ElReset = "credwatch_elevenlabs_characters_reset_timestamp_seconds", "gauge",
        "Unix time of the next character-count reset";
    ElSubscription = "credwatch_elevenlabs_subscription_info", "gauge",
        "ElevenLabs subscription tier and status (past_due and incomplete: billing at risk; free_disabled: disabled)";
    ElOpenInvoices = "credwatch_elevenlabs_open_invoices", "gauge",
        "1 if the ElevenLabs subscription has open invoices, 0 if not; absent when upstream does not say";
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
    PhoneProblemInfo = "credwatch_elevenlabs_phone_number_problem_info", "gauge",
        "A problem found with an imported Twilio number, by stable problem label";
    PhoneProblem = "credwatch_elevenlabs_phone_number_problem", "gauge",
        "Deprecated: the same series as credwatch_elevenlabs_phone_number_problem_info, under its old name";
}

/// Escapes a label value for the text format.
pub(crate) fn escape(value: &str) -> String {
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

pub(crate) fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats a sample value the way Prometheus parses it.
pub(crate) fn value(v: f64) -> String {
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

/// One credential's lines: every family's, one after another in
/// [`FAMILIES`] order, in one allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fragments {
    text: Box<str>,
    /// Where each family's lines end in `text` (they start where the previous family's end).
    ends: [u32; FAMILY_COUNT],
}

impl Fragments {
    /// The lines of family `i` (empty when it has none).
    pub(crate) fn family(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }
}

/// All lines of one credential.
pub(crate) fn render_credential(s: &CredentialState) -> Fragments {
    let families = render_families(s);
    let mut text = String::with_capacity(families.iter().map(String::len).sum());
    let mut ends = [0u32; FAMILY_COUNT];
    for (i, f) in families.iter().enumerate() {
        text.push_str(f);
        ends[i] = u32::try_from(text.len()).unwrap_or(u32::MAX);
    }
    Fragments {
        text: text.into_boxed_str(),
        ends,
    }
}

fn render_families(s: &CredentialState) -> Vec<String> {
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
    for p in &s.settings.required_permissions {
        let check = s
            .checks
            .iter()
            .find(|(name, _)| name.strip_prefix("permission_") == Some(p.as_str()));
        if let Some(inconclusive) = check.and_then(|(_, c)| c.inconclusive) {
            out.sample(
                F::ProbeInconclusive,
                &[("permission", p)],
                if inconclusive { 1.0 } else { 0.0 },
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
        out.sample(F::Checks, &[("check", name)], check.attempts as f64);
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
        if let Some(ceiling) = q.ceiling {
            out.sample(F::ElCeiling, &[], ceiling as f64);
        }
        if let Some(reset) = q.reset_at {
            out.sample(F::ElReset, &[], reset as f64);
        }
        out.sample(
            F::ElSubscription,
            &[("tier", &q.tier), ("status", &q.status)],
            1.0,
        );
        if let Some(open) = q.open_invoices {
            out.sample(F::ElOpenInvoices, &[], if open { 1.0 } else { 0.0 });
        }
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
            out.sample(F::PhoneProblemInfo, &l, 1.0);
            out.sample(F::PhoneProblem, &l, 1.0);
        }
    }
    out.sample(F::Fingerprint, &[("fingerprint", &s.fingerprint)], 1.0);
    if let Some(t) = s.changed_at {
        out.sample(F::Changed, &[], seconds(t));
    }
    out.families
}

/// The `# HELP` and `# TYPE` lines of family `i`, rendered once.
pub(crate) fn header(i: usize) -> &'static Segment {
    static HEADERS: OnceLock<Vec<Segment>> = OnceLock::new();
    let headers = HEADERS.get_or_init(|| {
        let mut deflater = Deflater::new();
        FAMILIES
            .iter()
            .map(|family| {
                let mut text = Vec::new();
                let _ = write_header(&mut text, family);
                deflater.segment(Bytes::from(text))
            })
            .collect()
    });
    &headers[i]
}

fn write_header(out: &mut Vec<u8>, family: &Family) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(out, "# HELP {} {} {BG}.", family.name, family.help)?;
    writeln!(out, "# TYPE {} {}", family.name, family.kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_split_by_family() {
        let text = "ab".to_string();
        let mut ends = [2u32; FAMILY_COUNT];
        ends[0] = 1;
        let f = Fragments {
            text: text.into_boxed_str(),
            ends,
        };
        assert_eq!(f.family(0), "a");
        assert_eq!(f.family(1), "b");
        assert_eq!(f.family(2), "");
    }
}
