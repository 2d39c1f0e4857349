//! Test data for modules outside the providers that need a provider's facts
//! without naming the provider: a typical detail and a typical problem.

use super::elevenlabs::{self, Quota};
use super::outcome::Fact;
use super::twilio;
use super::{Problem, Provider};

/// A detail whose value follows `n` (ElevenLabs: characters used; Twilio:
/// the number count), so successive calls change the exposition.
pub(crate) fn detail(provider: Provider, n: u64) -> Fact {
    match provider {
        Provider::ElevenLabs => elevenlabs::Detail::Quota {
            quota: Quota {
                used: n,
                limit: 10_000,
                reset_at: Some(1_800_000_000),
                tier: "starter".into(),
                status: "active".into(),
                ceiling: Some(10_000),
                open_invoices: None,
                exhausted: false,
            },
        }
        .into(),
        Provider::Twilio => twilio::Detail::Numbers { count: n }.into(),
    }
}

/// The provider's "credential rejected" problem.
pub(crate) fn invalid(provider: Provider) -> Problem {
    match provider {
        Provider::ElevenLabs => elevenlabs::Problem::InvalidApiKey.into(),
        Provider::Twilio => twilio::Problem::TwilioAuthenticate.into(),
    }
}
