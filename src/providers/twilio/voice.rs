//! Twilio's links of a call path: is the calling number on the account and
//! able to make voice calls, and may the account call each destination
//! country (Voice API dialing permissions)? GET only, one request each.

use serde::Deserialize;

use super::Twilio;
use super::checks::{get, get_at};
use super::classify::{Meaning, classify, error_code};
use crate::providers::http::Answer;
use crate::providers::link::{Finding, Link, LinkProblem, Observation};
use crate::providers::outcome::{Clean, Evidence, Reason, clean};
use crate::providers::{Context, Credential};

#[derive(Deserialize)]
struct Capabilities {
    voice: Option<bool>,
}

#[derive(Deserialize)]
struct Incoming {
    phone_number: Option<String>,
    capabilities: Option<Capabilities>,
}

#[derive(Deserialize)]
struct CallerId {
    phone_number: Option<String>,
}

#[derive(Deserialize)]
struct IncomingPage {
    #[serde(default)]
    incoming_phone_numbers: Vec<Incoming>,
}

#[derive(Deserialize)]
struct CallerIdPage {
    #[serde(default)]
    outgoing_caller_ids: Vec<CallerId>,
}

#[derive(Deserialize)]
struct Country {
    low_risk_numbers_enabled: Option<bool>,
    name: Option<String>,
}

fn evidence(path: &str, answer: &Answer, detail: String) -> Evidence {
    answer.evidence(path, error_code(answer).map(|c| c.to_string()), detail)
}

/// Why an answer that is not 200 is no finding about the link.
fn unknown(meaning: Meaning, answer: &Answer) -> (Reason, String) {
    match meaning {
        Meaning::Failure(reason, detail) => (reason, detail),
        Meaning::Authenticate | Meaning::NotActive | Meaning::Suspended => (
            Reason::UnexpectedResponse,
            "the Twilio credential was refused; its own verdict says why".into(),
        ),
        Meaning::Restricted => (
            Reason::UnexpectedResponse,
            "this API key may not read the resource (70051)".into(),
        ),
        other => (
            Reason::UnexpectedResponse,
            format!("HTTP {} ({other:?})", answer.status),
        ),
    }
}

fn lookup_path(tw: &Twilio, resource: &str, number: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("PhoneNumber", number)
        .append_pair("PageSize", "20")
        .finish();
    format!("/2010-04-01/Accounts/{}/{resource}?{query}", tw.account_sid)
}

/// The calling number (E.164, as ElevenLabs has it) on the account: an
/// incoming number whose `capabilities.voice` is true, or a verified caller
/// id. Twilio's `PhoneNumber=` filter also matches partial numbers, so the
/// answer is compared exactly.
pub async fn number_link(
    cred: &Credential,
    tw: &Twilio,
    ctx: &Context<'_>,
    number: &str,
) -> Observation {
    let link = Link::CarrierNumber;
    let path = lookup_path(tw, "IncomingPhoneNumbers.json", number);
    let answer = match get(ctx, tw, cred, &path).await {
        Ok(a) => a,
        Err(e) => return failed(link, &path, &e),
    };
    if let Some((finding, detail, inferred)) = incoming_outcome(number, &answer) {
        let mut o = Observation::new(link, finding, evidence(&path, &answer, detail));
        o.inferred = inferred;
        return o;
    }
    // Not a purchased number: a verified caller id can also be `From`.
    let path = lookup_path(tw, "OutgoingCallerIds.json", number);
    let answer = match get(ctx, tw, cred, &path).await {
        Ok(a) => a,
        Err(e) => return failed(link, &path, &e),
    };
    let (finding, detail) = caller_id_outcome(number, &tw.account_sid, &answer);
    Observation::new(link, finding, evidence(&path, &answer, detail))
}

/// What the incoming-number lookup means: `None` when the number is not
/// among them (ask the caller ids next); else the finding, its words and
/// whether it is an inference. Pure, so it is unit-tested.
pub fn incoming_outcome(number: &str, answer: &Answer) -> Option<(Finding, String, bool)> {
    let meaning = classify(answer);
    if meaning != Meaning::Ok {
        let (reason, detail) = unknown(meaning, answer);
        return Some((Finding::Unknown(reason), detail, false));
    }
    let Ok(page) = serde_json::from_slice::<IncomingPage>(&answer.body) else {
        return Some((
            Finding::Unknown(Reason::UnexpectedResponse),
            "HTTP 200 but the list could not be read".into(),
            false,
        ));
    };
    let n = page
        .incoming_phone_numbers
        .iter()
        .find(|n| n.phone_number.as_deref() == Some(number))?;
    Some(match n.capabilities.as_ref().and_then(|c| c.voice) {
        Some(true) => (
            Finding::Proven,
            format!("{number} is an incoming number of the account with voice capability"),
            false,
        ),
        Some(false) => (
            Finding::Broken(LinkProblem::NumberNotVoiceCapable),
            format!("{number} is on the account, but its capabilities.voice is false"),
            true,
        ),
        None => (
            Finding::Unknown(Reason::UnexpectedResponse),
            format!(
                "{number} is on the account, but Twilio did not say whether it can make voice calls"
            ),
            false,
        ),
    })
}

