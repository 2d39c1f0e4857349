//! ElevenLabs' links of a call path, and the cycle that looks at every
//! link with a request: the agent, the imported number, then (through the
//! carrier's provider) the number on the Twilio account, the import's
//! freshness and each destination country.
//!
//! GET only. A lookup that gets no answer, or an answer that proves
//! nothing, is an unknown link; a 429 stops the cycle's further requests to
//! the same API (they are recorded as unknown, rate-limited).

use serde::Deserialize;

use super::ElevenLabs;
use super::classify::{Meaning, classify, parse_body};
use crate::providers::http::{Answer, TransportError};
use crate::providers::link::{CallPath, Finding, Link, LinkProblem, Observation};
use crate::providers::outcome::{Clean, Evidence, Reason, clean, clean_to};
use crate::providers::twilio::{self, TwilioAuth};
use crate::providers::{Context, Credential, Linked, Provider, Spec};

#[derive(Deserialize)]
struct AgentBody {
    conversation_config: Option<ConversationConfig>,
}

#[derive(Deserialize)]
struct ConversationConfig {
    tts: Option<Tts>,
    asr: Option<Asr>,
}

#[derive(Deserialize)]
struct Tts {
    agent_output_audio_format: Option<String>,
}

#[derive(Deserialize)]
struct Asr {
    user_input_audio_format: Option<String>,
}

#[derive(Deserialize)]
struct PhoneNumberBody {
    provider: Option<String>,
    phone_number: Option<String>,
    supports_outbound: Option<bool>,
}

/// One cycle of a call path whose caller is `el` (credential `caller`) and
/// whose carrier is `carrier`: every link that needs a request, in order.
pub async fn check(
    path: &CallPath,
    caller: &Credential,
    el: &ElevenLabs,
    carrier: &Linked,
    ctx: &Context<'_>,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let agent = agent_link(path, caller, el, ctx).await;
    let el_busy = rate_limited(&agent);
    out.push(agent);
    let (number, e164) = if el_busy {
        (skipped(Link::PhoneNumber, Reason::RateLimited), None)
    } else {
        phone_number_link(path, caller, el, ctx).await
    };
    out.push(number);

    let Spec::Twilio(tw) = &carrier.cred.spec else {
        return out;
    };
    let carrier_number = match &e164 {
        Some(n) => twilio::voice::number_link(&carrier.cred, tw, ctx, n).await,
        None => skipped(Link::CarrierNumber, Reason::UnexpectedResponse).with_detail(
            "not looked up: the number is not known until the imported number is read",
        ),
    };
    let tw_busy = rate_limited(&carrier_number);
    out.push(carrier_number);
    out.push(import_link(path, el, carrier));
    for iso in &path.destinations {
        let o = if tw_busy {
            skipped(Link::Destination(iso.clone()), Reason::RateLimited)
        } else {
            twilio::voice::destination_link(&carrier.cred, tw, ctx, iso).await
        };
        out.push(o);
    }
    out
}

fn rate_limited(o: &Observation) -> bool {
    o.finding == Finding::Unknown(Reason::RateLimited)
}

fn skipped(link: Link, reason: Reason) -> Observation {
    Observation::new(
        link,
        Finding::Unknown(reason),
        Evidence {
            detail: "not asked this cycle: the API answered 429 to an earlier request".into(),
            ..Evidence::default()
        },
    )
}

trait WithDetail {
    fn with_detail(self, detail: &str) -> Self;
}

impl WithDetail for Observation {
    fn with_detail(mut self, detail: &str) -> Self {
        self.evidence.detail = detail.into();
        self
    }
}

async fn get(
    caller: &Credential,
    el: &ElevenLabs,
    ctx: &Context<'_>,
    path: &str,
) -> Result<Answer, TransportError> {
    let auth = el.auth();
    ctx.upstream
        .get(
            Provider::ElevenLabs,
            &el.base_url,
            path,
            auth,
            caller.timeout,
        )
        .await
}

