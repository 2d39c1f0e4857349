//! The fake ElevenLabs API (`https://api.elevenlabs.io`), a FastAPI app on
//! uvicorn in real life.
//!
//! Modelled: `xi-api-key` auth (missing key, unknown key, key ID sent as the
//! key, `Authorization: Bearer` alone), per-key permissions, account blocks,
//! the three error envelopes (legacy, new wrapped, new top-level), FastAPI's
//! 404/405/422 and trailing-slash redirects, and the read endpoints credwatch
//! uses. `POST /v1/convai/twilio/outbound-call` is modelled only so a test
//! can see it was (wrongly) sent: it answers like the real one and never does
//! anything. Every body quoted in `elevenlabs-api.md` is reproduced exactly.
//!
//! It must never expose more than the real API (no key secrets, no stored
//! Twilio tokens) and never accept what the real API would refuse.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::Method;
use serde::Serialize;
use serde_json::{Value, json};

use super::corpus;
use super::faults::{Fault, FaultAction, UpstreamError};
use super::http::{Delivery, Reply, query_param, random_alnum, random_hex_id};
use super::twilio::StoredTwilioCredentials;
use super::{IndexedWorld, RequestCtx, Script};

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/// Everything the fake ElevenLabs knows.
#[derive(Debug, Clone, Default)]
pub struct ElevenLabsWorld {
    /// Workspaces by their id (any string; only used to link keys).
    pub accounts: HashMap<String, ElAccount>,
    /// API keys by their secret (`sk_…`).
    pub keys: HashMap<String, ElKey>,
    /// Envelope used for error bodies.
    pub error_format: ErrorFormat,
    /// Status and shape of a missing-permission error.
    pub permission_error: PermissionErrorForm,
    /// Order of checks on `get-signed-url`.
    pub signed_url_mode: SignedUrlMode,
    /// Validate agent ids like the real API validates ids: anything but
    /// `agent_` + 28 (current) or 26 (older) characters of the lowercase
    /// Crockford base32 alphabet gets 400 `invalid_uid`, after
    /// authentication and before the permission check (get-signed-url,
    /// the conversation token, `GET /v1/convai/agents/{id}`).
    pub validate_agent_ids: bool,
    /// Send `current-concurrent-requests` / `maximum-concurrent-requests`
    /// on authenticated answers.
    pub concurrency_headers: bool,
    /// A fault for every request to this upstream (takes precedence over
    /// per-key faults).
    pub fault: Option<Fault>,
    /// Added to every answer (per-key latency adds to it).
    pub latency: Duration,
    /// Latency and faults for some requests only, by path.
    pub path_rules: Vec<super::faults::PathRule>,
}

impl ElevenLabsWorld {
    /// Adds (or replaces) an account.
    pub fn add_account(&mut self, account: ElAccount) -> &mut ElAccount {
        match self.accounts.entry(account.id.clone()) {
            Entry::Occupied(mut slot) => {
                slot.insert(account);
                slot.into_mut()
            }
            Entry::Vacant(slot) => slot.insert(account),
        }
    }

    /// Adds (or replaces) a key under its secret.
    pub fn add_key(&mut self, secret: impl Into<String>, key: ElKey) {
        self.keys.insert(secret.into(), key);
    }

    /// Removes a key: the server no longer knows it (`invalid_api_key`).
    pub fn revoke_key(&mut self, secret: &str) -> Option<ElKey> {
        self.keys.remove(secret)
    }

    pub fn key_mut(&mut self, secret: &str) -> Option<&mut ElKey> {
        self.keys.get_mut(secret)
    }

    pub fn account_mut(&mut self, id: &str) -> Option<&mut ElAccount> {
        self.accounts.get_mut(id)
    }
}

/// Error envelope (elevenlabs-api.md §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"detail":{"status":…,"message":…}}` (every real capture so far).
    #[default]
    Legacy,
    /// `{"detail":{"type","code","status","message","request_id"}}` (documented).
    NewWrapped,
    /// `{"type","code","status","message","request_id"}` without `detail`.
    NewTopLevel,
}

/// How a missing permission is reported (§3.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PermissionErrorForm {
    /// 401 `missing_permissions` (every real capture).
    #[default]
    Unauthorized401,
    /// 403 with code `insufficient_permissions` (fixtures only).
    Forbidden403,
}

/// Order of checks on `GET /v1/convai/conversation/get-signed-url` (§5.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignedUrlMode {
    /// Permission (`convai_write`) first, then the agent lookup.
    #[default]
    PermissionFirst,
    /// Agent lookup (404) before the permission check.
    LookupFirst,
    /// 422 for ids not matching `agent_` + 28 lowercase alphanumerics,
    /// before the permission check.
    RejectMalformed422,
    /// 400 `invalid_uid` for every id, before the permission check: an id
    /// format credwatch does not know (the probe id is malformed there).
    RejectEveryIdInvalidUid,
}

/// One workspace with its subscription, agents and imported numbers.
#[derive(Debug, Clone)]
pub struct ElAccount {
    pub id: String,
    pub user_id: String,
    pub first_name: String,
    pub subscription: Subscription,
    /// Requests answer with this error when set (which requests: `block_scope`).
    pub block: Option<AccountBlock>,
    /// Which requests see `block`.
    pub block_scope: BlockScope,
    pub agents: Vec<Agent>,
    pub phone_numbers: Vec<ElPhoneNumber>,
    /// Used in 429 messages and `maximum-concurrent-requests`.
    pub max_concurrent_requests: u32,
}

impl ElAccount {
    pub fn new(id: impl Into<String>) -> ElAccount {
        let id = id.into();
        ElAccount {
            user_id: format!("u{}", &super::twilio::sid_from("", &id)[..27]),
            id,
            first_name: "Demo".to_owned(),
            subscription: Subscription::default(),
            block: None,
            block_scope: BlockScope::default(),
            agents: Vec::new(),
            phone_numbers: Vec::new(),
            max_concurrent_requests: 5,
        }
    }

    pub fn with_subscription(mut self, subscription: Subscription) -> ElAccount {
        self.subscription = subscription;
        self
    }

    pub fn with_block(mut self, block: AccountBlock) -> ElAccount {
        self.block = Some(block);
        self
    }

    /// Blocked as `block` says, but only requests that generate something
    /// (here: the outbound call) see it; reads answer as usual.
    pub fn with_block_on_generation_only(mut self, block: AccountBlock) -> ElAccount {
        self.block = Some(block);
        self.block_scope = BlockScope::GenerationOnly;
        self
    }

    pub fn with_agent(mut self, agent: Agent) -> ElAccount {
        self.agents.push(agent);
        self
    }

    pub fn with_phone_number(mut self, number: ElPhoneNumber) -> ElAccount {
        self.phone_numbers.push(number);
        self
    }
}

/// Why an account answers every request with an error (§3.6, §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountBlock {
    /// 401 `detected_unusual_activity` (free-tier abuse block).
    DetectedUnusualActivity,
    /// 401 `payment_issue`.
    PaymentIssue,
    /// 402 `payment_required`.
    PaymentRequired,
}

/// Which requests of a blocked account see the block.
///
/// Every real capture of `detected_unusual_activity`, `payment_issue` and
/// `quota_exceeded` comes from a generation endpoint; none shows
/// `/v1/user/subscription` answering it (evidence-addendum.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BlockScope {
    /// Every authenticated request (the simulator's long-standing model).
    #[default]
    EveryRequest,
    /// Only requests that generate something; GETs answer 200 as usual.
    GenerationOnly,
}

/// `subscription.status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Trialing,
    #[default]
    Active,
    Incomplete,
    PastDue,
    Free,
    FreeDisabled,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Incomplete => "incomplete",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Free => "free",
            SubscriptionStatus::FreeDisabled => "free_disabled",
        }
    }
}

