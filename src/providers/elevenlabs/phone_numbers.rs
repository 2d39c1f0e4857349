//! Can this ElevenLabs account place outbound calls through Twilio?
//!
//! Lists the Twilio numbers imported into Conversational AI, checks each
//! one's outbound capability and agent, and — with the linked Twilio
//! credential — whether the number is on that Twilio account. ElevenLabs
//! never reveals which Twilio credentials it stores, so a rotation of the
//! linked credential is reported as "re-import needed" until the operator
//! confirms the re-import (`twilio_imported_fingerprint`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use crate::providers::json::{Lenient, Scalar};
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use tokio::time::Instant;

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

/// Lookups (agents, Twilio numbers) of one cross-check in flight at most.
pub const LOOKUP_CONCURRENCY: usize = 4;

/// The Twilio credential that owns the imported numbers.
pub type LinkedTwilio = crate::providers::Linked;

/// One entry of the phone-number list: only the fields credwatch reads.
/// Every field is read leniently (a value of another type is absent), in
/// one pass without buffering (`providers::json`).
#[derive(Deserialize)]
struct Imported {
    provider: Option<Scalar>,
    supports_outbound: Option<Scalar>,
    #[serde(default)]
    assigned_agent: Lenient<AssignedAgent>,
    phone_number_id: Option<Scalar>,
    phone_number: Option<Scalar>,
    label: Option<Scalar>,
}

#[derive(Deserialize)]
struct AssignedAgent {
    agent_id: Option<Scalar>,
}

/// An agent: only its audio formats.
#[derive(Deserialize, Default)]
struct AgentBody {
    #[serde(default)]
    conversation_config: Lenient<ConversationConfig>,
}

#[derive(Deserialize, Default)]
struct ConversationConfig {
    #[serde(default)]
    tts: Lenient<Tts>,
    #[serde(default)]
    asr: Lenient<Asr>,
}

#[derive(Deserialize)]
struct Tts {
    agent_output_audio_format: Option<Scalar>,
}

#[derive(Deserialize)]
struct Asr {
    user_input_audio_format: Option<Scalar>,
}

/// An agent looked up: its (TTS, ASR) formats, or `None` when it does not exist.
type AgentLook = Option<(String, String)>;

/// The format an agent uses when its config names none.
const DEFAULT_FORMAT: &str = "pcm_16000";

impl AgentBody {
    /// (TTS output, ASR input) formats, cleaned.
    fn formats(self) -> (String, String) {
        let config = self.conversation_config.0.unwrap_or_default();
        let tts = config
            .tts
            .0
            .and_then(|t| Scalar::string(t.agent_output_audio_format));
        let asr = config
            .asr
            .0
            .and_then(|a| Scalar::string(a.user_input_audio_format));
        (
            clean(tts.as_deref().unwrap_or(DEFAULT_FORMAT)),
            clean(asr.as_deref().unwrap_or(DEFAULT_FORMAT)),
        )
    }

    fn default_formats() -> (String, String) {
        (DEFAULT_FORMAT.into(), DEFAULT_FORMAT.into())
    }
}

/// Why lookups stopped being sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    RateLimited(Option<Duration>),
    Deadline,
}

/// The lookups of one cross-check: a shared deadline, and a stop at the
/// first 429 (what was not looked at stays unknown).
struct Lookups {
    deadline: Instant,
    stopped: Mutex<Option<Stop>>,
}

impl Lookups {
    fn new(deadline: Instant) -> Self {
        Lookups {
            deadline,
            stopped: Mutex::new(None),
        }
    }

    fn stopped(&self) -> Option<Stop> {
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&self, why: Stop) {
        let mut stopped = self.stopped.lock().unwrap_or_else(|p| p.into_inner());
        match (*stopped, why) {
            (None, _) | (Some(Stop::Deadline), Stop::RateLimited(_)) => *stopped = Some(why),
            (Some(Stop::RateLimited(a)), Stop::RateLimited(b)) => {
                *stopped = Some(Stop::RateLimited(a.max(b)))
            }
            _ => {}
        }
    }

