//! ElevenLabs: validity and quota (`/v1/user/subscription`), permissions
//! (one table row per permission, each a side-effect-free GET), the
//! phone-number cross-check with a linked Twilio account, and what `check`
//! says about each finding. Below, the provider as credwatch sees it (its
//! [`Kind`]); the folder:
//!
//! - `config`: the `elevenlabs:`, `permission_probes:` and `calibration_file:` keys.
//! - `api`: its arm of the allow-list and the permission-probe table.
//! - `checks`: one cycle's requests and what their answers establish.
//! - `classify`: what an answer means (every known error envelope).
//! - `phone_numbers`: the cross-check of the imported Twilio numbers.
//! - `call_path`: the links of a call path that need a request.
//! - `facts`: its problems and details, and what they change.
//! - `report`: its metric families and its part of `check`'s report.
//! - `explain`: `check`'s words for each problem, with their evidence.
//! - `calibrate`: `credwatch calibrate`, proving a probe on a live account.
//! - `calibration`: the `calibration_file:` it records its results in.

pub mod api;
pub mod calibrate;
pub mod calibration;
pub mod call_path;
mod checks;
mod classify;
pub mod config;
pub mod explain;
pub mod facts;
pub mod phone_numbers;
mod replay;
pub mod report;

use super::outcome::{Attempt, Reason};
use super::{Context, Kind, Plan, Settings, Spec};
use crate::providers::{self, Credential};
use crate::section::{SecretSource, SecretValue, Validator};
pub use checks::{permission_check, permission_meaning, run, subscription, subscription_outcome};
pub use classify::{Body, ErrorFields, Meaning, classify, parse_body};
pub use config::ElevenLabs;
pub use facts::{Detail, Details, PhoneNumber, PhoneProblem, Problem, Quota};

/// The agent id of the `convai_write` probe: well formed in the current
/// format (`agent_` + two digits + a 26-character Crockford-base32 ULID,
/// `shared/reference/evidence-addendum.md`) and certain not to exist (the
/// all-zero ULID). get-signed-url answers 404 `agent_not_found` when the key
/// holds `convai_write`, and mints nothing. The allow-list admits
/// get-signed-url with this id only.
pub const NONEXISTENT_AGENT_ID: &str = api::PROBE_AGENT_ID;

pub use api::default_permission_probes;

impl ElevenLabs {
    /// How its requests authenticate: `xi-api-key: <key>`.
    pub fn auth(&self) -> super::http::Auth<'_> {
        super::http::Auth::Header {
            name: "xi-api-key",
            prefix: "",
            secret: &self.api_key.value,
        }
    }
}

impl Settings for ElevenLabs {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn secret(&self) -> &SecretValue {
        &self.api_key
    }

    fn secret_name(&self) -> &'static str {
        "API key"
    }

    fn sources(&self) -> Vec<&SecretSource> {
        vec![&self.api_key.source]
    }

    fn reread(&self, v: &mut Validator<'_>, path: &str) -> Option<Spec> {
        self.reread_files(v, path).map(Spec::ElevenLabs)
    }

    fn account(&self) -> Option<&str> {
        Some(&self.account)
    }

    fn linked(&self) -> Option<&str> {
        self.twilio.as_deref().filter(|_| self.phone_numbers)
    }

    fn required_permissions(&self) -> &[String] {
        &self.required_permissions
    }

    fn expose_numbers(&self) -> bool {
        self.expose_numbers
    }
}

impl Kind for ElevenLabs {
    type RawSection = config::RawSection;
    type Problem = Problem;
    type Details = Details;
    const AUTH_CHECK: &'static str = "subscription";
    const REQUEST_ID_HEADERS: &'static [&'static str] = &["request-id", "x-trace-id"];

    fn allowed(segments: &[&str], query: Option<&str>) -> Result<Option<usize>, String> {
        api::allowed(segments, query)
    }

    async fn run(&self, cred: &Credential, ctx: &Context<'_>, plan: &Plan) -> Vec<Attempt> {
        run(cred, self, ctx, plan).await
    }

    /// The subscription and one probe per required permission; the list
    /// of imported numbers with `phone_numbers: true` (its lookups come on
    /// top).
    fn requests_per_cycle(&self) -> (usize, usize) {
        (
            1 + self.required_permissions.len(),
            usize::from(self.phone_numbers),
        )
    }

    fn has_informational(&self) -> bool {
        self.phone_numbers
    }

    /// The phone-number cross-check, with `phone_numbers: true`.
    async fn informational(
        &self,
        cred: &Credential,
        ctx: &Context<'_>,
        deadline: tokio::time::Instant,
    ) -> providers::Informational {
        if !self.phone_numbers {
            return providers::Informational::default();
        }
        let found = phone_numbers::check(cred, self, ctx, deadline).await;
        providers::Informational {
            attempts: vec![found.attempt],
            retry_after: found.retry_after,
        }
    }

    /// ElevenLabs places the call: the agent, the imported number, and
    /// through the carrier's account the number and the destinations.
    async fn check_call_path(
        &self,
        path: &providers::link::CallPath,
        caller: &Credential,
        carrier: &providers::Linked,
        ctx: &Context<'_>,
    ) -> Vec<providers::link::Observation> {
        call_path::check(path, caller, self, carrier, ctx).await
    }

    fn explain(problem: &providers::Problem, cred: &Credential) -> Option<(String, String)> {
        explain::problem(problem, cred)
    }

    fn failure_fix(reason: Reason, detail: &str) -> Option<&'static str> {
        explain::failure_fix(reason, detail)
    }

    #[cfg(test)]
    fn sample_detail(n: u64) -> Detail {
        Detail::Quota {
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
    }

    #[cfg(test)]
    fn sample_problem() -> Problem {
        Problem::InvalidApiKey
    }
}
