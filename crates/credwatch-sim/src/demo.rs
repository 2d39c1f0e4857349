//! The world behind `credwatch demo`: one credential per interesting state,
//! with the secrets as constants so the demo config can reference them; the
//! demo config ([`config_yaml`]: each fake's [`super::Fake::demo_section`] and the
//! call paths); and the cast, what each credential ([`cast`]) and call path
//! ([`CALL_PATHS`]) must show, which the tests and the README's tables are
//! held to.
//!
//! Every secret here is fake and only valid against the simulator. They look
//! like the real formats (`sk_…` keys, `AC`/`SK` + 32 hex SIDs, 32-hex auth
//! tokens) so the daemon's format checks pass, and every ElevenLabs key
//! starts with `sk_demo` so nobody mistakes one for a real key.
//!
//! | name | constants | state |
//! |---|---|---|
//! | el-agent-prod | [`EL_AGENT_PROD_KEY`] | healthy, unrestricted, 12% quota used, 2 agents, 3 Twilio numbers |
//! | el-no-convai-write | [`EL_NO_CONVAI_WRITE_KEY`] | `user_read` + `convai_read` only |
//! | el-revoked | [`EL_REVOKED_KEY`] | unknown to the server (`invalid_api_key`) |
//! | el-quota-exhausted | [`EL_QUOTA_EXHAUSTED_KEY`] | `character_count == character_limit`, no usage-based billing |
//! | el-quota-high | [`EL_QUOTA_HIGH_KEY`] | 95% used |
//! | el-restricted | [`EL_RESTRICTED_KEY`] | `convai_write` + `convai_read` only (no `user_read`) |
//! | el-blocked | [`EL_BLOCKED_KEY`] | account blocked (`detected_unusual_activity`) |
//! | twilio-prod | [`TWILIO_PROD_SID`], [`TWILIO_PROD_TOKEN`] | active Full, 3 numbers (one without voice), balance 42.17 USD, 1 caller ID; calls to US allowed, to GB blocked |
//! | twilio-rotated-token | [`TWILIO_ROTATED_SID`], [`TWILIO_ROTATED_TOKEN`] | the token is an old one |
//! | twilio-standard-key | [`TWILIO_STANDARD_ACCOUNT_SID`], [`TWILIO_STANDARD_KEY_SID`], [`TWILIO_STANDARD_KEY_SECRET`] | Standard key, active account, 2 numbers |
//! | twilio-trial-low-balance | [`TWILIO_TRIAL_SID`], [`TWILIO_TRIAL_TOKEN`] | active Trial, balance 0.85 USD |
//! | twilio-suspended | [`TWILIO_SUSPENDED_SID`], [`TWILIO_SUSPENDED_TOKEN`] | suspended (403/20403 on lists) |

use super::{FAKES, Simulator, World};

// --- ElevenLabs keys -------------------------------------------------------

