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

/// Appended where a value was wrong but is not repeated.
const NOT_SHOWN: &str = " (the value is not shown, in case it is a secret)";

/// serde's messages quote the offending value (`invalid type: string
/// "sk_live_…", expected a boolean`), so a secret typed under the wrong key
/// would come back in an error, a log line and the reload answer. Each message
/// is rebuilt from its parts: the key path, what was expected and the kind of
/// value found — never the value. The YAML parser's own (syntax) messages
/// quote nothing from the file; any quoted text left is blanked anyway.
fn explain_serde(path: String, msg: &str) -> Diagnostic {
    let (msg, location) = split_location(msg);
    let (path, message) = if let Some(rest) = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
    {
        let wrong_type = msg.starts_with("invalid type");
        match rest.rfind(", expected ") {
            Some(i) => {
                let kind = value_kind(&rest[..i]);
                let expected = friendly_expected(&rest[i + ", expected ".len()..]);
                let message = if wrong_type {
                    format!("expected {expected}, found {kind}{NOT_SHOWN}")
                } else {
                    format!("expected {expected}; {kind} that is not one was found{NOT_SHOWN}")
                };
                (path, message)
            }
            None => (
                path,
                format!("a value of the wrong type or form{NOT_SHOWN}"),
            ),
        }
    } else if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let options = rest
            .rfind(", expected ")
            .map(|i| &rest[i + 2..])
            .unwrap_or("there are no options");
        (path, format!("unknown value{NOT_SHOWN}; {options}"))
    } else if let Some(rest) = msg.strip_prefix("unknown field `") {
        let end = rest
            .rfind("`, expected ")
            .or_else(|| rest.rfind("`, there are no fields"))
            .unwrap_or(rest.len());
        let key = &rest[..end];
        let options = rest.get(end + 3..).unwrap_or("");
        if looks_like_config_key(key) {
            (
                path,
                format!(
                    "unknown field `{key}`, {options} (check the spelling; see config.example.yaml for every key)"
                ),
            )
        } else {
            // Not shaped like any key credwatch has (a secret pasted as a key?):
            // name the mapping it is in, not the key.
            let parent = path
                .strip_suffix(key)
                .map(|p| p.trim_end_matches('.').to_string())
                .unwrap_or_default();
            (
                parent,
                format!(
                    "an unknown key that does not look like a config key (not shown, in case it is a secret); {options} (see config.example.yaml for every key)"
                ),
            )
        }
    } else if let Some(field) = ["missing field `", "duplicate field `"]
        .iter()
        .find_map(|p| msg.strip_prefix(p))
        .and_then(|rest| rest.strip_suffix('`'))
        && looks_like_config_key(field)
    {
        (path, msg.to_string())
    } else {
        (path, redact_quoted(msg))
    };
    Diagnostic {
        path,
        message: format!("{message}{location}"),
    }
}

