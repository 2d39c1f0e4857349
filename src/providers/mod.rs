//! The upstream providers, behind one interface.
//!
//! A provider is one folder (`providers/<name>/`) that owns everything about
//! its upstream: its config section (`config.rs`: raw keys, validation,
//! secret shapes, re-reading `*_file` values), what it may ask (`api.rs`:
//! its arm of the read-only allow-list), its requests and the
//! classification of their answers into [`outcome`](crate::outcome)
//! facts, and its explanations for `credwatch check` (`explain.rs`). It
//! implements [`Kind`] on its credential type (and [`Settings`], and the
//! traits of its associated types) and is registered in `registry.rs`: a
//! variant in each of its plain enums. Everything outside this folder
//! (config loader, scheduler, state, exposition, server, `check`) works
//! through [`Credential`], [`Spec`] and [`Provider`] and never names a
//! provider.

pub mod http;
pub mod json;
pub mod link;
pub mod outcome;
pub mod report;
pub mod words;

#[cfg(test)]
pub(crate) mod properties;

use std::future::Future;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::exposition::Samples;
use crate::section::{SecretSource, SecretValue, Timing, Validator};
pub use allow::check_read_path;
pub use credential::{Credential, Reread, RereadError};
use http::{TransportError, Upstream};
use outcome::{Attempt, Evidence, Fact, Failure, Reason};
use report::Finding;

/// A provider's config section as written: the top-level keys it owns.
/// Implemented in the provider's `config.rs`.
pub trait Section: Default {
    /// The top-level keys of the config file it owns.
    const KEYS: &'static [&'static str];
    /// What its credentials share (ElevenLabs: the permission-probe table).
    type Shared: std::fmt::Debug + Clone + Default;

    /// Reads the value of one of [`KEYS`](Self::KEYS).
    fn read<'de, A: serde::de::MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error>;
    /// Whether it names no credential.
    fn is_empty(&self) -> bool;
    /// Validates it into credentials; problems go to `v` with their key paths.
    fn validate(self, v: &mut Validator<'_>, defaults: &Timing) -> (Vec<Credential>, Self::Shared);
    /// Checks what its credentials say about others (the ElevenLabs → Twilio
    /// link), once every section is validated.
    fn check_links(_v: &mut Validator<'_>, _credentials: &[Credential]) {}
}

/// A provider's diagnosis behind a verdict (its `facts.rs`): what metrics
/// export it as, and its code in `check`'s findings.
pub trait ProviderProblem: Clone + std::fmt::Debug + PartialEq + Eq + Serialize {
    /// The stable reason it is exported under.
    fn reason(&self) -> Reason;
    /// Its code in `check`'s findings.
    fn code(&self) -> &'static str;
}

/// A provider's own fact (quota, balance, numbers, …).
pub trait ProviderDetail: Clone + std::fmt::Debug + PartialEq + Serialize {
    /// The reason it counts as a check error under, if it does.
    fn error_reason(&self) -> Option<Reason> {
        None
    }
    /// The resource it proves the key may read (clears an earlier
    /// [`Fact::NotPermittedForKey`]).
    fn resource(&self) -> Option<&'static str> {
        None
    }
}

