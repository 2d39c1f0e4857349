//! The upstream providers, behind one entry point: [`run`] takes a credential
//! and returns its classified [`Attempt`]s for one cycle.
//!
//! Each provider module owns its requests and the classification of their
//! answers. Adding a provider is one new module and one arm in [`run`].

pub mod elevenlabs;
pub mod http;
pub mod twilio;
pub(crate) mod words;

#[cfg(test)]
pub(crate) mod properties;

use std::time::{Instant, SystemTime};

use crate::config::{Credential, PermissionProbe, Spec};
use crate::outcome::{Attempt, Evidence, Fact, Failure, Reason};
use http::{TransportError, Upstream};

/// What a cycle needs besides the credential.
pub struct Context<'a> {
    pub upstream: &'a Upstream,
    pub permission_probes: &'a [PermissionProbe],
    /// The credential this one's checks also read ([`Credential::linked`]).
    pub linked_twilio: Option<&'a Linked>,
}

/// A linked credential, as the cycle of the credential linking it sees it
/// (an ElevenLabs key's Twilio account, for the phone-number cross-check).
#[derive(Debug, Clone)]
pub struct Linked {
    pub cred: std::sync::Arc<Credential>,
    /// When credwatch saw its secret change while running.
    pub changed_at: Option<SystemTime>,
}

/// What a cycle covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Run the informational checks too (balance, full number counts, the
    /// phone-number cross-check). Checks that decide `/health` run every cycle.
    pub details: bool,
    /// Resources this credential is known not to be allowed to read
    /// ([`Fact::NotPermittedForKey`]): not asked again until the secret or
    /// the config changes, since each refused request is an authentication
    /// failure in the customer's console.
    pub not_permitted: std::collections::BTreeSet<&'static str>,
}

/// Runs one cycle of checks for `cred`. Requests for one credential are
/// sequential; the first attempt is always the auth check.
pub async fn run(cred: &Credential, ctx: &Context<'_>, plan: &Plan) -> Vec<Attempt> {
    match &cred.spec {
        Spec::ElevenLabs(el) => elevenlabs::run(cred, el, ctx, plan).await,
        Spec::Twilio(tw) => twilio::run(cred, tw, ctx, plan).await,
    }
}

/// The phone-number cross-check's words, and `credwatch calibrate`, which
/// proves a permission probe: both ElevenLabs', reached through here.
pub use elevenlabs::calibrate;
pub use elevenlabs::explain::{billing_at_risk as explain_billing_at_risk, phone as explain_phone};

/// (summary, fix) for a definitive problem, in the words of the provider
/// that reports it (each provider's `explain` module).
pub fn explain(p: &crate::outcome::Problem, cred: &Credential) -> (String, String) {
    elevenlabs::explain::problem(p, cred)
        .or_else(|| twilio::explain::problem(p, cred))
        .unwrap_or_else(|| {
            (
                format!("Problem `{}`.", p.code()),
                "See the evidence.".to_string(),
            )
        })
}

/// The name of the check that decides validity.
pub fn auth_check(spec: &Spec) -> &'static str {
    match spec {
        Spec::ElevenLabs(_) => "subscription",
        Spec::Twilio(_) => "phone_numbers",
    }
}

pub(crate) fn failure_from_transport(e: &TransportError) -> Reason {
    match e {
        TransportError::Timeout(_) => Reason::Timeout,
        TransportError::Network(_) => Reason::Network,
        TransportError::TooLarge | TransportError::NotAllowed(_) => Reason::UnexpectedResponse,
    }
}

/// Times an attempt and builds it.
pub(crate) struct Clock {
    started_at: SystemTime,
    started: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Clock {
            started_at: SystemTime::now(),
            started: Instant::now(),
        }
    }

    pub fn finish(
        &self,
        check: &str,
        evidence: Evidence,
        result: Result<Vec<Fact>, Failure>,
    ) -> Attempt {
        Attempt {
            check: check.to_string(),
            started_at: self.started_at,
            duration: self.started.elapsed(),
            evidence,
            result,
        }
    }

    /// An attempt that got no answer at all.
    pub fn failed(&self, check: &str, path: &str, e: TransportError) -> Attempt {
        self.finish(
            check,
            Evidence {
                request: format!("GET {path}"),
                detail: e.to_string(),
                ..Evidence::default()
            },
            Err(Failure::new(failure_from_transport(&e))),
        )
    }
}
