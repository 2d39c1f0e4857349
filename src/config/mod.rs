//! Configuration: the YAML file parsed into [`raw`] types, then validated and
//! resolved into [`Config`], the only form the rest of credwatch sees.
//!
//! Validation reports every problem at once, each naming the file, the key
//! path (`twilio[1].auth_token_env`) and the fix. Secrets are resolved here
//! (literal, environment variable or file) and never appear in an error.

pub mod env;
pub mod raw;
mod validate;

// Vocabulary shared with the providers lives in a leaf both build on.
pub use crate::upstream::{PermissionProbe, Provider, StatusMatch};
pub(crate) use validate::resolve_file;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;

pub use env::{Env, ProcessEnv};
pub use validate::{BaseUrl, DEFAULT_ELEVENLABS_URL, DEFAULT_TWILIO_URL, check_base_url};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, for messages and reloads.
    pub source: PathBuf,
    pub listen: Option<SocketAddr>,
    pub max_concurrent_requests_per_host: usize,
    pub secret_poll_interval: Duration,
    pub credentials: Vec<Credential>,
    /// The ElevenLabs permission probes (defaults plus overrides).
    pub permission_probes: Vec<PermissionProbe>,
    /// Things that work but deserve a look (trimmed whitespace, plain http, …).
    pub warnings: Vec<Diagnostic>,
}

/// One monitored credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub name: String,
    /// Counts for `/health`.
    pub critical: bool,
    /// The auth check's period.
    pub interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Period of the slow-changing checks (permissions, account, balance, number lists).
    pub detail_interval: Duration,
    pub spec: Spec,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    ElevenLabs(ElevenLabs),
    Twilio(Twilio),
}

impl Credential {
    pub fn provider(&self) -> Provider {
        match self.spec {
            Spec::ElevenLabs(_) => Provider::ElevenLabs,
            Spec::Twilio(_) => Provider::Twilio,
        }
    }

    /// Where its requests go.
    pub fn base_url(&self) -> &str {
        match &self.spec {
            Spec::ElevenLabs(el) => &el.base_url,
            Spec::Twilio(tw) => &tw.base_url,
        }
    }

    /// The credential whose account this one's checks also read (an
    /// ElevenLabs key's `twilio:` link, with `phone_numbers: true`).
    pub fn linked(&self) -> Option<&str> {
        match &self.spec {
            Spec::ElevenLabs(el) if el.phone_numbers => el.twilio.as_deref(),
            _ => None,
        }
    }

    /// The permissions whose absence makes it unhealthy.
    pub fn required_permissions(&self) -> &[String] {
        match &self.spec {
            Spec::ElevenLabs(el) => &el.required_permissions,
            Spec::Twilio(_) => &[],
        }
    }

    /// Whether phone numbers may appear in metric labels.
    pub fn expose_numbers(&self) -> bool {
        matches!(&self.spec, Spec::ElevenLabs(el) if el.expose_numbers)
    }

    /// Its position among the credentials of its provider in `config`:
    /// the `elevenlabs[i]` / `twilio[i]` of config key paths.
    pub fn key_path(&self, config: &Config) -> Option<String> {
        let provider = self.provider();
        config
            .credentials
            .iter()
            .filter(|c| c.provider() == provider)
            .position(|c| c.name == self.name)
            .map(|i| format!("{provider}[{i}]"))
    }

    /// The fingerprint of the secret that authenticates this credential.
    pub fn fingerprint(&self) -> String {
        self.secret().value.fingerprint()
    }

    /// The secret that authenticates this credential, with its source.
    pub fn secret(&self) -> &SecretValue {
        match &self.spec {
            Spec::ElevenLabs(el) => &el.api_key,
            Spec::Twilio(tw) => tw.auth.secret(),
        }
    }

