//! Config errors that never repeat a value: serde's messages rebuilt from the
//! key path, what was expected and the kind of value found.

#[allow(unused_imports)]
use super::*;

/// Appended where a value was wrong but is not repeated.
pub(super) const NOT_SHOWN: &str = " (the value is not shown, in case it is a secret)";

/// serde's messages quote the offending value (`invalid type: string
/// "sk_live_…", expected a boolean`), so a secret typed under the wrong key
/// would come back in an error, a log line and the reload answer. Each message
/// is rebuilt from its parts: the key path, what was expected and the kind of
/// value found — never the value. The YAML parser's own (syntax) messages
/// quote nothing from the file; any quoted text left is blanked anyway.
pub(super) fn explain_serde(path: String, msg: &str) -> Diagnostic {
    let (msg, location) = split_location(msg);
    let (path, message) = if let Some(rest) = msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
    {
        let wrong_type = msg.starts_with("invalid type");
        match rest.rfind(", expected ") {
            Some(i) => {
                let kind = value_kind(&rest[..i]);
                let expected = friendly_expected(&rest[i + ", expected ".len()..]);
                let message = if wrong_type {
                    format!("expected {expected}, found {kind}{NOT_SHOWN}")
                } else {
                    format!("expected {expected}; {kind} that is not one was found{NOT_SHOWN}")
                };
                (path, message)
            }
            None => (
                path,
                format!("a value of the wrong type or form{NOT_SHOWN}"),
            ),
        }
    } else if let Some(rest) = msg.strip_prefix("unknown variant ") {
        let options = rest
            .rfind(", expected ")
            .map(|i| &rest[i + 2..])
            .unwrap_or("there are no options");
        (path, format!("unknown value{NOT_SHOWN}; {options}"))
    } else if let Some(rest) = msg.strip_prefix("unknown field `") {
        let end = rest
            .rfind("`, expected ")
            .or_else(|| rest.rfind("`, there are no fields"))
            .unwrap_or(rest.len());
        let key = &rest[..end];
        let options = rest.get(end + 3..).unwrap_or("");
        if looks_like_config_key(key) {
            (
                path,
                format!(
                    "unknown field `{key}`, {options} (check the spelling; see config.example.yaml for every key)"
                ),
            )
        } else {
            // Not shaped like any key credwatch has (a secret pasted as a key?):
            // name the mapping it is in, not the key.
            let parent = path
                .strip_suffix(key)
                .map(|p| p.trim_end_matches('.').to_string())
                .unwrap_or_default();
            (
                parent,
                format!(
                    "an unknown key that does not look like a config key (not shown, in case it is a secret); {options} (see config.example.yaml for every key)"
                ),
            )
        }
    } else if let Some(field) = ["missing field `", "duplicate field `"]
        .iter()
        .find_map(|p| msg.strip_prefix(p))
        .and_then(|rest| rest.strip_suffix('`'))
        && looks_like_config_key(field)
    {
        (path, msg.to_string())
    } else {
        (path, redact_quoted(msg))
    };
    Diagnostic {
        path,
        message: format!("{message}{location}"),
    }
}

/// Splits serde_yaml's trailing ` at line N column M`.
pub(super) fn split_location(msg: &str) -> (&str, &str) {
    if let Some(i) = msg.rfind(" at line ") {
        let tail = &msg[i + " at line ".len()..];
        let numbers_only = tail.split_once(" column ").is_some_and(|(l, c)| {
            [l, c]
                .iter()
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        if numbers_only {
            return (&msg[..i], &msg[i..]);
        }
    }
    (msg, "")
}

/// The kind of value serde's `Unexpected` describes, without the value.
pub(super) fn value_kind(unexpected: &str) -> &'static str {
    const KINDS: [(&str, &str); 12] = [
        ("string", "a string"),
        ("character", "a character"),
        ("integer", "a number"),
        ("floating point", "a number"),
        ("boolean", "a boolean"),
        ("byte array", "binary data"),
        ("unit value", "an empty value"),
        ("option", "an optional value"),
        ("sequence", "a list"),
        ("map", "a mapping"),
        ("enum", "a tagged value"),
        ("unit variant", "a tagged value"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| unexpected.starts_with(prefix))
        .map(|(_, kind)| *kind)
        .unwrap_or("a value")
}

/// serde's `Expected` texts for credwatch's types, in the user's terms.
pub(super) fn friendly_expected(expected: &str) -> String {
    match expected {
        "a boolean" => "`true` or `false`".into(),
        "usize" | "u64" | "u32" | "an integer" => "a whole number".into(),
        "u16" => "a whole number up to 65535".into(),
        "a duration" => "a duration with a unit, e.g. `60s` or `5m`".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping of keys".into(),
        e if e.starts_with("struct ") => "a mapping of keys".into(),
        e => redact_quoted(e),
    }
}

/// Config keys are lowercase words joined by `_`.
pub(super) fn looks_like_config_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 40 && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Blanks anything between `"` or backticks: a safety net for messages
/// credwatch does not know the shape of.
pub(super) fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut open: Option<char> = None;
    for c in msg.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push('…');
    }
    out
}