/// `max_credit_limit_extension`: an integer or the string `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditLimitExtension {
    /// `0` means usage-based billing is off.
    Limit(u64),
    Unlimited,
}

impl CreditLimitExtension {
    fn to_json(self) -> Value {
        match self {
            CreditLimitExtension::Limit(n) => Value::from(n),
            CreditLimitExtension::Unlimited => Value::from("unlimited"),
        }
    }
}

/// The account's subscription (`ExtendedSubscriptionResponseModel`). The
/// default is the spec example (starter, 1000 of 10000 used).
#[derive(Debug, Clone)]
pub struct Subscription {
    pub tier: String,
    pub status: SubscriptionStatus,
    pub character_count: u64,
    pub character_limit: u64,
    pub next_character_count_reset_unix: Option<i64>,
    pub can_extend_character_limit: bool,
    pub allowed_to_extend_character_limit: bool,
    pub max_credit_limit_extension: CreditLimitExtension,
    /// Deprecated field; `None` → `null`.
    pub max_character_limit_extension: Option<u64>,
    /// `usd`, `eur`, `inr`, `pln`, or `None` → `null`.
    pub currency: Option<String>,
    /// e.g. `monthly_period`; `None` → `null`.
    pub billing_period: Option<String>,
    pub character_refresh_period: Option<String>,
    pub has_open_invoices: bool,
    pub voice_limit: u32,
    pub voice_slots_used: u32,
    pub professional_voice_limit: u32,
}

impl Default for Subscription {
    fn default() -> Subscription {
        Subscription {
            tier: "starter".to_owned(),
            status: SubscriptionStatus::Active,
            character_count: 1000,
            character_limit: 10000,
            next_character_count_reset_unix: Some(1738356858),
            can_extend_character_limit: true,
            allowed_to_extend_character_limit: true,
            max_credit_limit_extension: CreditLimitExtension::Limit(10000),
            max_character_limit_extension: Some(10000),
            currency: Some("usd".to_owned()),
            billing_period: Some("monthly_period".to_owned()),
            character_refresh_period: Some("monthly_period".to_owned()),
            has_open_invoices: false,
            voice_limit: 10,
            voice_slots_used: 1,
            professional_voice_limit: 1,
        }
    }
}

impl Subscription {
    /// `ExtendedSubscriptionResponseModel`, the spec example with our values.
    fn extended_json(&self) -> Value {
        let currency = self.currency.as_deref().unwrap_or("usd");
        let invoice = json!({
            "amount_due_cents": 2200,
            "discounts": [],
            "next_payment_attempt_unix": self.next_character_count_reset_unix,
            "payment_intent_status": "processing",
            "payment_intent_statusses": ["processing"],
            "subtotal_cents": 2200,
            "tax_cents": 0
        });
        let paid = !matches!(
            self.status,
            SubscriptionStatus::Free | SubscriptionStatus::FreeDisabled
        );
        json!({
            "allowed_to_extend_character_limit": self.allowed_to_extend_character_limit,
            "billing_period": self.billing_period,
            "can_extend_character_limit": self.can_extend_character_limit,
            "can_extend_voice_limit": paid,
            "can_use_instant_voice_cloning": paid,
            "can_use_professional_voice_cloning": paid,
            "character_count": self.character_count,
            "character_limit": self.character_limit,
            "character_refresh_period": self.character_refresh_period,
            "currency": self.currency,
            "current_overage": {"amount": "0", "currency": currency},
            "has_open_invoices": self.has_open_invoices,
            "has_used_creator_coupon_on_account": false,
            "has_used_starter_coupon_on_account": false,
            "max_character_limit_extension": self.max_character_limit_extension,
            "max_credit_limit_extension": self.max_credit_limit_extension.to_json(),
            "next_character_count_reset_unix": self.next_character_count_reset_unix,
            "next_invoice": if paid { invoice.clone() } else { Value::Null },
            "open_invoices": if self.has_open_invoices { vec![invoice] } else { Vec::new() },
            "professional_voice_limit": self.professional_voice_limit,
            "professional_voice_slots_used": 0,
            "professional_voice_slots_used_in_workspace": 0,
            "status": self.status.as_str(),
            "tier": self.tier,
            "voice_add_edit_counter": 0,
            "voice_limit": self.voice_limit,
            "voice_slots_used": self.voice_slots_used
        })
    }

    /// `SubscriptionResponseModel` (inside `/v1/user`): no invoice or
    /// coupon fields.
    fn basic_json(&self) -> Value {
        let mut value = self.extended_json();
        if let Value::Object(map) = &mut value {
            for key in [
                "has_open_invoices",
                "open_invoices",
                "next_invoice",
                "has_used_creator_coupon_on_account",
                "has_used_starter_coupon_on_account",
            ] {
                map.remove(key);
            }
        }
        value
    }
}

/// An API key. The secret is the key of [`ElevenLabsWorld::keys`].
#[derive(Debug, Clone)]
pub struct ElKey {
    /// The key's ID (sending it instead of the secret gives a 400).
    pub key_id: String,
    /// The [`ElAccount::id`] the key belongs to.
    pub account_id: String,
    /// `None`: unrestricted. `Some(list)`: only these permissions.
    pub permissions: Option<Vec<String>>,
    /// A fault for requests made with this key.
    pub fault: Option<Fault>,
    /// Added to the world latency for this key's requests.
    pub latency: Duration,
}

impl ElKey {
    /// An unrestricted key.
    pub fn new(key_id: impl Into<String>, account_id: impl Into<String>) -> ElKey {
        ElKey {
            key_id: key_id.into(),
            account_id: account_id.into(),
            permissions: None,
            fault: None,
            latency: Duration::ZERO,
        }
    }

    pub fn with_permissions(mut self, permissions: &[&str]) -> ElKey {
        self.permissions = Some(permissions.iter().map(|p| (*p).to_owned()).collect());
        self
    }

    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| p == permission))
    }
}

/// A Conversational AI agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub agent_id: String,
    pub name: String,
    /// `conversation_config.tts.agent_output_audio_format`, e.g. `ulaw_8000`.
    pub tts_output_format: String,
    /// `conversation_config.asr.user_input_audio_format`.
    pub asr_input_format: String,
    pub created_at_unix_secs: i64,
    pub tags: Vec<String>,
}

impl Agent {
    /// An agent using `format` for both TTS output and ASR input.
    pub fn new(agent_id: impl Into<String>, name: impl Into<String>, format: &str) -> Agent {
        Agent {
            agent_id: agent_id.into(),
            name: name.into(),
            tts_output_format: format.to_owned(),
            asr_input_format: format.to_owned(),
            created_at_unix_secs: 1_716_153_600,
            tags: Vec::new(),
        }
    }
}

/// A phone number imported into Conversational AI.
#[derive(Debug, Clone)]
pub struct ElPhoneNumber {
    pub phone_number_id: String,
    /// E.164.
    pub phone_number: String,
    pub label: String,
    /// `twilio`, `sip_trunk`, `exotel` or anything else; `None` omits the
    /// field (the spec gives it a default and does not require it).
    pub provider: Option<String>,
    /// `None` omits the field.
    pub supports_inbound: Option<bool>,
    /// `None` omits the field.
    pub supports_outbound: Option<bool>,
    pub assigned_agent: Option<AssignedAgent>,
    /// The Twilio credentials stored at import. Never returned by any GET;
    /// only used to decide what the outbound-call model answers.
    pub twilio_credentials: Option<StoredTwilioCredentials>,
}

