//! `base_url`: a plain http(s) URL, plain http only to loopback or with
//! `allow_insecure_http`, and no spelling a URL parser would repair.

use super::*;

#[test]
fn base_urls_must_be_plain_http_urls() {
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    base_url: https://user:pw@api.elevenlabs.io\n",
    );
    has(&e, "elevenlabs[0].base_url", "must not contain credentials");
    let e = errors("elevenlabs:\n  - name: a\n    api_key: sk_x\n    base_url: ftp://x\n");
    has(&e, "elevenlabs[0].base_url", "http or https");
}

/// Plain http to a host that is not loopback sends the secret in clear: an
/// error unless the credential says `allow_insecure_http: true` (then a warning).
#[test]
fn plain_http_needs_allow_insecure_http_unless_loopback() {
    for (section, item) in [
        ("elevenlabs", "  - name: a\n    api_key: sk_x\n".to_string()),
        (
            "twilio",
            format!("  - name: a\n    account_sid: {AC}\n    auth_token: {TOKEN}\n"),
        ),
    ] {
        let yaml = format!("{section}:\n{item}    base_url: http://example.com/\n");
        has(
            &errors(&yaml),
            &format!("{section}[0].base_url"),
            "would send the secret unencrypted; use https, or set `allow_insecure_http: true`",
        );
        let c =
            load(&format!("{yaml}    allow_insecure_http: true\n"), &env(&[])).expect("allowed");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.path == format!("{section}[0].base_url")
                    && w.message.contains("unencrypted")),
            "{:?}",
            c.warnings
        );
        for loopback in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:2",
        ] {
            let c = load(
                &format!("{section}:\n{item}    base_url: {loopback}\n"),
                &env(&[]),
            )
            .expect("loopback is fine");
            assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        }
        let c = load(
            &format!("{section}:\n{item}    allow_insecure_http: false\n"),
            &env(&[]),
        )
        .expect("valid");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.path == format!("{section}[0].allow_insecure_http"))
        );
    }
    assert_eq!(
        crate::config::check_base_url("https://api.elevenlabs.io/", false),
        Ok(crate::config::BaseUrl {
            url: "https://api.elevenlabs.io".into(),
            insecure: false
        })
    );
}

/// Spellings a URL parser repairs silently are refused, each with its own
/// message (issue #21: `http:127.0.0.1:…` and `\@evil.example` reached
/// loopback with odd request paths). `calibrate --base-url` uses the same
/// check.
#[test]
fn malformed_base_urls_are_refused_not_normalised() {
    const CANONICAL: &str = "is not written the way URL parsers read it (an IP address in another notation, percent-encoding, a default port, `.` or `..` in the path, or non-ASCII); write it plainly, e.g. `https://api.elevenlabs.io` or `http://127.0.0.1:8080`";
    let cases: &[(&str, &str)] = &[
        (
            "http:127.0.0.1:8080",
            "the scheme must be followed by `//`, e.g. `http://127.0.0.1:8080`",
        ),
        (
            "https:/api.elevenlabs.io",
            "the scheme must be followed by `//`, e.g. `https://127.0.0.1:8080`",
        ),
        (
            "http://x\\@evil.example",
            "contains a backslash, which URL parsers read as `/`; write the URL with `/` only, e.g. `https://api.elevenlabs.io`",
        ),
        (
            "https:\\\\api.elevenlabs.io",
            "contains a backslash, which URL parsers read as `/`; write the URL with `/` only, e.g. `https://api.elevenlabs.io`",
        ),
        ("http:///127.0.0.1:8080", "has no host"),
        (
            "http://@127.0.0.1:8080",
            "must not contain credentials; use the credential's secret keys",
        ),
        (
            " http://127.0.0.1:8080",
            "contains whitespace or control characters",
        ),
        (
            "http://127.0.0.1:8080/a\tb",
            "contains whitespace or control characters",
        ),
        ("http://0x7f.1:8080", CANONICAL),
        ("http://2130706433:8080", CANONICAL),
        ("https://api.elevenlabs.io:443", CANONICAL),
        ("http://127.0.0.1:8080/a/../b", CANONICAL),
        ("http://127.0.0.1:8080/{v1}", CANONICAL),
        ("https://bücher.example", CANONICAL),
        (
            "http://127.0.0.1:8080/?",
            "must not have a query or fragment",
        ),
        (
            "http://127.0.0.1:8080#",
            "must not have a query or fragment",
        ),
    ];
    for (url, want) in cases {
        assert_eq!(
            crate::config::check_base_url(url, true).map(|b| b.url),
            Err(want.to_string()),
            "{url:?}"
        );
    }
    // Through the loader: the key path and the message.
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    base_url: \"http:127.0.0.1:8080\"\n",
    );
    has(
        &e,
        "elevenlabs[0].base_url",
        "the scheme must be followed by `//`",
    );
    // What is written plainly passes, as written (case of the host aside).
    for ok in [
        "https://api.elevenlabs.io",
        "https://API.ElevenLabs.io/",
        "http://127.0.0.1:8080",
        "http://[::1]:8080/prefix/v1",
        "http://localhost:9",
    ] {
        assert_eq!(
            crate::config::check_base_url(ok, false).map(|b| b.url),
            Ok(ok.trim_end_matches('/').to_string()),
            "{ok}"
        );
    }
}