/// el-agent-prod: healthy, unrestricted key on the production workspace.
pub const EL_AGENT_PROD_KEY: &str = "sk_demoacbd7995ca12eced700a9a7010745699cb0391350736";
/// The key ID of [`EL_AGENT_PROD_KEY`] (sending it as the key gives 400).
pub const EL_AGENT_PROD_KEY_ID: &str = "keyDemoAgentProd0001";
/// el-no-convai-write: production workspace, `user_read` + `convai_read` only.
pub const EL_NO_CONVAI_WRITE_KEY: &str = "sk_demod1ad6e0a37a12a9427f30708c0ed63d79605f707765f";
pub const EL_NO_CONVAI_WRITE_KEY_ID: &str = "keyDemoNoConvaiWr002";
/// el-revoked: the server does not know this key.
pub const EL_REVOKED_KEY: &str = "sk_demo24285fdca32e0d5e52b22e9b0bd5e7220cd39f7369eb";
/// el-quota-exhausted: every credit of the period used, no usage-based billing.
pub const EL_QUOTA_EXHAUSTED_KEY: &str = "sk_demo6055021b062a9bbe1ad3fb09760445029ff4fa95c727";
pub const EL_QUOTA_EXHAUSTED_KEY_ID: &str = "keyDemoQuotaExhaus03";
/// el-quota-high: 95% of the period's credits used.
pub const EL_QUOTA_HIGH_KEY: &str = "sk_demo6e860291676901697828cc64a21251b41bbcc7ec4437";
pub const EL_QUOTA_HIGH_KEY_ID: &str = "keyDemoQuotaHigh0004";
/// el-restricted: `convai_write` + `convai_read` only (no `user_read`).
pub const EL_RESTRICTED_KEY: &str = "sk_demodbc24ac9da1e03b7803114e7eca948db6b603fdfc6bf";
pub const EL_RESTRICTED_KEY_ID: &str = "keyDemoRestricted005";
/// el-blocked: the account is blocked for unusual activity.
pub const EL_BLOCKED_KEY: &str = "sk_demo59b4199cebb742b98ff3018fe344419b7837ff614f18";
pub const EL_BLOCKED_KEY_ID: &str = "keyDemoBlocked000006";

// --- ElevenLabs agents and numbers (production workspace) ------------------

/// Agent using `ulaw_8000` for TTS output and ASR input.
pub const EL_AGENT_ULAW_ID: &str = "agent_7c4a8e51664205f2128dc0ecef3b";
/// Agent using `pcm_16000` both ways.
pub const EL_AGENT_PCM_ID: &str = "agent_2bf65aae7e3c3f1a5c52e49c8acf";
/// A well-formed agent ID of an agent that was deleted (the `agent-deleted`
/// call path names it).
pub const EL_AGENT_DELETED_ID: &str = "agent_2401k3p9vx7m4q8z2d6f0h3j5kn1";
/// A well-formed agent ID that exists nowhere (for the `convai_write` probe).
pub const EL_UNKNOWN_AGENT_ID: &str = "agent_c024b968cc1c8a9986247a9d7d33";
/// Outbound-capable Twilio number assigned to the ulaw agent; it is on
/// twilio-prod.
pub const EL_PHONE_SUPPORT_ID: &str = "phnum_demo_support_line";
pub const EL_PHONE_SUPPORT_NUMBER: &str = "+14155550101";
/// Twilio number with no agent; it is on twilio-prod, without voice
/// capability (SMS only).
pub const EL_PHONE_SPARE_ID: &str = "phnum_demo_spare_line";
pub const EL_PHONE_SPARE_NUMBER: &str = "+14155550102";
/// Twilio number (pcm agent) that is NOT on twilio-prod.
pub const EL_PHONE_LEGACY_ID: &str = "phnum_demo_legacy_line";
pub const EL_PHONE_LEGACY_NUMBER: &str = "+14155550199";

// --- Twilio -----------------------------------------------------------------

/// twilio-prod: active Full account.
pub const TWILIO_PROD_SID: &str = "AC1825deb2f57b738d54b3c7459cce5f63";
pub const TWILIO_PROD_TOKEN: &str = "88aaaf5cb3d072372ddcc8b9c8c6e286";
/// The third incoming number of twilio-prod (not imported into ElevenLabs).
pub const TWILIO_PROD_EXTRA_NUMBER: &str = "+14155550103";
/// The verified caller ID of twilio-prod.
pub const TWILIO_PROD_CALLER_ID: &str = "+14155550100";

/// twilio-rotated-token: a real account…
pub const TWILIO_ROTATED_SID: &str = "AC31d837421b2d7ae6a8e761ce29691fa1";
/// …configured with this OLD token (401/20003).
pub const TWILIO_ROTATED_TOKEN: &str = "ab1eaa344358692905c92303f820c338";
/// The token the server currently knows for [`TWILIO_ROTATED_SID`].
pub const TWILIO_ROTATED_CURRENT_TOKEN: &str = "e0c9035898dd52fc65c41454cec9c4d2";

