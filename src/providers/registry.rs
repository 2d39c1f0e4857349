//! The provider set, as plain enums with one visible arm per provider
//! (mini-redis' `Command`): [`Provider`], [`Spec`], [`RawSections`],
//! [`Shared`], [`Problem`], [`Detail`], [`Details`], [`Reports`] and
//! [`FAMILY_PARTS`]. Adding a provider is a variant in each and an arm in
//! each `match`; the compiler lists every place (each one is in this file).
//! Whatever is asked of a provider's [`Kind`] goes through two object-safe
//! faces, `KindOf` (type-level: the allow-list arm, its check names and
//! headers, its explanations) and `SpecOf` (one credential: its cycle, its
//! informational work, its call-path links), each named once per provider
//! ([`Provider::kind`], [`Spec::kind`]): a provider without `impl Kind` is
//! two errors there, saying so, and a new `Kind` method needs no new arm.
//! The other arms call the traits of its associated types, so a missing
//! piece of those is an error at its own impl.
//!
//! Nothing here decides anything about a provider; it only dispatches.

use std::marker::PhantomData;

use serde::Serialize;

use super::elevenlabs::{self, ElevenLabs};
use super::replay::{Classifier, Replay};
use super::twilio::{self, Twilio};
use super::{
    Credential, Kind, Linked, ProviderDetail, ProviderDetails, ProviderProblem, ProviderReport,
    Section, Settings, report,
};
use crate::exposition::{Family, Samples};
use crate::outcome::{Attempt, Fact, Reason};
use crate::section::{Timing, Validator};

/// Which upstream a credential belongs to; `as_str` is the config section
/// and the `provider` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, strum::VariantArray)]
pub enum Provider {
    ElevenLabs,
    Twilio,
}

impl Provider {
    /// Every provider, in declaration order (derived: a new variant is in it).
    pub const ALL: &'static [Provider] = <Provider as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::ElevenLabs => "elevenlabs",
            Provider::Twilio => "twilio",
        }
    }

    /// Its position in [`Provider::ALL`] (and in [`FAMILY_PARTS`]).
    pub const fn index(self) -> usize {
        match self {
            Provider::ElevenLabs => 0,
            Provider::Twilio => 1,
        }
    }

    /// Its metric families (its `report::FAMILIES`), exported after the
    /// common ones.
    pub const fn families(self) -> &'static [Family] {
        match self {
            Provider::ElevenLabs => elevenlabs::report::FAMILIES,
            Provider::Twilio => twilio::report::FAMILIES,
        }
    }

    /// Its config section's top-level keys.
    fn section_keys(self) -> &'static [&'static str] {
        match self {
            Provider::ElevenLabs => ElSection::KEYS,
            Provider::Twilio => TwSection::KEYS,
        }
    }

    /// Its [`Kind`]'s type-level answers: the one arm per provider through
    /// which every one of them is asked.
    fn kind(self) -> &'static dyn KindOf {
        match self {
            Provider::ElevenLabs => &Via::<ElevenLabs>(PhantomData),
            Provider::Twilio => &Via::<Twilio>(PhantomData),
        }
    }

    /// Its arm of the allow-list: `Some(cap)`, allowed, reading at most
    /// `cap` bytes of the answer (see [`Kind::allowed`]).
    pub(super) fn allowed(
        self,
        segments: &[&str],
        query: Option<&str>,
    ) -> Result<Option<usize>, String> {
        self.kind().allowed(segments, query)
    }

    /// (summary, fix) for a resource this provider's key type may not read.
    pub fn explain_not_permitted(self, resource: &str) -> (String, String) {
        self.kind().explain_not_permitted(resource)
    }

    /// The fix for a failure only this provider's answers explain.
    pub fn failure_fix(self, reason: Reason, detail: &str) -> Option<&'static str> {
        self.kind().failure_fix(reason, detail)
    }

    /// The answer headers that carry its request id.
    pub fn request_id_headers(self) -> &'static [&'static str] {
        self.kind().request_id_headers()
    }

    /// The name of its check that decides validity.
    pub fn auth_check(self) -> &'static str {
        self.kind().auth_check()
    }

    /// (summary, fix) for a definitive problem, in its words.
    fn explain(self, p: &Problem, cred: &Credential) -> Option<(String, String)> {
        self.kind().explain(p, cred)
    }

    /// Test hook: its classifiers, see [`Replay`].
    #[doc(hidden)]
    pub fn classifiers(self) -> Vec<Classifier> {
        match self {
            Provider::ElevenLabs => ElevenLabs::classifiers(),
            Provider::Twilio => Twilio::classifiers(),
        }
    }

    /// Test data: see [`Kind::sample_detail`].
    #[cfg(test)]
    pub(crate) fn sample_detail(self, n: u64) -> Fact {
        self.kind().sample_detail(n)
    }

    /// Test data: see [`Kind::sample_problem`].
    #[cfg(test)]
    pub(crate) fn sample_problem(self) -> Problem {
        self.kind().sample_problem()
    }
}