    fn rate_limited(&self, retry_after: Option<Duration>) {
        self.stop(Stop::RateLimited(retry_after));
    }

    /// Runs one lookup unless the cross-check has stopped; `None`: no answer.
    /// (`lookup` is not polled, so sends nothing, when it has stopped.)
    async fn run<T>(&self, lookup: impl std::future::Future<Output = Option<T>>) -> Option<T> {
        if self.stopped().is_some() {
            return None;
        }
        if Instant::now() >= self.deadline {
            self.stop(Stop::Deadline);
            return None;
        }
        match tokio::time::timeout_at(self.deadline, lookup).await {
            Ok(found) => found,
            Err(_) => {
                self.stop(Stop::Deadline);
                None
            }
        }
    }

    fn why_not(&self) -> String {
        match self.stopped() {
            Some(Stop::RateLimited(_)) => {
                "not looked up: upstream answered 429, so the cross-check stopped".into()
            }
            Some(Stop::Deadline) => "not looked up within the cross-check's deadline".into(),
            None => "no answer".into(),
        }
    }

    /// The note for the evidence, and the `Retry-After` to honour.
    fn outcome(&self) -> (String, Option<Duration>) {
        match self.stopped() {
            Some(Stop::RateLimited(retry_after)) => (
                "; upstream answered 429, so the remaining lookups were not sent".into(),
                retry_after,
            ),
            Some(Stop::Deadline) => (
                "; the cross-check's deadline passed before every lookup was answered".into(),
                None,
            ),
            None => (String::new(), None),
        }
    }
}

/// What one cross-check found, and how long upstream asked it to wait
/// (`Retry-After` of a 429 that stopped it).
pub struct CrossCheck {
    pub attempt: Attempt,
    pub retry_after: Option<Duration>,
}

impl From<Attempt> for CrossCheck {
    fn from(attempt: Attempt) -> Self {
        let retry_after = attempt.result.as_ref().err().and_then(|f| f.retry_after);
        CrossCheck {
            attempt,
            retry_after,
        }
    }
}