/// What the verified-caller-id lookup means for a number that is not an
/// incoming one. Pure.
pub fn caller_id_outcome(number: &str, account_sid: &str, answer: &Answer) -> (Finding, String) {
    let meaning = classify(answer);
    if meaning != Meaning::Ok {
        let (reason, detail) = unknown(meaning, answer);
        return (Finding::Unknown(reason), detail);
    }
    let Ok(page) = serde_json::from_slice::<CallerIdPage>(&answer.body) else {
        return (
            Finding::Unknown(Reason::UnexpectedResponse),
            "HTTP 200 but the list could not be read".into(),
        );
    };
    if page
        .outgoing_caller_ids
        .iter()
        .any(|n| n.phone_number.as_deref() == Some(number))
    {
        (
            Finding::Proven,
            format!("{number} is a verified caller id of the account"),
        )
    } else {
        (
            Finding::Broken(LinkProblem::NumberNotOnTwilioAccount),
            format!(
                "{number} is neither an incoming number nor a verified caller id of {account_sid}"
            ),
        )
    }
}

/// `GET {voice_base_url}/v1/DialingPermissions/Countries/{iso}`:
/// `low_risk_numbers_enabled` says whether calls to ordinary numbers of the
/// country are allowed by the account's geo permissions.
pub async fn destination_link(
    cred: &Credential,
    tw: &Twilio,
    ctx: &Context<'_>,
    iso: &str,
) -> Observation {
    let link = Link::Destination(iso.to_string());
    let path = format!("/v1/DialingPermissions/Countries/{iso}");
    let answer = match get_at(ctx, tw, cred, &tw.voice_base_url, &path).await {
        Ok(a) => a,
        Err(e) => return failed(link, &path, &e),
    };
    let (finding, detail) = destination_outcome(iso, &answer);
    Observation::new(link, finding, evidence(&path, &answer, detail))
}

/// What a dialing-permission answer means: pure, so the corpus replays it.
pub fn destination_outcome(iso: &str, answer: &Answer) -> (Finding, String) {
    match classify(answer) {
        Meaning::Ok => match serde_json::from_slice::<Country>(&answer.body) {
            Ok(Country {
                low_risk_numbers_enabled: Some(enabled),
                name,
            }) => {
                let name = name.map(|n| clean(&n)).unwrap_or_else(|| iso.to_string());
                if enabled {
                    (
                        Finding::Proven,
                        format!(
                            "calls to {name} ({iso}) are allowed (low_risk_numbers_enabled: true)"
                        ),
                    )
                } else {
                    (
                        Finding::Broken(LinkProblem::DestinationBlocked),
                        format!(
                            "calls to {name} ({iso}) are blocked by the account's geo permissions (low_risk_numbers_enabled: false)"
                        ),
                    )
                }
            }
            _ => (
                Finding::Unknown(Reason::UnexpectedResponse),
                "HTTP 200 without low_risk_numbers_enabled".into(),
            ),
        },
        Meaning::NotFound => (
            Finding::Broken(LinkProblem::DestinationBlocked),
            format!("Twilio has no dialing permissions for {iso} (404 20404): it cannot be called"),
        ),
        other => {
            let (reason, detail) = unknown(other, answer);
            (Finding::Unknown(reason), detail)
        }
    }
}

