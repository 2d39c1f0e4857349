//! An in-process fake of the two upstream APIs credwatch probes: ElevenLabs
//! (`api.elevenlabs.io`) and the Twilio REST API 2010 (`api.twilio.com`).
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
//! - Depend on any other credwatch module: it fakes the outside world and
//!   must stay independent of our own client code.
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
//! - [`elevenlabs`]: the ElevenLabs model ([`ElevenLabsWorld`]) and handler.
//!   It uses [`twilio`] to judge the Twilio credentials stored with an
//!   imported number; [`twilio`] never uses it.
//! - [`twilio`]: the Twilio model ([`TwilioWorld`]) and handler.
//! - [`corpus`]: the recorded upstream answers (`tests/fixtures/upstream/`);
//!   every error body the simulator sends comes from it.
//! - [`faults`]: injectable failures ([`Fault`]).
//! - [`demo`]: the world behind `credwatch demo` and its secrets.
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

/// Which fake upstream received a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    ElevenLabs,
    Twilio,
}

/// One request as received, before any answer was computed.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub upstream: Upstream,
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
    /// The first value of a header (name in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Everything both fake upstreams know. Mutate it at runtime with
/// [`Simulator::update`].
#[derive(Debug, Clone, Default)]
pub struct World {
    pub elevenlabs: ElevenLabsWorld,
    pub twilio: TwilioWorld,
}

/// The world plus lookup indexes derived from it (rebuilt after every
/// [`Simulator::update`], so handlers never scan).
pub(crate) struct State {
    pub world: World,
    pub el_index: elevenlabs::Index,
    pub tw_index: twilio::Index,
}

impl State {
    fn new(world: World) -> State {
        let el_index = elevenlabs::Index::build(&world.elevenlabs);
        let tw_index = twilio::Index::build(&world.twilio);
        State {
            world,
            el_index,
            tw_index,
        }
    }
}

/// What a handler decided: the reply, how to deliver it, how long to wait.
pub(crate) struct Plan {
    pub reply: http::Reply,
    pub delivery: http::Delivery,
    pub latency: Duration,
}

/// A request as the handlers see it.
pub(crate) struct RequestCtx<'a> {
    pub method: &'a hyper::Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a [u8],
    /// Requests currently being answered by this upstream, this one included.
    pub in_flight: u32,
}

#[derive(Default)]
struct RequestLog {
    all: VecDeque<RecordedRequest>,
    forbidden: VecDeque<RecordedRequest>,
}

struct Shared {
    state: RwLock<State>,
    log: Mutex<RequestLog>,
    count: AtomicU64,
    in_flight: [AtomicU32; 2],
    /// Requests received, per upstream.
    counts: [AtomicU64; 2],
    /// The highest `in_flight` seen, per upstream.
    in_flight_max: [AtomicU32; 2],
    /// TCP connections accepted, per upstream.
    connections: [Arc<AtomicU64>; 2],
    /// See [`Simulator::set_hang_counted_for`].
    hang_counted_for: Mutex<Option<Duration>>,
}