/// What is known of one credential from its provider's details, and how it
/// shows: metric samples, `check`'s report and findings, the status page.
pub trait ProviderDetails: Clone + std::fmt::Debug + Default + Serialize {
    /// The facts that change it.
    type Detail: ProviderDetail;
    /// Its part of `check --output json` (`details`).
    type Report: ProviderReport;
    /// Applies a definitive detail.
    fn apply(&mut self, detail: &Self::Detail);
    /// The key may not read `resource`: forget what was read of it.
    fn not_permitted(&mut self, _resource: &str) {}
    /// Ready for calls beyond being usable (ElevenLabs: every imported
    /// number can place calls). `check`'s exit code; not part of `/health`.
    fn numbers_ready(&self) -> bool {
        true
    }
    /// Whether it holds the account's shared values (quota, balance).
    fn account_values(&self) -> bool {
        false
    }
    /// Its families' samples of one credential.
    fn render(&self, expose_numbers: bool, out: &mut Samples<'_>);
    /// `check`'s report of it.
    fn report(&self) -> Self::Report;
    /// What the status page shows of it.
    fn shown(&self) -> Vec<report::Shown> {
        Vec::new()
    }
    /// `check`'s findings about it (billing at risk, imported numbers, …).
    fn findings(&self, _attempts: &[Attempt], _linked: Option<&Linked>) -> Vec<Finding> {
        Vec::new()
    }
}

/// A provider's part of `check`'s report.
pub trait ProviderReport: Clone + std::fmt::Debug + Serialize {
    /// The report in a few words for `check`'s summary line.
    fn summary(&self) -> Vec<String>;
}

/// What every credential's provider settings answer: the part of a
/// provider that the rest of credwatch asks of one credential
/// ([`Spec::settings`]).
pub trait Settings {
    /// Where its requests go.
    fn base_url(&self) -> &str;
    /// The secret that authenticates it.
    fn secret(&self) -> &SecretValue;
    /// What the secret is called in the provider's console.
    fn secret_name(&self) -> &'static str;
    /// Where its secret values come from (`*_file` ones are watched).
    fn sources(&self) -> Vec<&SecretSource>;
    /// Re-reads its `*_file` values through the load path (reader, mode
    /// check, shape checks), reporting into `v` at `path` (`twilio[i]`):
    /// its spec as it now reads, or `None` (the reasons are in `v`).
    fn reread(&self, v: &mut crate::section::Validator<'_>, path: &str) -> Option<Spec>;
    /// The credential whose account this one's checks also read.
    fn linked(&self) -> Option<&str> {
        None
    }
    /// The permissions whose absence makes it unhealthy.
    fn required_permissions(&self) -> &[String] {
        &[]
    }
    /// Whether phone numbers may appear in metric labels.
    fn expose_numbers(&self) -> bool {
        false
    }
    /// The account it names, where it names one.
    fn account(&self) -> Option<&str> {
        None
    }
}

/// What a provider must decide, implemented on its credential type (the
/// payload of its [`Spec`] variant). Everything else it knows sits behind
/// the traits of its associated types.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a provider's credential type but does not implement `Kind`",
    label = "every provider in `registry.rs` needs `impl Kind for {Self}`",
    note = "write `impl Kind for {Self}` in its folder's `mod.rs` (ARCHITECTURE.md, \"Adding a provider\")"
)]
pub trait Kind: Settings + Sized {
    /// Its config section as written.
    type RawSection: Section;
    /// Its diagnoses behind a verdict (`facts.rs`).
    type Problem: ProviderProblem;
    /// What is known of one credential from its answers (`facts.rs`).
    type Details: ProviderDetails;
    /// The check whose answer decides validity (it runs first in every cycle).
    const AUTH_CHECK: &'static str;
    /// The answer headers that carry its request id (for support tickets),
    /// the first present wins.
    const REQUEST_ID_HEADERS: &'static [&'static str];

    /// Its arm of the read-only allow-list ([`check_read_path`]): whether
    /// the path, split into segments, and the query may be asked, and if so
    /// how much of the answer is read at most (`Some(cap)` in bytes: what a
    /// real answer needs; [`http`]'s generic sizes name the usual ones).
    /// `None` refuses the path; `Err` refuses it with a reason of its own.
    fn allowed(segments: &[&str], query: Option<&str>) -> Result<Option<usize>, String>;
    /// One cycle of checks: sequential requests, the auth check first.
    fn run(
        &self,
        cred: &Credential,
        ctx: &Context<'_>,
        plan: &Plan,
    ) -> impl Future<Output = Vec<Attempt>> + Send;
    /// The requests one cycle sends when everything answers: (decisive
    /// ones, every `interval`; informational ones, every
    /// `detail_interval`). A lower bound, for sizing ([`request_rate`]).
    fn requests_per_cycle(&self) -> (usize, usize);
    /// Whether it has informational work ([`Kind::informational`]).
    fn has_informational(&self) -> bool {
        false
    }
    /// Its informational work on a cycle with details: requests that may
    /// be many, run apart from [`Kind::run`] and stopped at `deadline`
    /// ([`Informational`]). None by default.
    fn informational(
        &self,
        _cred: &Credential,
        _ctx: &Context<'_>,
        _deadline: tokio::time::Instant,
    ) -> impl Future<Output = Informational> + Send {
        async { Informational::default() }
    }
    /// The links of a call path this provider's credential places
    /// (`caller`) through `carrier`'s account, looked at once. A provider
    /// that places no calls has none to look at (the default).
    fn check_call_path(
        &self,
        _path: &link::CallPath,
        _caller: &Credential,
        _carrier: &Linked,
        _ctx: &Context<'_>,
    ) -> impl Future<Output = Vec<link::Observation>> + Send {
        async { Vec::new() }
    }
    /// (summary, fix) for a definitive problem this provider reports.
    fn explain(problem: &Problem, cred: &Credential) -> Option<(String, String)>;
    /// The fix for an answer that was no verdict, when only this provider
    /// sends it (`detail` is the attempt's evidence detail).
    fn failure_fix(_reason: Reason, _detail: &str) -> Option<&'static str> {
        None
    }
    /// (summary, fix) for a resource this key type may not read.
    fn explain_not_permitted(resource: &str) -> (String, String) {
        (
            format!("This key may not read the {resource}."),
            "See the evidence.".into(),
        )
    }
    /// Test data: a detail whose value follows `n` (successive calls
    /// change the exposition).
    #[cfg(test)]
    fn sample_detail(n: u64) -> <Self::Details as ProviderDetails>::Detail;
    /// Test data: the provider's "credential rejected" problem.
    #[cfg(test)]
    fn sample_problem() -> Self::Problem;
}

