//! The words `credwatch check` uses around every explanation: where the
//! operator puts a new secret, dates, how a console names a permission, and
//! the citation of the evidence behind a stated cause.

use crate::providers::Credential;
use crate::section::SecretSource;

/// Where the operator has to put the new secret.
pub fn source(cred: &Credential) -> String {
    match &cred.secret().source {
        SecretSource::Literal => "the config file".into(),
        SecretSource::Env(v) => {
            format!("the environment variable `{v}` (restart credwatch after changing it)")
        }
        SecretSource::File(p) => format!(
            "the file `{}` (credwatch re-reads it on change)",
            p.display()
        ),
    }
}

pub fn date(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// How ElevenLabs' key settings name a permission.
pub fn ui_name(permission: &str) -> String {
    match permission {
        "convai_write" => "Conversational AI → Write (\"ElevenLabs Agents: Write\")".into(),
        "convai_read" => "Conversational AI → Read".into(),
        "user_read" => "User → Read".into(),
        "models_read" => "Models → Read".into(),
        other => format!("the `{other}` permission"),
    }
}

/// Where `docs/upstream-evidence.md` records the evidence for a stated cause.
pub fn cite(anchor: &str) -> String {
    format!(" (evidence: docs/upstream-evidence.md#{anchor})")
}

/// A 0–1 share as a whole percentage, rounded down, so a quota never reads
/// as at the alert threshold, or as used up, before it is.
pub fn percent(share: f64) -> u64 {
    (share * 100.0).floor().max(0.0) as u64
}
