//! The ElevenLabs config section: the `elevenlabs:` credentials (key shape —
//! a key ID is not a key —, permissions, the Twilio link) and the top-level
//! `permission_probes:` overrides of the probe table.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

use super::api::{PermissionProbe, StatusMatch, check_path, default_permission_probes};
use super::calibration;
use crate::providers::twilio;
use crate::providers::{Credential, Provider, Section, Spec};
use crate::section::{SecretValue, Timing, Validator, secret, source_suffix};

pub const DEFAULT_URL: &str = "https://api.elevenlabs.io";

/// One `elevenlabs:` credential as validated.
/// `max_phone_numbers` unset: one series per number up to this many.
pub const DEFAULT_MAX_PHONE_NUMBERS: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct ElevenLabs {
    pub base_url: String,
    /// The workspace the key belongs to, as the operator names it
    /// (`account:`; default: the credential's name). ElevenLabs shows no
    /// workspace id to a key, so keys of one workspace are grouped by
    /// this name: its quota is exported once, labelled `account`.
    pub account: String,
    pub api_key: SecretValue,
    pub required_permissions: Vec<String>,
    pub phone_numbers: bool,
    /// Name of the linked Twilio credential, for the phone-number cross-check.
    pub twilio: Option<String>,
    pub expose_numbers: bool,
    /// Imported numbers exported and cross-checked one by one at most; the
    /// rest are counted (`credwatch_elevenlabs_phone_numbers_not_exported`).
    pub max_phone_numbers: usize,
    /// The linked Twilio credential's fingerprint when the numbers were last
    /// imported into ElevenLabs; a different current fingerprint means re-import.
    pub twilio_imported_fingerprint: Option<String>,
}

/// What all ElevenLabs credentials share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shared {
    /// The permission probes (the built-in table plus `permission_probes:`).
    pub permission_probes: Vec<PermissionProbe>,
    /// `calibration_file:`, resolved against the config file's directory.
    pub calibration_file: Option<std::path::PathBuf>,
    /// What `credwatch calibrate` recorded there.
    pub calibrations: Vec<calibration::Record>,
}

impl Shared {
    /// The recorded calibration of `probe` as sent to `base_url`, if any.
    pub fn calibration(
        &self,
        probe: &PermissionProbe,
        base_url: &str,
    ) -> Option<calibration::Calibrated<'_>> {
        self.calibrations
            .iter()
            .find(|r| r.applies_to(probe, base_url))
            .map(Into::into)
    }
}

/// The keys of the config file ElevenLabs owns, as written.
#[derive(Debug, Default)]
pub struct RawSection {
    /// `elevenlabs:`
    pub credentials: Vec<RawElevenLabs>,
    /// `permission_probes:`, by permission name.
    pub permission_probes: BTreeMap<String, RawPermissionProbe>,
    /// `calibration_file:`
    pub calibration_file: Option<String>,
}

