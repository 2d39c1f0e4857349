//! The providers' sections: Twilio SIDs and tokens, ElevenLabs keys,
//! permission probes, links between credentials, `max_phone_numbers`.

use super::*;

#[test]
fn twilio_sids_are_checked() {
    let e = errors(
        "twilio:\n  - name: t\n    account_sid: AC123\n    auth_token: 0123456789abcdef0123456789abcdef\n",
    );
    has(
        &e,
        "twilio[0].account_sid",
        "`AC` followed by 32 hex digits",
    );
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {AC}\n    api_key_sid: SK12\n    api_key_secret: abcdefghijklmnopqrstuvwxyzABCDEF\n"
    ));
    has(
        &e,
        "twilio[0].api_key_sid",
        "`SK` followed by 32 hex digits",
    );
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {SK}\n    api_key_sid: {SK}\n    api_key_secret: abcdefghijklmnopqrstuvwxyzABCDEF\n"
    ));
    has(&e, "twilio[0].account_sid", "API key SID");
}

#[test]
fn swapped_sid_and_token_are_called_swapped() {
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {TOKEN}\n    auth_token: {AC}\n"
    ));
    has(&e, "twilio[0].account_sid", "these look swapped");
    assert_eq!(e.len(), 1, "one message for one mistake: {e:?}");
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {AC}\n    api_key_sid: abcdefghijklmnopqrstuvwxyzABCDEF\n    api_key_secret: {SK}\n"
    ));
    has(&e, "twilio[0].api_key_sid", "these look swapped");
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {AC}\n    auth_token: {SK}\n"
    ));
    has(&e, "twilio[0].auth_token", "API key SID");
}

#[test]
fn token_and_key_together_are_refused() {
    let e = errors(&format!(
        "twilio:\n  - name: t\n    account_sid: {AC}\n    auth_token: {TOKEN}\n    api_key_sid: {SK}\n    api_key_secret: x\n"
    ));
    has(&e, "twilio[0]", "has both an auth token and an API key");
}

#[test]
fn an_elevenlabs_key_id_is_not_a_key() {
    let e = errors("elevenlabs:\n  - name: a\n    api_key: J3Pbu5gP6NNKBscdCdwB\n");
    has(&e, "elevenlabs[0].api_key", "looks like an API key ID");
    let e = errors(&format!("elevenlabs:\n  - name: a\n    api_key: {AC}\n"));
    has(&e, "elevenlabs[0].api_key", "Twilio SID");
}

#[test]
fn permissions_without_a_probe_are_refused_with_the_list() {
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    required_permissions: [convai_write, voices_read]\n",
    );
    has(
        &e,
        "elevenlabs[0].required_permissions[1]",
        "no side-effect-free probe for this permission",
    );
    has(
        &e,
        "elevenlabs[0].required_permissions[1]",
        "convai_write, convai_read, user_read, models_read",
    );
}

#[test]
fn permission_probe_overrides_are_validated_and_extend_the_table() {
    let ok = "permission_probes:\n  voices_read:\n    path: /v1/convai/agents?page_size=1\n    granted: [{status: 200}]\n    not_granted: [{status: 401, code: missing_permissions}]\nelevenlabs:\n  - name: a\n    api_key: sk_x\n    required_permissions: [voices_read]\n";
    let c = load(ok, &env(&[])).expect("valid");
    assert!(
        c.shared
            .elevenlabs
            .permission_probes
            .iter()
            .any(|p| p.permission == "voices_read" && p.overridden)
    );
    let bad = "permission_probes:\n  convai_write:\n    path: /v1/convai/twilio/outbound-call\n    granted: [{status: 200}]\n    not_granted: [{status: 401}]\nelevenlabs:\n  - name: a\n    api_key: sk_x\n";
    has(
        &errors(bad),
        "permission_probes.convai_write.path",
        "read-only allow-list",
    );
}

#[test]
fn links_to_twilio_credentials_must_exist() {
    let e = errors(
        "elevenlabs:\n  - name: a\n    api_key: sk_x\n    phone_numbers: true\n    twilio: nope\n",
    );
    has(
        &e,
        "elevenlabs[0].twilio",
        "is not the name of a configured Twilio credential",
    );
}

/// `get-signed-url` with a real agent mints a signed URL: no override may
/// point the probe at one, nor ask for a conversation id.
#[test]
fn a_probe_override_cannot_point_get_signed_url_at_a_real_agent() {
    for path in [
        "/v1/convai/conversation/get-signed-url?agent_id=agent_2501k520e4p6eqs87ga1ke8a67fs",
        "/v1/convai/conversation/get-signed-url?agent_id=agent_0000000000000000000000000000&include_conversation_id=true",
        "/v1/convai/conversation/get-signed-url?include_conversation_id=1&agent_id=agent_0000000000000000000000000000",
    ] {
        let yaml = format!(
            "permission_probes:\n  convai_write:\n    path: \"{path}\"\n    granted: [{{status: 404, code: agent_not_found}}]\n    not_granted: [{{status: 401, code: missing_permissions}}]\nelevenlabs:\n  - name: a\n    api_key: sk_x\n"
        );
        has(
            &errors(&yaml),
            "permission_probes.convai_write.path",
            "get-signed-url",
        );
    }
}

/// ElevenLabs' import stores an Account SID + Auth Token: linking an API-key
/// credential cannot show an Auth Token rotation, and `validate` says so.
#[test]
fn linking_an_api_key_credential_warns_that_token_rotations_are_invisible() {
    let yaml = "elevenlabs:\n  - name: a\n    api_key: sk_x\n    phone_numbers: true\n    twilio: tw\ntwilio:\n  - name: tw\n    account_sid: AC0123456789abcdef0123456789abcdef\n    api_key_sid: SK0123456789abcdef0123456789abcdef\n    api_key_secret: s3cr3tvalue\n";
    let c = load(yaml, &env(&[])).expect("valid");
    let w = c
        .warnings
        .iter()
        .find(|w| w.path == "elevenlabs[0].twilio")
        .expect("a warning on the link");
    assert!(w.message.contains("Auth Token"), "{}", w.message);
    assert!(w.message.contains("auth_token"), "{}", w.message);
    assert!(!w.message.contains("s3cr3tvalue"));
}

#[test]
fn max_phone_numbers_is_at_least_one_and_defaults_to_a_thousand() {
    let item = |extra: &str| {
        format!(
            "elevenlabs:\n  - name: el\n    api_key: sk_{:048}\n    phone_numbers: true\n{extra}",
            0
        )
    };
    let e = errors(&item("    max_phone_numbers: 0\n"));
    has(&e, "elevenlabs[0].max_phone_numbers", "at least 1");
    let c = load(&item(""), &env(&[])).expect("valid");
    let crate::config::Spec::ElevenLabs(el) = &c.credentials[0].spec else {
        panic!("not ElevenLabs");
    };
    assert_eq!(el.max_phone_numbers, 1000);
    let c = load(&item("    max_phone_numbers: 25000\n"), &env(&[])).expect("valid");
    let crate::config::Spec::ElevenLabs(el) = &c.credentials[0].spec else {
        panic!("not ElevenLabs");
    };
    assert_eq!(el.max_phone_numbers, 25000);
}