fn transport(link: Link, path: &str, e: &TransportError) -> Observation {
    Observation::new(
        link,
        Finding::Unknown(crate::providers::failure_from_transport(e)),
        Evidence {
            request: Clean::request(path),
            detail: e.to_string().into(),
            ..Evidence::default()
        },
    )
}

fn evidence(path: &str, answer: &Answer, detail: String) -> Evidence {
    let body = parse_body(answer);
    let code = match &body {
        super::Body::Error(f) => f.key().map(str::to_string),
        _ => None,
    };
    answer.evidence(path, code, detail)
}

async fn agent_link(
    path: &CallPath,
    caller: &Credential,
    el: &ElevenLabs,
    ctx: &Context<'_>,
) -> Observation {
    let req = format!("/v1/convai/agents/{}", path.agent_id);
    match get(caller, el, ctx, &req).await {
        Ok(answer) => agent_outcome(&req, &answer),
        Err(e) => transport(Link::Agent, &req, &e),
    }
}

/// What `GET /v1/convai/agents/{id}` means for the agent link: pure.
pub fn agent_outcome(req: &str, answer: &Answer) -> Observation {
    let link = Link::Agent;
    let body = parse_body(answer);
    let (finding, detail, info) = match classify(answer, &body) {
        Meaning::Ok => match serde_json::from_slice::<AgentBody>(&answer.body) {
            Ok(agent) => {
                let cc = agent.conversation_config;
                let tts = cc
                    .as_ref()
                    .and_then(|c| c.tts.as_ref())
                    .and_then(|t| t.agent_output_audio_format.as_deref())
                    .map_or_else(|| "default".to_string(), clean);
                let asr = cc
                    .as_ref()
                    .and_then(|c| c.asr.as_ref())
                    .and_then(|a| a.user_input_audio_format.as_deref())
                    .map_or_else(|| "default".to_string(), clean);
                (
                    Finding::Proven,
                    "the agent exists".to_string(),
                    Some(format!("audio: output {tts}, input {asr}")),
                )
            }
            Err(_) => (
                Finding::Unknown(Reason::UnexpectedResponse),
                "HTTP 200 but the agent could not be read".into(),
                None,
            ),
        },
        Meaning::AgentNotFound => (
            Finding::Broken(LinkProblem::AgentNotFound),
            "404 agent_not_found: no such agent on this ElevenLabs account".into(),
            None,
        ),
        Meaning::Unrecognised(d) if d.contains("invalid_uid") => (
            Finding::Broken(LinkProblem::AgentNotFound),
            "400 invalid_uid: ElevenLabs does not accept this agent id".into(),
            None,
        ),
        Meaning::MissingPermission(p) => (
            Finding::Unknown(Reason::UnexpectedResponse),
            format!(
                "the key may not read agents (missing `{}`): grant it so the agent can be checked",
                p.unwrap_or_else(|| "convai_read".into())
            ),
            None,
        ),
        Meaning::Failure(reason, detail) => (Finding::Unknown(reason), detail, None),
        other => (
            Finding::Unknown(Reason::UnexpectedResponse),
            format!("the answer proves nothing about the agent ({other:?})"),
            None,
        ),
    };
    let mut o = Observation::new(link, finding, evidence(req, answer, detail));
    o.info = info;
    o
}

async fn phone_number_link(
    path: &CallPath,
    caller: &Credential,
    el: &ElevenLabs,
    ctx: &Context<'_>,
) -> (Observation, Option<String>) {
    let req = format!("/v1/convai/phone-numbers/{}", path.phone_number_id);
    match get(caller, el, ctx, &req).await {
        Ok(answer) => phone_number_outcome(&req, &answer),
        Err(e) => (transport(Link::PhoneNumber, &req, &e), None),
    }
}