/// twilio-standard-key: the account (path SID) …
pub const TWILIO_STANDARD_ACCOUNT_SID: &str = "ACd4b8883b9f18d417c3cdf0e0e8d0f32b";
/// … its own auth token (not used by the demo config) …
pub const TWILIO_STANDARD_ACCOUNT_TOKEN: &str = "d617381391cc1f0bb00d5ea5be57f0b0";
/// … and the Standard API key used as Basic-auth username/password.
pub const TWILIO_STANDARD_KEY_SID: &str = "SK09b912b28afbaf4477cdc3b6e967045a";
pub const TWILIO_STANDARD_KEY_SECRET: &str = "Xq7Lm2Vd9Rk4Tz8Wc1Hn6Bp3Js5Fg0Ya";

/// twilio-trial-low-balance: active Trial account, balance 0.85 USD.
pub const TWILIO_TRIAL_SID: &str = "AC7e3ad9d0d09ad6b5bd8278ab96669ced";
pub const TWILIO_TRIAL_TOKEN: &str = "bf7fee2345a935763299a9e9b2c8a3ca";

/// twilio-suspended: suspended account.
pub const TWILIO_SUSPENDED_SID: &str = "AC35fb35bfbd34f96790387427af2d8cbc";
pub const TWILIO_SUSPENDED_TOKEN: &str = "adc4a634c16c4d6f7bc35f7b00de88a9";

// --- The demo config and its cast -----------------------------------------

/// One credential of the demo and what `/health` and `check` must say of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CastMember {
    /// The credential's `name:` in the demo config.
    pub name: &'static str,
    /// Its `status`: `healthy` or `unhealthy`.
    pub status: &'static str,
    /// Its `reason` when unhealthy (`invalid_credentials`, …).
    pub reason: Option<&'static str>,
    /// The alerts of `deploy/prometheus/credwatch-rules.yml` it must fire
    /// (and no other), checked by the end-to-end test against a real
    /// Prometheus.
    pub alerts: &'static [CastAlert],
}

/// One alert a demo credential must fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CastAlert {
    /// The alert's name (`CredwatchCredentialInvalid`, …).
    pub alert: &'static str,
    /// Its `severity` label.
    pub severity: &'static str,
    /// The `credential` label, when it is not the credential's name (an
    /// account's alert carries the account, e.g. the Twilio Account SID).
    pub on: Option<&'static str>,
}

impl CastAlert {
    /// `alert` with `severity`, on the credential itself.
    pub const fn new(alert: &'static str, severity: &'static str) -> CastAlert {
        CastAlert {
            alert,
            severity,
            on: None,
        }
    }

    /// The same alert, labelled with `on` (an account) instead.
    pub const fn on(self, on: &'static str) -> CastAlert {
        CastAlert {
            on: Some(on),
            ..self
        }
    }
}

impl CastMember {
    pub const fn healthy(name: &'static str) -> CastMember {
        CastMember {
            name,
            status: "healthy",
            reason: None,
            alerts: &[],
        }
    }

    pub const fn unhealthy(name: &'static str, reason: &'static str) -> CastMember {
        CastMember {
            name,
            status: "unhealthy",
            reason: Some(reason),
            alerts: &[],
        }
    }

    /// The same member, firing exactly `alerts`.
    pub const fn firing(self, alerts: &'static [CastAlert]) -> CastMember {
        CastMember { alerts, ..self }
    }
}

/// One call path of the demo and what `/health` and `check` must say of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathCastMember {
    /// The path's `name:` in the demo config.
    pub name: &'static str,
    /// Its `status`: `ready` or `broken`.
    pub status: &'static str,
    /// The problems of its links that are not proven, as `/health` lists
    /// them (`destination_blocked:GB` for a country), in link order.
    pub problems: &'static [&'static str],
}