impl ElPhoneNumber {
    /// A Twilio number, inbound and outbound, no agent, no stored credentials.
    pub fn twilio(
        phone_number_id: impl Into<String>,
        phone_number: impl Into<String>,
        label: impl Into<String>,
    ) -> ElPhoneNumber {
        ElPhoneNumber {
            phone_number_id: phone_number_id.into(),
            phone_number: phone_number.into(),
            label: label.into(),
            provider: Some("twilio".to_owned()),
            supports_inbound: Some(true),
            supports_outbound: Some(true),
            assigned_agent: None,
            twilio_credentials: None,
        }
    }

    pub fn assigned_to(mut self, agent: &Agent) -> ElPhoneNumber {
        self.assigned_agent = Some(AssignedAgent {
            agent_id: agent.agent_id.clone(),
            agent_name: agent.name.clone(),
        });
        self
    }

    pub fn with_twilio_credentials(
        mut self,
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
    ) -> ElPhoneNumber {
        self.twilio_credentials = Some(StoredTwilioCredentials {
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
        });
        self
    }

    /// The provider used for `?provider=` filtering (absent means `twilio`,
    /// the spec default).
    fn effective_provider(&self) -> &str {
        self.provider.as_deref().unwrap_or("twilio")
    }

    fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("phone_number".into(), self.phone_number.clone().into());
        map.insert("label".into(), self.label.clone().into());
        map.insert(
            "phone_number_id".into(),
            self.phone_number_id.clone().into(),
        );
        if let Some(p) = &self.provider {
            map.insert("provider".into(), p.clone().into());
            if p == "sip_trunk" {
                map.insert("livekit_stack".into(), "standard".into());
            }
        }
        if let Some(b) = self.supports_inbound {
            map.insert("supports_inbound".into(), b.into());
        }
        if let Some(b) = self.supports_outbound {
            map.insert("supports_outbound".into(), b.into());
        }
        let agent = self.assigned_agent.as_ref().map_or(
            Value::Null,
            |a| json!({"agent_id": a.agent_id, "agent_name": a.agent_name}),
        );
        map.insert("assigned_agent".into(), agent);
        Value::Object(map)
    }
}

/// `assigned_agent` of a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignedAgent {
    pub agent_id: String,
    pub agent_name: String,
}

// ---------------------------------------------------------------------------
// Index (rebuilt after every world update)
// ---------------------------------------------------------------------------

#[derive(Debug, Default)]
pub(crate) struct Index {
    key_ids: HashSet<String>,
    /// agent id → (account id, position in `agents`)
    agents: HashMap<String, (String, usize)>,
    /// phone number id → (account id, position in `phone_numbers`)
    phone_numbers: HashMap<String, (String, usize)>,
}

impl Index {
    pub(crate) fn build(world: &ElevenLabsWorld) -> Index {
        let mut index = Index {
            key_ids: world.keys.values().map(|k| k.key_id.clone()).collect(),
            ..Index::default()
        };
        for account in world.accounts.values() {
            for (i, agent) in account.agents.iter().enumerate() {
                index
                    .agents
                    .insert(agent.agent_id.clone(), (account.id.clone(), i));
            }
            for (i, number) in account.phone_numbers.iter().enumerate() {
                index
                    .phone_numbers
                    .insert(number.phone_number_id.clone(), (account.id.clone(), i));
            }
        }
        index
    }
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'p> {
    User,
    Subscription,
    Models,
    Agents,
    Agent(&'p str),
    PhoneNumbers,
    PhoneNumber(&'p str),
    SignedUrl,
    ConversationToken,
    TwilioOutboundCall,
}

impl Route<'_> {
    fn method(self) -> Method {
        match self {
            Route::TwilioOutboundCall => Method::POST,
            _ => Method::GET,
        }
    }

    fn permission(self) -> &'static str {
        match self {
            Route::User | Route::Subscription => "user_read",
            Route::Models => "models_read",
            Route::Agents | Route::Agent(_) | Route::PhoneNumbers | Route::PhoneNumber(_) => {
                "convai_read"
            }
            Route::SignedUrl | Route::ConversationToken | Route::TwilioOutboundCall => {
                "convai_write"
            }
        }
    }
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v1/")?;
    Some(match rest {
        "user" => Route::User,
        "user/subscription" => Route::Subscription,
        "models" => Route::Models,
        "convai/agents" => Route::Agents,
        "convai/phone-numbers" => Route::PhoneNumbers,
        "convai/conversation/get-signed-url" => Route::SignedUrl,
        "convai/conversation/token" => Route::ConversationToken,
        "convai/twilio/outbound-call" => Route::TwilioOutboundCall,
        _ => {
            if let Some(id) = single_segment(rest, "convai/agents/") {
                Route::Agent(id)
            } else if let Some(id) = single_segment(rest, "convai/phone-numbers/") {
                Route::PhoneNumber(id)
            } else {
                return None;
            }
        }
    })
}

fn single_segment<'p>(rest: &'p str, prefix: &str) -> Option<&'p str> {
    rest.strip_prefix(prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Paths of calls a read-only prober must never make, with the reason.
const NEVER_CALL: &[(&str, &str)] = &[
    (
        "/v1/convai/twilio/outbound-call",
        "never-call endpoint: places a phone call",
    ),
    (
        "/v1/convai/sip-trunk/outbound-call",
        "never-call endpoint: places a phone call",
    ),
    (
        "/v1/convai/conversation/token",
        "never-call endpoint: creates a conversation",
    ),
    (
        "/v1/workspaces/api-keys/disable",
        "never-call endpoint: disables the API key",
    ),
];

fn truthy(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on" | "t" | "y"
    )
}

/// Why a request is forbidden for a read-only prober, if it is.
pub(crate) fn forbidden_reason(state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Option<&'static str> {
    if let Some((_, reason)) = NEVER_CALL.iter().find(|(p, _)| *p == ctx.path) {
        return Some(reason);
    }
    if ctx.method != Method::GET {
        return Some("non-GET request");
    }
    match route(ctx.path) {
        None | Some(Route::TwilioOutboundCall) => Some("path outside the read-only allow-list"),
        Some(Route::SignedUrl) => {
            if query_param(ctx.query, "include_conversation_id").is_some_and(|v| truthy(&v)) {
                Some("get-signed-url with include_conversation_id=true")
            } else if query_param(ctx.query, "agent_id")
                .is_some_and(|id| state.el_index.agents.contains_key(id.as_ref()))
            {
                Some("get-signed-url with a real agent id")
            } else {
                None
            }
        }
        Some(_) => None,
    }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

// The fallbacks below are used only if the corpus lacks the entry (a unit
// test makes sure it never does); the served text comes from the corpus.
const MSG_NEEDS_AUTHORIZATION: &str =
    "Neither authorization header nor xi-api-key received, please provide one.";
const MSG_INVALID_API_KEY: &str = "Invalid API key";
const MSG_KEY_ID_USED: &str =
    "API key ID used as API key - only valid API keys can be used. API keys start with 'sk_'…";
const MSG_UNUSUAL_ACTIVITY: &str = "Unusual activity detected. Free Tier usage disabled.";
const MSG_PAYMENT_ISSUE: &str = "Your subscription has a failed or incomplete payment.";
const MSG_PAYMENT_REQUIRED: &str = "Free users cannot use library voices via the API. Please upgrade your subscription to use this voice";
const MSG_SYSTEM_BUSY: &str = "We are sorry, the system is experiencing heavy traffic, please try again. Higher subscriptions have higher priority.";
const MSG_SOMETHING_WENT_WRONG: &str =
    "We are sorry, something went wrong. You are not charged for this request.";
const MSG_INTERNAL: &str =
    "Internal Server error. All such crashes are reported to us automatically.";

/// What the recorded bodies quote that a request changes: the permission,
/// the concurrency limit, the id.
const RECORDED_PERMISSION: &str = "user_read";
const RECORDED_PERMISSION_403: &str = "voices_write";
const RECORDED_CONCURRENCY: &str = "maximum of 5 concurrent";
const RECORDED_INVALID_UID: &str = "'your-voice-id-1'";

/// Which envelope an error uses regardless of the world's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Envelope {
    /// The world's [`ErrorFormat`].
    World,
    /// The key-ID error: captured top-level, without `request_id`
    /// (wrapped only when the world uses the new wrapped format).
    KeyIdTopLevel,
    /// The 403 permission form: new-style fields even in legacy mode.
    NewFields,
}