impl Section for RawSection {
    const KEYS: &'static [&'static str] = &["elevenlabs", "permission_probes", "calibration_file"];
    type Shared = Shared;

    fn read<'de, A: serde::de::MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        match key {
            "elevenlabs" => self.credentials = map.next_value()?,
            "calibration_file" => self.calibration_file = map.next_value()?,
            _ => self.permission_probes = map.next_value()?,
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }

    fn validate(self, v: &mut Validator<'_>, defaults: &Timing) -> (Vec<Credential>, Shared) {
        validate(v, self, defaults)
    }

    fn check_links(v: &mut Validator<'_>, credentials: &[Credential]) {
        check_links(v, credentials)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawElevenLabs {
    pub name: Option<String>,
    pub api_key: Option<String>,
    pub api_key_env: Option<String>,
    pub api_key_file: Option<String>,
    pub base_url: Option<String>,
    /// Permit a plain-http `base_url` to a non-loopback host.
    pub allow_insecure_http: Option<bool>,
    pub required_permissions: Option<Vec<String>>,
    pub critical: Option<bool>,
    /// Prometheus labels for alert routing, on `credwatch_credential_info`.
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub detail_interval: Option<Duration>,
    /// Cross-check the Twilio numbers imported into Conversational AI.
    pub phone_numbers: Option<bool>,
    /// Name of the Twilio credential whose account owns the imported numbers.
    pub twilio: Option<String>,
    /// Put E.164 numbers in metric labels (off: the phone_number_id alone).
    pub expose_numbers: Option<bool>,
    /// Fingerprint of the linked Twilio secret the numbers were imported with.
    pub twilio_imported_fingerprint: Option<String>,
    /// Imported numbers exported (and cross-checked) one by one at most.
    pub max_phone_numbers: Option<usize>,
    /// The workspace's name, shared by the keys of one workspace.
    pub account: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPermissionProbe {
    /// Path and query, e.g. `/v1/convai/agents?page_size=1`.
    pub path: Option<String>,
    #[serde(default)]
    pub granted: Vec<RawStatusMatch>,
    #[serde(default)]
    pub not_granted: Vec<RawStatusMatch>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatusMatch {
    pub status: Option<u16>,
    /// Upstream error code (`detail.code` or `detail.status`); absent matches any.
    pub code: Option<String>,
}

/// Validates the section: the probe table first (required permissions are
/// checked against it), then each credential.
fn validate(
    v: &mut Validator<'_>,
    raw: RawSection,
    defaults: &Timing,
) -> (Vec<Credential>, Shared) {
    let permission_probes = permission_probes(v, raw.permission_probes);
    let known: Vec<String> = permission_probes
        .iter()
        .map(|p| p.permission.clone())
        .collect();
    let credentials = raw
        .credentials
        .into_iter()
        .enumerate()
        .filter_map(|(i, el)| elevenlabs(v, &format!("elevenlabs[{i}]"), el, defaults, &known))
        .collect();
    let calibration_file = match raw.calibration_file {
        Some(p) if p.trim().is_empty() => {
            v.error(
                "calibration_file",
                "empty; the path of the file `credwatch calibrate` records its results in",
            );
            None
        }
        Some(p) => Some(calibration::resolve(v.file, &p)),
        None => None,
    };
    let calibrations = match &calibration_file {
        Some(path) => calibration::load(v, "calibration_file", path, &permission_probes),
        None => Vec::new(),
    };
    (
        credentials,
        Shared {
            permission_probes,
            calibration_file,
            calibrations,
        },
    )
}

fn elevenlabs(
    v: &mut Validator<'_>,
    path: &str,
    raw: RawElevenLabs,
    defaults: &Timing,
    known_permissions: &[String],
) -> Option<Credential> {
    let common = crate::raw_common!(raw).validate(v, path, defaults, DEFAULT_URL);
    let api_key = secret(
        v,
        path,
        "api_key",
        raw.api_key,
        raw.api_key_env,
        raw.api_key_file,
    );
    if let Some(key) = &api_key {
        check_elevenlabs_key(v, path, key);
    }
    let required_permissions = raw
        .required_permissions
        .unwrap_or_else(|| vec!["convai_write".to_string()]);
    let mut seen = HashSet::new();
    for (i, p) in required_permissions.iter().enumerate() {
        if !seen.insert(p) {
            v.error(
                format!("{path}.required_permissions[{i}]"),
                "is listed twice",
            );
        } else if !known_permissions.iter().any(|k| k == p) {
            v.error(
                format!("{path}.required_permissions[{i}]"),
                format!(
                    "credwatch has no side-effect-free probe for this permission; it can check: {} (or add one under `permission_probes:`)",
                    known_permissions.join(", ")
                ),
            );
        }
    }
    let phone_numbers = raw.phone_numbers.unwrap_or(false);
    let max_phone_numbers = match raw.max_phone_numbers {
        Some(0) => {
            v.error(
                format!("{path}.max_phone_numbers"),
                "must be at least 1 (leave `phone_numbers` off to watch no numbers)",
            );
            DEFAULT_MAX_PHONE_NUMBERS
        }
        Some(n) => n,
        None => DEFAULT_MAX_PHONE_NUMBERS,
    };
    if raw.max_phone_numbers.is_some() && !phone_numbers {
        v.warn(
            format!("{path}.max_phone_numbers"),
            "has no effect without `phone_numbers: true`",
        );
    }
    if let Some(account) = &raw.account
        && (account.is_empty() || account.len() > 128 || account.chars().any(char::is_control))
    {
        v.error(
            format!("{path}.account"),
            "must be a name of 1 to 128 characters without control characters (it becomes the `account` label)",
        );
    }
    if let Some(fp) = &raw.twilio_imported_fingerprint
        && (fp.len() != 12 || !fp.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        v.error(
            format!("{path}.twilio_imported_fingerprint"),
            "must be the 12 hex digits credwatch shows as the Twilio credential's fingerprint (`credwatch check` prints it)",
        );
    }
    if raw.twilio_imported_fingerprint.is_some() && raw.twilio.is_none() {
        v.warn(
            format!("{path}.twilio_imported_fingerprint"),
            "has no effect without `twilio:`",
        );
    }
    if raw.twilio.is_some() && !phone_numbers {
        v.warn(
            format!("{path}.twilio"),
            "has no effect without `phone_numbers: true`",
        );
    }
    let name = common.name?;
    Some(Credential {
        name: name.clone(),
        critical: common.critical,
        labels: common.labels,
        interval: common.interval,
        timeout: common.timeout,
        detail_interval: common.detail_interval,
        spec: Spec::ElevenLabs(ElevenLabs {
            account: raw.account.unwrap_or_else(|| name.clone()),
            base_url: common.base_url,
            api_key: api_key?,
            required_permissions,
            phone_numbers,
            twilio: raw.twilio,
            expose_numbers: raw.expose_numbers.unwrap_or(false),
            max_phone_numbers,
            twilio_imported_fingerprint: raw
                .twilio_imported_fingerprint
                .map(|f| f.to_ascii_lowercase()),
        }),
    })
}

/// Keys start with `sk_`. A key ID (shown next to the key in the dashboard
/// and returned by the API-key listings) gets 400 `api_key_id_used_as_api_key`.
fn check_elevenlabs_key(v: &mut Validator<'_>, path: &str, key: &SecretValue) {
    let value = key.value.expose();
    if value.starts_with("sk_") {
        return;
    }
    let at = format!("{path}.api_key{}", source_suffix(&key.source));
    if twilio::looks_like_account_sid(value) || twilio::looks_like_key_sid(value) {
        v.error(at, format!("the value from {} looks like a Twilio SID, not an ElevenLabs API key (keys start with `sk_`)", key.source));
    } else if value.len() <= 40 && value.chars().all(|c| c.is_ascii_alphanumeric()) {
        v.error(
            at,
            format!(
                "the value from {} looks like an API key ID, not the key itself: ElevenLabs rejects key IDs with 400 `api_key_id_used_as_api_key`. Use the secret shown once when the key was created (it starts with `sk_`), or create a new key under Settings → API Keys",
                key.source
            ),
        );
    } else {
        v.warn(at, format!("the value from {} does not start with `sk_` like ElevenLabs API keys do; check it is the key", key.source));
    }
}

fn permission_probes(
    v: &mut Validator<'_>,
    overrides: BTreeMap<String, RawPermissionProbe>,
) -> Vec<PermissionProbe> {
    let mut table = default_permission_probes();
    for (permission, raw) in overrides {
        let at = format!("permission_probes.{permission}");
        if permission.is_empty()
            || !permission
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            v.error(
                at,
                "permission names are lowercase snake_case, e.g. `convai_write`",
            );
            continue;
        }
        let Some(path) = raw.path else {
            v.error(
                format!("{at}.path"),
                "missing; the GET path and query to probe, e.g. `/v1/convai/agents?page_size=1`",
            );
            continue;
        };
        if let Err(why) = check_path(&path) {
            v.error(format!("{at}.path"), why);
            continue;
        }
        let mut matches = |key: &str, list: Vec<RawStatusMatch>| -> Vec<StatusMatch> {
            let mut out = Vec::new();
            for (i, m) in list.into_iter().enumerate() {
                match m.status {
                    Some(status) if status == 429 || status >= 500 => v.error(
                        format!("{at}.{key}[{i}].status"),
                        format!("{status} is never a definitive answer (rate limits and server errors keep the last verdict)"),
                    ),
                    Some(status) if (100..600).contains(&status) => out.push(StatusMatch {
                        status,
                        code: m.code,
                    }),
                    _ => v.error(
                        format!("{at}.{key}[{i}].status"),
                        "needs an HTTP status between 100 and 599",
                    ),
                }
            }
            if out.is_empty() {
                v.error(
                    format!("{at}.{key}"),
                    "needs at least one `{status, code}` entry",
                );
            }
            out
        };
        let granted = matches("granted", raw.granted);
        let not_granted = matches("not_granted", raw.not_granted);
        if granted.iter().any(|g| not_granted.contains(g)) {
            v.error(
                at.clone(),
                "the same status and code cannot mean both granted and not granted",
            );
        }
        let probe = PermissionProbe {
            permission: permission.clone(),
            path,
            granted,
            not_granted,
            overridden: true,
        };
        match table.iter_mut().find(|p| p.permission == permission) {
            Some(existing) => *existing = probe,
            None => table.push(probe),
        }
    }
    table
}

/// `elevenlabs[i].twilio` must name a Twilio credential; one that
/// authenticates with an API key cannot follow the Auth Token ElevenLabs' import stores.
/// Only credentials that validated are here: a link to a Twilio entry that
/// failed is left to that entry's own errors.
fn check_links(v: &mut Validator<'_>, credentials: &[Credential]) {
    let twilio: Vec<&Credential> = credentials
        .iter()
        .filter(|c| c.provider() == Provider::Twilio)
        .collect();
    let links = credentials.iter().filter_map(|c| match &c.spec {
        Spec::ElevenLabs(el) => Some((c.name.as_str(), el.twilio.as_deref()?)),
        _ => None,
    });
    let links: Vec<(String, &str)> = links
        .map(|(name, link)| {
            let at = v.declared(name).unwrap_or("elevenlabs[?]");
            (format!("{at}.twilio"), link)
        })
        .collect();
    for (at, link) in links {
        match twilio.iter().find(|c| c.name == link) {
            None => match v.declared(link) {
                Some(entry) if entry.starts_with("twilio[") => {}
                Some(entry) => {
                    let entry = entry.to_string();
                    v.error(
                        at,
                        format!("names the credential at {entry}, which is not a Twilio credential; name one under `twilio:`"),
                    );
                }
                None => {
                    let known: Vec<&str> = twilio.iter().map(|c| c.name.as_str()).collect();
                    v.error(
                        at,
                        format!(
                            "is not the name of a configured Twilio credential (configured: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    );
                }
            },
            Some(target) if matches!(&target.spec, Spec::Twilio(tw) if tw.is_api_key()) => v.warn(
                at,
                format!(
                    "`{link}` authenticates with an API key, but ElevenLabs' Twilio import stores the Account SID and \
                     Auth Token: a rotated Auth Token cannot be seen through an API key, so no re-import warning will \
                     follow it. Link a Twilio credential of the same account that uses `auth_token` instead (ownership \
                     is still checked through the key)"
                ),
            ),
            Some(_) => {}
        }
    }
}

impl ElevenLabs {
    /// Re-reads the `api_key_file` through the load path (the reader, the
    /// mode check, the key's shape checks), reporting into `v` at `path`
    /// (`elevenlabs[i]`): the credential as it now reads, or `None`.
    pub fn reread_files(&self, v: &mut Validator<'_>, path: &str) -> Option<ElevenLabs> {
        let api_key = self.api_key.reread(v, path, "api_key")?;
        check_elevenlabs_key(v, path, &api_key);
        Some(ElevenLabs {
            api_key,
            ..self.clone()
        })
    }
}
