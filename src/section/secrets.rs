//! Secrets from the literal, the environment or a file: resolution, the
//! file checks (type, size, mode) and names that never echo a value.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{NOT_SHOWN, Validator};
use crate::secret::Secret;

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

/// The suffix of the key a secret came from (`api_key_file` → `_file`),
/// for key paths in messages.
pub fn source_suffix(source: &SecretSource) -> &'static str {
    match source {
        SecretSource::Literal => "",
        SecretSource::Env(_) => "_env",
        SecretSource::File(_) => "_file",
    }
}

impl SecretValue {
    /// Reads a `*_file` value again through the same path as at load
    /// ([`secret`]'s file branch: the hardened reader, the mode check with
    /// `strict`, trimming and its warning), reporting into `v` at
    /// `{path}.{key}_file`. A value not from a file is returned as it is;
    /// `None` when the file cannot be used (the reason is in `v`). The
    /// caller runs the load-time shape checks on the result.
    pub fn reread(&self, v: &mut Validator<'_>, path: &str, key: &str) -> Option<SecretValue> {
        let SecretSource::File(file) = &self.source else {
            return Some(self.clone());
        };
        let at = format!("{path}.{key}_file");
        let value = read_file_value(v, &at, &file.display().to_string(), file)?;
        finish(v, at, self.source.clone(), value)
    }

    /// A value resolved like a secret but not one (an Account SID), as a
    /// `SecretValue`, so it is re-read by the same path.
    pub fn plain(source: &SecretSource, value: &str) -> SecretValue {
        SecretValue {
            source: source.clone(),
            value: Secret::new(value),
        }
    }
}

/// Resolves exactly one of `<key>`, `<key>_env`, `<key>_file`.
pub fn secret(
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
        let value = read_file_value(v, &at, &file, &resolved)?;
        (SecretSource::File(resolved), value, at)
    } else {
        v.error(
            format!("{path}.{key}"),
            format!("missing; set one of `{key}`, `{key}_env` (an environment variable) or `{key}_file` (e.g. a mounted Kubernetes Secret)"),
        );
        return None;
    };
    finish(v, at, source, value)
}

/// A `*_file` value, at load and on every re-read: the hardened reader
/// (type after symlinks, size, non-blocking open) and the mode check
/// (`strict` refuses). `None` when it cannot be used (the reason is in `v`,
/// at `at`).
fn read_file_value(
    v: &mut Validator<'_>,
    at: &str,
    raw: &str,
    resolved: &Path,
) -> Option<Zeroizing<String>> {
    match read_secret_file(resolved) {
        Ok((value, meta)) => {
            let errors = v.errors.len();
            check_file_mode(v, at, resolved, &meta);
            (v.errors.len() == errors).then_some(value)
        }
        Err(e) => {
            v.error(
                at,
                format!("cannot read {}: {e}", file_named(raw, resolved)),
            );
            None
        }
    }
}

/// The checks every resolved value passes, at load and on re-read: not
/// empty; surrounding whitespace trimmed, with a warning.
fn finish(
    v: &mut Validator<'_>,
    at: String,
    source: SecretSource,
    value: Zeroizing<String>,
) -> Option<SecretValue> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        v.error(at, format!("the value from {source} is empty"));
        return None;
    }
    if let Some(why) = super::wrapped::wrapped(trimmed, &source) {
        v.error(at, why);
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
pub fn resolve_file(config: &Path, file: &str) -> PathBuf {
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
pub fn read_secret_file(path: &Path) -> std::io::Result<(Zeroizing<String>, std::fs::Metadata)> {
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
