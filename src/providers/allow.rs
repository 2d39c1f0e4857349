//! The read-only allow-list: every path credwatch may ever ask for. Each
//! provider's [`Kind::allowed`](super::Kind::allowed) is its arm; the never-call endpoints of
//! `shared/reference/*.md` are on none of them, by construction. It must
//! never grow a way to send anything.

use super::Provider;

/// Whether `path_and_query` may be asked of `provider`, and if so how much
/// of its answer is read at most (the provider's cap for that endpoint).
pub fn check_read_path(provider: Provider, path_and_query: &str) -> Result<usize, String> {
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
    match provider.allowed(&segments, query)? {
        Some(cap) => Ok(cap),
        None => Err(format!(
            "the path is not on credwatch's read-only allow-list for {provider}; only side-effect-free GETs are allowed"
        )),
    }
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
            assert!(check_read_path(Provider::ElevenLabs, p).is_ok(), "{p}");
        }
        for p in [
            format!("/2010-04-01/Accounts/{AC}.json"),
            format!("/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers.json?PageSize=1000"),
            format!("/2010-04-01/Accounts/{AC}/OutgoingCallerIds.json?PageSize=1000"),
            format!("/2010-04-01/Accounts/{AC}/Balance.json"),
        ] {
            assert!(check_read_path(Provider::Twilio, &p).is_ok(), "{p}");
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