fn failed(link: Link, path: &str, e: &crate::providers::http::TransportError) -> Observation {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer::json(status, body)
    }

    // The spec's example answer, with low-risk dialing on and off.
    const US_OFF: &str = r#"{"iso_code":"US","name":"United States/Canada","country_codes":["+1"],"continent":"NORTH_AMERICA","low_risk_numbers_enabled":false,"high_risk_special_numbers_enabled":false,"high_risk_tollfraud_numbers_enabled":false,"url":"https://voice.twilio.com/v1/DialingPermissions/Countries/US","links":{"highrisk_special_prefixes":"https://voice.twilio.com/v1/DialingPermissions/Countries/US/HighRiskSpecialPrefixes"}}"#;

    #[test]
    fn low_risk_dialing_decides_the_destination() {
        let (f, detail) = destination_outcome("US", &answer(200, US_OFF));
        assert_eq!(f, Finding::Broken(LinkProblem::DestinationBlocked));
        assert!(
            detail.contains("United States/Canada (US) are blocked"),
            "{detail}"
        );
        let on = US_OFF.replace(
            r#""low_risk_numbers_enabled":false"#,
            r#""low_risk_numbers_enabled":true"#,
        );
        assert_eq!(
            destination_outcome("US", &answer(200, &on)).0,
            Finding::Proven
        );
    }

    const N: &str = "+14155550101";

    #[test]
    fn the_number_must_be_on_the_account_with_voice_capability() {
        let incoming = |voice: &str| {
            format!(
                r#"{{"incoming_phone_numbers":[{{"phone_number":"+141555501011","capabilities":{{"voice":true}}}},{{"phone_number":"{N}","capabilities":{{"voice":{voice},"sms":true}}}}],"next_page_uri":null}}"#
            )
        };
        let (f, _, inferred) = incoming_outcome(N, &answer(200, &incoming("true"))).expect("found");
        assert_eq!((f, inferred), (Finding::Proven, false));
        let (f, detail, inferred) =
            incoming_outcome(N, &answer(200, &incoming("false"))).expect("found");
        assert_eq!(
            (f, inferred),
            (Finding::Broken(LinkProblem::NumberNotVoiceCapable), true)
        );
        assert!(detail.contains("capabilities.voice is false"), "{detail}");
        let (f, _, _) = incoming_outcome(N, &answer(200, &incoming("null"))).expect("found");
        assert_eq!(
            f,
            Finding::Unknown(Reason::UnexpectedResponse),
            "null proves nothing"
        );
        // A partial match (Twilio's filter) is not the number: ask the caller ids.
        let partial = r#"{"incoming_phone_numbers":[{"phone_number":"+141555501011","capabilities":{"voice":true}}]}"#;
        assert_eq!(incoming_outcome(N, &answer(200, partial)), None);
        assert_eq!(
            incoming_outcome(
                N,
                &answer(
                    401,
                    r#"{"code":20003,"message":"Authenticate","status":401}"#
                )
            )
            .map(|o| o.0),
            Some(Finding::Unknown(Reason::UnexpectedResponse))
        );
        assert_eq!(
            incoming_outcome(
                N,
                &answer(
                    503,
                    r#"{"code":20503,"message":"Service unavailable","status":503}"#
                )
            )
            .map(|o| o.0),
            Some(Finding::Unknown(Reason::UpstreamError))
        );
    }

    #[test]
    fn a_verified_caller_id_can_call_and_no_match_is_not_on_the_account() {
        let ids = format!(r#"{{"outgoing_caller_ids":[{{"phone_number":"{N}"}}]}}"#);
        assert_eq!(
            caller_id_outcome(N, "AC1", &answer(200, &ids)).0,
            Finding::Proven
        );
        let none = r#"{"outgoing_caller_ids":[]}"#;
        let (f, detail) = caller_id_outcome(N, "AC1", &answer(200, none));
        assert_eq!(f, Finding::Broken(LinkProblem::NumberNotOnTwilioAccount));
        assert!(detail.contains("neither an incoming number nor a verified caller id of AC1"));
        assert_eq!(
            caller_id_outcome(
                N,
                "AC1",
                &answer(
                    429,
                    r#"{"code":20429,"message":"Too Many Requests","status":429}"#
                )
            )
            .0,
            Finding::Unknown(Reason::RateLimited)
        );
    }

    #[test]
    fn only_a_definitive_answer_decides_a_destination() {
        let not_found = r#"{"code":20404,"message":"The requested resource /v1/DialingPermissions/Countries/ZZ was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}"#;
        assert_eq!(
            destination_outcome("ZZ", &answer(404, not_found)).0,
            Finding::Broken(LinkProblem::DestinationBlocked)
        );
        for (status, body, reason) in [
            (
                503,
                r#"{"code":20503,"message":"Service unavailable","status":503}"#,
                Reason::UpstreamError,
            ),
            (
                429,
                r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
                Reason::RateLimited,
            ),
            (200, r#"{"iso_code":"US"}"#, Reason::UnexpectedResponse),
            (
                401,
                r#"{"code":20003,"message":"Authenticate","status":401}"#,
                Reason::UnexpectedResponse,
            ),
        ] {
            assert_eq!(
                destination_outcome("US", &answer(status, body)).0,
                Finding::Unknown(reason),
                "{status} {body}"
            );
        }
    }
}
