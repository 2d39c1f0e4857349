//! What credwatch knows of the upstream APIs before it asks them anything:
//! the providers, the read-only allow-list of paths it may ever request, and
//! the built-in permission-probe table.
//!
//! A leaf: the config loader (which checks configured probe paths against
//! the allow-list and merges the probe table) and the providers (which send
//! the requests) both build on it, so neither depends on the other's
//! internals. It must never grow a way to send anything.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    ElevenLabs,
    Twilio,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::ElevenLabs => "elevenlabs",
            Provider::Twilio => "twilio",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// The read-only allow-list. Everything credwatch may ever ask for is here;
/// the never-call endpoints of `shared/reference/*.md` are not, by construction.
pub fn check_read_path(provider: Provider, path_and_query: &str) -> Result<(), String> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    if !path.starts_with('/')
        || path.contains("..")
        || path.contains("//")
        || path_and_query.contains('#')
    {
        return Err("the path is not a plain absolute path".into());
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let allowed = match provider {
        Provider::ElevenLabs => match segments.as_slice() {
            ["v1", "user"] | ["v1", "user", "subscription"] | ["v1", "models"] => true,
            ["v1", "convai", "agents"] | ["v1", "convai", "phone-numbers"] => true,
            ["v1", "convai", "agents", id] | ["v1", "convai", "phone-numbers", id] => id_ok(id),
            // Exactly credwatch's own nonexistent agent, nothing else in the
            // query (no `include_conversation_id` in any spelling or encoding).
            ["v1", "convai", "conversation", "get-signed-url"] => {
                if query != Some(&*format!("agent_id={PROBE_AGENT_ID}")) {
                    return Err(format!(
                        "get-signed-url is only ever asked as `?agent_id={PROBE_AGENT_ID}` (credwatch's nonexistent probe agent): with a real agent it mints a signed URL"
                    ));
                }
                true
            }
            _ => false,
        },
        Provider::Twilio => match segments.as_slice() {
            ["2010-04-01", "Accounts", account] => account
                .strip_suffix(".json")
                .is_some_and(looks_like_account_sid),
            ["2010-04-01", "Accounts", account, resource] => {
                looks_like_account_sid(account)
                    && matches!(
                        *resource,
                        "IncomingPhoneNumbers.json" | "OutgoingCallerIds.json" | "Balance.json"
                    )
            }
            _ => false,
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "the path is not on credwatch's read-only allow-list for {provider}; only side-effect-free GETs are allowed"
        ))
    }
}

/// `AC` + 32 hex digits: the shape of a Twilio Account SID.
pub fn looks_like_account_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("AC") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";

    #[test]
    fn allow_list_admits_the_probes() {
        for p in [
            "/v1/user/subscription",
            "/v1/user",
            "/v1/models",
            "/v1/convai/agents?page_size=1",
            "/v1/convai/agents/agent_123",
            "/v1/convai/phone-numbers?provider=twilio",
            "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000",
        ] {
            assert_eq!(check_read_path(Provider::ElevenLabs, p), Ok(()), "{p}");
        }
        for p in [
            format!("/2010-04-01/Accounts/{AC}.json"),
            format!("/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json?PageSize=1000"),
            format!("/2010-04-01/Accounts/{AC}/OutgoingCallerIds.json?PageSize=1000"),
            format!("/2010-04-01/Accounts/{AC}/Balance.json"),
        ] {
            assert_eq!(check_read_path(Provider::Twilio, &p), Ok(()), "{p}");
        }
    }

    #[test]
    fn allow_list_refuses_never_call_endpoints() {
        for p in [
            "/v1/convai/twilio/outbound-call",
            "/v1/convai/sip-trunk/outbound-call",
            "/v1/convai/conversation/token?agent_id=x",
            "/v1/workspaces/api-keys/disable?api_key_name=self",
            "/v1/text-to-speech/abc",
            "/v1/convai/conversation/get-signed-url?agent_id=a&include_conversation_id=true",
            "/v1/convai/conversation/get-signed-url",
            // A real agent, or the probe id with anything added.
            "/v1/convai/conversation/get-signed-url?agent_id=agent_2501k520e4p6eqs87ga1ke8a67fs",
            "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000&include_conversation_id=true",
            "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000&include_conversation_id=1",
            "/v1/convai/conversation/get-signed-url?include_conversation_id=True&agent_id=agent_0000000000000000000000000000",
            "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000&include%5Fconversation%5Fid=true",
            "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000&agent_id=agent_2501k520e4p6eqs87ga1ke8a67fs",
            "/v1/convai/agents/../../v1/text-to-speech",
        ] {
            assert!(check_read_path(Provider::ElevenLabs, p).is_err(), "{p}");
        }
        for p in [
            "/2010-04-01/Accounts.json".to_string(),
            format!("/2010-04-01/Accounts/{AC}/Keys.json"),
            format!("/2010-04-01/Accounts/{AC}/Calls.json"),
            format!("/2010-04-01/Accounts/{AC}/Messages.json"),
            format!("/2010-04-01/Accounts/{AC}/Tokens.json"),
            "/2010-04-01/Accounts/SK0123456789abcdef0123456789abcdef.json".to_string(),
        ] {
            assert!(check_read_path(Provider::Twilio, &p).is_err(), "{p}");
        }
        // A Twilio path is not an ElevenLabs path and vice versa.
        assert!(
            check_read_path(
                Provider::ElevenLabs,
                &format!("/2010-04-01/Accounts/{AC}.json")
            )
            .is_err()
        );
        assert!(check_read_path(Provider::Twilio, "/v1/user").is_err());
    }
}