impl Shared {
    fn new(world: World) -> Shared {
        Shared {
            state: RwLock::new(State::new(world)),
            log: Mutex::new(RequestLog::default()),
            count: AtomicU64::new(0),
            in_flight: [AtomicU32::new(0), AtomicU32::new(0)],
            counts: [AtomicU64::new(0), AtomicU64::new(0)],
            in_flight_max: [AtomicU32::new(0), AtomicU32::new(0)],
            connections: [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))],
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
    shared: Arc<Shared>,
    upstream: Upstream,
    req: hyper::Request<Incoming>,
) -> hyper::Response<http::SimBody> {
    let arrived = tokio::time::Instant::now();
    let counter = &shared.in_flight[upstream as usize];
    let in_flight = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
    let guard = InFlight(counter);
    shared.counts[upstream as usize].fetch_add(1, Ordering::Relaxed);
    shared.in_flight_max[upstream as usize].fetch_max(in_flight, Ordering::Relaxed);

    let (parts, body) = req.into_parts();
    let body = if upstream == Upstream::ElevenLabs && parts.method == hyper::Method::POST {
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
        match upstream {
            Upstream::ElevenLabs => (
                elevenlabs::handle(&state, &ctx),
                elevenlabs::forbidden_reason(&state, &ctx),
            ),
            Upstream::Twilio => (twilio::handle(&state, &ctx), twilio::forbidden_reason(&ctx)),
        }
    };

    shared.record(RecordedRequest {
        upstream,
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

/// Two fake HTTP servers on `127.0.0.1`, one per upstream, sharing a
/// [`World`]. Dropping it (or [`Simulator::shutdown`]) stops both servers
/// and every open connection.
pub struct Simulator {
    shared: Arc<Shared>,
    elevenlabs_addr: SocketAddr,
    twilio_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("elevenlabs_addr", &self.elevenlabs_addr)
            .field("twilio_addr", &self.twilio_addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds both servers on `127.0.0.1:0` and starts serving `world`.
    pub async fn start(world: World) -> std::io::Result<Simulator> {
        let shared = Arc::new(Shared::new(world));
        let elevenlabs = TcpListener::bind(("127.0.0.1", 0)).await?;
        let twilio = TcpListener::bind(("127.0.0.1", 0)).await?;
        let elevenlabs_addr = elevenlabs.local_addr()?;
        let twilio_addr = twilio.local_addr()?;
        let tasks = [
            (elevenlabs, Upstream::ElevenLabs),
            (twilio, Upstream::Twilio),
        ]
        .into_iter()
        .map(|(listener, upstream)| {
            let accepted = shared.connections[upstream as usize].clone();
            let shared = shared.clone();
            let handler = Arc::new(move |req| handle(shared.clone(), upstream, req));
            tokio::spawn(http::serve(listener, handler, accepted))
        })
        .collect();
        Ok(Simulator {
            shared,
            elevenlabs_addr,
            twilio_addr,
            tasks,
        })
    }

    /// Base URL of the fake ElevenLabs API, e.g. `http://127.0.0.1:41234`.
    pub fn elevenlabs_url(&self) -> String {
        format!("http://{}", self.elevenlabs_addr)
    }

    /// Base URL of the fake Twilio API.
    pub fn twilio_url(&self) -> String {
        format!("http://{}", self.twilio_addr)
    }

    /// Base URL of the fake API of the provider called `name` (`elevenlabs`,
    /// `twilio`: a config section's name), if the simulator has one.
    pub fn url_for(&self, name: &str) -> Option<String> {
        match name {
            "elevenlabs" => Some(self.elevenlabs_url()),
            "twilio" => Some(self.twilio_url()),
            _ => None,
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
        state.el_index = elevenlabs::Index::build(&state.world.elevenlabs);
        state.tw_index = twilio::Index::build(&state.world.twilio);
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

    /// Requests received by one upstream since start.
    pub fn upstream_request_count(&self, upstream: Upstream) -> u64 {
        self.shared.counts[upstream as usize].load(Ordering::Relaxed)
    }

    /// TCP connections one upstream accepted since start (for benchmarks:
    /// a pooled client opens few, one connection per request opens many).
    pub fn connection_count(&self, upstream: Upstream) -> u64 {
        self.shared.connections[upstream as usize].load(Ordering::Relaxed)
    }

    /// Requests one upstream is answering right now. A request that hangs
    /// on purpose ([`Fault::Hang`]) counts until its client hangs up.
    pub fn in_flight(&self, upstream: Upstream) -> u32 {
        self.shared.in_flight[upstream as usize].load(Ordering::Relaxed)
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
    pub fn take_max_in_flight(&self, upstream: Upstream) -> u32 {
        let current = self.shared.in_flight[upstream as usize].load(Ordering::Relaxed);
        self.shared.in_flight_max[upstream as usize].swap(current, Ordering::Relaxed)
    }

    /// Stops both servers and closes every connection.
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
