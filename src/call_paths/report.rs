//! A call path's part of `check`'s report: each link's status, evidence,
//! summary and fix (the data of `check --output json` and of the status
//! page; `check`'s text is [`crate::render::text`]'s).

use tokio::time::Instant;

use serde::Serialize;

use super::exposition::status;
use super::{LinkProblem, LinkView, PathState, Status};
use crate::outcome::Evidence;

/// One link in `check`'s report.
#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    pub link: &'static str,
    /// The country of a destination link, `null` for the others.
    pub country: Option<String>,
    /// `proven`, `broken` or `unknown`.
    pub status: &'static str,
    pub problem: Option<LinkProblem>,
    /// What was found (or why nothing was).
    pub summary: String,
    pub fix: Option<String>,
    /// The finding is an inference from the evidence, not a direct answer.
    pub inferred: bool,
    pub evidence: Option<Evidence>,
}

/// One call path in `check`'s report.
#[derive(Debug, Clone, Serialize)]
pub struct CallPathReport {
    pub name: String,
    pub critical: bool,
    /// The path's `labels:`.
    pub labels: crate::section::Labels,
    pub elevenlabs: String,
    pub twilio: String,
    pub agent_id: String,
    pub agent_phone_number_id: String,
    pub destinations: Vec<String>,
    /// `ready`, `broken` or `unknown`.
    pub status: &'static str,
    pub links: Vec<LinkReport>,
}

impl CallPathReport {
    pub fn ready(&self) -> bool {
        self.status == "ready"
    }
}

pub fn report(p: &PathState, now: Instant) -> CallPathReport {
    let links = p.links(now);
    CallPathReport {
        name: p.path.name.clone(),
        critical: p.path.critical,
        labels: p.path.labels.clone(),
        elevenlabs: p.path.caller.clone(),
        twilio: p.path.carrier.clone(),
        agent_id: p.path.agent_id.clone(),
        agent_phone_number_id: p.path.phone_number_id.clone(),
        destinations: p.path.destinations.clone(),
        status: status(&links),
        links: links.iter().map(|l| link_report(p, l)).collect(),
    }
}

fn link_report(p: &PathState, l: &LinkView) -> LinkReport {
    let (summary, fix) = words(p, l);
    LinkReport {
        link: l.link.as_str(),
        country: l.link.country().map(str::to_string),
        status: match l.status {
            Status::Proven => "proven",
            Status::Broken(_) => "broken",
            Status::Unknown(_) => "unknown",
        },
        problem: l.status.problem(),
        summary,
        fix,
        inferred: l.inferred,
        evidence: l.evidence.clone(),
    }
}