/// What `GET /v1/convai/phone-numbers/{id}` means for the number link, and
/// the number (E.164) when it is a Twilio number: pure.
pub fn phone_number_outcome(req: &str, answer: &Answer) -> (Observation, Option<String>) {
    let link = Link::PhoneNumber;
    let body = parse_body(answer);
    let mut number = None;
    let mut inferred = false;
    let (finding, detail) = match classify(answer, &body) {
        Meaning::Ok => match serde_json::from_slice::<PhoneNumberBody>(&answer.body) {
            Ok(n) => {
                let e164 = n.phone_number.as_deref().map(|p| clean_to(p, 32));
                // The spec gives `provider` a default of `twilio` and leaves
                // it out of `required`: a missing value is a Twilio number.
                let provider = n.provider.as_deref().unwrap_or("twilio");
                if provider != "twilio" {
                    (
                        Finding::Broken(LinkProblem::PhoneNumberNotTwilio),
                        format!(
                            "the number is imported through `{}`, not Twilio",
                            clean(provider)
                        ),
                    )
                } else if n.supports_outbound == Some(false) {
                    (
                        Finding::Broken(LinkProblem::PhoneNumberNotOutboundCapable),
                        "ElevenLabs marks the number supports_outbound: false".into(),
                    )
                } else if let Some(e164) = e164.filter(|p| p.starts_with('+')) {
                    number = Some(e164.clone());
                    (
                        Finding::Proven,
                        format!("{e164}, a Twilio number of this ElevenLabs account"),
                    )
                } else {
                    (
                        Finding::Unknown(Reason::UnexpectedResponse),
                        "HTTP 200 without an E.164 phone_number".into(),
                    )
                }
            }
            Err(_) => (
                Finding::Unknown(Reason::UnexpectedResponse),
                "HTTP 200 but the number could not be read".into(),
            ),
        },
        // No recorded answer for a missing number; a 404 whose code says
        // "not found" is read as such, and worded as an inference.
        Meaning::Unrecognised(d) if answer.status == 404 && d.contains("not_found") => {
            inferred = true;
            (
                Finding::Broken(LinkProblem::PhoneNumberNotFound),
                "404: no imported number with this id on this ElevenLabs account".into(),
            )
        }
        Meaning::MissingPermission(p) => (
            Finding::Unknown(Reason::UnexpectedResponse),
            format!(
                "the key may not read phone numbers (missing `{}`): grant it so the number can be checked",
                p.unwrap_or_else(|| "convai_read".into())
            ),
        ),
        Meaning::Failure(reason, detail) => (Finding::Unknown(reason), detail),
        other => (
            Finding::Unknown(Reason::UnexpectedResponse),
            format!("the answer proves nothing about the number ({other:?})"),
        ),
    };
    let mut o = Observation::new(link, finding, evidence(req, answer, detail));
    o.inferred = inferred;
    (o, number)
}

