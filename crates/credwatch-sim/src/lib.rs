//! In-process fakes of the upstream APIs credwatch probes: ElevenLabs
//! (`api.elevenlabs.io`) and the Twilio REST API 2010 (`api.twilio.com`),
//! one [`Fake`] each, listed in [`FAKES`].
//!
//! # Why it exists
//!
//! No machine that builds or tests credwatch can reach the real APIs, and
//! the real APIs must never be used to test error handling anyway. The
//! simulator answers exactly as the real services do, byte for byte where a
//! real body was captured (see `/work/shared/reference/*-api.md`): the same
//! status codes, error envelopes, headers, paging and auth rules. It is used
//! by `credwatch demo`, by the integration tests and by benchmarks.
//!
//! # What it must never do
//!
//! - Depend on credwatch: it fakes the outside world and must stay
//!   independent of our own client code.
//! - Be weaker than the real thing: every request needs the real auth
//!   header, key permissions are enforced, nothing is exposed that the real
//!   API would not expose.
//! - Do anything for a dangerous request (POST, outbound call, …) beyond
//!   answering plausibly and recording it in [`Simulator::forbidden_requests`].
//! - Panic on odd input, block a runtime thread, or scan every key per
//!   request: lookups go through `HashMap`s, handlers hold a read lock only
//!   while computing the answer, and waiting (latency, trickling) is async.
//!
//! # Layout
//!
//! - [`Fake`]: what the simulator needs of one fake upstream (its name, its
//!   handler, what a read-only prober must never send it and, by hand from
//!   the reference, all it may send and how it authenticates, its demo
//!   config section and cast, its corpus file); [`FAKES`] lists them. Each is one module: [`elevenlabs`], [`twilio`].
//!   Everything per upstream (listeners, counters, URLs, dispatch) follows
//!   that list.
//! - [`elevenlabs`]: the ElevenLabs model ([`ElevenLabsWorld`]) and handler.
//!   It uses [`twilio`] to judge the Twilio credentials stored with an
//!   imported number; [`twilio`] never uses it.
//! - [`twilio`]: the Twilio model ([`TwilioWorld`]) and handler.
//! - [`corpus`]: the recorded upstream answers (`tests/fixtures/upstream/`);
//!   every error body the simulator sends comes from it.
//! - [`faults`]: injectable failures ([`Fault`]).
//! - [`demo`]: the world behind `credwatch demo`, its secrets, its config
//!   and its cast (what each credential and call path must show).
//! - `http`: the hyper server loop, body types, and query and Basic-auth
//!   decoding (through the `url` and `base64` crates).

pub mod corpus;
pub mod demo;
pub mod elevenlabs;
pub mod faults;
mod http;
pub mod twilio;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use elevenlabs::{
    AccountBlock, Agent, AssignedAgent, BlockScope, CreditLimitExtension, ElAccount, ElKey,
    ElPhoneNumber, ElevenLabsWorld, ErrorFormat, PermissionErrorForm, SignedUrlMode, Subscription,
    SubscriptionStatus,
};
pub use faults::{Fault, PathRule};
pub use twilio::{
    AccountStatus, AccountType, ApiKey, CallerId, Capabilities, InactiveAnswer, IncomingNumber,
    KeyKind, RateLimitCasing, SkInPathError, StoredTwilioCredentials, TwilioAccount, TwilioWorld,
};

/// How many requests [`Simulator::requests`] keeps (the oldest are dropped).
pub const REQUEST_LOG_CAPACITY: usize = 100_000;
/// How many forbidden requests [`Simulator::forbidden_requests`] keeps. Kept
/// apart from the main log so a long run cannot push them out.
pub const FORBIDDEN_LOG_CAPACITY: usize = 10_000;