/// (summary, fix) for a link, in the words of the seeds where they apply.
fn words(p: &PathState, l: &LinkView) -> (String, Option<String>) {
    let path = &p.path;
    let detail = l
        .evidence
        .as_ref()
        .map(|e| e.detail.to_string())
        .filter(|d| !d.is_empty());
    let proven = |what: String| {
        let what = match &l.info {
            Some(info) => format!("{what} ({info})"),
            None => what,
        };
        let what = match l.last_failure {
            Some(r) => format!(
                "{what}; the last look got no answer ({}), the proof is kept for up to {}",
                r.as_str(),
                humantime::format_duration(p.grace)
            ),
            None => what,
        };
        (what, None)
    };
    let Some(problem) = l.status.problem() else {
        return match &l.link {
            super::Link::CallerCredential => proven(format!(
                "ElevenLabs credential `{}` is healthy",
                path.caller
            )),
            super::Link::ConvaiWrite if l.inferred => proven(format!(
                "`{}` holds convai_write (inferred: ElevenLabs is taken to check the permission before the agent; `credwatch calibrate` with `calibration_file:` proves it on your account)",
                path.caller
            )),
            super::Link::ConvaiWrite => proven(format!("`{}` holds convai_write", path.caller)),
            super::Link::CarrierCredential => {
                proven(format!("Twilio credential `{}` is healthy", path.carrier))
            }
            _ => proven(detail.unwrap_or_else(|| format!("{} proven", l.link.as_str()))),
        };
    };
    let unknown_detail = |what: &str| match &detail {
        Some(d) => format!("{what}: {d}"),
        None => format!("{what}: not looked at yet"),
    };
    let (summary, fix): (String, String) = match problem {
        LinkProblem::ElevenlabsCredentialUnhealthy => (
            format!(
                "ElevenLabs credential `{}` is unhealthy ({}): the call cannot be placed with it",
                path.caller,
                l.info.as_deref().unwrap_or("see its own report")
            ),
            format!("Fix `{}` first (see its entry above or `credwatch check --credential {}`).", path.caller, path.caller),
        ),
        LinkProblem::ElevenlabsCredentialUnknown => (
            format!("ElevenLabs credential `{}` has no verdict yet", path.caller),
            format!("Wait for its first definitive answer, or see why it has none in its own entry (`{}`).", path.caller),
        ),
        LinkProblem::ConvaiWriteMissing => (
            format!("`{}` lacks convai_write: ElevenLabs refuses to place the call", path.caller),
            "In ElevenLabs → Developers → API keys, edit the key (or create a new one) with Conversational AI set to Write, then update the secret credwatch and your application use.".into(),
        ),
        LinkProblem::ConvaiWriteUnknown => (
            format!("whether `{}` holds convai_write is not known", path.caller),
            "See the permission probe's answer in the credential's entry; `credwatch calibrate` proves the probe on your account.".into(),
        ),
        LinkProblem::AgentNotFound => (
            format!("agent `{}` does not exist on this ElevenLabs account", path.agent_id),
            "Check the agent_id your application passes; if the agent was deleted, recreate it and assign it to the number (ElevenLabs → Agents), then update agent_id here and in the application.".into(),
        ),
        LinkProblem::AgentUnknown => (unknown_detail("the agent could not be checked"), "Look at the evidence; nothing is known to be wrong yet.".into()),
        LinkProblem::PhoneNumberNotFound => (
            format!("imported number `{}` is not on this ElevenLabs account (inferred from a 404)", path.phone_number_id),
            "Check the agent_phone_number_id your application passes (ElevenLabs → Phone Numbers); if the number was removed, import it again with the Twilio Account SID and Auth Token.".into(),
        ),
        LinkProblem::PhoneNumberNotTwilio => (
            format!("imported number `{}` is not a Twilio number", path.phone_number_id),
            "This call path goes through Twilio: use a number imported from Twilio, or a call path of the number's own provider.".into(),
        ),
        LinkProblem::PhoneNumberNotOutboundCapable => (
            format!("ElevenLabs marks number `{}` as not supporting outbound calls", path.phone_number_id),
            "Use a number that supports outbound calls, or re-import it so ElevenLabs detects its capabilities again.".into(),
        ),
        LinkProblem::PhoneNumberUnknown => (unknown_detail("the imported number could not be checked"), "Look at the evidence; nothing is known to be wrong yet.".into()),
        LinkProblem::TwilioCredentialUnhealthy => (
            format!(
                "Twilio credential `{}` is unhealthy ({}): Twilio is likely to refuse the call with `Unable to create record: Authenticate` when ElevenLabs holds the same credentials",
                path.carrier,
                l.info.as_deref().unwrap_or("see its own report")
            ),
            format!("Fix `{}` first (see its entry above); then re-import the number in ElevenLabs with the current Account SID and Auth Token.", path.carrier),
        ),
        LinkProblem::TwilioCredentialUnknown => (
            format!("Twilio credential `{}` has no verdict yet", path.carrier),
            format!("Wait for its first definitive answer, or see why it has none in its own entry (`{}`).", path.carrier),
        ),
        LinkProblem::NumberNotOnTwilioAccount => (
            detail.unwrap_or_else(|| "the number is not on the Twilio account".into()),
            format!("Import the number from the Twilio account it belongs to, or point this call path's `twilio:` at that account's credential (now `{}`).", path.carrier),
        ),
        LinkProblem::NumberNotVoiceCapable => (
            format!("{} (inferred: a Twilio number without voice capability cannot be the caller of a voice call)", detail.unwrap_or_default()),
            "Use a voice-capable Twilio number (Console → Phone Numbers → Manage → Active numbers shows each number's capabilities) and import it into ElevenLabs.".into(),
        ),
        LinkProblem::TwilioNumberUnknown => (unknown_detail("the number could not be looked up on the Twilio account"), "Look at the evidence; nothing is known to be wrong yet.".into()),
        LinkProblem::ReimportNeeded => (
            format!("{} (inferred: ElevenLabs keeps the Auth Token the number was imported with and never shows it)", detail.unwrap_or_default()),
            format!(
                "Re-import the number in ElevenLabs (Phone Numbers → the number → re-import, or delete and import again) with the current Account SID and Auth Token of `{}`, then set `twilio_imported_fingerprint` on this call path to that credential's current fingerprint (shown in its entry).",
                path.carrier
            ),
        ),
        LinkProblem::ImportUnknown => (unknown_detail("the import could not be judged"), "Look at the evidence.".into()),
        LinkProblem::DestinationBlocked => (
            detail.unwrap_or_else(|| "calls to the country are blocked".into()),
            format!(
                "Enable the country in Twilio Console → Voice → Settings → Geo permissions (low-risk numbers of {}); calls to it otherwise fail with a geo-permission error such as 13227 or 21215.",
                l.link.country().unwrap_or("the country")
            ),
        ),
        LinkProblem::DestinationUnknown => (unknown_detail("the country's dialing permission could not be read"), "Look at the evidence; nothing is known to be wrong yet.".into()),
    };
    (summary, Some(fix))
}
