//! A secret with something around it that is not part of it: a BOM, quotes
//! (kept by `docker --env-file`), an HTTP authorization scheme (`Bearer `),
//! a whole dotenv line (`KEY=…`). Upstream would get it as-is and answer
//! 401, and `check` would then advise rotating a key that works; so it is
//! named at load, with the exact fix, and the value is never repeated.

use std::path::Path;

use super::SecretSource;

/// What is around the secret.
#[derive(Debug, PartialEq, Eq)]
enum Wrapping {
    /// U+FEFF at the start.
    Bom,
    /// `"…"` or `'…'`, or a quote at one end.
    Quotes,
    /// `Bearer `, `Basic `, `Token ` (any case).
    Scheme(&'static str),
    /// `NAME=…` or `export NAME=…`; the name when it is shaped like a
    /// variable name (it is not the secret).
    Assignment(Option<String>),
}

fn wrapping(value: &str) -> Option<Wrapping> {
    if value.starts_with('\u{FEFF}') {
        return Some(Wrapping::Bom);
    }
    let line = value.strip_prefix("export ").unwrap_or(value);
    // Base64 padding (`…==`) is not an assignment: something must follow.
    if let Some((name, rest)) = line.split_once('=')
        && !rest.trim_start_matches('=').is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        let conventional = name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        return Some(Wrapping::Assignment(conventional.then(|| name.to_string())));
    }
    if value.starts_with(['"', '\'']) || value.ends_with(['"', '\'']) {
        return Some(Wrapping::Quotes);
    }
    for scheme in ["Bearer", "Basic", "Token"] {
        if let Some(rest) = value.get(..scheme.len())
            && rest.eq_ignore_ascii_case(scheme)
            && value[scheme.len()..].starts_with([' ', '\t'])
        {
            return Some(Wrapping::Scheme(scheme));
        }
    }
    None
}

/// The error for a wrapped secret from `source`, or `None` when the value
/// is bare. Names the wrapping and the fix; never the value.
pub fn wrapped(value: &str, source: &SecretSource) -> Option<String> {
    let what = wrapping(value)?;
    let alone = match source {
        SecretSource::Env(var) => format!("set `{var}` to the value alone"),
        SecretSource::File(path) => format!(
            "write the value alone: `printf %s \"$VALUE\" > {}`",
            path.display()
        ),
        SecretSource::Literal => "write the value alone in the config file".to_string(),
    };
    Some(match what {
        Wrapping::Bom => format!(
            "the value from {source} starts with a byte-order mark (U+FEFF, invisible, added by some Windows editors), which would be sent as part of the secret: save it as UTF-8 without a BOM{}",
            match source {
                SecretSource::File(path) => bom_fix(path),
                _ => String::new(),
            }
        ),
        Wrapping::Quotes => format!(
            "the value from {source} is wrapped in quotes, which would be sent as part of the secret (upstream answers 401): {}",
            match source {
                SecretSource::Env(_) => "`docker --env-file`, Compose `env_file:` and `kubectl create secret --from-env-file` keep quotes literally; write the line as `NAME=value`, without quotes".to_string(),
                SecretSource::Literal => "YAML removes one pair of quotes; remove the inner pair".to_string(),
                SecretSource::File(_) => format!("remove them; {alone}"),
            }
        ),
        Wrapping::Scheme(scheme) => format!(
            "the value from {source} starts with `{scheme} `, an HTTP authorization scheme, not part of the secret; credwatch builds the header itself: keep only what follows `{scheme} ` ({alone})"
        ),
        Wrapping::Assignment(name) => format!(
            "the value from {source} is a whole {} line (from a .env file?), not the value: keep only what follows `=`, without quotes ({alone})",
            match name {
                Some(n) => format!("`{n}=…`"),
                None => "`NAME=…`".to_string(),
            }
        ),
    })
}

fn bom_fix(path: &Path) -> String {
    format!(" (`sed -i '1s/^\\xEF\\xBB\\xBF//' {}`)", path.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_secrets_pass() {
        for value in [
            "sk_0123456789abcdef",
            "0123456789abcdef0123456789abcdef",
            "AC0123456789abcdef0123456789abcdef",
            "abc=def",
            "Bearerish",
            "tokenvalue",
            "QUM6dG9rZW4=",
            "QUM6dG9rZQ==",
        ] {
            // `abc=def`: lowercase names are dotenv lines too.
            let want = (value == "abc=def").then_some(Wrapping::Assignment(None));
            assert_eq!(wrapping(value), want, "{value}");
        }
    }

    #[test]
    fn each_wrapping_is_recognised() {
        for (value, want) in [
            ("\u{FEFF}sk_abc", Wrapping::Bom),
            ("\"sk_abc\"", Wrapping::Quotes),
            ("'sk_abc'", Wrapping::Quotes),
            ("sk_abc\"", Wrapping::Quotes),
            ("Bearer sk_abc", Wrapping::Scheme("Bearer")),
            ("bearer sk_abc", Wrapping::Scheme("Bearer")),
            ("Basic QUM6dG9rZW4=", Wrapping::Scheme("Basic")),
            ("Token abc", Wrapping::Scheme("Token")),
            (
                "ELEVENLABS_API_KEY=sk_abc",
                Wrapping::Assignment(Some("ELEVENLABS_API_KEY".into())),
            ),
            (
                "export TWILIO_AUTH_TOKEN=\"abc\"",
                Wrapping::Assignment(Some("TWILIO_AUTH_TOKEN".into())),
            ),
        ] {
            assert_eq!(wrapping(value), Some(want), "{value}");
        }
    }
}