// The providers: a folder each, and their place in `registry.rs`'s enums.
pub mod elevenlabs;
pub mod twilio;

mod registry;
pub use registry::{
    Detail, Details, FAMILY_PARTS, Problem, Provider, RawSections, Reports, Shared, Spec, explain,
};

mod allow;
mod credential;
mod replay;
pub use replay::{Classifier, Outcome, Replay};

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `credwatch calibrate`, which proves a permission probe against the live
/// API: ElevenLabs' (the provider with permission probes), reached through here.
pub use elevenlabs::calibrate;

/// Runs one cycle of checks for `cred`. Requests for one credential are
/// sequential; the first attempt is always the auth check.
pub async fn run(cred: &Credential, ctx: &Context<'_>, plan: &Plan) -> Vec<Attempt> {
    cred.spec.run(cred, ctx, plan).await
}

/// The requests a second `cred` needs in steady state when everything
/// answers: its decisive requests every `interval` (ElevenLabs: the
/// subscription and one per required permission; Twilio: page 1 of the
/// numbers and the account), its informational ones every
/// `detail_interval` (ElevenLabs' cross-check counted as its list alone;
/// Twilio's balance). A lower bound: a cross-check adds a lookup per agent
/// and two per number, a Twilio account a page per 1,000 numbers.
pub fn request_rate(cred: &Credential) -> f64 {
    let (decisive, informational) = cred.spec.requests_per_cycle();
    decisive as f64 / cred.interval.as_secs_f64().max(1.0)
        + informational as f64 / cred.detail_interval.as_secs_f64().max(1.0)
}

/// Whether a cycle's decisive attempts let informational work follow: no
/// key rejected, and no sign that upstream is down or busy.
pub fn went_on(attempts: &[Attempt]) -> bool {
    attempts.iter().all(|a| match &a.result {
        Ok(facts) => !facts.iter().any(|f| matches!(f, Fact::Invalid { .. })),
        Err(f) => !f.ends_cycle(),
    })
}

/// The informational work of a cycle with details that may need many
/// requests (ElevenLabs' phone-number cross-check). It runs apart from the
/// decisive checks ([`run`]), so they never wait behind it, and stops at
/// `deadline`, at the first 429, leaving what it could not look at unknown.
#[derive(Debug, Default)]
pub struct Informational {
    pub attempts: Vec<Attempt>,
    /// Upstream's `Retry-After` on a 429 that stopped it.
    pub retry_after: Option<std::time::Duration>,
}

/// Whether `cred` has informational work ([`informational`]) on a cycle with details.
pub fn has_informational(cred: &Credential) -> bool {
    cred.spec.has_informational()
}

/// How long a cycle's informational work may take: the credential's
/// `detail_interval` (at least its `timeout`), so it never runs into the
/// next one's. It runs apart from the decisive checks, which it never delays.
pub fn informational_budget(cred: &Credential) -> std::time::Duration {
    cred.detail_interval.max(cred.timeout)
}

/// Runs `cred`'s informational work ([`Informational`]).
pub async fn informational(
    cred: &Credential,
    ctx: &Context<'_>,
    deadline: tokio::time::Instant,
) -> Informational {
    cred.spec.informational(cred, ctx, deadline).await
}

/// One cycle of a call path: every link that needs a request, looked at by
/// the provider of its caller (ElevenLabs places the call through the
/// carrier's account). A caller of another provider has no such links.
pub async fn check_call_path(
    path: &link::CallPath,
    caller: &Credential,
    carrier: &Linked,
    ctx: &Context<'_>,
) -> Vec<link::Observation> {
    caller
        .spec
        .check_call_path(path, caller, carrier, ctx)
        .await
}

/// What a cycle needs besides the credential.
pub struct Context<'a> {
    pub upstream: &'a Upstream,
    pub shared: &'a Shared,
    /// The credential this one's checks also read ([`Credential::linked`]).
    pub linked: Option<&'a Linked>,
}

/// A linked credential, as the cycle of the credential linking it sees it
/// (an ElevenLabs key's Twilio account, for the phone-number cross-check).
#[derive(Debug, Clone)]
pub struct Linked {
    pub cred: std::sync::Arc<Credential>,
    /// When credwatch saw its secret change while running.
    pub changed_at: Option<SystemTime>,
    /// Its verdict now: usable, not usable, or no verdict yet (`None`).
    pub usable: Option<bool>,
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

pub(crate) fn failure_from_transport(e: &TransportError) -> Reason {
    match e {
        TransportError::Timeout(_) => Reason::Timeout,
        TransportError::Network(_) => Reason::Network,
        TransportError::TooLarge(_) | TransportError::NotAllowed(_) => Reason::UnexpectedResponse,
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
                request: outcome::Clean::request(path),
                detail: e.to_string().into(),
                ..Evidence::default()
            },
            Err(Failure::new(failure_from_transport(&e))),
        )
    }
}
