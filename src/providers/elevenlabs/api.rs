//! What credwatch may ask ElevenLabs: its arm of the read-only allow-list
//! (with how much of each answer is read) and the built-in permission-probe
//! table.

use crate::providers::Provider;
use crate::providers::http::{BODY_LIMIT, OTHER_BODY_LIMIT, SMALL_BODY_LIMIT};

/// One agent's configuration (prompts, tools): generous for the largest seen.
pub const AGENT_BODY_LIMIT: usize = 1024 * 1024;

/// How one ElevenLabs permission is probed without side effects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionProbe {
    pub permission: String,
    /// Path and query, always a GET.
    pub path: String,
    pub granted: Vec<StatusMatch>,
    pub not_granted: Vec<StatusMatch>,
    /// Came from the config file rather than the built-in table.
    pub overridden: bool,
}

/// An HTTP status plus, optionally, the upstream error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMatch {
    pub status: u16,
    pub code: Option<String>,
}

impl StatusMatch {
    pub fn matches(&self, status: u16, code: Option<&str>) -> bool {
        self.status == status && self.code.as_deref().is_none_or(|c| Some(c) == code)
    }
}

/// The built-in permission probes. Adding a permission is one row.
pub fn default_permission_probes() -> Vec<PermissionProbe> {
    let denied = || {
        vec![
            StatusMatch {
                status: 401,
                code: Some("missing_permissions".into()),
            },
            StatusMatch {
                status: 403,
                code: Some("insufficient_permissions".into()),
            },
            StatusMatch {
                status: 403,
                code: Some("missing_permissions".into()),
            },
        ]
    };
    let row = |permission: &str, path: String, granted: StatusMatch| PermissionProbe {
        permission: permission.into(),
        path,
        granted: vec![granted],
        not_granted: denied(),
        overridden: false,
    };
    vec![
        row(
            "convai_write",
            format!("/v1/convai/conversation/get-signed-url?agent_id={PROBE_AGENT_ID}"),
            StatusMatch {
                status: 404,
                code: Some("agent_not_found".into()),
            },
        ),
        row(
            "convai_read",
            "/v1/convai/agents?page_size=1".into(),
            StatusMatch {
                status: 200,
                code: None,
            },
        ),
        row(
            "user_read",
            "/v1/user".into(),
            StatusMatch {
                status: 200,
                code: None,
            },
        ),
        row(
            "models_read",
            "/v1/models".into(),
            StatusMatch {
                status: 200,
                code: None,
            },
        ),
    ]
}

/// The agent id of credwatch's `convai_write` probe (see
/// the ElevenLabs provider's `NONEXISTENT_AGENT_ID`): `agent_` + two digits +
/// the all-zero ULID. get-signed-url is allowed with this id only, so no
/// configured probe can point it at a real agent and mint signed URLs.
pub const PROBE_AGENT_ID: &str = "agent_0000000000000000000000000000";

/// Checks a configured probe path against the allow-list.
pub fn check_path(path_and_query: &str) -> Result<(), String> {
    crate::providers::check_read_path(Provider::ElevenLabs, path_and_query).map(|_| ())
}

/// The ElevenLabs arm of [`crate::providers::check_read_path`]: `Some(cap)`
/// when the path (split into segments) and query may be asked, with how
/// much of the answer is read at most (what a real answer needs, so a
/// hostile or broken upstream costs at most that); `None` when not.
pub fn allowed(segments: &[&str], query: Option<&str>) -> Result<Option<usize>, String> {
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let allowed = |yes: bool, cap: usize| yes.then_some(cap);
    Ok(match segments {
        // The subscription: under 2 KiB.
        ["v1", "user", "subscription"] => Some(SMALL_BODY_LIMIT),
        // Permission probes (configurable): a page of one item or an error.
        ["v1", "user"] | ["v1", "models"] | ["v1", "convai", "agents"] => Some(OTHER_BODY_LIMIT),
        // Every imported number, of the order of a page of 1,000 Twilio numbers.
        ["v1", "convai", "phone-numbers"] => Some(BODY_LIMIT),
        ["v1", "convai", "agents", id] => allowed(id_ok(id), AGENT_BODY_LIMIT),
        ["v1", "convai", "phone-numbers", id] => allowed(id_ok(id), OTHER_BODY_LIMIT),
        // Exactly credwatch's own nonexistent agent, nothing else in the
        // query (no `include_conversation_id` in any spelling or encoding).
        ["v1", "convai", "conversation", "get-signed-url"] => {
            if query != Some(&*format!("agent_id={PROBE_AGENT_ID}")) {
                return Err(format!(
                    "get-signed-url is only ever asked as `?agent_id={PROBE_AGENT_ID}` (credwatch's nonexistent probe agent): with a real agent it mints a signed URL"
                ));
            }
            Some(SMALL_BODY_LIMIT)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::check_read_path;

    #[test]
    fn each_endpoint_reads_what_a_real_answer_needs() {
        for (path, cap) in [
            ("/v1/user/subscription", SMALL_BODY_LIMIT),
            (
                "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000",
                SMALL_BODY_LIMIT,
            ),
            ("/v1/convai/phone-numbers?provider=twilio", BODY_LIMIT),
            ("/v1/convai/agents/agent_123", AGENT_BODY_LIMIT),
            ("/v1/convai/agents?page_size=1", OTHER_BODY_LIMIT),
            ("/v1/models", OTHER_BODY_LIMIT),
        ] {
            assert_eq!(
                check_read_path(Provider::ElevenLabs, path),
                Ok(cap),
                "{path}"
            );
        }
    }
}
