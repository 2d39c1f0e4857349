//! The Twilio config section: `twilio:` credentials, with the SID and secret
//! shapes (swapped values, a key SID where the Account SID belongs) and the
//! auth kind (Auth Token, or API key SID + secret).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::api::looks_like_account_sid;
use crate::providers::{Credential, Section, Spec};
use crate::section::{SecretSource, SecretValue, Timing, Validator, secret, source_suffix};

pub const DEFAULT_URL: &str = "https://api.twilio.com";
/// Where the Voice API (dialing permissions) is served.
pub const DEFAULT_VOICE_URL: &str = "https://voice.twilio.com";

/// One `twilio:` credential as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Twilio {
    pub base_url: String,
    /// The Voice API, for call paths' destination countries.
    pub voice_base_url: String,
    /// Not a secret, but resolved like one (it may come from a file or env var).
    pub account_sid: String,
    pub account_sid_source: SecretSource,
    pub auth: TwilioAuth,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TwilioAuth {
    /// Account SID + Auth Token.
    AuthToken(SecretValue),
    /// API key SID (`SK…`) + secret.
    ApiKey {
        sid: String,
        sid_source: SecretSource,
        secret: SecretValue,
    },
}

impl TwilioAuth {
    pub fn secret(&self) -> &SecretValue {
        match self {
            TwilioAuth::AuthToken(s) => s,
            TwilioAuth::ApiKey { secret, .. } => secret,
        }
    }
}

impl Twilio {
    /// Authenticates with an API key rather than the Auth Token.
    pub fn is_api_key(&self) -> bool {
        matches!(self.auth, TwilioAuth::ApiKey { .. })
    }
}

/// What all Twilio credentials share: nothing yet.
pub type Shared = ();

/// The keys of the config file Twilio owns, as written.
#[derive(Debug, Default)]
pub struct RawSection {
    /// `twilio:`
    pub credentials: Vec<RawTwilio>,
}

impl Section for RawSection {
    const KEYS: &'static [&'static str] = &["twilio"];
    type Shared = Shared;

    fn read<'de, A: serde::de::MapAccess<'de>>(
        &mut self,
        _key: &str,
        map: &mut A,
    ) -> Result<(), A::Error> {
        self.credentials = map.next_value()?;
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.credentials.is_empty()
    }

    fn validate(self, v: &mut Validator<'_>, defaults: &Timing) -> (Vec<Credential>, Shared) {
        validate(v, self, defaults)
    }
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
    /// The Voice API's base URL (call paths' dialing permissions).
    pub voice_base_url: Option<String>,
    /// Permit a plain-http `base_url` to a non-loopback host.
    pub allow_insecure_http: Option<bool>,
    pub critical: Option<bool>,
    /// Prometheus labels for alert routing, on `credwatch_credential_info`.
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub detail_interval: Option<Duration>,
}

fn validate(
    v: &mut Validator<'_>,
    raw: RawSection,
    defaults: &Timing,
) -> (Vec<Credential>, Shared) {
    let credentials = raw
        .credentials
        .into_iter()
        .enumerate()
        .filter_map(|(i, tw)| twilio(v, &format!("twilio[{i}]"), tw, defaults))
        .collect();
    (credentials, ())
}

fn is_hex(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_hexdigit())
}

/// `SK` + 32 hex digits: the shape of an API key SID.
pub fn looks_like_key_sid(s: &str) -> bool {
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
    let voice_base_url = crate::section::url_key(
        v,
        path,
        "voice_base_url",
        raw.voice_base_url,
        DEFAULT_VOICE_URL,
        raw.allow_insecure_http,
    );
    let common = crate::raw_common!(raw).validate(v, path, defaults, DEFAULT_URL);
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
        key_auth(v, path, key_sid, key_secret)
    } else {
        let token = secret(
            v,
            path,
            "auth_token",
            raw.auth_token,
            raw.auth_token_env,
            raw.auth_token_file,
        );
        token_auth(v, path, token, sid.as_ref())
    };
    let account_sid = account_sid(v, path, sid, auth.as_ref());
    let (account_sid, account_sid_source) = account_sid?;
    Some(Credential {
        name: common.name?,
        critical: common.critical,
        labels: common.labels,
        interval: common.interval,
        timeout: common.timeout,
        detail_interval: common.detail_interval,
        spec: Spec::Twilio(Twilio {
            base_url: common.base_url,
            voice_base_url,
            account_sid,
            account_sid_source,
            auth: auth?,
        }),
    })
}

/// An API key SID and secret, with the load-time shape checks (swapped
/// values, an Account SID where the key SID belongs); at load and on
/// every re-read.
fn key_auth(
    v: &mut Validator<'_>,
    path: &str,
    key_sid: Option<SecretValue>,
    key_secret: Option<SecretValue>,
) -> Option<TwilioAuth> {
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
}

/// An Auth Token, with the load-time shape checks (an Account SID or an API
/// key SID in its place); at load and on every re-read.
fn token_auth(
    v: &mut Validator<'_>,
    path: &str,
    token: Option<SecretValue>,
    sid: Option<&SecretValue>,
) -> Option<TwilioAuth> {
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
            v.warn(
                at,
                format!(
                    "the value from {} is not 32 hex digits like Twilio Auth Tokens are; check it",
                    t.source
                ),
            );
        }
    }
    token.map(TwilioAuth::AuthToken)
}

/// The Account SID, with the load-time shape checks (swapped with the
/// token, a key SID or a token in its place); at load and on every re-read.
fn account_sid(
    v: &mut Validator<'_>,
    path: &str,
    sid: Option<SecretValue>,
    auth: Option<&TwilioAuth>,
) -> Option<(String, SecretSource)> {
    sid.and_then(|s| {
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
})
}

impl Twilio {
    /// Re-reads every `*_file` value through the load path (the reader, the
    /// mode check, the shape checks of SIDs and secrets together, so a
    /// swapped SID and token is caught as at load), reporting into `v` at
    /// `path` (`twilio[i]`): the credential as it now reads, or `None`.
    pub fn reread_files(&self, v: &mut Validator<'_>, path: &str) -> Option<Twilio> {
        let sid = SecretValue::plain(&self.account_sid_source, &self.account_sid).reread(
            v,
            path,
            "account_sid",
        );
        let auth = match &self.auth {
            TwilioAuth::AuthToken(token) => {
                let token = token.reread(v, path, "auth_token");
                token_auth(v, path, token, sid.as_ref())
            }
            TwilioAuth::ApiKey {
                sid: key_sid,
                sid_source,
                secret,
            } => {
                let key_sid =
                    SecretValue::plain(sid_source, key_sid).reread(v, path, "api_key_sid");
                let secret = secret.reread(v, path, "api_key_secret");
                key_auth(v, path, key_sid, secret)
            }
        };
        let (account_sid, account_sid_source) = account_sid(v, path, sid, auth.as_ref())?;
        Some(Twilio {
            account_sid,
            account_sid_source,
            auth: auth?,
            ..self.clone()
        })
    }

    /// Where its values come from, files among them.
    pub(super) fn all_sources(&self) -> Vec<&SecretSource> {
        let mut v = vec![&self.account_sid_source];
        match &self.auth {
            TwilioAuth::AuthToken(s) => v.push(&s.source),
            TwilioAuth::ApiKey {
                sid_source, secret, ..
            } => {
                v.push(sid_source);
                v.push(&secret.source);
            }
        }
        v
    }
}
