//! The vocabulary of a call path: what the application's outbound call
//! depends on, link by link, and what one look at a link found.
//!
//! A call path is what the application passes to place a call (`agent_id`,
//! `agent_phone_number_id`) with the credentials that call goes through.
//! Three of its links are credentials credwatch already checks on their own
//! `interval` (their verdicts are read, never re-asked); the others are
//! looked at every `detail_interval` by the provider that owns them, each
//! into one [`Observation`]. The readiness rule is `crate::call_paths`'.
//! A leaf: it names no provider and imports nothing above `outcome`.

use serde::Serialize;

use super::outcome::{Evidence, Reason};

/// One call path as validated (`call_paths[i]` of the config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallPath {
    /// The `call_path` label.
    pub name: String,
    /// The credential whose key places the call (an ElevenLabs credential).
    pub caller: String,
    /// What the application passes as `agent_id`.
    pub agent_id: String,
    /// What the application passes as `agent_phone_number_id`.
    pub phone_number_id: String,
    /// The credential of the carrier account that owns the number (Twilio).
    pub carrier: String,
    /// ISO 3166-1 alpha-2 codes of the countries the application dials.
    pub destinations: Vec<String>,
    /// A broken critical path makes `/health` 503.
    pub critical: bool,
    /// Routing labels (`labels:`), on `credwatch_call_path_info`.
    pub labels: crate::section::Labels,
    /// The carrier credential's fingerprint when the number was imported
    /// into ElevenLabs (`twilio_imported_fingerprint`): another one now
    /// means the number must be imported again.
    pub imported_fingerprint: Option<String>,
}

/// A link of a call path. The order is the order `check` shows them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "link", content = "country")]
pub enum Link {
    /// The caller's credential is healthy.
    CallerCredential,
    /// The caller's key holds `convai_write`.
    ConvaiWrite,
    /// The agent exists.
    Agent,
    /// The imported number exists on the caller's account, is a Twilio
    /// number, and is not marked outbound-incapable.
    PhoneNumber,
    /// The carrier's credential is healthy.
    CarrierCredential,
    /// The number is on the carrier's account and can make voice calls.
    CarrierNumber,
    /// The carrier's Auth Token has not been rotated since the number was
    /// imported (ElevenLabs keeps the token it was imported with).
    ImportCurrent,
    /// Calls to ordinary numbers of this country are allowed.
    Destination(String),
}

impl Link {
    pub fn as_str(&self) -> &'static str {
        match self {
            Link::CallerCredential => "caller_credential",
            Link::ConvaiWrite => "convai_write",
            Link::Agent => "agent",
            Link::PhoneNumber => "phone_number",
            Link::CarrierCredential => "carrier_credential",
            Link::CarrierNumber => "carrier_number",
            Link::ImportCurrent => "import_current",
            Link::Destination(_) => "destination",
        }
    }

    /// The country of a destination link.
    pub fn country(&self) -> Option<&str> {
        match self {
            Link::Destination(c) => Some(c),
            _ => None,
        }
    }

    /// The problem a link has while nothing proves it: never checked, or
    /// unknown for longer than the path's grace.
    pub fn unknown(&self) -> LinkProblem {
        match self {
            Link::CallerCredential => LinkProblem::ElevenlabsCredentialUnknown,
            Link::ConvaiWrite => LinkProblem::ConvaiWriteUnknown,
            Link::Agent => LinkProblem::AgentUnknown,
            Link::PhoneNumber => LinkProblem::PhoneNumberUnknown,
            Link::CarrierCredential => LinkProblem::TwilioCredentialUnknown,
            Link::CarrierNumber => LinkProblem::TwilioNumberUnknown,
            Link::ImportCurrent => LinkProblem::ImportUnknown,
            Link::Destination(_) => LinkProblem::DestinationUnknown,
        }
    }
}

