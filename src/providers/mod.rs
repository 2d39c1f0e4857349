//! The upstream providers, behind one interface.
//!
//! A provider is one folder (`providers/<name>/`) that owns everything about
//! its upstream: its config section (`config.rs`: raw keys, validation,
//! secret shapes, re-reading `*_file` values), what it may ask (`api.rs`:
//! its arm of the read-only allow-list), its requests and the
//! classification of their answers into [`outcome`](crate::outcome)
//! facts, and its explanations for `credwatch check` (`explain.rs`). It
//! implements [`Kind`] on its credential type and is registered with one
//! line in [`registry!`]'s invocation below. Everything outside this folder
//! (config loader, scheduler, state, exposition, server, `check`) works
//! through [`Credential`], [`Spec`] and [`Provider`] and never names a
//! provider.

pub mod http;
pub(crate) mod words;

#[cfg(test)]
pub(crate) mod properties;

use std::future::Future;
use std::time::{Instant, SystemTime};

use crate::outcome::{Attempt, Evidence, Fact, Failure, Problem, Reason};
use crate::section::{SecretSource, SecretValue, Timing, Validator};
pub use allow::check_read_path;
pub use credential::Credential;
use http::{TransportError, Upstream};

/// What a provider gives credwatch. Implemented by each provider on its
/// credential type (the payload of its [`Spec`] variant).
pub trait Kind: Sized {
    /// The top-level keys of the config file the provider owns.
    const KEYS: &'static [&'static str];
    /// Its config section as written.
    type RawSection: Default;
    /// What its credentials share (ElevenLabs: the permission-probe table).
    type Shared: std::fmt::Debug + Clone + Default;
    /// The check whose answer decides validity (it runs first in every cycle).
    const AUTH_CHECK: &'static str;

    /// Its arm of the read-only allow-list ([`check_read_path`]): whether
    /// the path, split into segments, and the query may be asked.
    fn allowed(segments: &[&str], query: Option<&str>) -> Result<bool, String>;

    /// Reads the value of one of [`KEYS`](Self::KEYS) into the section.
    fn read_key<'de, A: serde::de::MapAccess<'de>>(
        raw: &mut Self::RawSection,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error>;
    /// Whether the section names no credential.
    fn is_empty(raw: &Self::RawSection) -> bool;
    /// Validates the section into credentials; problems go to `v` with their key paths.
    fn validate(
        v: &mut Validator<'_>,
        raw: Self::RawSection,
        defaults: &Timing,
    ) -> (Vec<Credential>, Self::Shared);
    /// Checks what its credentials say about others (the ElevenLabs → Twilio
    /// link), once every section is validated.
    fn check_links(_v: &mut Validator<'_>, _credentials: &[Credential]) {}

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
            $(pub $module: <$module::$Type as Kind>::Shared,)+
        }

        impl RawSections {
            /// The top-level keys the providers own.
            pub fn keys() -> impl Iterator<Item = &'static str> {
                std::iter::empty()$(.chain(<$module::$Type as Kind>::KEYS.iter().copied()))+
            }

            /// Reads `key` when a provider owns it; `Ok(false)` when none does.
            pub fn read<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(
                    if <$module::$Type as Kind>::KEYS.contains(&key) {
                        <$module::$Type as Kind>::read_key(&mut self.$module, key, map)?;
                        return Ok(true);
                    }
                )+
                Ok(false)
            }

            /// Whether no section names a credential.
            pub fn is_empty(&self) -> bool {
                true $(&& <$module::$Type as Kind>::is_empty(&self.$module))+
            }

            /// Validates every section, then the links between credentials.
            pub fn validate(self, v: &mut Validator<'_>, defaults: &Timing) -> (Vec<Credential>, Shared) {
                let mut credentials = Vec::new();
                $(
                    let ($module, shared) = <$module::$Type as Kind>::validate(v, self.$module, defaults);
                    credentials.extend($module);
                    let $module = shared;
                )+
                $(<$module::$Type as Kind>::check_links(v, &credentials);)+
                (credentials, Shared { $($module,)+ })
            }
        }

        /// (summary, fix) for a definitive problem, in the words of the
        /// provider that reports it.
        pub fn explain(p: &Problem, cred: &Credential) -> (String, String) {
            None
                $(.or_else(|| <$module::$Type as Kind>::explain(p, cred)))+
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

/// `credwatch calibrate` (proves a permission probe) and the words of the
/// phone-number cross-check: ElevenLabs', reached through here.
pub use elevenlabs::calibrate;
pub use elevenlabs::explain::{billing_at_risk as explain_billing_at_risk, phone as explain_phone};

/// Runs one cycle of checks for `cred`. Requests for one credential are
/// sequential; the first attempt is always the auth check.
pub async fn run(cred: &Credential, ctx: &Context<'_>, plan: &Plan) -> Vec<Attempt> {
    each!(&cred.spec, s => s.run(cred, ctx, plan).await)
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