/// ElevenLabs keeps the Account SID + Auth Token the number was imported
/// with, and never shows them: a rotation of that token since the import
/// (a fingerprint other than `twilio_imported_fingerprint`, or a change seen
/// while running) means the number must be imported again. An inference by
/// nature; an API key's rotation says nothing about the Auth Token.
fn import_link(path: &CallPath, el: &ElevenLabs, carrier: &Linked) -> Observation {
    let link = Link::ImportCurrent;
    let Spec::Twilio(tw) = &carrier.cred.spec else {
        return Observation::new(link, Finding::Proven, Evidence::default());
    };
    let mut evidence = Evidence {
        ..Evidence::default()
    };
    let finding = if !matches!(tw.auth, TwilioAuth::AuthToken(_)) {
        evidence.detail = "watched through an API key: a rotation of the Auth Token that ElevenLabs stores cannot be seen".into();
        Finding::Proven
    } else {
        let current = carrier.cred.fingerprint();
        let imported = path.imported_fingerprint.as_ref().or_else(|| {
            el.twilio_imported_fingerprint
                .as_ref()
                .filter(|_| el.twilio.as_deref() == Some(carrier.cred.name.as_str()))
        });
        match (imported, carrier.changed_at) {
            (Some(fp), _) if *fp != current => {
                evidence.detail = format!(
                    "the Auth Token's fingerprint is {current}, not {fp} (twilio_imported_fingerprint)"
                )
                .into();
                Finding::Broken(LinkProblem::ReimportNeeded)
            }
            (Some(_), _) => {
                evidence.detail =
                    "the Auth Token is the one recorded as imported (twilio_imported_fingerprint)"
                        .into();
                Finding::Proven
            }
            (None, Some(_)) => {
                evidence.detail =
                    "the Auth Token changed while credwatch was running; numbers imported before keep the old one".into();
                Finding::Broken(LinkProblem::ReimportNeeded)
            }
            (None, None) => {
                evidence.detail =
                    "no rotation of the Auth Token seen since credwatch started".into();
                Finding::Proven
            }
        }
    };
    let mut o = Observation::new(link, finding, evidence);
    o.inferred = true;
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer::json(status, body)
    }

    const REQ: &str = "/v1/convai/agents/agent_x";

    #[test]
    fn agent_found_missing_or_not_known() {
        let found = agent_outcome(
            REQ,
            &answer(
                200,
                r#"{"agent_id":"agent_x","conversation_config":{"tts":{"agent_output_audio_format":"ulaw_8000"},"asr":{"user_input_audio_format":"pcm_16000"}}}"#,
            ),
        );
        assert_eq!(found.finding, Finding::Proven);
        assert_eq!(
            found.info.as_deref(),
            Some("audio: output ulaw_8000, input pcm_16000")
        );
        let gone = agent_outcome(
            REQ,
            &answer(
                404,
                r#"{"detail":{"status":"agent_not_found","message":"Agent not found"}}"#,
            ),
        );
        assert_eq!(gone.finding, Finding::Broken(LinkProblem::AgentNotFound));
        for (status, body, reason) in [
            (
                503,
                r#"{"detail":{"status":"system_busy","message":"busy"}}"#,
                Reason::UpstreamError,
            ),
            (
                429,
                r#"{"detail":{"status":"rate_limit_exceeded","message":"x"}}"#,
                Reason::RateLimited,
            ),
            (
                401,
                r#"{"detail":{"status":"missing_permissions","message":"The API key you used is missing the permission convai_read to execute this operation."}}"#,
                Reason::UnexpectedResponse,
            ),
            (200, "[1,2]", Reason::UnexpectedResponse),
        ] {
            assert_eq!(
                agent_outcome(REQ, &answer(status, body)).finding,
                Finding::Unknown(reason),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn imported_number_must_be_an_outbound_twilio_number() {
        let twilio = r#"{"provider":"twilio","phone_number":"+14155550101","label":"x","phone_number_id":"phnum_1","supports_outbound":true}"#;
        let (o, n) = phone_number_outcome(REQ, &answer(200, twilio));
        assert_eq!(o.finding, Finding::Proven);
        assert_eq!(n.as_deref(), Some("+14155550101"));
        // `provider` and `supports_outbound` absent: a Twilio number, not marked incapable.
        let bare = r#"{"phone_number":"+14155550101","label":"x","phone_number_id":"phnum_1"}"#;
        assert_eq!(
            phone_number_outcome(REQ, &answer(200, bare)).0.finding,
            Finding::Proven
        );
        let sip = r#"{"provider":"sip_trunk","phone_number":"+14155550101","label":"x","phone_number_id":"phnum_1"}"#;
        assert_eq!(
            phone_number_outcome(REQ, &answer(200, sip)).0.finding,
            Finding::Broken(LinkProblem::PhoneNumberNotTwilio)
        );
        let no_out = r#"{"provider":"twilio","phone_number":"+14155550101","label":"x","phone_number_id":"phnum_1","supports_outbound":false}"#;
        let (o, n) = phone_number_outcome(REQ, &answer(200, no_out));
        assert_eq!(
            o.finding,
            Finding::Broken(LinkProblem::PhoneNumberNotOutboundCapable)
        );
        assert_eq!(n, None);
        let (o, _) = phone_number_outcome(
            REQ,
            &answer(
                404,
                r#"{"detail":{"status":"phone_number_not_found","message":"Phone number not found"}}"#,
            ),
        );
        assert_eq!(o.finding, Finding::Broken(LinkProblem::PhoneNumberNotFound));
        assert!(o.inferred);
        // A 404 that does not say "not found" proves nothing.
        let (o, _) = phone_number_outcome(
            REQ,
            &answer(
                404,
                r#"{"detail":{"status":"something_else","message":"x"}}"#,
            ),
        );
        assert_eq!(o.finding, Finding::Unknown(Reason::UnexpectedResponse));
    }

    /// The ElevenLabs credential (linking `tw`, imported with `imported`),
    /// and `tw` with its Auth Token, or an API key when `key`.
    fn creds(imported: Option<&str>, key: bool) -> (ElevenLabs, Credential) {
        let auth = if key {
            "    api_key_sid: SK0123456789abcdef0123456789abcdef\n    api_key_secret: secret0123456789\n"
        } else {
            "    auth_token: 0123456789abcdef0123456789abcdef\n"
        };
        let yaml = format!(
            "elevenlabs:\n  - name: el\n    api_key: sk_{}\n    phone_numbers: true\n    twilio: tw\n{}twilio:\n  - name: tw\n    account_sid: AC0123456789abcdef0123456789abcdef\n{auth}",
            "0".repeat(48),
            imported
                .map(|f| format!("    twilio_imported_fingerprint: {f}\n"))
                .unwrap_or_default(),
        );
        let config = crate::config::Config::from_yaml(
            &yaml,
            std::path::Path::new("t.yaml"),
            &std::collections::HashMap::<String, String>::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let el = match &config.credentials[0].spec {
            Spec::ElevenLabs(el) => el.clone(),
            _ => panic!("not elevenlabs"),
        };
        (el, config.credentials[1].clone())
    }

    fn path() -> CallPath {
        CallPath {
            name: "p".into(),
            caller: "el".into(),
            agent_id: "agent_1".into(),
            phone_number_id: "phnum_1".into(),
            carrier: "tw".into(),
            destinations: vec![],
            critical: true,
            imported_fingerprint: None,
            labels: Default::default(),
        }
    }

    fn linked(cred: Credential, changed: bool) -> Linked {
        Linked {
            cred: std::sync::Arc::new(cred),
            changed_at: changed.then(std::time::SystemTime::now),
            usable: Some(true),
        }
    }

    #[test]
    fn a_token_rotated_since_the_import_needs_a_reimport() {
        let (el, tw) = creds(None, false);
        let current = tw.fingerprint();
        // Nothing recorded, nothing seen: no rotation known (an inference).
        let o = import_link(&path(), &el, &linked(tw.clone(), false));
        assert_eq!((o.finding, o.inferred), (Finding::Proven, true));
        // A change seen while running.
        let o = import_link(&path(), &el, &linked(tw.clone(), true));
        assert_eq!(o.finding, Finding::Broken(LinkProblem::ReimportNeeded));
        // The recorded fingerprint decides, the path's before the credential's.
        let (el, tw) = creds(Some("5ca1ab1e0000"), false);
        let o = import_link(&path(), &el, &linked(tw.clone(), false));
        assert_eq!(o.finding, Finding::Broken(LinkProblem::ReimportNeeded));
        assert!(
            o.evidence.detail.contains(&current),
            "{}",
            o.evidence.detail
        );
        let mut confirmed = path();
        confirmed.imported_fingerprint = Some(current.clone());
        let o = import_link(&confirmed, &el, &linked(tw.clone(), true));
        assert_eq!(
            o.finding,
            Finding::Proven,
            "the path's fingerprint is the current one"
        );
        // Watched through an API key: the Auth Token's rotation cannot be seen.
        let (el, tw) = creds(None, true);
        let o = import_link(&path(), &el, &linked(tw, true));
        assert_eq!((o.finding, o.inferred), (Finding::Proven, true));
        assert!(
            o.evidence.detail.contains("API key"),
            "{}",
            o.evidence.detail
        );
    }
}