/// One fake upstream API. Adding one is its module (its world, its handler,
/// this impl with its read-only list and auth rule, its demo world, section
/// and cast and its corpus file),
/// its field in [`World`] (and in [`IndexedWorld`] if it needs lookups) and its
/// line in [`FAKES`]; the simulator serves every fake on its own listener.
pub trait Fake: Sync {
    /// The name of the credwatch config section whose `base_url` points at
    /// it (`elevenlabs`); also [`RecordedRequest::upstream`].
    fn name(&self) -> &'static str;
    /// The answer to one request, computed under the world's read lock.
    #[doc(hidden)]
    fn handle(&self, state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Script;
    /// Why a read-only prober must never send this request, if it must not.
    #[doc(hidden)]
    fn forbidden_reason(&self, state: &IndexedWorld, ctx: &RequestCtx<'_>) -> Option<&'static str>;
    /// Whether the handler reads this request's body (only models of
    /// dangerous requests do, to record what was asked).
    fn reads_body(&self, _method: &hyper::Method) -> bool {
        false
    }
    /// Its section of the `credwatch demo` config, against its listener at
    /// `base_url`: one credential per entry of [`Fake::demo_cast`].
    fn demo_section(&self, base_url: &str) -> String;
    /// Its credentials in `credwatch demo` and what each must show, in the
    /// order of [`Fake::demo_section`].
    fn demo_cast(&self) -> &'static [demo::CastMember];
    /// Whether a read-only prober may send `request` to this upstream: the
    /// method, path and query shapes the reference allows, written by hand
    /// from it (not from credwatch's own allow-list, so a mistake there
    /// shows here); `Err` says what is wrong. Stricter than
    /// [`Fake::forbidden_reason`], which only flags the dangerous requests.
    fn read_only_check(&self, request: &RecordedRequest) -> Result<(), String>;
    /// Whether `request` authenticates the way this upstream expects (and
    /// only that way); `Err` says what is wrong.
    fn auth_check(&self, request: &RecordedRequest) -> Result<(), String>;
    /// Its file of recorded answers (`tests/fixtures/upstream/NAME.json`,
    /// compiled in), which [`corpus`] serves error bodies from.
    fn corpus(&self) -> &'static str;
    /// Puts its part of the demo world ([`World::demo`]) in `world`: what
    /// its [`Fake::demo_cast`] needs.
    fn demo_world(&self, world: &mut World);
}

/// Every fake upstream, in the order the demo config lists their sections.
pub static FAKES: &[&dyn Fake] = &[&elevenlabs::ElevenLabsFake, &twilio::TwilioFake];

/// One request as received, before any answer was computed.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The [`Fake::name`] of the fake that received it.
    pub upstream: &'static str,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// Header names are lowercase; values are as sent (secrets included:
    /// they are fake, and tests need to see what was sent).
    pub headers: Vec<(String, String)>,
    pub at: SystemTime,
    /// Why the request is forbidden for a read-only prober, if it is.
    pub forbidden: Option<&'static str>,
}

impl RecordedRequest {
    /// The query's `key=value` pairs, as sent (not decoded).
    pub fn query_pairs(&self) -> Vec<(&str, &str)> {
        self.query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect()
    }

    /// The first value of a header (name in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Everything the fake upstreams know, one field per fake. Mutate it at
/// runtime with [`Simulator::update`].
#[derive(Debug, Clone, Default)]
pub struct World {
    pub elevenlabs: ElevenLabsWorld,
    pub twilio: TwilioWorld,
}

/// The world plus lookup indexes derived from it (rebuilt by [`IndexedWorld::new`]
/// after every [`Simulator::update`], so handlers never scan).
#[doc(hidden)]
pub struct IndexedWorld {
    pub(crate) world: World,
    pub(crate) el_index: elevenlabs::Index,
    pub(crate) tw_index: twilio::Index,
}

impl IndexedWorld {
    fn new(world: World) -> IndexedWorld {
        let el_index = elevenlabs::Index::build(&world.elevenlabs);
        let tw_index = twilio::Index::build(&world.twilio);
        IndexedWorld {
            world,
            el_index,
            tw_index,
        }
    }
}

/// What a handler decided to send: the reply, how to deliver it, how long
/// to wait first (a script for the server loop, not yet a response).
#[doc(hidden)]
pub struct Script {
    pub(crate) reply: http::Reply,
    pub(crate) delivery: http::Delivery,
    pub(crate) latency: Duration,
}

/// A request as the handlers see it.
#[doc(hidden)]
pub struct RequestCtx<'a> {
    pub(crate) method: &'a hyper::Method,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a hyper::HeaderMap,
    pub(crate) body: &'a [u8],
    /// Requests currently being answered by this upstream, this one included.
    pub(crate) in_flight: u32,
}

#[derive(Default)]
struct RequestLog {
    all: VecDeque<RecordedRequest>,
    forbidden: VecDeque<RecordedRequest>,
}

/// One fake's counters.
#[derive(Default)]
struct Counters {
    /// Requests being answered now.
    in_flight: AtomicU32,
    /// Requests received.
    requests: AtomicU64,
    /// The highest `in_flight` seen.
    in_flight_max: AtomicU32,
    /// TCP connections accepted.
    connections: Arc<AtomicU64>,
}

/// What every listener's handler shares with the [`Simulator`]: the world
/// with its indexes, the request log and the settings tests change.
struct Inner {
    state: RwLock<IndexedWorld>,
    log: Mutex<RequestLog>,
    count: AtomicU64,
    /// See [`Simulator::set_hang_counted_for`].
    hang_counted_for: Mutex<Option<Duration>>,
}

impl Inner {
    fn new(world: World) -> Inner {
        Inner {
            state: RwLock::new(IndexedWorld::new(world)),
            log: Mutex::new(RequestLog::default()),
            count: AtomicU64::new(0),
            hang_counted_for: Mutex::new(None),
        }
    }