/// The demo's call paths: one ready, and one broken at each kind of link.
pub const CALL_PATHS: &[PathCastMember] = &[
    PathCastMember {
        name: "sales-outbound",
        status: "ready",
        problems: &[],
    },
    PathCastMember {
        name: "agent-deleted",
        status: "broken",
        problems: &["agent_not_found"],
    },
    PathCastMember {
        name: "number-not-on-account",
        status: "broken",
        problems: &["number_not_on_twilio_account"],
    },
    PathCastMember {
        name: "number-without-voice",
        status: "broken",
        problems: &["number_not_voice_capable"],
    },
    PathCastMember {
        name: "country-blocked",
        status: "broken",
        problems: &["destination_blocked:GB"],
    },
    PathCastMember {
        name: "token-rotated-since-import",
        status: "broken",
        problems: &["reimport_needed"],
    },
    PathCastMember {
        name: "twilio-token-rejected",
        status: "broken",
        problems: &["twilio_credential_unhealthy", "twilio_number_unknown"],
    },
];

/// Every credential of the demo, in the demo config's order (each fake's
/// [`super::Fake::demo_cast`], in the order of [`FAKES`]).
pub fn cast() -> impl Iterator<Item = &'static CastMember> {
    FAKES.iter().flat_map(|f| f.demo_cast())
}

/// The demo's config, pointing at a running simulator: the call paths, then
/// every fake's cast against its listener.
pub fn config_yaml(sim: &Simulator) -> String {
    let mut y = String::from(
        "# Generated by `credwatch demo`: every secret below is a simulator fixture.\n\
         defaults:\n  interval: 10s\n  timeout: 3s\n  detail_interval: 30s\n",
    );
    y += &call_paths_section();
    for (fake, (_, url)) in FAKES.iter().zip(sim.urls()) {
        y += &fake.demo_section(&url);
    }
    y
}

/// The `call_paths:` section: the paths of [`CALL_PATHS`], in its order.
pub(crate) fn call_paths_section() -> String {
    let path = |name: &str, agent: &str, number: &str, twilio: &str, extra: &str| {
        format!(
            "  - name: {name}\n    elevenlabs: el-agent-prod\n    agent_id: {agent}\n    agent_phone_number_id: {number}\n    twilio: {twilio}\n{extra}"
        )
    };
    let broken = "    critical: false\n";
    let mut y = String::from("call_paths:\n");
    y += &path(
        "sales-outbound",
        EL_AGENT_ULAW_ID,
        EL_PHONE_SUPPORT_ID,
        "twilio-prod",
        "    destinations: [US]\n",
    );
    y += &path(
        "agent-deleted",
        EL_AGENT_DELETED_ID,
        EL_PHONE_SUPPORT_ID,
        "twilio-prod",
        broken,
    );
    y += &path(
        "number-not-on-account",
        EL_AGENT_PCM_ID,
        EL_PHONE_LEGACY_ID,
        "twilio-prod",
        broken,
    );
    y += &path(
        "number-without-voice",
        EL_AGENT_ULAW_ID,
        EL_PHONE_SPARE_ID,
        "twilio-prod",
        broken,
    );
    y += &path(
        "country-blocked",
        EL_AGENT_ULAW_ID,
        EL_PHONE_SUPPORT_ID,
        "twilio-prod",
        "    destinations: [US, GB]\n    critical: false\n",
    );
    y += &path(
        "token-rotated-since-import",
        EL_AGENT_ULAW_ID,
        EL_PHONE_SUPPORT_ID,
        "twilio-prod",
        "    twilio_imported_fingerprint: 5ca1ab1e0000\n    critical: false\n",
    );
    y += &path(
        "twilio-token-rejected",
        EL_AGENT_ULAW_ID,
        EL_PHONE_SUPPORT_ID,
        "twilio-rotated-token",
        broken,
    );
    y
}

impl World {
    /// The demo world (see the module docs for what each credential shows):
    /// each fake's part, [`super::Fake::demo_world`].
    pub fn demo() -> World {
        let mut world = World::default();
        for fake in FAKES {
            fake.demo_world(&mut world);
        }
        world
    }
}
