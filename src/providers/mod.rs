//! The upstream providers, behind one interface.
//!
//! A provider is one folder (`providers/<name>/`) that owns everything about
//! its upstream: its config section (`config.rs`: raw keys, validation,
//! secret shapes, re-reading `*_file` values), what it may ask (`api.rs`:
//! its arm of the read-only allow-list), its requests and the
//! classification of their answers into [`outcome`](crate::outcome)
//! facts, and its explanations for `credwatch check` (`explain.rs`). It
//! implements [`Kind`] on its credential type and is registered with one
//! line in `registry!`'s invocation below. Everything outside this folder
//! (config loader, scheduler, state, exposition, server, `check`) works
//! through [`Credential`], [`Spec`] and [`Provider`] and never names a
//! provider.

pub mod http;
pub mod link;
pub mod outcome;
pub mod report;
pub mod words;

#[cfg(test)]
pub(crate) mod properties;

use std::future::Future;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::exposition::{Family, Samples};
use crate::section::{SecretSource, SecretValue, Timing, Validator};
pub use allow::check_read_path;
pub use credential::Credential;
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

/// What a provider gives credwatch. Implemented by each provider on its
/// credential type (the payload of its [`Spec`] variant).
pub trait Kind: Sized {
    /// Its config section as written.
    type RawSection: Section;
    /// The check whose answer decides validity (it runs first in every cycle).
    const AUTH_CHECK: &'static str;
    /// Its diagnoses behind a verdict (`facts.rs`).
    type Problem: Clone + std::fmt::Debug + PartialEq + Eq + Serialize;
    /// What its answers establish besides validity and permissions.
    type Detail: Clone + std::fmt::Debug + PartialEq + Serialize;
    /// What is known of one credential from its [`Detail`](Self::Detail)s.
    type Details: Clone + std::fmt::Debug + Default + Serialize;
    /// What `credwatch check` reports of the details (its JSON fields,
    /// flattened into the credential's report).
    type Report: Clone + std::fmt::Debug + Default + Serialize;
    /// Its metric families, exported after the common ones (`metrics.rs`).
    const FAMILIES: &'static [Family];

    /// Its arm of the read-only allow-list ([`check_read_path`]): whether
    /// the path, split into segments, and the query may be asked.
    fn allowed(segments: &[&str], query: Option<&str>) -> Result<bool, String>;

    /// Where its requests go.
    fn base_url(&self) -> &str;
    /// The secret that authenticates it.
    fn secret(&self) -> &SecretValue;
    /// What the secret is called in the provider's console.
    fn secret_name(&self) -> &'static str;
    /// Where its secret values come from (`*_file` ones are watched).
    fn sources(&self) -> Vec<&SecretSource>;
    /// Re-reads its `*_file` values: `Ok(None)` when nothing changed.
    fn reread(&self) -> Result<Option<Spec>, String>;
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
    /// One cycle of checks: sequential requests, the auth check first.
    fn run(
        &self,
        cred: &Credential,
        ctx: &Context<'_>,
        plan: &Plan,
    ) -> impl Future<Output = Vec<Attempt>> + Send;
    /// (summary, fix) for a definitive problem this provider reports.
    fn explain(problem: &Problem, cred: &Credential) -> Option<(String, String)>;