    fn record(&self, request: RecordedRequest) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if request.forbidden.is_some() {
            if log.forbidden.len() >= FORBIDDEN_LOG_CAPACITY {
                log.forbidden.pop_front();
            }
            log.forbidden.push_back(request.clone());
        }
        if log.all.len() >= REQUEST_LOG_CAPACITY {
            log.all.pop_front();
        }
        log.all.push_back(request);
    }
}

/// Decrements the in-flight counter when the request is done, or aborted:
/// hyper drops the handler future, hung or not, as soon as it sees the
/// client hang up. (A hung request can also stop counting earlier, see
/// [`Simulator::set_hang_counted_for`].)
struct InFlight<'a>(&'a AtomicU32);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The largest request body read (only the outbound-call model reads one).
const MAX_REQUEST_BODY: usize = 64 * 1024;

async fn handle(
    shared: Arc<Inner>,
    fake: &'static dyn Fake,
    counters: Arc<Counters>,
    req: hyper::Request<Incoming>,
) -> hyper::Response<http::SimBody> {
    let arrived = tokio::time::Instant::now();
    let counter = &counters.in_flight;
    let in_flight = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    let guard = InFlight(counter);
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters
        .in_flight_max
        .fetch_max(in_flight, Ordering::Relaxed);

    let (parts, body) = req.into_parts();
    let body = if fake.reads_body(&parts.method) {
        match http_body_util::Limited::new(body, MAX_REQUEST_BODY)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        }
    } else {
        drop(body);
        Bytes::new()
    };
    let ctx = RequestCtx {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        in_flight,
    };

    let (plan, forbidden) = {
        let state = shared.state.read().unwrap_or_else(PoisonError::into_inner);
        (
            fake.handle(&state, &ctx),
            fake.forbidden_reason(&state, &ctx),
        )
    };

    shared.record(RecordedRequest {
        upstream: fake.name(),
        method: parts.method.as_str().to_owned(),
        path: ctx.path.to_owned(),
        query: ctx.query.map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        at: SystemTime::now(),
        forbidden,
    });

    if !plan.latency.is_zero() {
        tokio::time::sleep(plan.latency).await;
    }
    match http::deliver(plan.reply, &plan.delivery) {
        http::Outcome::Respond(response) => *response,
        http::Outcome::Hang => {
            let counted_for = *shared
                .hang_counted_for
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(limit) = counted_for {
                tokio::time::sleep_until(arrived + limit).await;
                drop(guard);
            }
            std::future::pending().await
        }
    }
}

/// One fake HTTP server on `127.0.0.1` per entry of [`FAKES`], sharing a
/// [`World`]. Dropping it (or [`Simulator::shutdown`]) stops every server
/// and every open connection.
pub struct Simulator {
    shared: Arc<Inner>,
    /// Each fake with its address and counters, in the order of [`FAKES`].
    served: Vec<Served>,
    tasks: Vec<JoinHandle<()>>,
}

struct Served {
    fake: &'static dyn Fake,
    addr: SocketAddr,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Simulator");
        for served in &self.served {
            s.field(served.fake.name(), &served.addr);
        }
        s.finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds one server per fake on `127.0.0.1:0` and starts serving `world`.
    pub async fn start(world: World) -> std::io::Result<Simulator> {
        let shared = Arc::new(Inner::new(world));
        let mut served = Vec::with_capacity(FAKES.len());
        let mut tasks = Vec::with_capacity(FAKES.len());
        for &fake in FAKES {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let addr = listener.local_addr()?;
            let counters = Arc::new(Counters::default());
            let accepted = counters.connections.clone();
            let handler = {
                let (shared, counters) = (shared.clone(), counters.clone());
                Arc::new(move |req| handle(shared.clone(), fake, counters.clone(), req))
            };
            tasks.push(tokio::spawn(http::serve(listener, handler, accepted)));
            served.push(Served {
                fake,
                addr,
                counters,
            });
        }
        Ok(Simulator {
            shared,
            served,
            tasks,
        })
    }

    /// Base URL of the fake API of the provider called `name` (`elevenlabs`,
    /// `twilio`: a config section's name, [`Fake::name`]), e.g.
    /// `http://127.0.0.1:41234`, if the simulator has one.
    pub fn url_for(&self, name: &str) -> Option<String> {
        self.served
            .iter()
            .find(|s| s.fake.name() == name)
            .map(|s| format!("http://{}", s.addr))
    }