/// Why a link is not proven: the stable, documented values of
/// `credwatch_call_path_problem_info{problem}` (`docs/metrics.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkProblem {
    /// The ElevenLabs credential is unhealthy (revoked, blocked, out of quota, …).
    ElevenlabsCredentialUnhealthy,
    /// The ElevenLabs credential has no verdict yet.
    ElevenlabsCredentialUnknown,
    /// Its key lacks `convai_write`.
    ConvaiWriteMissing,
    /// Whether its key holds `convai_write` is not known.
    ConvaiWriteUnknown,
    /// `GET /v1/convai/agents/{agent_id}` answered 404 `agent_not_found`.
    AgentNotFound,
    AgentUnknown,
    /// The `agent_phone_number_id` is not on the ElevenLabs account.
    PhoneNumberNotFound,
    /// The number is imported through another provider (SIP trunk, Exotel).
    PhoneNumberNotTwilio,
    /// ElevenLabs marks the number `supports_outbound: false`.
    PhoneNumberNotOutboundCapable,
    PhoneNumberUnknown,
    /// The Twilio credential is unhealthy (token rotated, account suspended, …).
    TwilioCredentialUnhealthy,
    TwilioCredentialUnknown,
    /// Neither an incoming number nor a verified caller id of the Twilio account.
    NumberNotOnTwilioAccount,
    /// An incoming number of the account whose `capabilities.voice` is false.
    NumberNotVoiceCapable,
    TwilioNumberUnknown,
    /// The Auth Token changed since the number was imported.
    ReimportNeeded,
    ImportUnknown,
    /// Low-risk dialing to the country is off in the account's geo permissions.
    DestinationBlocked,
    DestinationUnknown,
}

impl LinkProblem {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkProblem::ElevenlabsCredentialUnhealthy => "elevenlabs_credential_unhealthy",
            LinkProblem::ElevenlabsCredentialUnknown => "elevenlabs_credential_unknown",
            LinkProblem::ConvaiWriteMissing => "convai_write_missing",
            LinkProblem::ConvaiWriteUnknown => "convai_write_unknown",
            LinkProblem::AgentNotFound => "agent_not_found",
            LinkProblem::AgentUnknown => "agent_unknown",
            LinkProblem::PhoneNumberNotFound => "phone_number_not_found",
            LinkProblem::PhoneNumberNotTwilio => "phone_number_not_twilio",
            LinkProblem::PhoneNumberNotOutboundCapable => "phone_number_not_outbound_capable",
            LinkProblem::PhoneNumberUnknown => "phone_number_unknown",
            LinkProblem::TwilioCredentialUnhealthy => "twilio_credential_unhealthy",
            LinkProblem::TwilioCredentialUnknown => "twilio_credential_unknown",
            LinkProblem::NumberNotOnTwilioAccount => "number_not_on_twilio_account",
            LinkProblem::NumberNotVoiceCapable => "number_not_voice_capable",
            LinkProblem::TwilioNumberUnknown => "twilio_number_unknown",
            LinkProblem::ReimportNeeded => "reimport_needed",
            LinkProblem::ImportUnknown => "import_unknown",
            LinkProblem::DestinationBlocked => "destination_blocked",
            LinkProblem::DestinationUnknown => "destination_unknown",
        }
    }

    /// Every value, for the docs test.
    pub const ALL: &'static [LinkProblem] = &[
        LinkProblem::ElevenlabsCredentialUnhealthy,
        LinkProblem::ElevenlabsCredentialUnknown,
        LinkProblem::ConvaiWriteMissing,
        LinkProblem::ConvaiWriteUnknown,
        LinkProblem::AgentNotFound,
        LinkProblem::AgentUnknown,
        LinkProblem::PhoneNumberNotFound,
        LinkProblem::PhoneNumberNotTwilio,
        LinkProblem::PhoneNumberNotOutboundCapable,
        LinkProblem::PhoneNumberUnknown,
        LinkProblem::TwilioCredentialUnhealthy,
        LinkProblem::TwilioCredentialUnknown,
        LinkProblem::NumberNotOnTwilioAccount,
        LinkProblem::NumberNotVoiceCapable,
        LinkProblem::TwilioNumberUnknown,
        LinkProblem::ReimportNeeded,
        LinkProblem::ImportUnknown,
        LinkProblem::DestinationBlocked,
        LinkProblem::DestinationUnknown,
    ];
}

/// What one look at a link found.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// Proven now.
    Proven,
    /// Definitively broken.
    Broken(LinkProblem),
    /// No definitive answer this time (timeout, 5xx, 429, an answer that
    /// proves nothing, or a link it depends on is not known).
    Unknown(Reason),
}

/// One look at one link, with the evidence it rests on.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub link: Link,
    pub finding: Finding,
    pub evidence: Evidence,
    /// Information that is no verdict (the agent's audio formats, the
    /// number as ElevenLabs has it).
    pub info: Option<String>,
    /// The finding rests on an inference (worded as such in `check`).
    pub inferred: bool,
}

impl Observation {
    pub fn new(link: Link, finding: Finding, evidence: Evidence) -> Self {
        Observation {
            link,
            finding,
            evidence,
            info: None,
            inferred: false,
        }
    }
}