struct ElError {
    http: u16,
    kind: &'static str,
    code: &'static str,
    status: &'static str,
    message: Cow<'static, str>,
    envelope: Envelope,
    /// The corpus answer this error is; served byte for byte in the legacy
    /// format (every real capture is legacy).
    recorded: Option<&'static corpus::Entry>,
}

impl ElError {
    fn new(
        http: u16,
        kind: &'static str,
        code: &'static str,
        status: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> ElError {
        ElError {
            http,
            kind,
            code,
            status,
            message: message.into(),
            envelope: Envelope::World,
            recorded: None,
        }
    }

    /// Takes status and message from corpus entry `id`.
    fn recorded_as(mut self, id: &str) -> ElError {
        if let Some(entry) = corpus::entry(id) {
            self.http = entry.status;
            if let Some(message) = entry.field("message") {
                self.message = message.into();
            }
            self.recorded = Some(entry);
        }
        self
    }

    /// Replaces what the recorded message quotes (a permission name, a
    /// limit, an id) with what this request has; the body is then rendered,
    /// not served verbatim.
    fn quoting(mut self, recorded: &str, actual: &str) -> ElError {
        if recorded != actual {
            self.message = self.message.replace(recorded, actual).into();
            self.recorded = None;
        }
        self
    }

    fn needs_authorization() -> ElError {
        ElError::new(
            401,
            "authentication_error",
            "needs_authorization",
            "needs_authorization",
            MSG_NEEDS_AUTHORIZATION,
        )
        .recorded_as("el-401-needs-authorization")
    }

    fn invalid_api_key() -> ElError {
        ElError::new(
            401,
            "authentication_error",
            "invalid_api_key",
            "invalid_api_key",
            MSG_INVALID_API_KEY,
        )
        .recorded_as("el-401-invalid-api-key")
    }

    fn key_id_used() -> ElError {
        ElError {
            envelope: Envelope::KeyIdTopLevel,
            ..ElError::new(
                400,
                "authentication_error",
                "invalid_api_key",
                "api_key_id_used_as_api_key",
                MSG_KEY_ID_USED,
            )
        }
        .recorded_as("el-400-key-id-used-as-key")
    }

    fn missing_permission(form: PermissionErrorForm, permission: &str) -> ElError {
        let message = format!(
            "The API key you used is missing the permission {permission} to execute this operation."
        );
        match form {
            PermissionErrorForm::Unauthorized401 => ElError::new(
                401,
                "authorization_error",
                "missing_permissions",
                "missing_permissions",
                message,
            )
            .recorded_as("el-401-missing-permissions-user-read")
            .quoting(RECORDED_PERMISSION, permission),
            PermissionErrorForm::Forbidden403 => ElError {
                envelope: Envelope::NewFields,
                ..ElError::new(
                    403,
                    "authorization_error",
                    "insufficient_permissions",
                    "missing_permissions",
                    message,
                )
            }
            .recorded_as("el-403-insufficient-permissions-voices-write")
            .quoting(RECORDED_PERMISSION_403, permission),
        }
    }

    fn blocked(block: AccountBlock) -> ElError {
        match block {
            AccountBlock::DetectedUnusualActivity => ElError::new(
                401,
                "authorization_error",
                "detected_unusual_activity",
                "detected_unusual_activity",
                MSG_UNUSUAL_ACTIVITY,
            )
            .recorded_as("el-401-detected-unusual-activity"),
            AccountBlock::PaymentIssue => ElError::new(
                401,
                "payment_error",
                "payment_issue",
                "payment_issue",
                MSG_PAYMENT_ISSUE,
            )
            .recorded_as("el-401-payment-issue"),
            AccountBlock::PaymentRequired => ElError::new(
                402,
                "payment_error",
                "payment_required",
                "payment_required",
                MSG_PAYMENT_REQUIRED,
            )
            .recorded_as("el-402-payment-required"),
        }
    }

    fn agent_not_found() -> ElError {
        ElError::new(
            404,
            "not_found_error",
            "agent_not_found",
            "agent_not_found",
            "Agent not found",
        )
        .recorded_as("el-404-agent-not-found")
    }

    /// 400 `invalid_uid` for a malformed id (evidence-addendum.md).
    fn invalid_uid(id: &str) -> ElError {
        let quoted = format!("'{id}'");
        ElError::new(
            400,
            "invalid_request_error",
            "invalid_uid",
            "invalid_uid",
            format!(
                "An invalid ID has been received: {quoted}. Make sure to provide a correct one."
            ),
        )
        .recorded_as("el-400-invalid-uid")
        .quoting(RECORDED_INVALID_UID, &quoted)
    }

    fn phone_number_not_found() -> ElError {
        ElError::new(
            404,
            "not_found_error",
            "phone_number_not_found",
            "phone_number_not_found",
            "Phone number not found",
        )
    }

    fn render(self, format: ErrorFormat) -> Reply {
        #[derive(Serialize)]
        struct Legacy<'a> {
            status: &'a str,
            message: &'a str,
        }
        #[derive(Serialize)]
        struct New<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            code: &'a str,
            status: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            request_id: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Wrapped<T> {
            detail: T,
        }
        let trace_id = random_hex_id("");
        if let (Some(entry), ErrorFormat::Legacy) = (self.recorded, format) {
            return entry.reply().header("x-trace-id", trace_id);
        }
        let new = |request_id| New {
            kind: self.kind,
            code: self.code,
            status: self.status,
            message: &self.message,
            request_id,
        };
        let reply = match (self.envelope, format) {
            (Envelope::World, ErrorFormat::Legacy) => Reply::json_of(
                self.http,
                &Wrapped {
                    detail: Legacy {
                        status: self.status,
                        message: &self.message,
                    },
                },
            ),
            (_, ErrorFormat::NewWrapped) => Reply::json_of(
                self.http,
                &Wrapped {
                    detail: new(Some(&trace_id)),
                },
            ),
            (Envelope::KeyIdTopLevel, ErrorFormat::Legacy) => Reply::json_of(self.http, &new(None)),
            (_, ErrorFormat::NewTopLevel) => Reply::json_of(self.http, &new(Some(&trace_id))),
            (Envelope::NewFields, ErrorFormat::Legacy) => {
                Reply::json_of(self.http, &Wrapped { detail: new(None) })
            }
        };
        reply.header("x-trace-id", trace_id)
    }
}

/// FastAPI's `HTTPValidationError` body with one item.
fn validation_error(item: Value) -> Reply {
    Reply::json_of(422, &json!({ "detail": [item] }))
}

fn missing_field(location: &str, field: &str) -> Value {
    json!({"type": "missing", "loc": [location, field], "msg": "Field required", "input": null})
}

fn string_detail(status: u16, detail: &str) -> Reply {
    Reply::json_of(status, &json!({ "detail": detail }))
}

