//! From [`RawConfig`] to [`Config`]: every check of the file, collected so the
//! user sees all problems at once.

use std::path::Path;
use std::time::Duration;

use super::raw::RawConfig;
use super::{Config, ConfigError, Diagnostic, Env};
use crate::providers::Provider;
use crate::section::{MIN_INTERVAL, Timing, Validator, check_timing};

mod errors;

use errors::*;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_PER_HOST: usize = 16;
const DEFAULT_SECRET_POLL: Duration = Duration::from_secs(10);

/// "`elevenlabs:` and/or `twilio:`": every provider's section.
fn sections() -> String {
    let names: Vec<String> = Provider::ALL.iter().map(|p| format!("`{p}:`")).collect();
    names.join(" and/or ")
}

pub(super) fn parse(text: &str) -> Result<RawConfig, Diagnostic> {
    if text.trim().is_empty() {
        return Err(Diagnostic {
            path: String::new(),
            message: format!(
                "the file is empty; add {} credentials (see config.example.yaml)",
                sections()
            ),
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
        syntax_error(&inner, text).unwrap_or_else(|| {
            explain_serde(if path == "." { String::new() } else { path }, &inner)
        })
    })
}

pub(super) fn validate(raw: RawConfig, file: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let mut v = Validator::new(file, env, raw.strict.unwrap_or(false));

    let listen = raw
        .listen
        .as_deref()
        .and_then(|l| match crate::listen::parse(l) {
            Ok(addr) => Some(addr),
            Err(why) => {
                v.error("listen", why);
                None
            }
        });

    let max_per_host = match raw.max_concurrent_requests_per_host {
        Some(0) => {
            v.error("max_concurrent_requests_per_host", "must be at least 1");
            Some(DEFAULT_MAX_PER_HOST)
        }
        other => other,
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

    if raw.sections.is_empty() {
        let sections: Vec<String> = Provider::ALL.iter().map(|p| format!("`{p}:`")).collect();
        v.error(
            "",
            format!(
                "no credentials configured: add entries under {}",
                sections.join(" and/or ")
            ),
        );
    }
    let (credentials, shared) = raw.sections.validate(&mut v, &defaults);
    let call_paths = crate::call_paths::config::validate(&mut v, raw.call_paths, &credentials);

    // Unset: sized to the work (at least the old default of 16).
    let max_per_host = max_per_host
        .unwrap_or_else(|| super::capacity::sized(&credentials).max(DEFAULT_MAX_PER_HOST));
    for warning in super::capacity::warnings(&credentials, max_per_host) {
        v.warn("max_concurrent_requests_per_host", warning);
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
        strict: v.strict,
        credentials,
        call_paths,
        shared,
        warnings: v.warnings,
    })
}

#[cfg(test)]
mod messages;
#[cfg(test)]
mod tests;