/// What the registry asks of a provider's [`Kind`] without a credential:
/// object-safe, so [`Provider::kind`] is the one place that names each
/// provider's type for them.
trait KindOf: Sync {
    fn allowed(&self, segments: &[&str], query: Option<&str>) -> Result<Option<usize>, String>;
    fn explain_not_permitted(&self, resource: &str) -> (String, String);
    fn failure_fix(&self, reason: Reason, detail: &str) -> Option<&'static str>;
    fn request_id_headers(&self) -> &'static [&'static str];
    fn auth_check(&self) -> &'static str;
    fn explain(&self, p: &Problem, cred: &Credential) -> Option<(String, String)>;
    #[cfg(test)]
    fn sample_detail(&self, n: u64) -> Fact;
    #[cfg(test)]
    fn sample_problem(&self) -> Problem;
}

/// A provider's type, as a value [`KindOf`] can be asked through.
struct Via<K>(PhantomData<fn() -> K>);

impl<K: Kind> KindOf for Via<K>
where
    K::Problem: Into<Problem>,
    <K::Details as ProviderDetails>::Detail: Into<Fact>,
{
    fn allowed(&self, segments: &[&str], query: Option<&str>) -> Result<Option<usize>, String> {
        K::allowed(segments, query)
    }
    fn explain_not_permitted(&self, resource: &str) -> (String, String) {
        K::explain_not_permitted(resource)
    }
    fn failure_fix(&self, reason: Reason, detail: &str) -> Option<&'static str> {
        K::failure_fix(reason, detail)
    }
    fn request_id_headers(&self) -> &'static [&'static str] {
        K::REQUEST_ID_HEADERS
    }
    fn auth_check(&self) -> &'static str {
        K::AUTH_CHECK
    }
    fn explain(&self, p: &Problem, cred: &Credential) -> Option<(String, String)> {
        K::explain(p, cred)
    }
    #[cfg(test)]
    fn sample_detail(&self, n: u64) -> Fact {
        K::sample_detail(n).into()
    }
    #[cfg(test)]
    fn sample_problem(&self) -> Problem {
        K::sample_problem().into()
    }
}

/// What the registry asks of one credential's [`Kind`]: object-safe (the
/// futures boxed), so [`Spec::kind`] is the one place that names each
/// provider's type for them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `Kind` (the same missing `impl Kind for {Self}` as at `Provider::kind`)"
)]
trait SpecOf: Sync {
    fn run<'a>(
        &'a self,
        cred: &'a Credential,
        ctx: &'a super::Context<'a>,
        plan: &'a super::Plan,
    ) -> BoxFuture<'a, Vec<Attempt>>;
    fn requests_per_cycle(&self) -> (usize, usize);
    fn has_informational(&self) -> bool;
    fn informational<'a>(
        &'a self,
        cred: &'a Credential,
        ctx: &'a super::Context<'a>,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'a, super::Informational>;
    fn check_call_path<'a>(
        &'a self,
        path: &'a super::link::CallPath,
        caller: &'a Credential,
        carrier: &'a Linked,
        ctx: &'a super::Context<'a>,
    ) -> BoxFuture<'a, Vec<super::link::Observation>>;
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl<K: Kind + Sync> SpecOf for K {
    fn run<'a>(
        &'a self,
        cred: &'a Credential,
        ctx: &'a super::Context<'a>,
        plan: &'a super::Plan,
    ) -> BoxFuture<'a, Vec<Attempt>> {
        Box::pin(Kind::run(self, cred, ctx, plan))
    }
    fn requests_per_cycle(&self) -> (usize, usize) {
        Kind::requests_per_cycle(self)
    }
    fn has_informational(&self) -> bool {
        Kind::has_informational(self)
    }
    fn informational<'a>(
        &'a self,
        cred: &'a Credential,
        ctx: &'a super::Context<'a>,
        deadline: tokio::time::Instant,
    ) -> BoxFuture<'a, super::Informational> {
        Box::pin(Kind::informational(self, cred, ctx, deadline))
    }
    fn check_call_path<'a>(
        &'a self,
        path: &'a super::link::CallPath,
        caller: &'a Credential,
        carrier: &'a Linked,
        ctx: &'a super::Context<'a>,
    ) -> BoxFuture<'a, Vec<super::link::Observation>> {
        Box::pin(Kind::check_call_path(self, path, caller, carrier, ctx))
    }
}