    /// What the secret is called in the provider's console.
    pub fn secret_name(&self) -> &'static str {
        match &self.spec {
            Spec::ElevenLabs(_) => "API key",
            Spec::Twilio(tw) => match tw.auth {
                TwilioAuth::AuthToken(_) => "Auth Token",
                TwilioAuth::ApiKey { .. } => "API key secret",
            },
        }
    }

    /// The account the credential names, where it names one (a Twilio Account SID).
    pub fn account(&self) -> Option<&str> {
        match &self.spec {
            Spec::ElevenLabs(_) => None,
            Spec::Twilio(tw) => Some(&tw.account_sid),
        }
    }

    /// Secrets read from files, which are watched for rotation.
    pub fn secret_files(&self) -> Vec<&Path> {
        let sources: Vec<&SecretSource> = match &self.spec {
            Spec::ElevenLabs(el) => vec![&el.api_key.source],
            Spec::Twilio(tw) => {
                let mut v = vec![&tw.account_sid_source];
                match &tw.auth {
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
        };
        sources
            .into_iter()
            .filter_map(|s| match s {
                SecretSource::File(p) => Some(p.as_path()),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ElevenLabs {
    pub base_url: String,
    pub api_key: SecretValue,
    pub required_permissions: Vec<String>,
    pub phone_numbers: bool,
    /// Name of the linked Twilio credential, for the phone-number cross-check.
    pub twilio: Option<String>,
    pub expose_numbers: bool,
    /// The linked Twilio credential's fingerprint when the numbers were last
    /// imported into ElevenLabs; a different current fingerprint means re-import.
    pub twilio_imported_fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Twilio {
    pub base_url: String,
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

/// A resolved secret and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretValue {
    pub source: SecretSource,
    pub value: Secret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Literal,
    Env(String),
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Literal => f.write_str("the config file"),
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

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

/// Why a config could not be loaded: every problem found, with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub errors: Vec<Diagnostic>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {} problem{}",
            self.file.display(),
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {}: {}", self.file.display(), e)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates `path`, resolving secrets from `env` and files.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        // The file may hold literal secrets: wiped after parsing (std sizes
        // the buffer from the file's length, so it is not reallocated).
        let text = std::fs::read_to_string(path)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| ConfigError {
                file: path.to_path_buf(),
                errors: vec![Diagnostic {
                    path: String::new(),
                    message: format!("cannot read the config file: {e}"),
                }],
            })?;
        Self::from_yaml(&text, path, env)
    }

    /// Parses and validates YAML text; `path` names it in messages and
    /// anchors relative secret-file paths.
    pub fn from_yaml(text: &str, path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        let raw = validate::parse(text).map_err(|d| ConfigError {
            file: path.to_path_buf(),
            errors: vec![d],
        })?;
        validate::validate(raw, path, env)
    }

    pub fn credential(&self, name: &str) -> Option<&Credential> {
        self.credentials.iter().find(|c| c.name == name)
    }
}

/// `AC` followed by 32 hex digits.
impl Credential {
    /// Re-reads every `*_file` secret. `Ok(None)` when nothing changed.
    /// Errors name the file, never its content.
    pub fn reread_files(&self) -> Result<Option<Credential>, String> {
        let reread = |sv: &SecretValue| -> Result<Option<SecretValue>, String> {
            let SecretSource::File(path) = &sv.source else {
                return Ok(None);
            };
            let (text, _) = validate::read_secret_file(path)
                .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            let value = text.trim();
            if value.is_empty() {
                return Err(format!("`{}` is empty", path.display()));
            }
            if value == sv.value.expose() {
                return Ok(None);
            }
            Ok(Some(SecretValue {
                source: sv.source.clone(),
                value: Secret::new(value),
            }))
        };
        let reread_plain =
            |source: &SecretSource, current: &str| -> Result<Option<String>, String> {
                let SecretSource::File(path) = source else {
                    return Ok(None);
                };
                let (text, _) = validate::read_secret_file(path)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                let value = text.trim();
                Ok((value != current).then(|| value.to_string()))
            };
        let mut next = self.clone();
        let mut changed = false;
        match &mut next.spec {
            Spec::ElevenLabs(el) => {
                if let Some(v) = reread(&el.api_key)? {
                    el.api_key = v;
                    changed = true;
                }
            }
            Spec::Twilio(tw) => {
                if let Some(sid) = reread_plain(&tw.account_sid_source, &tw.account_sid)? {
                    if !validate::looks_like_account_sid(&sid) {
                        return Err(
                            "the new Account SID is not `AC` followed by 32 hex digits".into()
                        );
                    }
                    tw.account_sid = sid;
                    changed = true;
                }
                match &mut tw.auth {
                    TwilioAuth::AuthToken(token) => {
                        if let Some(v) = reread(token)? {
                            *token = v;
                            changed = true;
                        }
                    }
                    TwilioAuth::ApiKey {
                        sid,
                        sid_source,
                        secret,
                    } => {
                        if let Some(new_sid) = reread_plain(sid_source, sid)? {
                            if !validate::looks_like_key_sid(&new_sid) {
                                return Err(
                                    "the new API key SID is not `SK` followed by 32 hex digits"
                                        .into(),
                                );
                            }
                            *sid = new_sid;
                            changed = true;
                        }
                        if let Some(v) = reread(secret)? {
                            *secret = v;
                            changed = true;
                        }
                    }
                }
            }
        }
        Ok(changed.then_some(next))
    }
}