    /// The stable reason a problem is exported under.
    fn problem_reason(problem: &Self::Problem) -> Reason;
    /// The problem's code in `check`'s findings.
    fn problem_code(problem: &Self::Problem) -> &'static str;
    /// The reason a detail counts as a check error under, if it does.
    fn detail_error_reason(_detail: &Self::Detail) -> Option<Reason> {
        None
    }
    /// The resource a detail proves the key may read (clears an earlier
    /// [`Fact::NotPermittedForKey`]).
    fn detail_resource(_detail: &Self::Detail) -> Option<&'static str> {
        None
    }
    /// Applies a definitive detail.
    fn apply(details: &mut Self::Details, detail: &Self::Detail);
    /// The key may not read `resource`: forget what was read of it.
    fn not_permitted(_details: &mut Self::Details, _resource: &str) {}
    /// Ready for calls beyond being usable (ElevenLabs: every imported
    /// number can place calls). `check`'s exit code; not part of `/health`.
    fn numbers_ready(_details: &Self::Details) -> bool {
        true
    }
    /// Whether the details hold the values of its account's series (quota,
    /// balance): which of an account's credentials exports them.
    fn account_values(_details: &Self::Details) -> bool {
        false
    }
    /// Its families' samples of one credential.
    fn render(details: &Self::Details, expose_numbers: bool, out: &mut Samples<'_>);
    /// `check`'s report of the details.
    fn report(details: &Self::Details) -> Self::Report;
    /// The report in a few words for `check`'s summary line.
    fn summary(report: &Self::Report) -> Vec<String>;
    /// `check`'s findings about the details (billing at risk, imported numbers, …).
    fn findings(
        _details: &Self::Details,
        _attempts: &[Attempt],
        _linked: Option<&Linked>,
    ) -> Vec<Finding> {
        Vec::new()
    }
    /// What the status page shows of the details (quota, balance, numbers, …).
    fn shown(_details: &Self::Details) -> Vec<report::Shown> {
        Vec::new()
    }
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
    fn sample_detail(n: u64) -> Self::Detail;
    /// Test data: the provider's "credential rejected" problem.
    #[cfg(test)]
    fn sample_problem() -> Self::Problem;
}

