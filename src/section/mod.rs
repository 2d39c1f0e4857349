//! What every provider's config section is made of: the [`Validator`] that
//! collects problems with their key paths, timing, names, base URLs and
//! secrets (literal, environment variable or file; [`secrets`]).
//!
//! A leaf. The config loader ([`crate::config`]) and each provider's own
//! section (`providers/<name>/config.rs`) build on it, so a provider owns
//! its keys without the loader and the providers depending on each other.
//! Nothing here repeats a configured value in a message.

mod env;
pub mod labels;
pub mod secrets;
mod wrapped;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

pub use env::{Env, ProcessEnv};
pub use labels::Labels;
pub use secrets::{
    SecretSource, SecretValue, read_secret_file, resolve_file, secret, source_suffix,
};

/// Appended where a value was wrong but is not repeated.
pub const NOT_SHOWN: &str = " (the value is not shown, in case it is a secret)";

/// A key (or label name) that is more likely a pasted value than a
/// misspelt name: long, or mixing letters and several digits (keys, tokens,
/// SIDs), or an ElevenLabs key's prefix, or anything that would not print
/// cleanly. Such a name is left out of messages; any other is shown.
pub fn looks_like_secret(name: &str) -> bool {
    let digits = name.bytes().filter(u8::is_ascii_digit).count();
    let letters = name.bytes().filter(u8::is_ascii_alphabetic).count();
    name.len() > 48
        || (name.len() >= 16 && digits >= 3 && letters >= 3)
        || (name.starts_with("sk_") && name.len() > 8)
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// The shortest `interval`.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// `detail_interval` when neither the credential nor `defaults` set it
/// (and the interval is shorter).
pub const DEFAULT_DETAIL_INTERVAL: Duration = Duration::from_secs(600);

/// One message about the config: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Collects every problem of one config file, so the user sees them all at once.
pub struct Validator<'a> {
    /// The config file: secret-file paths are relative to its directory.
    pub file: &'a Path,
    pub env: &'a dyn Env,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// `strict: true`: loosely readable secret files are errors.
    pub strict: bool,
    /// Credential names seen so far, with the key path that named them first.
    names: BTreeMap<String, String>,
}

impl<'a> Validator<'a> {
    pub fn new(file: &'a Path, env: &'a dyn Env, strict: bool) -> Self {
        Validator {
            file,
            env,
            errors: Vec::new(),
            warnings: Vec::new(),
            strict,
            names: BTreeMap::new(),
        }
    }

    pub fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Names are unique across the file: they are the `credential` label.
    fn unique_name(&mut self, path: &str, name: &str) {
        if let Some(first) = self.names.get(name) {
            let first = first.clone();
            self.error(
                format!("{path}.name"),
                format!("is already used by {first}; names must be unique across the file (they are the `credential` label)"),
            );
        } else {
            self.names.insert(name.to_string(), path.to_string());
        }
    }

    /// The key path of the entry that declared credential `name`
    /// (`twilio[0]`), whether or not the entry validated: a link to an entry
    /// that failed is not "unknown", it has its own errors.
    pub fn declared(&self, name: &str) -> Option<&str> {
        self.names.get(name).map(String::as_str)
    }