/// A credential's provider-specific settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    ElevenLabs(ElevenLabs),
    Twilio(Twilio),
}

impl Spec {
    pub fn provider(&self) -> Provider {
        match self {
            Spec::ElevenLabs(_) => Provider::ElevenLabs,
            Spec::Twilio(_) => Provider::Twilio,
        }
    }

    /// Its provider's [`Kind`], for this credential: the one arm per
    /// provider through which every instance method is asked.
    fn kind(&self) -> &dyn SpecOf {
        match self {
            Spec::ElevenLabs(s) => s,
            Spec::Twilio(s) => s,
        }
    }

    /// One cycle of its provider's checks (see [`super::run`]).
    pub(super) async fn run(
        &self,
        cred: &Credential,
        ctx: &super::Context<'_>,
        plan: &super::Plan,
    ) -> Vec<Attempt> {
        self.kind().run(cred, ctx, plan).await
    }

    /// See [`Kind::requests_per_cycle`].
    pub(super) fn requests_per_cycle(&self) -> (usize, usize) {
        self.kind().requests_per_cycle()
    }

    /// See [`Kind::has_informational`].
    pub(super) fn has_informational(&self) -> bool {
        self.kind().has_informational()
    }

    /// See [`Kind::informational`].
    pub(super) async fn informational(
        &self,
        cred: &Credential,
        ctx: &super::Context<'_>,
        deadline: tokio::time::Instant,
    ) -> super::Informational {
        self.kind().informational(cred, ctx, deadline).await
    }

    /// See [`Kind::check_call_path`].
    pub(super) async fn check_call_path(
        &self,
        path: &super::link::CallPath,
        caller: &Credential,
        carrier: &Linked,
        ctx: &super::Context<'_>,
    ) -> Vec<super::link::Observation> {
        self.kind()
            .check_call_path(path, caller, carrier, ctx)
            .await
    }

    /// What the credential's provider settings answer.
    pub fn settings(&self) -> &dyn Settings {
        match self {
            Spec::ElevenLabs(s) => s,
            Spec::Twilio(s) => s,
        }
    }
}

/// Every provider's config section, as written.
#[derive(Debug, Default)]
pub struct RawSections {
    pub elevenlabs: ElSection,
    pub twilio: TwSection,
}

/// What each provider's credentials share.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    pub elevenlabs: <ElSection as Section>::Shared,
    pub twilio: <TwSection as Section>::Shared,
}

// The sections by name (not through `Kind`, so a provider whose `Kind` is
// unfinished does not make the config loader's types fail too).
type ElSection = elevenlabs::config::RawSection;
type TwSection = twilio::config::RawSection;

impl RawSections {
    /// The top-level keys the providers own.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        Provider::ALL.iter().flat_map(|p| p.section_keys()).copied()
    }

    /// Reads `key` when a provider owns it; `Ok(false)` when none does.
    pub fn read<'de, A: serde::de::MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        let Some(owner) = Provider::ALL
            .iter()
            .find(|p| p.section_keys().contains(&key))
        else {
            return Ok(false);
        };
        match owner {
            Provider::ElevenLabs => self.elevenlabs.read(key, map)?,
            Provider::Twilio => self.twilio.read(key, map)?,
        }
        Ok(true)
    }

    /// Whether no section names a credential.
    pub fn is_empty(&self) -> bool {
        Provider::ALL.iter().all(|p| match p {
            Provider::ElevenLabs => self.elevenlabs.is_empty(),
            Provider::Twilio => self.twilio.is_empty(),
        })
    }

    /// Validates every section, then the links between credentials.
    /// Credentials come in [`Provider::ALL`] order, each section's in its order.
    pub fn validate(
        mut self,
        v: &mut Validator<'_>,
        defaults: &Timing,
    ) -> (Vec<Credential>, Shared) {
        let mut credentials = Vec::new();
        let mut shared = Shared::default();
        for p in Provider::ALL {
            let section = match p {
                Provider::ElevenLabs => {
                    let (c, s) = std::mem::take(&mut self.elevenlabs).validate(v, defaults);
                    shared.elevenlabs = s;
                    c
                }
                Provider::Twilio => {
                    let (c, s) = std::mem::take(&mut self.twilio).validate(v, defaults);
                    shared.twilio = s;
                    c
                }
            };
            credentials.extend(section);
        }
        for p in Provider::ALL {
            match p {
                Provider::ElevenLabs => ElSection::check_links(v, &credentials),
                Provider::Twilio => TwSection::check_links(v, &credentials),
            }
        }
        (credentials, shared)
    }
}