/// Generates, from the list of providers, the types and the dispatch that
/// the rest of credwatch uses: [`Provider`], [`Spec`], [`RawSections`],
/// [`Shared`] and the `each!` macro. `$d` is a literal `$`, so the
/// generated macro can have variables of its own.
macro_rules! registry {
    ($d:tt $($Variant:ident($module:ident::$Type:ident)),+ $(,)?) => {
        $(pub mod $module;)+

        /// Which upstream a credential belongs to; `as_str` is the config
        /// section and the `provider` label.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Provider {
            $($Variant,)+
        }

        impl Provider {
            pub const ALL: &'static [Provider] = &[$(Provider::$Variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Provider::$Variant => stringify!($module),)+
                }
            }

            fn allowed(self, segments: &[&str], query: Option<&str>) -> Result<bool, String> {
                match self {
                    $(Provider::$Variant => <$module::$Type as Kind>::allowed(segments, query),)+
                }
            }

            /// Its position in [`Provider::ALL`] (and in [`FAMILY_PARTS`]).
            pub fn index(self) -> usize {
                Provider::ALL.iter().position(|p| *p == self).unwrap_or(0)
            }

            /// (summary, fix) for a resource this provider's key type may not read.
            pub fn explain_not_permitted(self, resource: &str) -> (String, String) {
                match self {
                    $(Provider::$Variant => <$module::$Type as Kind>::explain_not_permitted(resource),)+
                }
            }

            /// The fix for a failure only this provider's answers explain.
            pub fn failure_fix(self, reason: Reason, detail: &str) -> Option<&'static str> {
                match self {
                    $(Provider::$Variant => <$module::$Type as Kind>::failure_fix(reason, detail),)+
                }
            }

            /// Test data: see [`Kind::sample_detail`].
            #[cfg(test)]
            pub(crate) fn sample_detail(self, n: u64) -> Fact {
                match self {
                    $(Provider::$Variant => <$module::$Type as Kind>::sample_detail(n).into(),)+
                }
            }

            /// Test data: see [`Kind::sample_problem`].
            #[cfg(test)]
            pub(crate) fn sample_problem(self) -> Problem {
                match self {
                    $(Provider::$Variant => <$module::$Type as Kind>::sample_problem().into(),)+
                }
            }

            /// The name of its check that decides validity.
            pub fn auth_check(self) -> &'static str {
                match self {
                    $(Provider::$Variant => <$module::$Type as Kind>::AUTH_CHECK,)+
                }
            }
        }

        /// A credential's provider-specific settings.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Spec {
            $($Variant($module::$Type),)+
        }

        /// `each!(spec, s => expr)`: `expr` with `s` bound to the
        /// provider's settings, whichever provider it is.
        macro_rules! each {
            ($d spec:expr, $d s:ident => $d body:expr) => {
                match $d spec {
                    $(Spec::$Variant($d s) => $d body,)+
                }
            };
        }

        impl Spec {
            pub fn provider(&self) -> Provider {
                match self {
                    $(Spec::$Variant(_) => Provider::$Variant,)+
                }
            }
        }

        /// Every provider's config section, as written.
        #[derive(Debug, Default)]
        pub struct RawSections {
            $(pub $module: <$module::$Type as Kind>::RawSection,)+
        }

        /// What each provider's credentials share.
        #[derive(Debug, Clone, Default)]
        pub struct Shared {
            $(pub $module: <<$module::$Type as Kind>::RawSection as Section>::Shared,)+
        }

        impl RawSections {
            /// The top-level keys the providers own.
            pub fn keys() -> impl Iterator<Item = &'static str> {
                std::iter::empty()$(.chain(<<$module::$Type as Kind>::RawSection as Section>::KEYS.iter().copied()))+
            }

            /// Reads `key` when a provider owns it; `Ok(false)` when none does.
            pub fn read<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(
                    if <<$module::$Type as Kind>::RawSection as Section>::KEYS.contains(&key) {
                        self.$module.read(key, map)?;
                        return Ok(true);
                    }
                )+
                Ok(false)
            }

            /// Whether no section names a credential.
            pub fn is_empty(&self) -> bool {
                true $(&& self.$module.is_empty())+
            }

            /// Validates every section, then the links between credentials.
            pub fn validate(self, v: &mut Validator<'_>, defaults: &Timing) -> (Vec<Credential>, Shared) {
                let mut credentials = Vec::new();
                $(
                    let ($module, shared) = self.$module.validate(v, defaults);
                    credentials.extend($module);
                    let $module = shared;
                )+
                $(<<$module::$Type as Kind>::RawSection as Section>::check_links(v, &credentials);)+
                (credentials, Shared { $($module,)+ })
            }
        }

        /// A precise diagnosis behind a verdict: a missing permission, or a
        /// provider's own. `credwatch check` turns each into an explanation
        /// and a fix; metrics only see its [`Reason`].
        #[derive(Clone, Debug, PartialEq, Eq, Serialize)]
        #[serde(tag = "problem", rename_all = "snake_case")]
        pub enum Problem {
            /// A required permission is missing.
            PermissionMissing { permission: String },
            $(#[serde(untagged)] $Variant(<$module::$Type as Kind>::Problem),)+
        }

        impl Problem {
            pub fn reason(&self) -> Reason {
                match self {
                    Problem::PermissionMissing { .. } => Reason::MissingPermission,
                    $(Problem::$Variant(p) => <$module::$Type as Kind>::problem_reason(p),)+
                }
            }

            /// A short code for JSON output and logs.
            pub fn code(&self) -> &'static str {
                match self {
                    Problem::PermissionMissing { .. } => "permission_missing",
                    $(Problem::$Variant(p) => <$module::$Type as Kind>::problem_code(p),)+
                }
            }
        }

        $(
            impl From<<$module::$Type as Kind>::Problem> for Problem {
                fn from(p: <$module::$Type as Kind>::Problem) -> Self {
                    Problem::$Variant(p)
                }
            }

            impl From<<$module::$Type as Kind>::Detail> for Detail {
                fn from(d: <$module::$Type as Kind>::Detail) -> Self {
                    Detail::$Variant(d)
                }
            }

            impl From<<$module::$Type as Kind>::Detail> for Fact {
                fn from(d: <$module::$Type as Kind>::Detail) -> Self {
                    Fact::Detail(Detail::$Variant(d))
                }
            }
        )+

        /// What only one provider's answers establish (quota, balance, numbers, …).
        #[derive(Clone, Debug, PartialEq, Serialize)]
        pub enum Detail {
            $(#[serde(untagged)] $Variant(<$module::$Type as Kind>::Detail),)+
        }

        impl Detail {
            pub fn error_reason(&self) -> Option<Reason> {
                match self {
                    $(Detail::$Variant(d) => <$module::$Type as Kind>::detail_error_reason(d),)+
                }
            }

            pub fn resource(&self) -> Option<&'static str> {
                match self {
                    $(Detail::$Variant(d) => <$module::$Type as Kind>::detail_resource(d),)+
                }
            }
        }

        /// What is known of one credential from its provider's details.
        #[derive(Clone, Debug, Serialize)]
        #[serde(untagged)]
        pub enum Details {
            $($Variant(<$module::$Type as Kind>::Details),)+
        }

        impl Details {
            /// Nothing known yet.
            pub fn new(provider: Provider) -> Self {
                match provider {
                    $(Provider::$Variant => Details::$Variant(Default::default()),)+
                }
            }

            /// Applies a detail of the same provider (another's is ignored).
            pub fn apply(&mut self, detail: &Detail) {
                #[allow(unreachable_patterns)]
                match (self, detail) {
                    $((Details::$Variant(s), Detail::$Variant(d)) => <$module::$Type as Kind>::apply(s, d),)+
                    _ => {}
                }
            }

            pub fn not_permitted(&mut self, resource: &str) {
                match self {
                    $(Details::$Variant(s) => <$module::$Type as Kind>::not_permitted(s, resource),)+
                }
            }

            pub fn account_values(&self) -> bool {
                match self {
                    $(Details::$Variant(s) => <$module::$Type as Kind>::account_values(s),)+
                }
            }

            pub fn numbers_ready(&self) -> bool {
                match self {
                    $(Details::$Variant(s) => <$module::$Type as Kind>::numbers_ready(s),)+
                }
            }

            /// The provider's families' samples; `out` spans those families.
            pub fn render(&self, expose_numbers: bool, out: &mut Samples<'_>) {
                match self {
                    $(Details::$Variant(s) => <$module::$Type as Kind>::render(s, expose_numbers, out),)+
                }
            }

            /// `check`'s report of the details: the provider's fields filled,
            /// every other provider's empty.
            pub fn report(&self) -> Reports {
                let mut r = Reports::default();
                match self {
                    $(Details::$Variant(s) => r.$module = <$module::$Type as Kind>::report(s),)+
                }
                r
            }

            /// What the status page shows of them.
            pub fn shown(&self) -> Vec<report::Shown> {
                match self {
                    $(Details::$Variant(s) => <$module::$Type as Kind>::shown(s),)+
                }
            }

            pub fn findings(&self, attempts: &[Attempt], linked: Option<&Linked>) -> Vec<Finding> {
                match self {
                    $(Details::$Variant(s) => <$module::$Type as Kind>::findings(s, attempts, linked),)+
                }
            }
        }

        /// Every provider's report fields (`quota`, `twilio_account`, …), as
        /// `check --output json` has them.
        #[derive(Clone, Debug, Default, Serialize)]
        pub struct Reports {
            $(#[serde(flatten)] pub $module: <$module::$Type as Kind>::Report,)+
        }

        impl Reports {
            /// The reports in a few words each.
            pub fn summary(&self) -> Vec<String> {
                let mut bits = Vec::new();
                $(bits.extend(<$module::$Type as Kind>::summary(&self.$module));)+
                bits
            }
        }

        /// Each provider's metric families, in [`Provider::ALL`] order.
        pub const FAMILY_PARTS: &[&[Family]] = &[$(<$module::$Type as Kind>::FAMILIES,)+];

        /// (summary, fix) for a definitive problem, in the words of the
        /// credential's provider.
        pub fn explain(p: &Problem, cred: &Credential) -> (String, String) {
            match cred.provider() {
                $(Provider::$Variant => <$module::$Type as Kind>::explain(p, cred),)+
            }
            .unwrap_or_else(|| {
                (
                    format!("Problem `{}`.", p.code()),
                    "See the evidence.".to_string(),
                )
            })
        }
    };
}

// The providers. Adding one is a folder and a line here.
registry!($
    ElevenLabs(elevenlabs::ElevenLabs),
    Twilio(twilio::Twilio),
);

mod allow;
mod credential;

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
    each!(&cred.spec, s => s.run(cred, ctx, plan).await)
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
    match &caller.spec {
        Spec::ElevenLabs(el) => elevenlabs::call_path::check(path, caller, el, carrier, ctx).await,
        _ => Vec::new(),
    }
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