    pub fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// The keys every credential has, whatever its provider, as validated.
#[derive(Debug, Clone)]
pub struct Common {
    pub name: Option<String>,
    pub critical: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub detail_interval: Duration,
    pub base_url: String,
    /// `labels:`, for alert routing.
    pub labels: Labels,
}

/// `raw_common!(raw)`: the [`RawCommon`] keys taken out of a provider's raw
/// credential, which has them as fields of the same names (serde cannot
/// flatten them into it and still deny unknown keys).
#[macro_export]
macro_rules! raw_common {
    ($raw:expr) => {
        $crate::section::RawCommon {
            name: $raw.name,
            critical: $raw.critical,
            interval: $raw.interval,
            timeout: $raw.timeout,
            detail_interval: $raw.detail_interval,
            base_url: $raw.base_url,
            allow_insecure_http: $raw.allow_insecure_http,
            labels: $raw.labels,
        }
    };
}

/// The keys every credential has, as written.
pub struct RawCommon {
    pub name: Option<String>,
    pub critical: Option<bool>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub detail_interval: Option<Duration>,
    pub base_url: Option<String>,
    pub allow_insecure_http: Option<bool>,
    pub labels: Option<BTreeMap<String, String>>,
}

impl RawCommon {
    /// Checks the common keys of the credential at `path` (`twilio[1]`);
    /// `default_url` is the provider's public API.
    pub fn validate(
        self,
        v: &mut Validator<'_>,
        path: &str,
        defaults: &Timing,
        default_url: &str,
    ) -> Common {
        let name = name(v, path, self.name);
        if let Some(n) = &name {
            v.unique_name(path, n);
        }
        let (interval, timeout, detail_interval) = timing(
            v,
            path,
            defaults,
            self.interval,
            self.timeout,
            self.detail_interval,
        );
        let base_url = base_url(
            v,
            path,
            self.base_url,
            default_url,
            self.allow_insecure_http,
        );
        let labels = labels::labels(v, path, self.labels);
        Common {
            name,
            labels,
            critical: self.critical.unwrap_or(true),
            interval,
            timeout,
            detail_interval,
            base_url,
        }
    }
}

#[derive(Clone, Copy)]
pub struct Timing {
    pub interval: Duration,
    pub timeout: Duration,
    pub detail_interval: Option<Duration>,
}

pub fn check_timing(v: &mut Validator<'_>, path: &str, t: &Timing) -> bool {
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

fn name(v: &mut Validator<'_>, path: &str, name: Option<String>) -> Option<String> {
    label_name(v, path, name, "credential")
}

/// A `name:` that becomes a label value (a credential's, a call path's):
/// letters, digits, `_`, `.` and `-`, at most 128. `what` names the entry.
pub fn label_name(
    v: &mut Validator<'_>,
    path: &str,
    name: Option<String>,
    what: &str,
) -> Option<String> {
    match name {
        None => {
            v.error(
                format!("{path}.name"),
                format!("missing; every {what} needs a unique name ([A-Za-z0-9_.-]+)"),
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
    url_key(v, path, "base_url", raw, default, allow_insecure_http)
}

/// An upstream URL key of a credential (`base_url`, Twilio's
/// `voice_base_url`): [`check_base_url`]'s rules, problems at `{path}.{name}`.
pub fn url_key(
    v: &mut Validator<'_>,
    path: &str,
    name: &str,
    raw: Option<String>,
    default: &str,
    allow_insecure_http: Option<bool>,
) -> String {
    let key = format!("{path}.{name}");
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
/// `allow_insecure_http`. A spelling that a URL parser repairs silently
/// (`http:host` without `//`, a backslash, surrounding whitespace, an IP
/// address in hex, `:443` on https, `..` in the path) is refused rather
/// than normalised: what is requested must be what the operator reads.
/// Messages never repeat the URL.
pub fn check_base_url(text: &str, allow_insecure_http: bool) -> Result<BaseUrl, String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("is not a URL ({e}){NOT_SHOWN}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if text.contains('\\') {
        return Err("contains a backslash, which URL parsers read as `/`; write the URL with `/` only, e.g. `https://api.elevenlabs.io`".into());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".into());
    }
    // `http:host`, `http:/host`, `http:///host`: parsed as `http://host`.
    let after_scheme = &text[url.scheme().len() + 1..];
    let Some(rest) = after_scheme.strip_prefix("//") else {
        return Err(format!(
            "the scheme must be followed by `//`, e.g. `{}://127.0.0.1:8080`",
            url.scheme()
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') || !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials; use the credential's secret keys".into());
    }
    if url.query().is_some() || url.fragment().is_some() || text.contains(['?', '#']) {
        return Err("must not have a query or fragment".into());
    }
    if authority.is_empty() || url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !canonical(text, &url) {
        return Err("is not written the way URL parsers read it (an IP address in another notation, percent-encoding, a default port, `.` or `..` in the path, or non-ASCII); write it plainly, e.g. `https://api.elevenlabs.io` or `http://127.0.0.1:8080`".into());
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

/// Whether `text` is the URL as the parser serialises it (up to the case of
/// scheme and host, and a trailing `/`): nothing was repaired or rewritten.
fn canonical(text: &str, url: &reqwest::Url) -> bool {
    let parsed = url.as_str().trim_end_matches('/');
    let written = text.trim_end_matches('/');
    let (Some((pw, pp)), Some((ww, wp))) = (split_origin(parsed), split_origin(written)) else {
        return false;
    };
    pw.eq_ignore_ascii_case(ww) && pp == wp
}

/// `scheme://authority` and the path, of a URL without query or fragment.
fn split_origin(s: &str) -> Option<(&str, &str)> {
    let start = s.find("://")? + 3;
    let end = s[start..].find('/').map_or(s.len(), |i| start + i);
    Some((&s[..end], &s[end..]))
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