fn upstream_error(world: &ElevenLabsWorld, error: UpstreamError, max_concurrent: u32) -> Reply {
    let format = world.error_format;
    match error {
        UpstreamError::ServerError => ElError::new(
            500,
            "server_error",
            "something_went_wrong",
            "something_went_wrong",
            MSG_SOMETHING_WENT_WRONG,
        )
        .recorded_as("el-500-something-went-wrong")
        .render(format),
        UpstreamError::ServerErrorUnwrapped => {
            if let Some(entry) = corpus::entry("el-500-internal-server-error-unwrapped") {
                return entry.reply();
            }
            #[derive(Serialize)]
            struct Unwrapped {
                status: &'static str,
                message: &'static str,
            }
            Reply::json_of(
                500,
                &Unwrapped {
                    status: "internal_server_error",
                    message: MSG_INTERNAL,
                },
            )
        }
        UpstreamError::RateLimited(retry_after) => {
            let message = format!(
                "Too many concurrent requests. Your current subscription is associated with a maximum of {max_concurrent} concurrent requests (running in parallel)."
            );
            let reply = ElError::new(
                429,
                "rate_limit_error",
                "concurrent_limit_exceeded",
                "too_many_concurrent_requests",
                message,
            )
            .recorded_as("el-429-too-many-concurrent-requests")
            .quoting(
                RECORDED_CONCURRENCY,
                &format!("maximum of {max_concurrent} concurrent"),
            )
            .render(format);
            match retry_after {
                Some(secs) => reply.header("retry-after", secs.to_string()),
                None => reply,
            }
        }
        UpstreamError::SystemBusy => ElError::new(
            429,
            "rate_limit_error",
            "system_busy",
            "system_busy",
            MSG_SYSTEM_BUSY,
        )
        .recorded_as("el-429-system-busy")
        .render(format),
        UpstreamError::RateLimitExceededNew => {
            let format = match format {
                ErrorFormat::Legacy => ErrorFormat::NewWrapped,
                other => other,
            };
            ElError::new(
                429,
                "rate_limit_error",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
                "You have exceeded the rate limit for your current subscription. Please slow down your requests or upgrade your subscription.",
            )
            .recorded_as("el-429-rate-limit-exceeded")
            .render(format)
        }
        UpstreamError::NotFound => string_detail(404, "Not Found"),
        UpstreamError::Validation => validation_error(missing_field("query", "agent_id")),
    }
}

// ---------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------

/// What the request turned out to be, for headers and per-key faults.
struct Caller<'w> {
    key: &'w ElKey,
    account: &'w ElAccount,
}

/// Computes the answer to one request.
pub(crate) fn handle(state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Script {
    let world = &state.world.elevenlabs;
    let mut caller = None;
    let reply = respond(state, ctx, &mut caller);

    let mut latency = world.latency;
    let mut fault = world.fault.as_ref();
    let mut max_concurrent = 5;
    if let Some(c) = &caller {
        latency += c.key.latency;
        fault = fault.or(c.key.fault.as_ref());
        max_concurrent = c.account.max_concurrent_requests;
    }
    super::faults::PathRule::apply(
        &world.path_rules,
        ctx.path,
        ctx.query,
        &mut latency,
        &mut fault,
    );

    let (reply, delivery, styled) = match fault.map(Fault::action) {
        None => (reply, Delivery::Normal, true),
        Some(FaultAction::Envelope(e)) => (
            upstream_error(world, e, max_concurrent),
            Delivery::Normal,
            true,
        ),
        Some(FaultAction::Replace(r)) => (r, Delivery::Normal, false),
        Some(FaultAction::Transform(t)) => {
            let (r, d) = t.apply(reply);
            (r, d, true)
        }
    };
    let reply = if styled {
        standard_headers(world, reply, caller.as_ref(), ctx.in_flight)
    } else {
        reply
    };
    Script {
        reply,
        delivery,
        latency,
    }
}

fn standard_headers(
    world: &ElevenLabsWorld,
    mut reply: Reply,
    caller: Option<&Caller<'_>>,
    in_flight: u32,
) -> Reply {
    reply.headers.push(("server", "uvicorn".to_owned()));
    reply.headers.push(("x-region", "us-central1".to_owned()));
    reply.headers.push(("via", "1.1 google".to_owned()));
    reply.headers.push((
        "strict-transport-security",
        "max-age=31536000; includeSubDomains".to_owned(),
    ));
    if reply.is_success() {
        reply.headers.push(("request-id", random_alnum(20)));
    } else if !reply.headers.iter().any(|(n, _)| *n == "x-trace-id") {
        reply.headers.push(("x-trace-id", random_hex_id("")));
    }
    if let (true, Some(c)) = (world.concurrency_headers, caller) {
        reply
            .headers
            .push(("current-concurrent-requests", in_flight.to_string()));
        reply.headers.push((
            "maximum-concurrent-requests",
            c.account.max_concurrent_requests.to_string(),
        ));
    }
    reply
}

fn respond<'w>(
    state: &'w IndexedWorld,
    ctx: &RequestCtx<'_>,
    caller: &mut Option<Caller<'w>>,
) -> Reply {
    let world = &state.world.elevenlabs;
    let Some(route) = route(ctx.path) else {
        // Starlette redirects `/known/route/` to `/known/route`.
        if let Some(trimmed) = ctx.path.strip_suffix('/')
            && route(trimmed).is_some()
        {
            let host = ctx
                .headers
                .get(hyper::header::HOST)
                .and_then(|h| h.to_str().ok());
            let query = ctx.query.map(|q| format!("?{q}")).unwrap_or_default();
            let location = match host {
                Some(host) => format!("http://{host}{trimmed}{query}"),
                None => format!("{trimmed}{query}"),
            };
            return Reply {
                status: 307,
                headers: vec![("location", location)],
                body: bytes::Bytes::new(),
            };
        }
        return string_detail(404, "Not Found");
    };
    if *ctx.method != route.method() {
        return string_detail(405, "Method Not Allowed").header("allow", route.method().as_str());
    }

    let c = match authenticate(state, ctx) {
        Ok(c) => c,
        Err(e) => return e.render(world.error_format),
    };
    *caller = Some(Caller {
        key: c.key,
        account: c.account,
    });
    if let Some(block) = c.account.block
        && (c.account.block_scope == BlockScope::EveryRequest || route == Route::TwilioOutboundCall)
    {
        return ElError::blocked(block).render(world.error_format);
    }
    if world.validate_agent_ids {
        let id = match route {
            Route::Agent(id) => Some(Cow::Borrowed(id)),
            Route::SignedUrl | Route::ConversationToken => query_param(ctx.query, "agent_id"),
            _ => None,
        };
        if let Some(id) = id.filter(|id| !is_valid_agent_uid(id)) {
            return ElError::invalid_uid(&id).render(world.error_format);
        }
    }
    let permission_error =
        || ElError::missing_permission(world.permission_error, route.permission());

    if route == Route::SignedUrl || route == Route::ConversationToken {
        return signed_url(state, ctx, &c, route);
    }
    if !c.key.has_permission(route.permission()) {
        return permission_error().render(world.error_format);
    }

    match route {
        Route::User => Reply::json_of(200, &user_json(c.account)),
        Route::Subscription => Reply::json_of(200, &c.account.subscription.extended_json()),
        Route::Models => Reply::json_of(200, &models_json()),
        Route::Agents => list_agents(state, ctx, c.account),
        Route::Agent(id) => match find_agent(state, c.account, id) {
            Some(agent) => Reply::json_of(200, &agent_json(agent, c.account)),
            None => ElError::agent_not_found().render(world.error_format),
        },
        Route::PhoneNumbers => list_phone_numbers(ctx, c.account),
        Route::PhoneNumber(id) => match state.el_index.phone_numbers.get(id) {
            Some((account, i)) if *account == c.account.id => {
                match c.account.phone_numbers.get(*i) {
                    Some(n) => Reply::json_of(200, &n.to_json()),
                    None => ElError::phone_number_not_found().render(world.error_format),
                }
            }
            _ => ElError::phone_number_not_found().render(world.error_format),
        },
        Route::TwilioOutboundCall => outbound_call(state, ctx, c.account),
        Route::SignedUrl | Route::ConversationToken => signed_url(state, ctx, &c, route),
    }
}