    /// Every fake's name and base URL, in the order of [`FAKES`].
    pub fn urls(&self) -> Vec<(&'static str, String)> {
        self.served
            .iter()
            .map(|s| (s.fake.name(), format!("http://{}", s.addr)))
            .collect()
    }

    /// Base URL of the fake ElevenLabs API (`url_for("elevenlabs")`).
    pub fn elevenlabs_url(&self) -> String {
        self.url_for(elevenlabs::ElevenLabsFake.name())
            .unwrap_or_default()
    }

    /// Base URL of the fake Twilio API (`url_for("twilio")`).
    pub fn twilio_url(&self) -> String {
        self.url_for(twilio::TwilioFake.name()).unwrap_or_default()
    }

    /// The counters of the fake called `name`.
    ///
    /// # Panics
    ///
    /// When no fake is called `name`: a typo in a test or benchmark, the
    /// only callers of the counters.
    #[track_caller]
    fn counters(&self, name: &str) -> &Counters {
        match self.served.iter().find(|s| s.fake.name() == name) {
            Some(s) => &s.counters,
            None => panic!(
                "the simulator has no fake upstream `{name}` (it has {:?})",
                FAKES.iter().map(|f| f.name()).collect::<Vec<_>>()
            ),
        }
    }

    /// Changes the world at runtime (revoke a key, rotate a token, set a
    /// fault, …). Later requests see the change.
    pub fn update(&self, f: impl FnOnce(&mut World)) {
        let mut state = self
            .shared
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut state.world);
        *state = IndexedWorld::new(std::mem::take(&mut state.world));
    }

    /// A copy of the current world.
    pub fn world(&self) -> World {
        self.shared
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .world
            .clone()
    }

    /// Every request received (the last [`REQUEST_LOG_CAPACITY`]), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        let log = self
            .shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        log.all.iter().cloned().collect()
    }

    /// Forget every recorded request (the total count is kept).
    pub fn clear_requests(&self) {
        let mut log = self
            .shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        log.all.clear();
        log.forbidden.clear();
    }

    /// Requests a read-only prober must never send: any method but GET, a
    /// path outside the read-only allow-list, a never-call endpoint, a
    /// signed-URL request for a real agent or with
    /// `include_conversation_id=true`, Twilio's `Accounts.json` list.
    pub fn forbidden_requests(&self) -> Vec<RecordedRequest> {
        let log = self
            .shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        log.forbidden.iter().cloned().collect()
    }

    /// Total requests received since start, including ones dropped from the log.
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// Requests received by one upstream (a [`Fake::name`]) since start.
    #[track_caller]
    pub fn upstream_request_count(&self, upstream: &str) -> u64 {
        self.counters(upstream).requests.load(Ordering::Relaxed)
    }

    /// TCP connections one upstream accepted since start (for benchmarks:
    /// a pooled client opens few, one connection per request opens many).
    #[track_caller]
    pub fn connection_count(&self, upstream: &str) -> u64 {
        self.counters(upstream).connections.load(Ordering::Relaxed)
    }

    /// Requests one upstream is answering right now. A request that hangs
    /// on purpose ([`Fault::Hang`]) counts until its client hangs up.
    #[track_caller]
    pub fn in_flight(&self, upstream: &str) -> u32 {
        self.counters(upstream).in_flight.load(Ordering::Relaxed)
    }

    /// How long a request that hangs on purpose ([`Fault::Hang`]) counts as
    /// in flight, from its arrival; `None` (the default): until the client
    /// hangs up. The request keeps hanging either way.
    ///
    /// Why a limit: a client that gives up on a hung request and at once
    /// sends its next one in the freed slot (credwatch's per-host limit does
    /// exactly that) closes the old connection from a background task, so
    /// the next request can reach the simulator before the hang-up does and
    /// both count for a moment, though the client never had more requests
    /// out than its limit. Set a limit a little below the client's timeout
    /// to measure the client's concurrency without that hand-over overlap.
    pub fn set_hang_counted_for(&self, limit: Option<Duration>) {
        *self
            .shared
            .hang_counted_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = limit;
    }

    /// The most requests one upstream was answering at once, since start or
    /// the last call (which resets it).
    #[track_caller]
    pub fn take_max_in_flight(&self, upstream: &str) -> u32 {
        let counters = self.counters(upstream);
        let current = counters.in_flight.load(Ordering::Relaxed);
        counters.in_flight_max.swap(current, Ordering::Relaxed)
    }

    /// Stops every server and closes every connection.
    pub async fn shutdown(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
