//! Can this ElevenLabs account place outbound calls through Twilio?
//!
//! Lists the Twilio numbers imported into Conversational AI, checks each
//! one's outbound capability and agent, and — with the linked Twilio
//! credential — whether the number is on that Twilio account. ElevenLabs
//! never reveals which Twilio credentials it stores, so a rotation of the
//! linked credential is reported as "re-import needed" until the operator
//! confirms the re-import (`twilio_imported_fingerprint`).

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::ElevenLabs;
use super::facts::{Detail, PhoneNumber, PhoneProblem};
use super::{Body, Meaning, classify, parse_body};
use crate::outcome::{Attempt, Basis, Clean, Evidence, Fact, Failure, Reason, clean, clean_to};
use crate::providers::twilio::TwilioAuth;
use crate::providers::twilio::{self, NumberList};
use crate::providers::{Clock, Context};
use crate::providers::{Credential, Provider, Spec};

pub const CHECK: &str = "phone_numbers";
const PATH: &str = "/v1/convai/phone-numbers?provider=twilio";

/// The Twilio credential that owns the imported numbers.
pub type LinkedTwilio = crate::providers::Linked;

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

pub async fn check(cred: &Credential, el: &ElevenLabs, ctx: &Context<'_>) -> Attempt {
    let clock = Clock::start();
    let auth = el.auth();
    let answer = match ctx
        .upstream
        .get(Provider::ElevenLabs, &el.base_url, PATH, auth, cred.timeout)
        .await
    {
        Ok(a) => a,
        Err(e) => return clock.failed(CHECK, PATH, e),
    };
    let body = if answer.status == 200 {
        Body::OtherJson
    } else {
        parse_body(&answer)
    };
    let mut evidence = Evidence {
        request: Clean::request(PATH),
        http_status: Some(answer.status),
        request_id: answer.request_id.as_deref().map(Clean::new),
        ..Evidence::default()
    };
    if let Body::Error(f) = &body {
        evidence.upstream_code = f.key().map(Clean::new);
        evidence.permission = f.permission().as_deref().map(Clean::new);
    }
    let items: Vec<Value> = match classify(&answer, &body) {
        Meaning::Ok => match serde_json::from_slice(&answer.body) {
            Ok(items) => items,
            Err(_) => {
                evidence.detail = "HTTP 200 but the phone-number list could not be read".into();
                return clock.finish(
                    CHECK,
                    evidence,
                    Err(Failure::new(Reason::UnexpectedResponse)),
                );
            }
        },
        Meaning::MissingPermission(p) => {
            // Named by upstream, or the permission this listing is thought to need.
            let basis = if p.is_some() {
                Basis::Direct
            } else {
                Basis::Inferred
            };
            let p = p.unwrap_or_else(|| "convai_read".into());
            evidence.detail = format!(
                "the key may not list phone numbers (missing `{p}`); `phone_numbers: true` needs convai_read"
            ).into();
            return clock.finish(
                CHECK,
                evidence,
                Ok(vec![
                    Fact::Valid,
                    Fact::Permission {
                        name: p,
                        granted: false,
                        basis,
                    },
                    Detail::PhoneNumbersUnreadable.into(),
                ]),
            );
        }
        Meaning::Invalid(problem) => {
            evidence.detail = "the key was rejected".into();
            return clock.finish(
                CHECK,
                evidence,
                Ok(vec![Fact::Invalid {
                    problem: problem.into(),
                }]),
            );
        }
        Meaning::Failure(reason, detail) => {
            evidence.detail = detail.into();
            return clock.finish(CHECK, evidence, Err(answer.failure(reason)));
        }
        other => {
            evidence.detail = format!("unexpected answer to the phone-number list: {other}").into();
            return clock.finish(
                CHECK,
                evidence,
                Err(Failure::new(Reason::UnexpectedResponse)),
            );
        }
    };

    let mut numbers: Vec<PhoneNumber> = items
        .iter()
        .filter(|i| str_at(i, &["provider"]).is_none_or(|p| p == "twilio"))
        .filter_map(|i| {
            let mut problems = Vec::new();
            match i.get("supports_outbound").and_then(Value::as_bool) {
                Some(true) => {}
                Some(false) => problems.push(PhoneProblem::NotOutboundCapable),
                None => problems.push(PhoneProblem::OutboundUnknown),
            }
            let agent_id = str_at(i, &["assigned_agent", "agent_id"]).map(clean);
            if agent_id.is_none() {
                problems.push(PhoneProblem::NoAgent);
            }
            Some(PhoneNumber {
                phone_number_id: clean(str_at(i, &["phone_number_id"])?),
                number: clean_to(str_at(i, &["phone_number"]).unwrap_or(""), 32),
                label: clean(str_at(i, &["label"]).unwrap_or("")),
                agent_id,
                agent_formats: None,
                problems,
                twilio_changed_at: None,
            })
        })
        .collect();

    // Each distinct agent once.
    let agents: HashSet<String> = numbers.iter().filter_map(|n| n.agent_id.clone()).collect();
    let mut formats: BTreeMap<String, Option<(String, String)>> = BTreeMap::new();
    let mut unknown_agents = 0;
    for agent in agents {
        let path = format!("/v1/convai/agents/{agent}");
        if crate::providers::http::check_read_path(Provider::ElevenLabs, &path).is_err() {
            unknown_agents += 1;
            continue;
        }
        match ctx
            .upstream
            .get(
                Provider::ElevenLabs,
                &el.base_url,
                &path,
                auth,
                cred.timeout,
            )
            .await
        {
            Ok(a) if a.status == 200 => {
                let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
                let tts = str_at(
                    &v,
                    &["conversation_config", "tts", "agent_output_audio_format"],
                )
                .unwrap_or("pcm_16000");
                let asr = str_at(
                    &v,
                    &["conversation_config", "asr", "user_input_audio_format"],
                )
                .unwrap_or("pcm_16000");
                formats.insert(agent, Some((clean(tts), clean(asr))));
            }
            Ok(a) if classify(&a, &parse_body(&a)) == Meaning::AgentNotFound => {
                formats.insert(agent, None);
            }
            _ => unknown_agents += 1,
        }
    }
    for n in &mut numbers {
        let Some(agent) = &n.agent_id else { continue };
        match formats.get(agent) {
            Some(Some(f)) => {
                if f.0 != "ulaw_8000" || f.1 != "ulaw_8000" {
                    n.problems.push(PhoneProblem::AgentNotUlaw);
                }
                n.agent_formats = Some(f.clone());
            }
            Some(None) => n.problems.push(PhoneProblem::AgentMissing),
            None => {}
        }
    }

    // The linked Twilio account: does it own the numbers, and is the credential the imported one?
    let mut twilio_note = String::new();
    if let Some(linked) = ctx.linked
        && let Spec::Twilio(tw) = &linked.cred.spec
    {
        let mut unchecked = None;
        for n in &mut numbers {
            if n.number.is_empty() {
                continue;
            }
            let mut owned = Ok(false);
            for list in [NumberList::Incoming, NumberList::CallerIds] {
                owned = twilio::has_number(&linked.cred, tw, ctx, list, &n.number).await;
                if !matches!(owned, Ok(false)) {
                    break;
                }
            }
            match owned {
                Ok(true) => {}
                Ok(false) => n.problems.push(PhoneProblem::NotOnTwilioAccount),
                Err(e) => {
                    n.problems.push(PhoneProblem::OwnershipUnchecked);
                    unchecked = Some(e);
                }
            }
            match linked.usable {
                Some(true) => {}
                Some(false) => n.problems.push(PhoneProblem::TwilioCredentialUnhealthy),
                None => n.problems.push(PhoneProblem::TwilioCredentialUnknown),
            }
        }
        if let Some(e) = unchecked {
            twilio_note = format!(
                "; ownership not fully checked: the linked Twilio credential `{}` could not look numbers up ({e})",
                linked.cred.name
            );
        }
        // ElevenLabs' native import stores an Account SID + Auth Token: only
        // a rotation of that secret can leave it stale. An API key's
        // rotation says nothing about the Auth Token.
        if matches!(tw.auth, TwilioAuth::AuthToken(_)) {
            let current = linked.cred.fingerprint();
            let stale = match &el.twilio_imported_fingerprint {
                Some(imported) => (imported != &current).then_some(None),
                None => linked.changed_at.map(Some),
            };
            if let Some(changed_at) = stale {
                for n in numbers
                    .iter_mut()
                    .filter(|n| !n.problems.contains(&PhoneProblem::NotOnTwilioAccount))
                {
                    n.problems.push(PhoneProblem::ReimportNeeded);
                    n.twilio_changed_at = changed_at;
                }
            }
        }
    }
    if ctx.linked.is_none() {
        // No `twilio:` link: nothing proves the numbers are on the account.
        for n in &mut numbers {
            n.problems.push(PhoneProblem::OwnershipUnchecked);
        }
    }
    for n in &mut numbers {
        n.problems.sort();
        n.problems.dedup();
    }
    let ready = numbers.iter().filter(|n| n.ready()).count();
    evidence.detail = format!(
        "{} Twilio number(s) imported, {ready} ready{}{twilio_note}",
        numbers.len(),
        if unknown_agents > 0 {
            format!("; {unknown_agents} agent(s) could not be read")
        } else {
            String::new()
        }
    )
    .into();
    clock.finish(
        CHECK,
        evidence,
        Ok(vec![
            Fact::Valid,
            // That this listing needs `convai_read` is inferred (elevenlabs-api.md §5.6).
            Fact::Permission {
                name: "convai_read".into(),
                granted: true,
                basis: Basis::Inferred,
            },
            Detail::PhoneNumbers { numbers }.into(),
        ]),
    )
}
