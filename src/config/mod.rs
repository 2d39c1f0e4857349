//! Configuration: the YAML file parsed into [`raw`] types, then validated and
//! resolved into [`Config`], the only form the rest of credwatch sees.
//!
//! Validation reports every problem at once, each naming the file, the key
//! path (`twilio[1].auth_token_env`) and the fix. Secrets are resolved here
//! (literal, environment variable or file) and never appear in an error.
//!
//! The loader owns the keys that are not a provider's (`listen`,
//! `defaults`, …); each provider's section is validated by the provider
//! ([`crate::providers::Kind`]), with the pieces in [`crate::section`].

pub mod capacity;
pub mod raw;
mod validate;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

// A credential and its spec are the providers' registry's; the pieces every
// section is built with are `section`'s. Re-exported: the loader's vocabulary.
pub use crate::providers::{Credential, Provider, Shared, Spec};
pub use crate::secret::CONFIG_FILE_LIMIT;
pub use crate::section::{
    BaseUrl, Diagnostic, Env, ProcessEnv, SecretSource, SecretValue, check_base_url, resolve_file,
};

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from, for messages and reloads.
    pub source: PathBuf,
    pub listen: Option<SocketAddr>,
    pub max_concurrent_requests_per_host: usize,
    pub secret_poll_interval: Duration,
    /// `strict: true`: loosely readable secret files are errors, at load
    /// and on every re-read.
    pub strict: bool,
    pub credentials: Vec<Credential>,
    /// `call_paths:`, each naming credentials of `credentials`.
    pub call_paths: Vec<crate::call_paths::CallPath>,
    /// What each provider's credentials share (ElevenLabs: the permission
    /// probes, the built-in table plus `permission_probes:`).
    pub shared: Shared,
    /// Things that work but deserve a look (trimmed whitespace, plain http, …).
    pub warnings: Vec<Diagnostic>,
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
    ///
    /// The file is read like a secret file, by the same reader
    /// ([`crate::secret::read_regular_file`]): a regular file (symlinks
    /// resolved), at most [`CONFIG_FILE_LIMIT`] bytes, opened non-blocking,
    /// so a FIFO, a device or a huge file is refused at once. It may hold
    /// literal secrets: wiped after parsing. Blocking: run it off the async
    /// runtime.
    pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
        let text = crate::secret::read_regular_file(path, CONFIG_FILE_LIMIT, "config file")
            .map(|(text, _)| text)
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