/// A precise diagnosis behind a verdict: a missing permission, or a
/// provider's own. `credwatch check` turns each into an explanation and a
/// fix; metrics only see its [`Reason`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// A required permission is missing.
    PermissionMissing { permission: String },
    #[serde(untagged)]
    ElevenLabs(elevenlabs::Problem),
    #[serde(untagged)]
    Twilio(twilio::Problem),
}

impl Problem {
    pub fn reason(&self) -> Reason {
        match self {
            Problem::PermissionMissing { .. } => Reason::MissingPermission,
            Problem::ElevenLabs(p) => p.reason(),
            Problem::Twilio(p) => p.reason(),
        }
    }

    /// A short code for JSON output and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::PermissionMissing { .. } => "permission_missing",
            Problem::ElevenLabs(p) => p.code(),
            Problem::Twilio(p) => p.code(),
        }
    }
}

impl From<elevenlabs::Problem> for Problem {
    fn from(p: elevenlabs::Problem) -> Self {
        Problem::ElevenLabs(p)
    }
}

impl From<twilio::Problem> for Problem {
    fn from(p: twilio::Problem) -> Self {
        Problem::Twilio(p)
    }
}

/// What only one provider's answers establish (quota, balance, numbers, …).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Detail {
    #[serde(untagged)]
    ElevenLabs(elevenlabs::Detail),
    #[serde(untagged)]
    Twilio(twilio::Detail),
}

impl Detail {
    pub fn error_reason(&self) -> Option<Reason> {
        match self {
            Detail::ElevenLabs(d) => d.error_reason(),
            Detail::Twilio(d) => d.error_reason(),
        }
    }

    pub fn resource(&self) -> Option<&'static str> {
        match self {
            Detail::ElevenLabs(d) => d.resource(),
            Detail::Twilio(d) => d.resource(),
        }
    }
}

impl From<elevenlabs::Detail> for Detail {
    fn from(d: elevenlabs::Detail) -> Self {
        Detail::ElevenLabs(d)
    }
}

impl From<twilio::Detail> for Detail {
    fn from(d: twilio::Detail) -> Self {
        Detail::Twilio(d)
    }
}

impl From<elevenlabs::Detail> for Fact {
    fn from(d: elevenlabs::Detail) -> Self {
        Fact::Detail(Detail::ElevenLabs(d))
    }
}

impl From<twilio::Detail> for Fact {
    fn from(d: twilio::Detail) -> Self {
        Fact::Detail(Detail::Twilio(d))
    }
}

/// What is known of one credential from its provider's details.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Details {
    ElevenLabs(elevenlabs::Details),
    Twilio(twilio::Details),
}

impl Details {
    /// Nothing known yet.
    pub fn new(provider: Provider) -> Self {
        match provider {
            Provider::ElevenLabs => Details::ElevenLabs(Default::default()),
            Provider::Twilio => Details::Twilio(Default::default()),
        }
    }

    /// Applies a detail of the same provider (another's is ignored).
    pub fn apply(&mut self, detail: &Detail) {
        match (self, detail) {
            (Details::ElevenLabs(s), Detail::ElevenLabs(d)) => s.apply(d),
            (Details::Twilio(s), Detail::Twilio(d)) => s.apply(d),
            // Another provider's detail (one arm per provider, so a new
            // `Details` variant is flagged here too).
            (Details::ElevenLabs(_), _) | (Details::Twilio(_), _) => {}
        }
    }

