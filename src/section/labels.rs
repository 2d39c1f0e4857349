//! `labels:` on a credential: Prometheus labels for alert routing (a team,
//! an environment, a tenant), exported on `credwatch_credential_info` and
//! joined onto alerts with `group_left`. Shared by every kind of entry that
//! takes them: credentials, and call paths (on `credwatch_call_path_info`).

use std::collections::BTreeMap;

use super::Validator;

/// A credential's routing labels, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Label names credwatch's series already carry, or that Prometheus sets on
/// every scraped series: a routing label of the same name would clash.
pub const RESERVED: &[&str] = &[
    "credential",
    "provider",
    "job",
    "instance",
    "critical",
    "account",
    "reason",
    "check",
    "permission",
    "fingerprint",
    "tier",
    "status",
    "type",
    "currency",
    "phone_number_id",
    "number",
    "problem",
    "version",
    "revision",
    "severity",
    "call_path",
    "elevenlabs",
    "twilio",
    "destination",
];

/// ` {team="voice",env="prod"}`, as in a Prometheus selector, for text
/// after a name; empty without labels.
pub fn selector(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!(" {{{}}}", pairs.join(","))
}

/// At most this many labels per entry: they are on every alert joined with them.
pub const MAX_LABELS: usize = 16;
/// Longest label value.
pub const MAX_VALUE: usize = 128;

/// Checks `labels:` of the entry at `path`; keeps the valid ones.
pub fn labels(v: &mut Validator<'_>, path: &str, raw: Option<BTreeMap<String, String>>) -> Labels {
    let raw = raw.unwrap_or_default();
    if raw.len() > MAX_LABELS {
        v.error(
            format!("{path}.labels"),
            format!("has {} labels; at most {MAX_LABELS}", raw.len()),
        );
    }
    let mut out = Labels::new();
    for (name, value) in raw {
        // The name is left out only when it looks like a secret.
        let shown = !super::looks_like_secret(&name);
        let at = |shown: bool| {
            if shown {
                format!("{path}.labels.{name}")
            } else {
                format!("{path}.labels")
            }
        };
        if !shown {
            v.error(
                at(false),
                "a label name that looks like a secret (not shown); labels are exported on /metrics: use a name such as `team`",
            );
        } else if !is_label_name(&name) {
            v.error(
                at(shown),
                "a label name must match `[a-zA-Z_][a-zA-Z0-9_]*` (Prometheus label names), e.g. `team` or `environment`",
            );
        } else if name.starts_with("__") {
            v.error(
                at(true),
                "names starting with `__` are reserved for Prometheus' own use",
            );
        } else if RESERVED.contains(&name.as_str()) {
            v.error(
                at(true),
                format!("`{name}` is a label credwatch or Prometheus already sets; choose another name (reserved: {})", RESERVED.join(", ")),
            );
        } else if looks_like_secret_value(&value) {
            v.error(
                at(true),
                "the value looks like a secret (an ElevenLabs key or a Twilio token; not shown); labels are exported on /metrics",
            );
        } else if value.is_empty() {
            v.error(
                at(true),
                "is empty; in Prometheus an empty label is no label: remove it or give it a value",
            );
        } else if value.len() > MAX_VALUE || value.chars().any(char::is_control) {
            v.error(
                at(true),
                format!("must be at most {MAX_VALUE} characters without control characters"),
            );
        } else {
            out.insert(name, value);
        }
    }
    out
}

/// The shapes of the secrets credwatch knows: an ElevenLabs key, a Twilio
/// Auth Token or API key secret (32 hex digits).
fn looks_like_secret_value(value: &str) -> bool {
    value.starts_with("sk_") || (value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
