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
        let known = backticked(rest.get(end + 1..).unwrap_or(""));
        // The parser leaves out a location at line 1 column 1; a top-level
        // key without one is there.
        let location = if location.is_empty() && !path.contains(['.', '[']) {
            " at line 1 column 1"
        } else {
            location
        };
        let (path, message) = unknown_key(path, key, &known, location);
        return Diagnostic { path, message };
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

/// An unknown key, named with its line and the key it is probably meant to
/// be. It is hidden only when it looks like a secret (a value pasted where
/// a key belongs), never because of its spelling.
fn unknown_key(path: String, key: &str, known: &[&str], location: &str) -> (String, String) {
    let listing = if known.is_empty() {
        "this mapping takes no keys".to_string()
    } else {
        format!(
            "the keys here are {} (config.example.yaml has every key)",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    if crate::section::looks_like_secret(key) {
        // Name the mapping it is in, not the key.
        let parent = path
            .strip_suffix(key)
            .map(|p| p.trim_end_matches('.').to_string())
            .unwrap_or_default();
        return (
            parent,
            format!(
                "an unknown key{location} that looks like a secret (not shown); a secret is a value, e.g. `api_key_file: /path/to/file`; {listing}"
            ),
        );
    }
    let message = match suggest(key, known) {
        Some(s) => format!("unknown key `{key}`{location}; did you mean `{s}`?"),
        None => format!("unknown key `{key}`{location}; {listing}"),
    };
    (path, message)
}

/// The names between backticks in serde's "expected one of `a`, `b`".
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The known key `key` is probably meant to be: the same letters in another
/// case or separator style (`apiKeyEnv`, `api-key-env`, `ElevenLabs`), else
/// the nearest by edit distance, if it is near enough.
pub(super) fn suggest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let fold = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let folded = fold(key);
    if let Some(k) = known.iter().find(|k| fold(k) == folded) {
        return Some(k);
    }
    let near = if folded.len() < 6 { 1 } else { 2 };
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&folded, &fold(k)), *k))
        .filter(|(d, _)| *d <= near)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// A YAML syntax error in plain words: where, and what is usually wrong
/// there. `None` when `msg` is not one of the parser's syntax errors.
/// Nothing from the file is quoted; `text` is looked at only for tabs.
pub(super) fn syntax_error(msg: &str, text: &str) -> Option<Diagnostic> {
    const SYNTAX: [&str; 6] = [
        ", while scanning ",
        ", while parsing ",
        "mapping values are not allowed",
        "did not find expected",
        "found unexpected end of stream",
        "could not find expected",
    ];
    if !SYNTAX.iter().any(|s| msg.contains(s)) {
        return None;
    }
    // "<problem> at line L column C[, while <context> at line L2 column C2]"
    let (problem, context) = msg.split_once(", while ").unwrap_or((msg, ""));
    let (problem, location) = split_location(problem);
    let (_, context_location) = split_location(context);
    let line = location
        .strip_prefix(" at line ")
        .and_then(|l| l.split(' ').next())
        .and_then(|l| l.parse::<usize>().ok());
    // " that starts at line L2", when the parser says where.
    let started = context_location
        .strip_prefix(" at line ")
        .and_then(|l| l.split(' ').next())
        .map(|l| format!(" that starts at line {l}"))
        .unwrap_or_default();
    let tab_on_line = line
        .and_then(|l| text.lines().nth(l.saturating_sub(1)))
        .is_some_and(|l| l.trim_start_matches(' ').starts_with('\t'));
    let why = if problem.contains("tab character") || tab_on_line {
        "a tab in the indentation; YAML indents with spaces only: replace the tab with spaces"
            .to_string()
    } else if problem.contains("mapping values are not allowed") {
        "an unexpected `:`. Either a value contains `: ` (quote the value: `name: \"a: b\"`), or this line is indented deeper than the keys of its mapping (line it up with them)".to_string()
    } else if problem.contains("did not find expected '-' indicator") {
        format!(
            "the indentation does not match the list{started}: line up its `- ` entries, and the keys of each entry with each other"
        )
    } else if problem.contains("did not find expected key") {
        format!(
            "the indentation does not match the mapping{started}: every key of one mapping starts in the same column (spaces only)"
        )
    } else if problem.contains("block sequence entries are not allowed") {
        "a `- ` list entry where a value was expected: put the list on the lines below its key, indented".to_string()
    } else if problem.contains("could not find expected ':'") {
        "a line that is not `key: value` or `- entry` (a missing `:`, or a quote left open above it)".to_string()
    } else if problem.contains("found unexpected end of stream") {
        format!(
            "the file ends inside a quoted value or a bracket{}: close the quote or bracket",
            started.replace(" that starts", " opened")
        )
    } else if problem.contains("found unknown escape character") {
        "a backslash in a double-quoted value that is not an escape YAML knows: use single quotes, or write `\\\\`".to_string()
    } else if problem.contains("cannot start any token") {
        "a value that starts with a character YAML reserves (`@`, a backtick, `%`, `!`, `&`, `*`): quote the value".to_string()
    } else {
        format!(
            "{}; check the quoting and indentation there",
            redact_quoted(problem)
        )
    };
    Some(Diagnostic {
        path: String::new(),
        message: format!("YAML syntax error{location}: {why}"),
    })
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
