//! From [`RawConfig`] to [`Config`]: every check of the file, collected so the
//! user sees all problems at once.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{RawConfig, RawElevenLabs, RawPermissionProbe, RawTwilio};
use super::{
    Config, ConfigError, Credential, Diagnostic, ElevenLabs, Env, PermissionProbe, SecretSource,
    SecretValue, Spec, StatusMatch, Twilio, TwilioAuth,
};
use crate::secret::Secret;
use zeroize::Zeroizing;

mod elevenlabs;
mod errors;
mod secrets;
mod twilio;

use elevenlabs::*;
use errors::*;
#[allow(unused_imports)]
use secrets::*;
pub(crate) use secrets::{read_secret_file, resolve_file};
#[allow(unused_imports)]
use twilio::*;
pub(crate) use twilio::{looks_like_account_sid, looks_like_key_sid};

pub const DEFAULT_ELEVENLABS_URL: &str = "https://api.elevenlabs.io";
pub const DEFAULT_TWILIO_URL: &str = "https://api.twilio.com";
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_DETAIL_INTERVAL: Duration = Duration::from_secs(600);
const DEFAULT_MAX_PER_HOST: usize = 16;
const DEFAULT_SECRET_POLL: Duration = Duration::from_secs(10);
const MIN_INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn parse(text: &str) -> Result<RawConfig, Diagnostic> {
    if text.trim().is_empty() {
        return Err(Diagnostic {
            path: String::new(),
            message: "the file is empty; add `elevenlabs:` and/or `twilio:` credentials (see config.example.yaml)".into(),
        });
    }
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let mut inner = e.into_inner().to_string();
        // serde_yaml prefixes the parent's path itself; ours is complete.
        if let Some((prefix, rest)) = inner.split_once(": ")
            && !prefix.contains(' ')
            && path.starts_with(prefix)
        {
            inner = rest.to_string();
        }
        explain_serde(if path == "." { String::new() } else { path }, &inner)
    })
}

struct Validator<'a> {
    file: &'a Path,
    env: &'a dyn Env,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    strict: bool,
}

impl Validator<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            path: path.into(),
            message: message.into(),
        });
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            path: path.into(),
            message: message.into(),
        });
    }
}

