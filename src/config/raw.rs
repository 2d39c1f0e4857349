//! The config file exactly as written. Every key is known, so a typo is an
//! error naming the key instead of a silently ignored setting. Nothing here
//! is validated; [`super::validate`] does that.
//!
//! The loader reads its own keys; every other top-level key is offered to
//! the providers ([`RawSections::read`]), each of which owns its section.

use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, Visitor};

use crate::providers::RawSections;

#[derive(Debug, Default)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub defaults: RawDefaults,
    /// Cap on requests in flight to one upstream host, across all credentials.
    pub max_concurrent_requests_per_host: Option<usize>,
    /// How often `*_file` secrets are checked for changes.
    pub secret_poll_interval: Option<Duration>,
    /// Secret files readable by group or others are an error instead of a warning.
    pub strict: Option<bool>,
    /// The providers' sections (`elevenlabs:`, `twilio:`, `permission_probes:`).
    pub sections: RawSections,
    /// `call_paths:`, validated once the credentials they name are.
    pub call_paths: Vec<crate::call_paths::config::RawCallPath>,
}

/// The loader's own top-level keys.
const OWN_KEYS: &[&str] = &[
    "listen",
    "defaults",
    "max_concurrent_requests_per_host",
    "secret_poll_interval",
    "strict",
    "call_paths",
];

/// Every top-level key, for "unknown field" messages.
static ALL_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    OWN_KEYS
        .iter()
        .copied()
        .chain(RawSections::keys())
        .collect()
});

impl<'de> Deserialize<'de> for RawConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = RawConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct RawConfig")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawConfig, A::Error> {
                let mut raw = RawConfig::default();
                let mut seen: Vec<String> = Vec::new();
                while let Some(key) = map.next_key_seed(TopKey)? {
                    if seen.contains(&key) {
                        let known = ALL_KEYS.iter().find(|k| **k == key);
                        return Err(A::Error::duplicate_field(known.copied().unwrap_or("a key")));
                    }
                    seen.push(key.clone());
                    match key.as_str() {
                        "listen" => raw.listen = map.next_value()?,
                        "defaults" => raw.defaults = map.next_value()?,
                        "max_concurrent_requests_per_host" => {
                            raw.max_concurrent_requests_per_host = map.next_value()?
                        }
                        "secret_poll_interval" => {
                            raw.secret_poll_interval = map
                                .next_value::<Option<humantime_serde::Serde<Duration>>>()?
                                .map(humantime_serde::Serde::into_inner)
                        }
                        "strict" => raw.strict = map.next_value()?,
                        "call_paths" => raw.call_paths = map.next_value()?,
                        other => {
                            if !raw.sections.read(other, &mut map)? {
                                return Err(A::Error::unknown_field(other, &ALL_KEYS[..]));
                            }
                        }
                    }
                }
                Ok(raw)
            }
        }
        d.deserialize_map(Top)
    }
}

/// A top-level key, refused while it is read when nobody owns it, so the
/// parser's error carries the key's line and column.
struct TopKey;

impl<'de> DeserializeSeed<'de> for TopKey {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for TopKey {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<String, E> {
        if ALL_KEYS.contains(&key) {
            Ok(key.to_string())
        } else {
            Err(E::unknown_field(key, &ALL_KEYS[..]))
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub detail_interval: Option<Duration>,
}