fn authenticate<'w>(state: &'w IndexedWorld, ctx: &RequestCtx<'_>) -> Result<Caller<'w>, ElError> {
    let world = &state.world.elevenlabs;
    let Some(raw) = ctx.headers.get("xi-api-key").filter(|v| !v.is_empty()) else {
        // A Bearer token is for other token types; an API key sent that way
        // is rejected (elevenlabs-api.md §1).
        return Err(if ctx.headers.contains_key(hyper::header::AUTHORIZATION) {
            ElError::invalid_api_key()
        } else {
            ElError::needs_authorization()
        });
    };
    let Ok(secret) = raw.to_str() else {
        return Err(ElError::invalid_api_key());
    };
    match world.keys.get(secret) {
        Some(key) => match world.accounts.get(&key.account_id) {
            Some(account) => Ok(Caller { key, account }),
            None => Err(ElError::invalid_api_key()),
        },
        None if state.el_index.key_ids.contains(secret) => Err(ElError::key_id_used()),
        None => Err(ElError::invalid_api_key()),
    }
}

fn find_agent<'w>(state: &'w IndexedWorld, account: &'w ElAccount, id: &str) -> Option<&'w Agent> {
    match state.el_index.agents.get(id) {
        Some((owner, i)) if *owner == account.id => account.agents.get(*i),
        _ => None,
    }
}

/// `agent_` + 28 (current form) or 26 (older form) characters of the
/// lowercase Crockford base32 alphabet (no `i`, `l`, `o`, `u`).
pub fn is_valid_agent_uid(id: &str) -> bool {
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    id.strip_prefix("agent_").is_some_and(|rest| {
        (rest.len() == 28 || rest.len() == 26) && rest.bytes().all(|b| ALPHABET.contains(&b))
    })
}