    fn inner(&self) -> &dyn DetailsView {
        match self {
            Details::ElevenLabs(s) => s,
            Details::Twilio(s) => s,
        }
    }

    pub fn not_permitted(&mut self, resource: &str) {
        match self {
            Details::ElevenLabs(s) => s.not_permitted(resource),
            Details::Twilio(s) => s.not_permitted(resource),
        }
    }

    pub fn account_values(&self) -> bool {
        self.inner().account_values()
    }

    pub fn numbers_ready(&self) -> bool {
        self.inner().numbers_ready()
    }

    /// The provider's families' samples; `out` spans those families.
    pub fn render(&self, expose_numbers: bool, out: &mut Samples<'_>) {
        self.inner().render(expose_numbers, out)
    }

    /// `check`'s report of the details: the provider's own object.
    pub fn report(&self) -> Reports {
        match self {
            Details::ElevenLabs(s) => Reports::ElevenLabs(s.report()),
            Details::Twilio(s) => Reports::Twilio(s.report()),
        }
    }

    /// What the status page shows of them.
    pub fn shown(&self) -> Vec<report::Shown> {
        self.inner().shown()
    }

    pub fn findings(&self, attempts: &[Attempt], linked: Option<&Linked>) -> Vec<report::Finding> {
        self.inner().findings(attempts, linked)
    }
}

/// The object-safe part of [`ProviderDetails`], so [`Details`] dispatches
/// in one place.
trait DetailsView {
    fn account_values(&self) -> bool;
    fn numbers_ready(&self) -> bool;
    fn render(&self, expose_numbers: bool, out: &mut Samples<'_>);
    fn shown(&self) -> Vec<report::Shown>;
    fn findings(&self, attempts: &[Attempt], linked: Option<&Linked>) -> Vec<report::Finding>;
}

impl<D: ProviderDetails> DetailsView for D {
    fn account_values(&self) -> bool {
        ProviderDetails::account_values(self)
    }
    fn numbers_ready(&self) -> bool {
        ProviderDetails::numbers_ready(self)
    }
    fn render(&self, expose_numbers: bool, out: &mut Samples<'_>) {
        ProviderDetails::render(self, expose_numbers, out)
    }
    fn shown(&self) -> Vec<report::Shown> {
        ProviderDetails::shown(self)
    }
    fn findings(&self, attempts: &[Attempt], linked: Option<&Linked>) -> Vec<report::Finding> {
        ProviderDetails::findings(self, attempts, linked)
    }
}

/// One credential's provider fields (`quota`, `twilio_account`, …): the
/// object `details` of `check --output json` (version 2), whose shape the
/// credential's `provider` says; adding a provider adds a shape, it changes
/// no other.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Reports {
    ElevenLabs(elevenlabs::report::Report),
    Twilio(twilio::report::Report),
}

impl Reports {
    /// The report in a few words.
    pub fn summary(&self) -> Vec<String> {
        match self {
            Reports::ElevenLabs(r) => r.summary(),
            Reports::Twilio(r) => r.summary(),
        }
    }
}

/// Each provider's metric families, in [`Provider::ALL`] order.
pub const FAMILY_PARTS: [&[Family]; Provider::ALL.len()] = {
    let mut parts: [&[Family]; Provider::ALL.len()] = [&[]; Provider::ALL.len()];
    let mut i = 0;
    while i < parts.len() {
        // `index` and the declaration order agree (checked at compile time).
        assert!(Provider::ALL[i].index() == i);
        parts[i] = Provider::ALL[i].families();
        i += 1;
    }
    parts
};

/// (summary, fix) for a definitive problem, in the words of the
/// credential's provider.
pub fn explain(p: &Problem, cred: &Credential) -> (String, String) {
    cred.provider()
        .explain(p, cred)
        .unwrap_or_else(|| match p {
            // Shared by every provider; one that has its own words says them.
            Problem::PermissionMissing { permission } => (
                format!(
                    "The {} is valid but lacks the `{permission}` permission (or scope).",
                    cred.spec.settings().secret_name()
                ),
                format!(
                    "Grant `{permission}` to this {} in the provider's console, or use one that holds it.",
                    cred.spec.settings().secret_name()
                ),
            ),
            _ => (
                format!("Problem `{}`.", p.code()),
                "See the evidence.".to_string(),
            ),
        })
}
