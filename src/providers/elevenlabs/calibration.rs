//! The calibration file (`calibration_file:`): what `credwatch calibrate`
//! proved about a permission probe, kept so that `serve` and `check` can say
//! on what a permission verdict rests (`calibrated` or `inferred`), and
//! stop believing a probe shown not to discriminate.
//!
//! One JSON document, written by `credwatch calibrate` (one entry per
//! permission and base URL, replaced on each run), read with the config
//! (start, reload, `check`). An entry applies to a credential when its
//! permission, request and base URL are the ones the credential's probe
//! would send; otherwise it is ignored with a warning.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::api::PermissionProbe;
use super::calibrate::Calibration;
use crate::section::Validator;

/// The calibration file's format version.
pub const VERSION: u32 = 1;

/// Largest calibration file credwatch reads.
const MAX_BYTES: u64 = 1 << 20;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationFile {
    pub version: u32,
    #[serde(default)]
    pub calibrations: Vec<Record>,
}

/// One `credwatch calibrate` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub permission: String,
    /// `GET` plus the probe's path and query, as sent.
    pub request: String,
    /// Where it was sent (no trailing slash).
    pub base_url: String,
    /// The key with the permission got "granted", the key without it "not granted".
    pub discriminates: bool,
    /// When (RFC 3339).
    pub calibrated_at: String,
    /// What each key got.
    #[serde(default)]
    pub results: Vec<KeyAnswer>,
}

/// What one of the two keys got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyAnswer {
    /// `with` or `without` the permission.
    pub key: String,
    /// `granted`, `not_granted` or `unknown`.
    pub verdict: String,
    pub http_status: Option<u16>,
    pub upstream_code: Option<String>,
}

impl Record {
    /// A record of `c`, run against `base_url` at `at`.
    pub fn of(c: &Calibration, base_url: &str, at: std::time::SystemTime) -> Self {
        Record {
            permission: c.permission.clone(),
            request: c.request.clone(),
            base_url: base_url.trim_end_matches('/').to_string(),
            discriminates: c.discriminates,
            calibrated_at: humantime::format_rfc3339_seconds(at).to_string(),
            results: c
                .results
                .iter()
                .map(|r| KeyAnswer {
                    key: r.key.to_string(),
                    verdict: r.verdict.to_string(),
                    http_status: r.evidence.http_status,
                    upstream_code: r.evidence.upstream_code.as_ref().map(ToString::to_string),
                })
                .collect(),
        }
    }

    /// Whether this record is about `probe` as sent to `base_url`.
    pub fn applies_to(&self, probe: &PermissionProbe, base_url: &str) -> bool {
        self.permission == probe.permission
            && self.request == format!("GET {}", probe.path)
            && self.base_url == base_url.trim_end_matches('/')
    }
}

/// The calibration of one probe as a check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibrated<'a> {
    pub discriminates: bool,
    pub at: &'a str,
}

impl<'a> From<&'a Record> for Calibrated<'a> {
    fn from(r: &'a Record) -> Self {
        Calibrated {
            discriminates: r.discriminates,
            at: &r.calibrated_at,
        }
    }
}

/// The `calibration_file:` path, relative to the config file's directory.
pub fn resolve(config_file: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config_file
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(p)
    }
}

/// Reads and checks the file at `path` (key path `at` for messages). A file
/// that does not exist yet is no calibration (a warning: `credwatch
/// calibrate` creates it); one that cannot be read or parsed is an error.
pub fn load(
    v: &mut Validator<'_>,
    at: &str,
    path: &Path,
    probes: &[PermissionProbe],
) -> Vec<Record> {
    let shown = path.display();
    let text = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            v.warn(
                at,
                format!(
                    "`{shown}` does not exist yet: no probe is calibrated, so permission verdicts from probes are labelled `inferred`; `credwatch calibrate` writes it"
                ),
            );
            return Vec::new();
        }
        Err(e) => {
            v.error(at, format!("cannot read `{shown}`: {e}"));
            return Vec::new();
        }
        Ok(m) if !m.is_file() => {
            v.error(at, format!("`{shown}` is not a regular file"));
            return Vec::new();
        }
        Ok(m) if m.len() > MAX_BYTES => {
            v.error(
                at,
                format!("`{shown}` is larger than {MAX_BYTES} bytes: not a calibration file"),
            );
            return Vec::new();
        }
        Ok(_) => match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                v.error(at, format!("cannot read `{shown}`: {e}"));
                return Vec::new();
            }
        },
    };
    let file: CalibrationFile = match serde_json::from_str(&text) {
        Ok(f) => f,
        Err(e) => {
            v.error(
                at,
                format!(
                    "`{shown}` is not a calibration file written by `credwatch calibrate`: {e}"
                ),
            );
            return Vec::new();
        }
    };
    if file.version != VERSION {
        v.error(
            at,
            format!(
                "`{shown}` has version {}; this credwatch reads version {VERSION}",
                file.version
            ),
        );
        return Vec::new();
    }
    for (i, r) in file.calibrations.iter().enumerate() {
        let here = format!("{at} (`{shown}` calibrations[{i}])");
        if humantime::parse_rfc3339_weak(&r.calibrated_at).is_err() {
            v.error(
                format!("{here}.calibrated_at"),
                "not an RFC 3339 date, e.g. `2026-01-31T12:00:00Z`",
            );
        }
        match probes.iter().find(|p| p.permission == r.permission) {
            None => v.warn(
                here,
                format!(
                    "there is no probe for `{}`: this calibration is not used",
                    r.permission
                ),
            ),
            Some(p) if r.request != format!("GET {}", p.path) => v.warn(
                here,
                format!(
                    "recorded for `{}`, but the probe for `{}` now sends `GET {}`: this calibration is not used; run `credwatch calibrate` again",
                    r.request, r.permission, p.path
                ),
            ),
            Some(_) => {}
        }
    }
    file.calibrations
}

/// `file` with `record` in place of any earlier one for the same permission
/// and base URL.
pub fn merged(mut file: CalibrationFile, record: Record) -> CalibrationFile {
    file.version = VERSION;
    file.calibrations
        .retain(|r| !(r.permission == record.permission && r.base_url == record.base_url));
    file.calibrations.push(record);
    file.calibrations.sort_by(|a, b| {
        (a.permission.as_str(), a.base_url.as_str())
            .cmp(&(b.permission.as_str(), b.base_url.as_str()))
    });
    file
}

/// Writes `file` to `path` through a temporary file in the same directory
/// and a rename, so a reader never sees half of it.
pub fn write(path: &Path, file: &CalibrationFile) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
    text.push('\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    Ok(())
}
