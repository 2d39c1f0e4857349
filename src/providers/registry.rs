//! The provider set, as plain enums with one visible arm per provider
//! (mini-redis' `Command`): [`Provider`], [`Spec`], [`RawSections`],
//! [`Shared`], [`Problem`], [`Detail`], [`Details`], [`Reports`] and
//! [`FAMILY_PARTS`]. Adding a provider is a variant in each and an arm in
//! each `match`; the compiler lists every place (each one is in this file),
//! and the arms only call the provider's [`Kind`] or the traits of its
//! associated types, so a missing piece of the provider is an error at its
//! own impl.
//!
//! Nothing here decides anything about a provider; it only dispatches.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    ElevenLabs,
    Twilio,
}

impl Provider {
    pub const ALL: &'static [Provider] = &[Provider::ElevenLabs, Provider::Twilio];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::ElevenLabs => "elevenlabs",
            Provider::Twilio => "twilio",
        }
    }

    /// Its position in [`Provider::ALL`] (and in [`FAMILY_PARTS`]).
    pub fn index(self) -> usize {
        match self {
            Provider::ElevenLabs => 0,
            Provider::Twilio => 1,
        }
    }

    pub(super) fn allowed(self, segments: &[&str], query: Option<&str>) -> Result<bool, String> {
        match self {
            Provider::ElevenLabs => ElevenLabs::allowed(segments, query),
            Provider::Twilio => Twilio::allowed(segments, query),
        }
    }

    /// (summary, fix) for a resource this provider's key type may not read.
    pub fn explain_not_permitted(self, resource: &str) -> (String, String) {
        match self {
            Provider::ElevenLabs => ElevenLabs::explain_not_permitted(resource),
            Provider::Twilio => Twilio::explain_not_permitted(resource),
        }
    }

    /// The fix for a failure only this provider's answers explain.
    pub fn failure_fix(self, reason: Reason, detail: &str) -> Option<&'static str> {
        match self {
            Provider::ElevenLabs => ElevenLabs::failure_fix(reason, detail),
            Provider::Twilio => Twilio::failure_fix(reason, detail),
        }
    }

    /// The answer headers that carry its request id.
    pub fn request_id_headers(self) -> &'static [&'static str] {
        match self {
            Provider::ElevenLabs => ElevenLabs::REQUEST_ID_HEADERS,
            Provider::Twilio => Twilio::REQUEST_ID_HEADERS,
        }
    }

    /// The name of its check that decides validity.
    pub fn auth_check(self) -> &'static str {
        match self {
            Provider::ElevenLabs => ElevenLabs::AUTH_CHECK,
            Provider::Twilio => Twilio::AUTH_CHECK,
        }
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
        match self {
            Provider::ElevenLabs => ElevenLabs::sample_detail(n).into(),
            Provider::Twilio => Twilio::sample_detail(n).into(),
        }
    }

    /// Test data: see [`Kind::sample_problem`].
    #[cfg(test)]
    pub(crate) fn sample_problem(self) -> Problem {
        match self {
            Provider::ElevenLabs => ElevenLabs::sample_problem().into(),
            Provider::Twilio => Twilio::sample_problem().into(),
        }
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

    /// One cycle of its provider's checks (see [`super::run`]).
    pub(super) async fn run(
        &self,
        cred: &Credential,
        ctx: &super::Context<'_>,
        plan: &super::Plan,
    ) -> Vec<Attempt> {
        match self {
            Spec::ElevenLabs(s) => s.run(cred, ctx, plan).await,
            Spec::Twilio(s) => s.run(cred, ctx, plan).await,
        }
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
        ElSection::KEYS.iter().chain(TwSection::KEYS).copied()
    }

    /// Reads `key` when a provider owns it; `Ok(false)` when none does.
    pub fn read<'de, A: serde::de::MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        if ElSection::KEYS.contains(&key) {
            self.elevenlabs.read(key, map)?;
        } else if TwSection::KEYS.contains(&key) {
            self.twilio.read(key, map)?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether no section names a credential.
    pub fn is_empty(&self) -> bool {
        self.elevenlabs.is_empty() && self.twilio.is_empty()
    }

    /// Validates every section, then the links between credentials.
    pub fn validate(self, v: &mut Validator<'_>, defaults: &Timing) -> (Vec<Credential>, Shared) {
        let (mut credentials, elevenlabs) = self.elevenlabs.validate(v, defaults);
        let (tw, twilio) = self.twilio.validate(v, defaults);
        credentials.extend(tw);
        ElSection::check_links(v, &credentials);
        TwSection::check_links(v, &credentials);
        (credentials, Shared { elevenlabs, twilio })
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
            _ => {}
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
pub const FAMILY_PARTS: &[&[Family]] = &[ElevenLabs::FAMILIES, Twilio::FAMILIES];

/// (summary, fix) for a definitive problem, in the words of the
/// credential's provider.
pub fn explain(p: &Problem, cred: &Credential) -> (String, String) {
    match cred.provider() {
        Provider::ElevenLabs => ElevenLabs::explain(p, cred),
        Provider::Twilio => Twilio::explain(p, cred),
    }
    .unwrap_or_else(|| {
        (
            format!("Problem `{}`.", p.code()),
            "See the evidence.".to_string(),
        )
    })
}