pub(super) fn validate(raw: RawConfig, file: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let mut v = Validator {
        file,
        env,
        errors: Vec::new(),
        warnings: Vec::new(),
        strict: raw.strict.unwrap_or(false),
    };

    let listen = raw
        .listen
        .as_deref()
        .and_then(|l| match l.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                v.error(
                    "listen",
                    "is not an address:port, e.g. `0.0.0.0:9863` or `[::]:9863`",
                );
                None
            }
        });

    let max_per_host = match raw.max_concurrent_requests_per_host {
        Some(0) => {
            v.error("max_concurrent_requests_per_host", "must be at least 1");
            DEFAULT_MAX_PER_HOST
        }
        Some(n) => n,
        None => DEFAULT_MAX_PER_HOST,
    };
    let secret_poll_interval = match raw.secret_poll_interval {
        Some(d) if d < MIN_INTERVAL => {
            v.error("secret_poll_interval", "must be at least 1s");
            DEFAULT_SECRET_POLL
        }
        Some(d) => d,
        None => DEFAULT_SECRET_POLL,
    };

    let defaults = Timing {
        interval: raw.defaults.interval.unwrap_or(DEFAULT_INTERVAL),
        timeout: raw.defaults.timeout.unwrap_or(DEFAULT_TIMEOUT),
        detail_interval: raw.defaults.detail_interval,
    };
    check_timing(&mut v, "defaults", &defaults);

    let permission_probes = permission_probes(&mut v, raw.permission_probes);
    let known_permissions: Vec<String> = permission_probes
        .iter()
        .map(|p| p.permission.clone())
        .collect();

    if raw.elevenlabs.is_empty() && raw.twilio.is_empty() {
        v.error(
            "",
            "no credentials configured: add entries under `elevenlabs:` and/or `twilio:`",
        );
    }

    let mut credentials = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (i, el) in raw.elevenlabs.into_iter().enumerate() {
        let path = format!("elevenlabs[{i}]");
        if let Some(c) = elevenlabs(&mut v, &path, el, &defaults, &known_permissions) {
            unique_name(&mut v, &mut names, &path, &c.name);
            credentials.push(c);
        }
    }
    for (i, tw) in raw.twilio.into_iter().enumerate() {
        let path = format!("twilio[{i}]");
        if let Some(c) = twilio(&mut v, &path, tw, &defaults) {
            unique_name(&mut v, &mut names, &path, &c.name);
            credentials.push(c);
        }
    }

    // Links from ElevenLabs credentials to the Twilio account owning their numbers.
    let twilio_names: HashSet<&str> = credentials
        .iter()
        .filter(|c| matches!(c.spec, Spec::Twilio(_)))
        .map(|c| c.name.as_str())
        .collect();
    let api_key_links: HashSet<&str> = credentials
        .iter()
        .filter(
            |c| matches!(&c.spec, Spec::Twilio(tw) if matches!(tw.auth, TwilioAuth::ApiKey { .. })),
        )
        .map(|c| c.name.as_str())
        .collect();
    let mut link_errors = Vec::new();
    let mut link_warnings = Vec::new();
    for (i, c) in credentials
        .iter()
        .filter(|c| matches!(c.spec, Spec::ElevenLabs(_)))
        .enumerate()
    {
        if let Spec::ElevenLabs(el) = &c.spec
            && let Some(link) = &el.twilio
            && api_key_links.contains(link.as_str())
        {
            link_warnings.push((
                format!("elevenlabs[{i}].twilio"),
                format!(
                    "`{link}` authenticates with an API key, but ElevenLabs' Twilio import stores the Account SID and \
                     Auth Token: a rotated Auth Token cannot be seen through an API key, so no re-import warning will \
                     follow it. Link a Twilio credential of the same account that uses `auth_token` instead (ownership \
                     is still checked through the key)"
                ),
            ));
        }
        if let Spec::ElevenLabs(el) = &c.spec
            && let Some(link) = &el.twilio
            && !twilio_names.contains(link.as_str())
        {
            let known: Vec<&str> = twilio_names.iter().copied().collect();
            link_errors.push((
                format!("elevenlabs[{i}].twilio"),
                format!(
                    "is not the name of a configured Twilio credential (configured: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }
    for (p, m) in link_errors {
        v.error(p, m);
    }
    for (p, m) in link_warnings {
        v.warn(p, m);
    }

    if !v.errors.is_empty() {
        return Err(ConfigError {
            file: file.to_path_buf(),
            errors: v.errors,
        });
    }
    Ok(Config {
        source: file.to_path_buf(),
        listen,
        max_concurrent_requests_per_host: max_per_host,
        secret_poll_interval,
        credentials,
        permission_probes,
        warnings: v.warnings,
    })
}

#[derive(Clone, Copy)]
struct Timing {
    interval: Duration,
    timeout: Duration,
    detail_interval: Option<Duration>,
}

fn check_timing(v: &mut Validator<'_>, path: &str, t: &Timing) -> bool {
    let mut ok = true;
    if t.interval < MIN_INTERVAL {
        v.error(
            format!("{path}.interval"),
            "must be at least 1s (upstream rate limits are shared with production traffic)",
        );
        ok = false;
    }
    if t.timeout.is_zero() || t.timeout >= t.interval {
        v.error(
            format!("{path}.timeout"),
            format!(
                "must be above 0 and below the interval ({}); a check must end before the next one is due",
                humantime::format_duration(t.interval)
            ),
        );
        ok = false;
    }
    if let Some(d) = t.detail_interval
        && d < t.interval
    {
        v.error(
            format!("{path}.detail_interval"),
            format!(
                "must not be shorter than the interval ({})",
                humantime::format_duration(t.interval)
            ),
        );
        ok = false;
    }
    ok
}

fn timing(
    v: &mut Validator<'_>,
    path: &str,
    defaults: &Timing,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    detail_interval: Option<Duration>,
) -> (Duration, Duration, Duration) {
    let t = Timing {
        interval: interval.unwrap_or(defaults.interval),
        timeout: timeout.unwrap_or(defaults.timeout),
        detail_interval: detail_interval.or(defaults.detail_interval),
    };
    if interval.is_some() || timeout.is_some() || detail_interval.is_some() {
        check_timing(v, path, &t);
    }
    let detail = t
        .detail_interval
        .unwrap_or_else(|| DEFAULT_DETAIL_INTERVAL.max(t.interval));
    (t.interval, t.timeout, detail)
}

fn unique_name(
    v: &mut Validator<'_>,
    names: &mut BTreeMap<String, String>,
    path: &str,
    name: &str,
) {
    if let Some(first) = names.get(name) {
        v.error(
            format!("{path}.name"),
            format!("is already used by {first}; names must be unique across the file (they are the `credential` label)"),
        );
    } else {
        names.insert(name.to_string(), path.to_string());
    }
}

fn name(v: &mut Validator<'_>, path: &str, name: Option<String>) -> Option<String> {
    match name {
        None => {
            v.error(
                format!("{path}.name"),
                "missing; every credential needs a unique name ([A-Za-z0-9_.-]+)",
            );
            None
        }
        Some(n)
            if n.is_empty()
                || !n
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) =>
        {
            v.error(
                format!("{path}.name"),
                "may only contain letters, digits, `_`, `.` and `-` (it becomes a metric label)",
            );
            None
        }
        Some(n) if n.len() > 128 => {
            v.error(format!("{path}.name"), "longer than 128 characters");
            None
        }
        Some(n) => Some(n),
    }
}

fn base_url(
    v: &mut Validator<'_>,
    path: &str,
    raw: Option<String>,
    default: &str,
    allow_insecure_http: Option<bool>,
) -> String {
    let key = format!("{path}.base_url");
    let Some(text) = raw else {
        if allow_insecure_http.is_some() {
            v.warn(
                format!("{path}.allow_insecure_http"),
                "has no effect: the default base_url is https",
            );
        }
        return default.to_string();
    };
    match check_base_url(&text, allow_insecure_http.unwrap_or(false)) {
        Ok(checked) => {
            if checked.insecure {
                v.warn(
                    key,
                    "plain http to a non-loopback host sends the secret unencrypted (allowed by `allow_insecure_http: true`)",
                );
            }
            checked.url
        }
        Err(why) => {
            v.error(key, why);
            default.to_string()
        }
    }
}

/// A checked upstream base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// Without a trailing `/`.
    pub url: String,
    /// Plain http to a host that is not loopback (only with `allow_insecure_http`).
    pub insecure: bool,
}

/// The rules for an upstream base URL, for the config's `base_url` and
/// `calibrate --base-url`: http(s), a host, no credentials, query or
/// fragment, and plain http only to a loopback host unless
/// `allow_insecure_http`. Messages never repeat the URL.
pub fn check_base_url(text: &str, allow_insecure_http: bool) -> Result<BaseUrl, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("is not a URL ({e}){NOT_SHOWN}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials; use the credential's secret keys".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    if url.host_str().is_none() {
        return Err("has no host".into());
    }
    let insecure = url.scheme() == "http" && !is_loopback(&url);
    if insecure && !allow_insecure_http {
        return Err("plain http to a non-loopback host would send the secret unencrypted; use https, or set `allow_insecure_http: true` on this credential if the network path is trusted".into());
    }
    Ok(BaseUrl {
        url: text.trim_end_matches('/').to_string(),
        insecure,
    })
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn permission_probes(
    v: &mut Validator<'_>,
    overrides: BTreeMap<String, RawPermissionProbe>,
) -> Vec<PermissionProbe> {
    let mut table = crate::upstream::default_permission_probes();
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
        if let Err(why) =
            crate::upstream::check_read_path(crate::upstream::Provider::ElevenLabs, &path)
        {
            v.error(format!("{at}.path"), why);
            continue;
        }
        let mut matches = |key: &str, list: Vec<super::raw::RawStatusMatch>| -> Vec<StatusMatch> {
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

#[cfg(test)]
mod tests;
