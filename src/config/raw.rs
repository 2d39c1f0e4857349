//! The config file exactly as written. Every struct denies unknown keys, so a
//! typo is an error naming the key instead of a silently ignored setting.
//! Nothing here is validated; [`super::validate`] does that.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Cap on requests in flight to one upstream host, across all credentials.
    pub max_concurrent_requests_per_host: Option<usize>,
    /// How often `*_file` secrets are checked for changes.
    #[serde(default, with = "humantime_serde")]
    pub secret_poll_interval: Option<Duration>,
    /// Secret files readable by group or others are an error instead of a warning.
    pub strict: Option<bool>,
    /// Overrides of the ElevenLabs permission-probe table, by permission name.
    #[serde(default)]
    pub permission_probes: BTreeMap<String, RawPermissionProbe>,
    #[serde(default)]
    pub elevenlabs: Vec<RawElevenLabs>,
    #[serde(default)]
    pub twilio: Vec<RawTwilio>,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTwilio {
    pub name: Option<String>,
    pub account_sid: Option<String>,
    pub account_sid_env: Option<String>,
    pub account_sid_file: Option<String>,
    pub auth_token: Option<String>,
    pub auth_token_env: Option<String>,
    pub auth_token_file: Option<String>,
    pub api_key_sid: Option<String>,
    pub api_key_sid_env: Option<String>,
    pub api_key_sid_file: Option<String>,
    pub api_key_secret: Option<String>,
    pub api_key_secret_env: Option<String>,
    pub api_key_secret_file: Option<String>,
    pub base_url: Option<String>,
    /// Permit a plain-http `base_url` to a non-loopback host.
    pub allow_insecure_http: Option<bool>,
    pub critical: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub detail_interval: Option<Duration>,
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
