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

pub(crate) use store::Chunk;

use std::sync::OnceLock;

use bytes::Bytes;

use crate::exposition::{self, Family, Samples, escape, seconds};
use crate::providers;
use crate::verdict::{CredentialState, Health};
use gzip::{Deflater, Segment};

pub use own::{SELF_FAMILIES, SelfMetrics, render_self};

const BG: &str = "(from the background check, not measured at scrape time)";

/// Every credential family: the common ones, then each provider's
/// ([`crate::providers::FAMILY_PARTS`]), in exposition order.
pub const FAMILIES: [Family; FAMILY_COUNT] = exposition::concat(&PARTS);

const PARTS: [&[Family]; 1 + providers::FAMILY_PARTS.len()] = {
    let mut parts: [&[Family]; 1 + providers::FAMILY_PARTS.len()] =
        [COMMON; 1 + providers::FAMILY_PARTS.len()];
    let mut i = 0;
    while i < providers::FAMILY_PARTS.len() {
        parts[i + 1] = providers::FAMILY_PARTS[i];
        i += 1;
    }
    parts
};

/// How many metric families a credential can have.
pub(crate) const FAMILY_COUNT: usize = exposition::total(&PARTS);

/// Where provider `i`'s families start in [`FAMILIES`].
fn provider_offset(i: usize) -> usize {
    COMMON.len() + exposition::total(&providers::FAMILY_PARTS[..i])
}

crate::families! {
    pub(crate) enum F; const COMMON;

    Valid = "credwatch_credential_valid", "gauge",
        "1 if upstream accepted the credential at the last definitive check, 0 if it rejected it; absent before the first definitive answer";
    Healthy = "credwatch_credential_healthy", "gauge",
        "1 if the credential is valid, holds every required permission and its account is usable (what /health reports); 0 otherwise, including before the first verdict";
    ProblemInfo = "credwatch_credential_problem_info", "gauge",
        "Why the credential is unhealthy, as a stable reason label; present only while it is";
    PendingInfo = "credwatch_credential_pending_info", "gauge",
        "Why the credential has no verdict (not_checked, secret_changed, upstream_unreachable, unexpected_response, probe_inconclusive); present only while it is pending";
    Info = "credwatch_credential_info", "gauge",
        "Static facts about a configured credential: critical=\"true\" means it counts for /health; the credential's labels: for alert routing (join with group_left)";
    Permission = "credwatch_permission_granted", "gauge",
        "1 if the required permission is granted, 0 if upstream said it is missing; absent while unknown";
    PermissionBasis = "credwatch_permission_basis_info", "gauge",
        "What the permission verdict rests on: basis=direct (upstream's answer says so), calibrated (probe proven by credwatch calibrate, see calibration_file) or inferred (probe not proven on this API); present while the permission is known";
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
    Fingerprint = "credwatch_credential_fingerprint_info", "gauge",
        "First 12 hex digits of the SHA-256 of the secret in use; changes when the secret is rotated";
    Changed = "credwatch_credential_changed_timestamp_seconds", "gauge",
        "Unix time credwatch saw the secret change while running; absent until it does";
}

/// One credential's lines: every family's, one after another in
/// [`FAMILIES`] order, in one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fragments {
    text: Box<str>,
    /// Where each family's lines end in `text` (they start where the previous family's end).
    ends: [u32; FAMILY_COUNT],
}

impl Default for Fragments {
    fn default() -> Self {
        Fragments {
            text: Box::default(),
            ends: [0; FAMILY_COUNT],
        }
    }
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
    let mut texts = vec![String::new(); FAMILY_COUNT];
    let base = format!(
        "provider=\"{}\",credential=\"{}\"",
        s.provider.as_str(),
        escape(&s.name)
    );
    let (common, rest) = texts.split_at_mut(COMMON.len());
    let account = s.settings.account.as_deref().map(|a| {
        format!(
            "provider=\"{}\",account=\"{}\"",
            s.provider.as_str(),
            escape(a)
        )
    });
    let mut out = Samples {
        families: COMMON,
        texts: common,
        base: &base,
        account: None,
    };
    let v = &s.verdict;
    if let Some(valid) = v.valid {
        out.sample(F::Valid as usize, &[], if valid { 1.0 } else { 0.0 });
    }
    let health = s.health();
    out.sample(
        F::Healthy as usize,
        &[],
        if health == Health::Healthy { 1.0 } else { 0.0 },
    );
    if let Health::Unhealthy(reason) = health {
        out.sample(F::ProblemInfo as usize, &[("reason", reason.as_str())], 1.0);
    }
    if let Some(pending) = s.pending_why() {
        out.sample(
            F::PendingInfo as usize,
            &[("why", pending.why.as_str())],
            1.0,
        );
    }
    let mut info: Vec<(&str, &str)> = Vec::with_capacity(2 + s.settings.labels.len());
    info.push((
        "critical",
        if s.settings.critical { "true" } else { "false" },
    ));
    if let Some(account) = &s.settings.account {
        info.push(("account", account));
    }
    info.extend(
        s.settings
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    out.sample(F::Info as usize, &info, 1.0);
    for p in &s.settings.required_permissions {
        if let Some(granted) = v.permissions.get(p) {
            out.sample(
                F::Permission as usize,
                &[("permission", p)],
                if *granted { 1.0 } else { 0.0 },
            );
        }
    }
    for p in &s.settings.required_permissions {
        if let Some(basis) = v.permission_basis.get(p)
            && v.permissions.contains_key(p)
        {
            out.sample(
                F::PermissionBasis as usize,
                &[("permission", p), ("basis", basis.as_str())],
                1.0,
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
                F::ProbeInconclusive as usize,
                &[("permission", p)],
                if inconclusive { 1.0 } else { 0.0 },
            );
        }
    }
    for (name, check) in &s.checks {
        out.sample(
            F::CheckSuccess as usize,
            &[("check", name)],
            if check.success { 1.0 } else { 0.0 },
        );
        out.sample(
            F::CheckDuration as usize,
            &[("check", name)],
            check.duration.as_secs_f64(),
        );
        out.sample(
            F::Checks as usize,
            &[("check", name)],
            check.attempts as f64,
        );
        for (reason, n) in &check.errors {
            out.sample(
                F::CheckErrors as usize,
                &[("check", name), ("reason", reason.as_str())],
                *n as f64,
            );
        }
    }
    out.sample(
        F::CheckInterval as usize,
        &[],
        s.settings.interval.as_secs_f64(),
    );
    if let Some(t) = s.last_check {
        out.sample(F::LastCheck as usize, &[], seconds(t));
    }
    if let Some(t) = s.last_success {
        out.sample(F::LastSuccess as usize, &[], seconds(t));
    }
    out.sample(
        F::Fingerprint as usize,
        &[("fingerprint", &s.fingerprint)],
        1.0,
    );
    if let Some(t) = s.changed_at {
        out.sample(F::Changed as usize, &[], seconds(t));
    }
    let k = s.provider.index();
    let start = provider_offset(k) - COMMON.len();
    let part = providers::FAMILY_PARTS[k];
    v.details.render(
        s.settings.expose_numbers,
        &mut Samples {
            families: part,
            texts: &mut rest[start..start + part.len()],
            base: &base,
            account: account.as_deref().filter(|_| s.owns_account),
        },
    );
    texts
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