/// The cross-check, its lookups bounded by `deadline` (the list itself
/// has the credential's `timeout`).
pub async fn check(
    cred: &Credential,
    el: &ElevenLabs,
    ctx: &Context<'_>,
    deadline: Instant,
) -> CrossCheck {
    let clock = Clock::start();
    let auth = el.auth();
    let answer = match ctx
        .upstream
        .get(Provider::ElevenLabs, &el.base_url, PATH, auth, cred.timeout)
        .await
    {
        Ok(a) => a,
        Err(e) => return clock.failed(CHECK, PATH, e).into(),
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
    // An entry that is not an object is skipped, like one without an id.
    let items: Vec<Lenient<Imported>> = match classify(&answer, &body) {
        Meaning::Ok => match serde_json::from_slice(&answer.body) {
            Ok(items) => items,
            Err(_) => {
                evidence.detail = "HTTP 200 but the phone-number list could not be read".into();
                return clock
                    .finish(
                        CHECK,
                        evidence,
                        Err(Failure::new(Reason::UnexpectedResponse)),
                    )
                    .into();
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
            return clock
                .finish(
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
                )
                .into();
        }
        Meaning::Invalid(problem) => {
            evidence.detail = "the key was rejected".into();
            return clock
                .finish(
                    CHECK,
                    evidence,
                    Ok(vec![Fact::Invalid {
                        problem: problem.into(),
                    }]),
                )
                .into();
        }
        Meaning::Failure(reason, detail) => {
            evidence.detail = detail.into();
            return clock
                .finish(CHECK, evidence, Err(answer.failure(reason)))
                .into();
        }
        other => {
            evidence.detail = format!("unexpected answer to the phone-number list: {other}").into();
            return clock
                .finish(
                    CHECK,
                    evidence,
                    Err(Failure::new(Reason::UnexpectedResponse)),
                )
                .into();
        }
    };

    // One entry per phone_number_id: a duplicate id is folded into the first.
    let mut seen = BTreeSet::new();
    let mut numbers: Vec<PhoneNumber> = items
        .into_iter()
        .filter_map(|i| i.0)
        .filter_map(|i| {
            if let Some(Scalar::Str(p)) = &i.provider
                && p != "twilio"
            {
                return None;
            }
            let mut problems = Vec::new();
            match Scalar::boolean(i.supports_outbound) {
                Some(true) => {}
                Some(false) => problems.push(PhoneProblem::NotOutboundCapable),
                None => problems.push(PhoneProblem::OutboundUnknown),
            }
            let agent_id = i
                .assigned_agent
                .0
                .and_then(|a| Scalar::string(a.agent_id))
                .map(|a| clean(&a));
            if agent_id.is_none() {
                problems.push(PhoneProblem::NoAgent);
            }
            let id = clean(&Scalar::string(i.phone_number_id)?);
            if !seen.insert(id.clone()) {
                return None;
            }
            Some(PhoneNumber {
                phone_number_id: id,
                number: clean_to(&Scalar::string(i.phone_number).unwrap_or_default(), 32),
                label: clean(&Scalar::string(i.label).unwrap_or_default()),
                agent_id,
                agent_formats: None,
                problems,
                twilio_changed_at: None,
            })
        })
        .collect();
    // One series per number up to `max_phone_numbers` (by id, so the same
    // ones every cycle); the rest are counted, not looked at.
    numbers.sort_by(|a, b| a.phone_number_id.cmp(&b.phone_number_id));
    let left_out = numbers.len().saturating_sub(el.max_phone_numbers);
    numbers.truncate(el.max_phone_numbers);

    // Each distinct agent once, a few at a time, within the deadline.
    let lookups = Lookups::new(deadline);
    let agents: BTreeSet<String> = numbers.iter().filter_map(|n| n.agent_id.clone()).collect();
    let lookups_ref = &lookups;
    let agent_lookups: Vec<_> = agents
        .into_iter()
        .map(|agent| {
            let lookups = lookups_ref;
            async move {
                let path = format!("/v1/convai/agents/{agent}");
                if crate::providers::http::check_read_path(Provider::ElevenLabs, &path).is_err() {
                    return (agent, None);
                }
                let found = lookups
                    .run(async {
                        let a = ctx
                            .upstream
                            .get(
                                Provider::ElevenLabs,
                                &el.base_url,
                                &path,
                                auth,
                                cred.timeout,
                            )
                            .await
                            .ok()?;
                        if a.status == 429 {
                            lookups.rate_limited(a.retry_after);
                            return None;
                        }
                        if a.status == 200 {
                            let formats = serde_json::from_slice::<AgentBody>(&a.body)
                                .ok()
                                .map(|b| b.formats())
                                .unwrap_or_else(AgentBody::default_formats);
                            return Some(Some(formats));
                        }
                        (classify(&a, &parse_body(&a)) == Meaning::AgentNotFound).then_some(None)
                    })
                    .await;
                (agent, found)
            }
        })
        .collect();
    let found: Vec<(String, Option<AgentLook>)> = stream::iter(agent_lookups)
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .collect()
        .await;
    let formats: BTreeMap<String, Option<(String, String)>> = found
        .into_iter()
        .filter_map(|(agent, found)| found.map(|f| (agent, f)))
        .collect();
    let unknown_agents = numbers
        .iter()
        .filter_map(|n| n.agent_id.as_ref())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|a| !formats.contains_key(*a))
        .count();
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
            None => n.problems.push(PhoneProblem::AgentUnchecked),
        }
    }

    // The linked Twilio account: does it own the numbers, and is the credential the imported one?
    let mut twilio_note = String::new();
    if let Some(linked) = ctx.linked
        && let Spec::Twilio(tw) = &linked.cred.spec
    {
        let owner_lookups: Vec<_> = numbers
            .iter()
            .map(|n| n.number.clone())
            .map(|number| {
                let lookups = lookups_ref;
                async move {
                    if number.is_empty() {
                        return None;
                    }
                    let owned = lookups
                        .run(async {
                            let mut owned = Ok(false);
                            for list in [NumberList::Incoming, NumberList::CallerIds] {
                                owned =
                                    twilio::has_number(&linked.cred, tw, ctx, list, &number).await;
                                if !matches!(owned, Ok(false)) {
                                    break;
                                }
                            }
                            Some(owned.map_err(|e| {
                                if e.rate_limited {
                                    lookups.rate_limited(e.retry_after);
                                }
                                e.message
                            }))
                        })
                        .await;
                    Some(owned.unwrap_or_else(|| Err(lookups.why_not())))
                }
            })
            .collect();
        let owned: Vec<Option<Result<bool, String>>> = stream::iter(owner_lookups)
            .buffered(LOOKUP_CONCURRENCY)
            .collect()
            .await;
        let mut unchecked = None;
        for (n, owned) in numbers.iter_mut().zip(owned) {
            let Some(owned) = owned else { continue };
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
    let (stopped, retry_after) = lookups.outcome();
    let beyond = if left_out > 0 {
        format!(" (and {left_out} more beyond max_phone_numbers, not checked)")
    } else {
        String::new()
    };
    evidence.detail = format!(
        "{} Twilio number(s) imported{beyond}, {ready} ready{}{twilio_note}{stopped}",
        numbers.len(),
        if unknown_agents > 0 {
            format!("; {unknown_agents} agent(s) could not be read")
        } else {
            String::new()
        }
    )
    .into();
    let attempt = clock.finish(
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
            Detail::PhoneNumbers { numbers, left_out }.into(),
        ]),
    );
    CrossCheck {
        attempt,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_entries_and_fields_are_skipped_without_failing_the_list() {
        let body = r#"[1, "x", [], {"phone_number_id": "p1", "supports_outbound": "yes",
            "assigned_agent": "agent_x", "label": [1, [2, {"a": 3}]], "phone_number": 15},
            {"phone_number_id": "p2", "provider": "twilio", "supports_outbound": true,
            "assigned_agent": {"agent_id": "agent_y", "extra": {"deep": [1, 2]}}}]"#;
        let items: Vec<Lenient<Imported>> = serde_json::from_str(body).expect("parses");
        let items: Vec<Imported> = items.into_iter().filter_map(|i| i.0).collect();
        assert_eq!(items.len(), 2);
        let first = &items[0];
        assert_eq!(
            Scalar::string(first.phone_number_id.clone()).as_deref(),
            Some("p1")
        );
        assert_eq!(Scalar::boolean(first.supports_outbound.clone()), None);
        assert!(first.assigned_agent.0.is_none());
        assert_eq!(Scalar::string(first.label.clone()), None);
        assert_eq!(Scalar::string(first.phone_number.clone()), None);
        let second = &items[1];
        assert_eq!(
            Scalar::boolean(second.supports_outbound.clone()),
            Some(true)
        );
        let agent = second
            .assigned_agent
            .0
            .as_ref()
            .and_then(|a| Scalar::string(a.agent_id.clone()));
        assert_eq!(agent.as_deref(), Some("agent_y"));
    }

    #[test]
    fn an_agent_without_formats_uses_the_default_and_odd_shapes_are_absent() {
        let f = |body: &str| {
            serde_json::from_str::<AgentBody>(body)
                .map(AgentBody::formats)
                .unwrap_or_else(|_| AgentBody::default_formats())
        };
        assert_eq!(f("{}"), ("pcm_16000".into(), "pcm_16000".into()));
        assert_eq!(
            f(
                r#"{"conversation_config": {"tts": {"agent_output_audio_format": "ulaw_8000"}, "asr": 7}}"#
            ),
            ("ulaw_8000".into(), "pcm_16000".into())
        );
        assert_eq!(
            f(r#"{"conversation_config": [1, 2, 3]}"#),
            ("pcm_16000".into(), "pcm_16000".into())
        );
    }
}
