//! One monitored credential: the keys every provider has, and its
//! provider's settings behind [`Spec`].

use std::path::Path;
use std::time::Duration;

use super::{Provider, Spec};
use crate::section::{Diagnostic, Labels, SecretSource, SecretValue, Validator};

/// One monitored credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub name: String,
    /// Counts for `/health`.
    pub critical: bool,
    /// `labels:`: routing labels on `credwatch_credential_info`.
    pub labels: Labels,
    /// The period of every check that decides `/health`.
    pub interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Period of the informational checks (balance, number lists, the cross-check).
    pub detail_interval: Duration,
    pub spec: Spec,
}

impl Credential {
    pub fn provider(&self) -> Provider {
        self.spec.provider()
    }

    /// Where its requests go.
    pub fn base_url(&self) -> &str {
        self.spec.settings().base_url()
    }

    /// The credential whose account this one's checks also read (an
    /// ElevenLabs key's `twilio:` link, with `phone_numbers: true`).
    pub fn linked(&self) -> Option<&str> {
        self.spec.settings().linked()
    }

    /// The permissions whose absence makes it unhealthy.
    pub fn required_permissions(&self) -> &[String] {
        self.spec.settings().required_permissions()
    }

    /// Whether phone numbers may appear in metric labels.
    pub fn expose_numbers(&self) -> bool {
        self.spec.settings().expose_numbers()
    }

    /// Its position among the credentials of its provider in `credentials`:
    /// the `elevenlabs[i]` / `twilio[i]` of config key paths.
    pub fn key_path(&self, credentials: &[Credential]) -> Option<String> {
        let provider = self.provider();
        credentials
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
        self.spec.settings().secret()
    }

    /// What the secret is called in the provider's console.
    pub fn secret_name(&self) -> &'static str {
        self.spec.settings().secret_name()
    }

    /// The account the credential names, where it names one (a Twilio Account SID).
    pub fn account(&self) -> Option<&str> {
        self.spec.settings().account()
    }

    /// Secrets read from files, which are watched for rotation.
    pub fn secret_files(&self) -> Vec<&Path> {
        let sources = self.spec.settings().sources();
        sources
            .into_iter()
            .filter_map(|s| match s {
                SecretSource::File(p) => Some(p.as_path()),
                _ => None,
            })
            .collect()
    }

    /// Re-reads every `*_file` value (a rotation) through the same path as
    /// at load: the hardened reader (regular file after symlinks, size cap,
    /// non-blocking open), the mode check (an error with `strict`), and the
    /// provider's shape checks (an ElevenLabs key ID used as the key, a
    /// swapped Twilio SID and token, …). `key_path` is the credential's
    /// (`twilio[1]`, [`Credential::key_path`]); `strict` the config's.
    ///
    /// `Ok(None)` when nothing changed; `Ok(Some(_))` with the new
    /// credential and the load-time warnings its values deserve; `Err` with
    /// every problem, each with its key path (`twilio[1].auth_token_file`)
    /// and what is wrong: never a value.
    pub fn reread_files(
        &self,
        key_path: &str,
        strict: bool,
    ) -> Result<Option<Reread>, RereadError> {
        let env = std::collections::HashMap::<String, String>::new();
        let mut v = Validator::new(Path::new(""), &env, strict);
        let spec = self.spec.settings().reread(&mut v, key_path);
        let spec = match spec {
            Some(spec) if v.errors.is_empty() => spec,
            _ => {
                let mut errors = v.errors;
                if errors.is_empty() {
                    errors.push(Diagnostic {
                        path: key_path.to_string(),
                        message: "a re-read value cannot be used".into(),
                    });
                }
                return Err(RereadError { errors });
            }
        };
        if spec == self.spec {
            return Ok(None);
        }
        Ok(Some(Reread {
            credential: Credential {
                spec,
                ..self.clone()
            },
            warnings: v.warnings,
        }))
    }
}

/// A credential whose `*_file` values changed, as re-read.
#[derive(Debug, Clone)]
pub struct Reread {
    pub credential: Credential,
    /// What load would have warned about (whitespace, an unusual shape).
    pub warnings: Vec<Diagnostic>,
}

/// Why re-read `*_file` values cannot be used: each problem with its key
/// path and what is wrong, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RereadError {
    pub errors: Vec<Diagnostic>,
}

impl std::fmt::Display for RereadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RereadError {}