fn is_well_formed_agent_id(id: &str) -> bool {
    id.strip_prefix("agent_").is_some_and(|rest| {
        rest.len() == 28
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// `get-signed-url` (and the never-call `conversation/token` sibling), with
/// the check order chosen by [`SignedUrlMode`].
fn signed_url(
    state: &IndexedWorld,
    ctx: &RequestCtx<'_>,
    c: &Caller<'_>,
    route: Route<'_>,
) -> Reply {
    let world = &state.world.elevenlabs;
    let format = world.error_format;
    let permission = || {
        (!c.key.has_permission(route.permission())).then(|| {
            ElError::missing_permission(world.permission_error, route.permission()).render(format)
        })
    };
    let agent_id = query_param(ctx.query, "agent_id");

    if world.signed_url_mode == SignedUrlMode::RejectEveryIdInvalidUid {
        let id = agent_id.as_deref().unwrap_or("");
        return ElError::invalid_uid(id).render(format);
    }
    if world.signed_url_mode == SignedUrlMode::RejectMalformed422 {
        match &agent_id {
            None => return validation_error(missing_field("query", "agent_id")),
            Some(id) if !is_well_formed_agent_id(id) => {
                return validation_error(json!({
                    "type": "string_pattern_mismatch",
                    "loc": ["query", "agent_id"],
                    "msg": "String should match pattern '^agent_[a-z0-9]{28}$'",
                    "input": id,
                    "ctx": {"pattern": "^agent_[a-z0-9]{28}$"}
                }));
            }
            Some(_) => {}
        }
    }
    if world.signed_url_mode != SignedUrlMode::LookupFirst
        && let Some(denied) = permission()
    {
        return denied;
    }
    let Some(agent_id) = agent_id else {
        return validation_error(missing_field("query", "agent_id"));
    };
    let Some(agent) = find_agent(state, c.account, &agent_id) else {
        return ElError::agent_not_found().render(format);
    };
    if let Some(denied) = permission() {
        return denied;
    }
    if route == Route::ConversationToken {
        return Reply::json_of(200, &json!({ "token": random_alnum(64) }));
    }
    let url = format!(
        "wss://api.elevenlabs.io/v1/convai/conversation?agent_id={}&conversation_signature=cvtkn_{}",
        agent.agent_id,
        random_alnum(26)
    );
    Reply::json_of(200, &json!({ "signed_url": url }))
}

fn user_json(account: &ElAccount) -> Value {
    json!({
        "user_id": account.user_id,
        "subscription": account.subscription.basic_json(),
        "is_new_user": false,
        "is_api_key_hashed": true,
        "can_use_delayed_payment_methods": false,
        "is_onboarding_completed": true,
        "is_onboarding_checklist_completed": true,
        "first_name": account.first_name,
        "created_at": 1_700_000_000,
        "seat_type": "workspace_admin"
    })
}

fn models_json() -> Value {
    let model = |id: &str, name: &str, factor: f64| {
        json!({
            "model_id": id,
            "name": name,
            "can_be_finetuned": true,
            "can_do_text_to_speech": true,
            "can_do_voice_conversion": false,
            "can_use_style": true,
            "can_use_speaker_boost": true,
            "serves_pro_voices": false,
            "token_cost_factor": factor,
            "description": "Simulated model.",
            "requires_alpha_access": false,
            "max_characters_request_free_user": 2500,
            "max_characters_request_subscribed_user": 10000,
            "maximum_text_length_per_request": 10000,
            "languages": [{"language_id": "en", "name": "English"}],
            "model_rates": {"character_cost_multiplier": factor},
            "concurrency_group": "standard"
        })
    };
    json!([
        model("eleven_multilingual_v2", "Eleven Multilingual v2", 1.0),
        model("eleven_flash_v2_5", "Eleven Flash v2.5", 0.5)
    ])
}

fn agent_summary(agent: &Agent) -> Value {
    json!({
        "agent_id": agent.agent_id,
        "name": agent.name,
        "tags": agent.tags,
        "created_at_unix_secs": agent.created_at_unix_secs,
        "access_info": {
            "is_creator": true,
            "creator_name": "Demo User",
            "creator_email": "demo@example.invalid",
            "role": "admin"
        },
        "last_call_time_unix_secs": null,
        "archived": false
    })
}

fn agent_json(agent: &Agent, account: &ElAccount) -> Value {
    let numbers: Vec<Value> = account
        .phone_numbers
        .iter()
        .filter(|n| {
            n.assigned_agent
                .as_ref()
                .is_some_and(|a| a.agent_id == agent.agent_id)
        })
        .map(ElPhoneNumber::to_json)
        .collect();
    json!({
        "agent_id": agent.agent_id,
        "name": agent.name,
        "conversation_config": {
            "asr": {
                "quality": "high",
                "provider": "scribe_realtime",
                "user_input_audio_format": agent.asr_input_format,
                "keywords": []
            },
            "turn": {"turn_timeout": 7.0, "mode": "turn"},
            "tts": {
                "model_id": "eleven_flash_v2",
                "voice_id": "cjVigY5qzO86Huf0OWal",
                "agent_output_audio_format": agent.tts_output_format,
                "optimize_streaming_latency": 3,
                "stability": 0.5,
                "speed": 1.0,
                "similarity_boost": 0.8
            },
            "conversation": {"max_duration_seconds": 600, "client_events": ["audio", "interruption"]},
            "agent": {
                "first_message": "Hello! How can I help you today?",
                "language": "en",
                "prompt": {"prompt": "You are a helpful assistant.", "llm": "gemini-2.0-flash-001", "temperature": 0.0}
            }
        },
        "metadata": {
            "created_at_unix_secs": agent.created_at_unix_secs,
            "updated_at_unix_secs": agent.created_at_unix_secs
        },
        "platform_settings": {},
        "phone_numbers": numbers,
        "tags": agent.tags
    })
}

fn int_query(
    ctx: &RequestCtx<'_>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, Reply> {
    let Some(raw) = query_param(ctx.query, name) else {
        return Ok(default);
    };
    let Ok(n) = raw.trim().parse::<i64>() else {
        return Err(validation_error(json!({
            "type": "int_parsing",
            "loc": ["query", name],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "input": raw
        })));
    };
    if n < min {
        return Err(validation_error(json!({
            "type": "greater_than_equal",
            "loc": ["query", name],
            "msg": format!("Input should be greater than or equal to {min}"),
            "input": raw,
            "ctx": {"ge": min}
        })));
    }
    if n > max {
        return Err(validation_error(json!({
            "type": "less_than_equal",
            "loc": ["query", name],
            "msg": format!("Input should be less than or equal to {max}"),
            "input": raw,
            "ctx": {"le": max}
        })));
    }
    Ok(n)
}

/// `GET /v1/convai/agents?page_size=N&cursor=…` (cursor: the id of the
/// first agent of the next page).
fn list_agents(state: &IndexedWorld, ctx: &RequestCtx<'_>, account: &ElAccount) -> Reply {
    let page_size = match int_query(ctx, "page_size", 30, 1, 100) {
        Ok(n) => usize::try_from(n).unwrap_or(30),
        Err(reply) => return reply,
    };
    let start = match query_param(ctx.query, "cursor") {
        None => 0,
        Some(cursor) => match state.el_index.agents.get(cursor.as_ref()) {
            Some((owner, i)) if *owner == account.id => *i,
            _ => {
                return ElError::new(
                    400,
                    "invalid_request_error",
                    "invalid_cursor",
                    "invalid_cursor",
                    "Invalid cursor",
                )
                .render(state.world.elevenlabs.error_format);
            }
        },
    };
    let end = start.saturating_add(page_size).min(account.agents.len());
    let agents: Vec<Value> = account
        .agents
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(agent_summary)
        .collect();
    let next = account.agents.get(end).map(|a| a.agent_id.clone());
    Reply::json_of(
        200,
        &json!({"agents": agents, "has_more": next.is_some(), "next_cursor": next}),
    )
}

/// `GET /v1/convai/phone-numbers[?provider=…]`: a plain array, no paging.
fn list_phone_numbers(ctx: &RequestCtx<'_>, account: &ElAccount) -> Reply {
    let provider = query_param(ctx.query, "provider");
    if let Some(p) = &provider
        && !matches!(p.as_ref(), "twilio" | "sip_trunk" | "exotel")
    {
        return validation_error(json!({
            "type": "enum",
            "loc": ["query", "provider"],
            "msg": "Input should be 'twilio', 'exotel' or 'sip_trunk'",
            "input": p,
            "ctx": {"expected": "'twilio', 'exotel' or 'sip_trunk'"}
        }));
    }
    let items: Vec<Value> = account
        .phone_numbers
        .iter()
        .filter(|n| {
            provider
                .as_deref()
                .is_none_or(|p| n.effective_provider() == p)
        })
        .map(ElPhoneNumber::to_json)
        .collect();
    Reply::json_of(200, &items)
}

/// The outbound-call model. It answers like the real endpoint and never
/// does anything else: no call, no state change.
fn outbound_call(state: &IndexedWorld, ctx: &RequestCtx<'_>, account: &ElAccount) -> Reply {
    let format = state.world.elevenlabs.error_format;
    let body: Value = match serde_json::from_slice(ctx.body) {
        Ok(v) => v,
        Err(e) => {
            return validation_error(json!({
                "type": "json_invalid",
                "loc": ["body", e.column()],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": "Expecting value"}
            }));
        }
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str);
    let missing: Vec<Value> = ["agent_id", "agent_phone_number_id", "to_number"]
        .into_iter()
        .filter(|f| field(f).is_none())
        .map(|f| missing_field("body", f))
        .collect();
    if !missing.is_empty() {
        return Reply::json_of(422, &json!({ "detail": missing }));
    }
    let (agent_id, number_id) = (
        field("agent_id").unwrap_or_default(),
        field("agent_phone_number_id").unwrap_or_default(),
    );
    if find_agent(state, account, agent_id).is_none() {
        return ElError::agent_not_found().render(format);
    }
    let number = match state.el_index.phone_numbers.get(number_id) {
        Some((owner, i)) if *owner == account.id => account.phone_numbers.get(*i),
        _ => None,
    };
    let Some(number) = number else {
        return ElError::phone_number_not_found().render(format);
    };
    let Some(creds) = &number.twilio_credentials else {
        return ElError::new(
            400,
            "invalid_request_error",
            "invalid_provider_config",
            "invalid_provider_config",
            format!(
                "We are missing some Twilio credentials for the number {}. Please delete and re-create it to be able to make outbound calls.",
                number.phone_number
            ),
        )
        .render(format);
    };
    #[derive(Serialize)]
    struct CallResponse {
        success: bool,
        message: String,
        conversation_id: Option<String>,
        #[serde(rename = "callSid")]
        call_sid: Option<String>,
    }
    let failure = |message: String| {
        Reply::json_of(
            200,
            &CallResponse {
                success: false,
                message,
                conversation_id: None,
                call_sid: None,
            },
        )
    };
    match super::twilio::stored_credentials_status(state, creds, &number.phone_number) {
        Err(message) => failure(message),
        Ok(()) => Reply::json_of(
            200,
            &CallResponse {
                success: true,
                message: "Success".to_owned(),
                conversation_id: Some(format!("conv_{}", random_alnum(28).to_lowercase())),
                call_sid: Some(random_hex_id("CA")),
            },
        ),
    }
}

/// Unix time `days` from now, for demo reset dates.
pub(crate) fn unix_in_days(days: u64) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(now + days * 86_400).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------
// The fake, as the simulator serves it
// ---------------------------------------------------------------------------

/// The fake ElevenLabs API in [`super::FAKES`].
pub struct ElevenLabsFake;

impl super::Fake for ElevenLabsFake {
    fn name(&self) -> &'static str {
        "elevenlabs"
    }

    fn handle(&self, state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Script {
        handle(state, ctx)
    }

    fn forbidden_reason(&self, state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Option<&'static str> {
        forbidden_reason(state, ctx)
    }

    /// The outbound-call model reads the request, to record what was asked.
    fn reads_body(&self, method: &Method) -> bool {
        method == Method::POST
    }

    /// One key of each kind the demo world knows (healthy, missing
    /// `convai_write`, revoked, out of quota, …).
    fn demo_section(&self, base_url: &str) -> String {
        use super::demo as d;
        let el = |name: &str, key: &str, extra: &str| {
            format!("  - name: {name}\n    api_key: {key}\n    base_url: {base_url}\n{extra}")
        };
        let mut y = String::from("elevenlabs:\n");
        // Three keys of one workspace: its quota is exported once, as
        // account="workspace-prod".
        let prod = "    account: workspace-prod\n";
        y += &el(
            "el-agent-prod",
            d::EL_AGENT_PROD_KEY,
            &format!(
                "{prod}    required_permissions: [convai_write, convai_read]\n    phone_numbers: true\n    twilio: twilio-prod\n    labels: {{team: voice, environment: prod}}\n"
            ),
        );
        y += &el("el-no-convai-write", d::EL_NO_CONVAI_WRITE_KEY, prod);
        y += &el("el-revoked", d::EL_REVOKED_KEY, "");
        y += &el("el-quota-exhausted", d::EL_QUOTA_EXHAUSTED_KEY, "");
        y += &el("el-quota-high", d::EL_QUOTA_HIGH_KEY, "");
        y += &el("el-restricted", d::EL_RESTRICTED_KEY, prod);
        y += &el("el-blocked", d::EL_BLOCKED_KEY, "");
        y
    }

    fn read_only_check(&self, r: &super::RecordedRequest) -> Result<(), String> {
        read_only_check(r)
    }

    fn auth_check(&self, r: &super::RecordedRequest) -> Result<(), String> {
        if r.header("xi-api-key").is_none() || r.header("authorization").is_some() {
            return Err("ElevenLabs auth must be xi-api-key".into());
        }
        Ok(())
    }

    fn corpus(&self) -> &'static str {
        include_str!("../../../tests/fixtures/upstream/elevenlabs.json")
    }

    fn demo_world(&self, world: &mut super::World) {
        world.elevenlabs = demo_world();
    }

    fn demo_cast(&self) -> &'static [super::demo::CastMember] {
        use super::demo::{CastAlert as A, CastMember as C};
        // Every demo credential is critical: `critical` for what is broken,
        // `warning` for early warnings.
        const CAST: &[C] = &[
            // phnum_demo_legacy_line is not on twilio-prod (not_on_twilio_account).
            C::healthy("el-agent-prod")
                .firing(&[A::new("CredwatchPhoneNumberNotReady", "critical")]),
            C::unhealthy("el-no-convai-write", "missing_permission")
                .firing(&[A::new("CredwatchPermissionMissing", "critical")]),
            C::unhealthy("el-revoked", "invalid_credentials")
                .firing(&[A::new("CredwatchCredentialInvalid", "critical")]),
            C::unhealthy("el-quota-exhausted", "quota_exhausted")
                .firing(&[A::new("CredwatchQuotaExhausted", "critical")]),
            C::healthy("el-quota-high").firing(&[A::new("CredwatchQuotaHigh", "warning")]),
            C::healthy("el-restricted"),
            C::unhealthy("el-blocked", "account_blocked")
                .firing(&[A::new("CredwatchAccountBlocked", "critical")]),
        ];
        CAST
    }
}

/// Its part of the demo world: the workspaces and keys of its demo cast.
fn demo_world() -> ElevenLabsWorld {
    use super::demo::*;

    let mut world = ElevenLabsWorld {
        // As the real API does: a malformed agent id gets 400 `invalid_uid`.
        validate_agent_ids: true,
        ..ElevenLabsWorld::default()
    };
    let reset = Some(unix_in_days(18));

    let ulaw = Agent::new(EL_AGENT_ULAW_ID, "Support (phone)", "ulaw_8000");
    let pcm = Agent::new(EL_AGENT_PCM_ID, "Sales (web)", "pcm_16000");
    let prod = ElAccount::new("workspace-prod")
        .with_subscription(Subscription {
            tier: "creator".to_owned(),
            character_count: 12_000,
            character_limit: 100_000,
            next_character_count_reset_unix: reset,
            max_credit_limit_extension: CreditLimitExtension::Unlimited,
            ..Subscription::default()
        })
        .with_phone_number(
            ElPhoneNumber::twilio(EL_PHONE_SUPPORT_ID, EL_PHONE_SUPPORT_NUMBER, "Support line")
                .assigned_to(&ulaw)
                .with_twilio_credentials(TWILIO_PROD_SID, TWILIO_PROD_TOKEN),
        )
        .with_phone_number(ElPhoneNumber {
            supports_inbound: None,
            supports_outbound: None,
            ..ElPhoneNumber::twilio(EL_PHONE_SPARE_ID, EL_PHONE_SPARE_NUMBER, "Spare line")
                .with_twilio_credentials(TWILIO_PROD_SID, TWILIO_PROD_TOKEN)
        })
        .with_phone_number(
            ElPhoneNumber::twilio(EL_PHONE_LEGACY_ID, EL_PHONE_LEGACY_NUMBER, "Legacy line")
                .assigned_to(&pcm)
                .with_twilio_credentials(TWILIO_PROD_SID, TWILIO_PROD_TOKEN),
        )
        .with_agent(ulaw)
        .with_agent(pcm);
    world.add_account(prod);

    world.add_account(
        ElAccount::new("workspace-exhausted").with_subscription(Subscription {
            tier: "starter".to_owned(),
            character_count: 30_000,
            character_limit: 30_000,
            next_character_count_reset_unix: reset,
            can_extend_character_limit: false,
            allowed_to_extend_character_limit: false,
            max_credit_limit_extension: CreditLimitExtension::Limit(0),
            max_character_limit_extension: Some(0),
            ..Subscription::default()
        }),
    );
    world.add_account(
        ElAccount::new("workspace-high").with_subscription(Subscription {
            tier: "pro".to_owned(),
            character_count: 475_000,
            character_limit: 500_000,
            next_character_count_reset_unix: reset,
            ..Subscription::default()
        }),
    );
    world.add_account(
        ElAccount::new("workspace-blocked")
            .with_subscription(Subscription {
                tier: "free".to_owned(),
                status: SubscriptionStatus::Free,
                character_count: 200,
                character_limit: 10_000,
                can_extend_character_limit: false,
                allowed_to_extend_character_limit: false,
                max_credit_limit_extension: CreditLimitExtension::Limit(0),
                max_character_limit_extension: None,
                currency: None,
                billing_period: None,
                ..Subscription::default()
            })
            .with_block(AccountBlock::DetectedUnusualActivity),
    );

    world.add_key(
        EL_AGENT_PROD_KEY,
        ElKey::new(EL_AGENT_PROD_KEY_ID, "workspace-prod"),
    );
    world.add_key(
        EL_NO_CONVAI_WRITE_KEY,
        ElKey::new(EL_NO_CONVAI_WRITE_KEY_ID, "workspace-prod")
            .with_permissions(&["user_read", "convai_read"]),
    );
    world.add_key(
        EL_QUOTA_EXHAUSTED_KEY,
        ElKey::new(EL_QUOTA_EXHAUSTED_KEY_ID, "workspace-exhausted"),
    );
    world.add_key(
        EL_QUOTA_HIGH_KEY,
        ElKey::new(EL_QUOTA_HIGH_KEY_ID, "workspace-high"),
    );
    world.add_key(
        EL_RESTRICTED_KEY,
        ElKey::new(EL_RESTRICTED_KEY_ID, "workspace-prod")
            .with_permissions(&["convai_write", "convai_read"]),
    );
    world.add_key(
        EL_BLOCKED_KEY,
        ElKey::new(EL_BLOCKED_KEY_ID, "workspace-blocked"),
    );
    world
}

/// The one agent `get-signed-url` may name: well-formed (`agent_` + 28
/// lowercase alphanumerics, elevenlabs-api.md §5.7) and nonexistent.
pub const PROBE_AGENT: &str = "agent_0000000000000000000000000000";

/// The calls a read-only prober may make, by hand from the reference
/// (elevenlabs-api.md §5 and §9), see [`super::Fake::read_only_check`].
fn read_only_check(r: &super::RecordedRequest) -> Result<(), String> {
    if r.method != "GET" {
        return Err("not a GET".into());
    }
    let exactly = |want: &str| {
        if r.query.as_deref() == Some(want) {
            Ok(())
        } else {
            Err(format!("the query must be exactly `{want}`"))
        }
    };
    let no_query = || {
        if r.query_pairs().is_empty() {
            Ok(())
        } else {
            Err("no query is ever sent here".to_string())
        }
    };
    let id = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let segments: Vec<&str> = r.path.split('/').collect();
    match segments.as_slice() {
        ["", "v1", "user", "subscription"] | ["", "v1", "user"] | ["", "v1", "models"] => {
            no_query()
        }
        ["", "v1", "convai", "agents"] => exactly("page_size=1"),
        ["", "v1", "convai", "agents", agent] if id(agent) => no_query(),
        ["", "v1", "convai", "phone-numbers"] => exactly("provider=twilio"),
        // A call path's imported number.
        ["", "v1", "convai", "phone-numbers", number] if id(number) => no_query(),
        ["", "v1", "convai", "conversation", "get-signed-url"] => {
            exactly(&format!("agent_id={PROBE_AGENT}"))
        }
        _ => Err("not an ElevenLabs path credwatch may call".into()),
    }
}