/// Splits serde_yaml's trailing ` at line N column M`.
fn split_location(msg: &str) -> (&str, &str) {
    if let Some(i) = msg.rfind(" at line ") {
        let tail = &msg[i + " at line ".len()..];
        let numbers_only = tail.split_once(" column ").is_some_and(|(l, c)| {
            [l, c]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        if numbers_only {
            return (&msg[..i], &msg[i..]);
        }
    }
    (msg, "")
}

/// The kind of value serde's `Unexpected` describes, without the value.
fn value_kind(unexpected: &str) -> &'static str {
    const KINDS: [(&str, &str); 12] = [
        ("string", "a string"),
        ("character", "a character"),
        ("integer", "a number"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("byte array", "binary data"),
        ("unit value", "an empty value"),
        ("option", "an optional value"),
        ("sequence", "a list"),
        ("map", "a mapping"),
        ("enum", "a tagged value"),
        ("unit variant", "a tagged value"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| unexpected.starts_with(prefix))
        .map(|(_, kind)| *kind)
        .unwrap_or("a value")
}

/// serde's `Expected` texts for credwatch's types, in the user's terms.
fn friendly_expected(expected: &str) -> String {
    match expected {
        "a boolean" => "`true` or `false`".into(),
        "usize" | "u64" | "u32" | "an integer" => "a whole number".into(),
        "u16" => "a whole number up to 65535".into(),
        "a duration" => "a duration with a unit, e.g. `60s` or `5m`".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping of keys".into(),
        e if e.starts_with("struct ") => "a mapping of keys".into(),
        e => redact_quoted(e),
    }
}

/// Config keys are lowercase words joined by `_`.
fn looks_like_config_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 40 && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Blanks anything between `"` or backticks: a safety net for messages
/// credwatch does not know the shape of.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut open: Option<char> = None;
    for c in msg.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
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

/// Resolves exactly one of `<key>`, `<key>_env`, `<key>_file`.
fn secret(
    v: &mut Validator<'_>,
    path: &str,
    key: &str,
    literal: Option<String>,
    env_name: Option<String>,
    file: Option<String>,
) -> Option<SecretValue> {
    // Wiped on every way out, errors included.
    let literal = literal.map(Zeroizing::new);
    let given: Vec<String> = [
        literal.as_ref().map(|_| key.to_string()),
        env_name.as_ref().map(|_| format!("{key}_env")),
        file.as_ref().map(|_| format!("{key}_file")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() > 1 {
        v.error(
            format!("{path}.{key}"),
            format!(
                "set in several ways ({}); keep exactly one of `{key}`, `{key}_env`, `{key}_file`",
                given.join(", ")
            ),
        );
        return None;
    }
    let (source, value, at) = if let Some(value) = literal {
        (SecretSource::Literal, value, format!("{path}.{key}"))
    } else if let Some(var) = env_name {
        let at = format!("{path}.{key}_env");
        match v.env.var(&var) {
            None => {
                v.error(
                    at,
                    format!(
                        "{} is not set; export it, or use `{key}_file`",
                        env_var_named(&var)
                    ),
                );
                return None;
            }
            Some(value) if value.trim().is_empty() => {
                drop(Zeroizing::new(value));
                v.error(at, format!("{} is empty", env_var_named(&var)));
                return None;
            }
            Some(value) => (SecretSource::Env(var), Zeroizing::new(value), at),
        }
    } else if let Some(file) = file {
        let at = format!("{path}.{key}_file");
        let resolved = resolve_file(v.file, &file);
        match read_secret_file(&resolved) {
            Ok((value, meta)) => {
                check_file_mode(v, &at, &resolved, &meta);
                (SecretSource::File(resolved), value, at)
            }
            Err(e) => {
                v.error(
                    at,
                    format!("cannot read {}: {e}", file_named(&file, &resolved)),
                );
                return None;
            }
        }
    } else {
        v.error(
            format!("{path}.{key}"),
            format!("missing; set one of `{key}`, `{key}_env` (an environment variable) or `{key}_file` (e.g. a mounted Kubernetes Secret)"),
        );
        return None;
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        v.error(at, format!("the value from {source} is empty"));
        return None;
    }
    if trimmed.len() != value.len() {
        v.warn(
            at,
            format!("the value from {source} has surrounding whitespace (a trailing newline?); credwatch trimmed it, but other clients of this secret will send it as-is and get 401: fix the source"),
        );
    }
    let secret = Secret::new(trimmed);
    Some(SecretValue {
        source,
        value: secret,
    })
}

/// A path named in a config file (secret files, or the files a web config
/// names) is relative to that file's directory.
pub(crate) fn resolve_file(config: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// How an error names the environment variable in a `*_env` key: by name
/// when it is shaped like one (`EL_KEY`), else not at all — a secret typed
/// into `api_key_env` must not come back in the message.
fn env_var_named(var: &str) -> String {
    let conventional = var
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && var
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if conventional && var.len() <= 128 {
        format!("environment variable `{var}`")
    } else {
        format!("the environment variable this key names{NOT_SHOWN}")
    }
}

/// How an error names the file in a `*_file` key: by path when the value is
/// shaped like a path (it has a `/` or a `.`), else not at all.
fn file_named(raw: &str, resolved: &Path) -> String {
    if raw.contains('/') || raw.contains('.') {
        format!("`{}`", resolved.display())
    } else {
        format!("the file this key names (relative to the config file's directory){NOT_SHOWN}")
    }
}

/// A secret file's text, in wiped memory, and the metadata of the handle it
/// was read from (see [`crate::secret::read_secret_file`]).
pub(crate) fn read_secret_file(
    path: &Path,
) -> std::io::Result<(Zeroizing<String>, std::fs::Metadata)> {
    crate::secret::read_secret_file(path, crate::secret::SECRET_FILE_LIMIT)
}

#[cfg(unix)]
fn check_file_mode(v: &mut Validator<'_>, at: &str, path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = meta.permissions().mode();
    let world = mode & 0o007 != 0;
    // Group access is fine when the group is credwatch's own: that is how a
    // Kubernetes secret volume with `fsGroup` lets a non-root container read it.
    let foreign_group = mode & 0o070 != 0 && !own_groups().contains(&meta.gid());
    if world || foreign_group {
        let msg = format!(
            "`{}` is readable by {} (mode {:o}); restrict it with `chmod 600` (Kubernetes: `defaultMode: 0440` on the secret volume with `fsGroup` set to credwatch's group)",
            path.display(),
            if world { "every user" } else { "another group" },
            mode & 0o777
        );
        if v.strict {
            v.error(at, format!("{msg}; refused because `strict: true`"));
        } else {
            v.warn(at, msg);
        }
    }
}

/// The effective and supplementary group IDs of this process (Linux `/proc`).
#[cfg(unix)]
fn own_groups() -> Vec<u32> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Vec::new();
    };
    let mut groups = Vec::new();
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("Gid:") {
            groups.extend(
                rest.split_whitespace()
                    .nth(1)
                    .and_then(|g| g.parse::<u32>().ok()),
            );
        } else if let Some(rest) = line.strip_prefix("Groups:") {
            groups.extend(
                rest.split_whitespace()
                    .filter_map(|g| g.parse::<u32>().ok()),
            );
        }
    }
    groups
}

#[cfg(not(unix))]
fn check_file_mode(_: &mut Validator<'_>, _: &str, _: &Path, _: &std::fs::Metadata) {}

fn elevenlabs(
    v: &mut Validator<'_>,
    path: &str,
    raw: RawElevenLabs,
    defaults: &Timing,
    known_permissions: &[String],
) -> Option<Credential> {
    let name = name(v, path, raw.name);
    let (interval, timeout, detail_interval) = timing(
        v,
        path,
        defaults,
        raw.interval,
        raw.timeout,
        raw.detail_interval,
    );
    let base_url = base_url(
        v,
        path,
        raw.base_url,
        DEFAULT_ELEVENLABS_URL,
        raw.allow_insecure_http,
    );
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
    if let Some(fp) = &raw.twilio_imported_fingerprint
        && (fp.len() != 12 || !is_hex(fp))
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
    Some(Credential {
        name: name?,
        critical: raw.critical.unwrap_or(true),
        interval,
        timeout,
        detail_interval,
        spec: Spec::ElevenLabs(ElevenLabs {
            base_url,
            api_key: api_key?,
            required_permissions,
            phone_numbers,
            twilio: raw.twilio,
            expose_numbers: raw.expose_numbers.unwrap_or(false),
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
    if looks_like_account_sid(value) || looks_like_key_sid(value) {
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

fn source_suffix(source: &SecretSource) -> &'static str {
    match source {
        SecretSource::Literal => "",
        SecretSource::Env(_) => "_env",
        SecretSource::File(_) => "_file",
    }
}

fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

pub(crate) use crate::upstream::looks_like_account_sid;

pub(crate) fn looks_like_key_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("SK") && is_hex(&s[2..])
}

fn looks_like_auth_token(s: &str) -> bool {
    s.len() == 32 && is_hex(s)
}

fn twilio(
    v: &mut Validator<'_>,
    path: &str,
    raw: RawTwilio,
    defaults: &Timing,
) -> Option<Credential> {
    let name = name(v, path, raw.name);
    let (interval, timeout, detail_interval) = timing(
        v,
        path,
        defaults,
        raw.interval,
        raw.timeout,
        raw.detail_interval,
    );
    let base_url = base_url(
        v,
        path,
        raw.base_url,
        DEFAULT_TWILIO_URL,
        raw.allow_insecure_http,
    );
    let sid = secret(
        v,
        path,
        "account_sid",
        raw.account_sid,
        raw.account_sid_env,
        raw.account_sid_file,
    );

    let has_token =
        raw.auth_token.is_some() || raw.auth_token_env.is_some() || raw.auth_token_file.is_some();
    let has_key = raw.api_key_sid.is_some()
        || raw.api_key_sid_env.is_some()
        || raw.api_key_sid_file.is_some()
        || raw.api_key_secret.is_some()
        || raw.api_key_secret_env.is_some()
        || raw.api_key_secret_file.is_some();
    let auth = if has_token && has_key {
        v.error(
            path.to_string(),
            "has both an auth token and an API key; keep one: `auth_token*` (Account SID + Auth Token) or `api_key_sid*` + `api_key_secret*`",
        );
        None
    } else if has_key {
        let key_sid = secret(
            v,
            path,
            "api_key_sid",
            raw.api_key_sid,
            raw.api_key_sid_env,
            raw.api_key_sid_file,
        );
        let key_secret = secret(
            v,
            path,
            "api_key_secret",
            raw.api_key_secret,
            raw.api_key_secret_env,
            raw.api_key_secret_file,
        );
        match (key_sid, key_secret) {
            (Some(ks), Some(sec)) => {
                let sid_text = ks.value.expose().to_string();
                let secret_text = sec.value.expose();
                let at = format!("{path}.api_key_sid{}", source_suffix(&ks.source));
                if !looks_like_key_sid(&sid_text) {
                    if looks_like_key_sid(secret_text) {
                        v.error(at, "these look swapped: the API key SID (`SK` + 32 hex) is in `api_key_secret`, and the secret in `api_key_sid`");
                    } else if looks_like_account_sid(&sid_text) {
                        v.error(at, "is an Account SID (`AC…`); the API key SID starts with `SK` (Console → Account → API keys). The Account SID goes in `account_sid`");
                    } else {
                        v.error(at, format!("the value from {} is not an API key SID (`SK` followed by 32 hex digits)", ks.source));
                    }
                    None
                } else {
                    Some(TwilioAuth::ApiKey {
                        sid: sid_text,
                        sid_source: ks.source,
                        secret: sec,
                    })
                }
            }
            _ => None,
        }
    } else {
        let token = secret(
            v,
            path,
            "auth_token",
            raw.auth_token,
            raw.auth_token_env,
            raw.auth_token_file,
        );
        if let Some(t) = &token {
            let text = t.value.expose();
            let at = format!("{path}.auth_token{}", source_suffix(&t.source));
            if looks_like_account_sid(text) {
                if sid
                    .as_ref()
                    .is_some_and(|s| looks_like_auth_token(s.value.expose()))
                {
                    // Reported once, on account_sid, below.
                } else {
                    v.error(at, "is an Account SID (`AC…`), not an Auth Token; the Auth Token is 32 hex digits (Console → Account → Auth tokens)");
                }
            } else if looks_like_key_sid(text) {
                v.error(at, "is an API key SID (`SK…`); put it in `api_key_sid` with its secret in `api_key_secret`, or use the Auth Token here");
            } else if !looks_like_auth_token(text) {
                v.warn(at, format!("the value from {} is not 32 hex digits like Twilio Auth Tokens are; check it", t.source));
            }
        }
        token.map(TwilioAuth::AuthToken)
    };

    let account_sid = sid.and_then(|s| {
        let text = s.value.expose().to_string();
        let at = format!("{path}.account_sid{}", source_suffix(&s.source));
        if looks_like_account_sid(&text) {
            return Some((text, s.source));
        }
        let token_is_sid = matches!(&auth, Some(TwilioAuth::AuthToken(t)) if looks_like_account_sid(t.value.expose()));
        if token_is_sid || (looks_like_auth_token(&text) && auth.is_none()) {
            v.error(at, "these look swapped: `account_sid` holds an Auth Token and `auth_token` the Account SID. The Account SID starts with `AC`; the Auth Token is 32 hex digits");
        } else if looks_like_key_sid(&text) {
            v.error(at, "is an API key SID (`SK…`); the URL needs the Account SID (`AC` + 32 hex, Console → Account info). Put the SK SID in `api_key_sid`");
        } else if looks_like_auth_token(&text) {
            v.error(at, "looks like an Auth Token (32 hex digits); the Account SID starts with `AC` (Console → Account info)");
        } else {
            v.error(at, format!("the value from {} is not an Account SID (`AC` followed by 32 hex digits)", s.source));
        }
        None
    });

    let (account_sid, account_sid_source) = account_sid?;
    Some(Credential {
        name: name?,
        critical: raw.critical.unwrap_or(true),
        interval,
        timeout,
        detail_interval,
        spec: Spec::Twilio(Twilio {
            base_url,
            account_sid,
            account_sid_source,
            auth: auth?,
        }),
    })
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
