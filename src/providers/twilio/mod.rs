//! Twilio: authentication by listing the account's incoming numbers (works
//! for Auth Tokens and every API key type), then account status and
//! balance. Below, the provider as credwatch sees it (its [`Kind`]); the
//! folder:
//!
//! - `config`: the `twilio:` section (SID and secret shapes, auth kind).
//! - `api`: its arm of the allow-list.
//! - `checks`: one cycle's requests, and the paging of number lists.
//! - `classify`: what each answer means (the error envelope, the code).
//! - `facts`: its problems and details, and what they change.
//! - `report`: its metric families and its part of `check`'s report.
//! - `explain`: `check`'s words for each problem, with their evidence.
//! - `voice`: its links of a call path (the calling number, destination
//!   countries' dialing permissions).

pub mod api;
mod checks;
mod classify;
pub mod config;
pub mod explain;
pub mod facts;
mod replay;
pub mod report;
pub mod voice;

use super::outcome::{Attempt, Reason};
use super::{Context, Kind, Plan, Settings, Spec};
use crate::providers::{self, Credential};
use crate::section::{SecretSource, SecretValue, Validator};
pub use api::looks_like_account_sid;
pub use checks::{
    COUNT_CHECK, LIST_PERMISSION, MAX_PAGES, NumberList, account, balance, has_number, numbers,
    numbers_outcome, run,
};
pub use classify::{Meaning, account_outcome, balance_outcome, classify, error_code};
pub use config::{Twilio, TwilioAuth, looks_like_key_sid};
pub use facts::{Detail, Details, Problem, TwilioAccount, TwilioBalance};

impl Settings for Twilio {
    fn base_url(&self) -> &str {
        &self.base_url
    }

    fn secret(&self) -> &SecretValue {
        self.auth.secret()
    }

    fn secret_name(&self) -> &'static str {
        match self.auth {
            TwilioAuth::AuthToken(_) => "Auth Token",
            TwilioAuth::ApiKey { .. } => "API key secret",
        }
    }

    fn sources(&self) -> Vec<&SecretSource> {
        self.all_sources()
    }

    fn reread(&self, v: &mut Validator<'_>, path: &str) -> Option<Spec> {
        self.reread_files(v, path).map(Spec::Twilio)
    }

    /// Reading the incoming numbers (the auth check's request): a
    /// restricted key without it is unusable, and says so like any other
    /// missing permission (`credwatch_permission_granted`, `/health`).
    fn required_permissions(&self) -> &[String] {
        static REQUIRED: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec![LIST_PERMISSION.to_string()]);
        &REQUIRED
    }

    fn account(&self) -> Option<&str> {
        Some(&self.account_sid)
    }
}

impl Kind for Twilio {
    type RawSection = config::RawSection;
    type Problem = Problem;
    type Details = Details;
    const AUTH_CHECK: &'static str = "phone_numbers";
    const REQUEST_ID_HEADERS: &'static [&'static str] = &["twilio-request-id"];

    fn allowed(segments: &[&str], query: Option<&str>) -> Result<Option<usize>, String> {
        api::allowed(segments, query)
    }

    async fn run(&self, cred: &Credential, ctx: &Context<'_>, plan: &Plan) -> Vec<Attempt> {
        run(cred, self, ctx, plan).await
    }

    /// Page 1 of the numbers and the account; the balance with details
    /// (a page per 1,000 numbers comes on top).
    fn requests_per_cycle(&self) -> (usize, usize) {
        (2, 1)
    }

    fn explain(problem: &providers::Problem, cred: &Credential) -> Option<(String, String)> {
        explain::problem(problem, cred)
    }

    fn failure_fix(_reason: Reason, detail: &str) -> Option<&'static str> {
        explain::failure_fix(detail)
    }

    fn explain_not_permitted(resource: &str) -> (String, String) {
        report::explain_not_permitted(resource)
    }

    #[cfg(test)]
    fn sample_detail(n: u64) -> Detail {
        Detail::Numbers {
            count: n,
            counted_at: std::time::SystemTime::UNIX_EPOCH,
        }
    }

    #[cfg(test)]
    fn sample_problem() -> Problem {
        Problem::TwilioAuthenticate
    }
}
