//! The recorded upstream answers of `tests/fixtures/upstream/*.json`: one
//! corpus, read by the replay test (`tests/it/evidence.rs`) and by the
//! simulator, which serves its error bodies from it. So the simulator cannot
//! drift from the evidence: change a body in the corpus and both the fake
//! server and the expectations follow.
//!
//! Each entry is `{id, provider, endpoint, status, headers, body, source,
//! evidence, derived_from?, note?, expect}`; `docs/upstream-evidence.md`
//! describes the format. The simulator only reads `status`, the
//! `content-type` and `www-authenticate` headers, and `body`.
//!
//! Each fake compiles in its own file ([`super::Fake::corpus`],
//! `include_str!`); they are parsed on first use. A
//! corpus that does not parse is a build mistake caught by the unit tests
//! below; at run time it only makes the simulator fall back to its own
//! renderings, it never panics.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use super::http::Reply;

/// Every fake's corpus file, as text.
fn files() -> impl Iterator<Item = &'static str> {
    super::FAKES.iter().map(|f| f.corpus())
}

/// One recorded answer (the fields the simulator needs, plus provenance).
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub id: String,
    pub provider: String,
    pub endpoint: String,
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Verbatim, as recorded (or as reconstructed, per `evidence`).
    pub body: String,
    pub source: String,
    /// `real`, `doc`, `spec`, `fixture`, `public-code-unverified` or `inferred`.
    pub evidence: String,
    #[serde(default)]
    pub derived_from: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// The verdicts the entry must produce (read by the replay test).
    #[serde(default)]
    pub expect: Vec<Value>,
}

impl Entry {
    /// The error object: `detail` when it is an object, else the top level.
    fn error_object(&self) -> Option<serde_json::Map<String, Value>> {
        match serde_json::from_str::<Value>(&self.body).ok()? {
            Value::Object(mut top) => match top.remove("detail") {
                Some(Value::Object(detail)) => Some(detail),
                _ => Some(top),
            },
            _ => None,
        }
    }

    /// A string field of the error object (`status`, `code`, `message`, …).
    pub fn field(&self, name: &str) -> Option<String> {
        match self.error_object()?.get(name)? {
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The answer exactly as recorded: status, content type,
    /// `www-authenticate` when recorded, body.
    pub(crate) fn reply(&'static self) -> Reply {
        self.reply_with_body(self.body.clone())
    }

    /// The recorded answer with one substring of the body replaced, for
    /// bodies that quote the request (a path, an id, a permission name).
    pub(crate) fn reply_replacing(&'static self, recorded: &str, actual: &str) -> Reply {
        self.reply_with_body(self.body.replace(recorded, actual))
    }

    fn reply_with_body(&'static self, body: String) -> Reply {
        let content_type = self
            .headers
            .get("content-type")
            .map_or("application/json", String::as_str);
        let mut reply = Reply::new(self.status, content_type, body);
        if let Some(challenge) = self.headers.get("www-authenticate") {
            reply = reply.header("www-authenticate", challenge.clone());
        }
        reply
    }
}

static CORPUS: LazyLock<HashMap<String, Entry>> = LazyLock::new(|| {
    files()
        .filter_map(|text| serde_json::from_str::<Vec<Entry>>(text).ok())
        .flatten()
        .map(|e| (e.id.clone(), e))
        .collect()
});

/// The entry with this id.
pub fn entry(id: &str) -> Option<&'static Entry> {
    CORPUS.get(id)
}

/// Every corpus id the simulator serves from. The unit test below checks that
/// each exists; `docs/upstream-evidence.md` lists them.
#[cfg(test)]
pub(crate) const SERVED: &[&str] = &[
    "el-401-invalid-api-key",
    "el-401-needs-authorization",
    "el-400-key-id-used-as-key",
    "el-401-missing-permissions-user-read",
    "el-403-insufficient-permissions-voices-write",
    "el-401-detected-unusual-activity",
    "el-401-payment-issue",
    "el-402-payment-required",
    "el-404-agent-not-found",
    "el-400-invalid-uid",
    "el-429-too-many-concurrent-requests",
    "el-429-system-busy",
    "el-429-rate-limit-exceeded",
    "el-500-something-went-wrong",
    "el-500-internal-server-error-unwrapped",
    "el-502-html-bad-gateway",
    "el-403-cloudflare-challenge",
    "tw-401-20003-authenticate",
    "tw-401-20003-no-credentials",
    "tw-401-20003-empty-detail",
    "tw-401-20005-account-not-active",
    "tw-403-20005-account-not-active",
    "tw-403-20403-account-lacks-permission",
    "tw-403-20008-test-credentials",
    "tw-403-70051-restricted-key",
    "tw-404-20404-not-found",
    "tw-400-21470-invalid-account-sid",
    "tw-400-90002-account-sid-invalid",
    "tw-429-20429-fixture",
    "tw-429-20429-serverless",
    "tw-503-20503-unavailable",
    "tw-500-20500-internal",
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const MARKERS: [&str; 6] = [
        "real",
        "doc",
        "spec",
        "fixture",
        "public-code-unverified",
        "inferred",
    ];

    #[test]
    fn every_corpus_file_parses_and_ids_are_unique() {
        let mut ids = HashSet::new();
        let mut count = 0;
        for text in files() {
            let entries: Vec<Entry> =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("corpus: {e}"));
            for e in entries {
                assert!(ids.insert(e.id.clone()), "duplicate id {}", e.id);
                assert!(
                    MARKERS.contains(&e.evidence.as_str()),
                    "{}: evidence `{}`",
                    e.id,
                    e.evidence
                );
                assert!(!e.source.is_empty() && !e.endpoint.is_empty(), "{}", e.id);
                assert!(
                    crate::FAKES.iter().any(|f| f.name() == e.provider),
                    "{}: no fake named `{}`",
                    e.id,
                    e.provider
                );
                assert!(!e.expect.is_empty(), "{}: no expectation", e.id);
                if let Some(from) = &e.derived_from {
                    assert!(ids.contains(from), "{}: derived from unknown {from}", e.id);
                }
                count += 1;
            }
        }
        assert_eq!(CORPUS.len(), count);
    }

    #[test]
    fn every_body_the_simulator_serves_is_in_the_corpus() {
        for id in SERVED {
            assert!(entry(id).is_some(), "{id} is not in the corpus");
        }
    }

    #[test]
    fn recorded_replies_are_byte_exact() {
        let e = entry("el-401-invalid-api-key").expect("entry");
        let reply = e.reply();
        assert_eq!(reply.status, 401);
        assert_eq!(
            &reply.body[..],
            br#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#
        );
        assert_eq!(e.field("status").as_deref(), Some("invalid_api_key"));
        let tw = entry("tw-404-20404-not-found").expect("entry");
        let reply = tw.reply_replacing("/2010-04-01/Accounts/null/Messages.json", "/x.json");
        assert!(
            String::from_utf8_lossy(&reply.body)
                .contains("The requested resource /x.json was not found")
        );
    }
}
