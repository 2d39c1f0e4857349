//! credwatch's own HTTP server: `/metrics`, `/health`, `/livez`, `/readyz`,
//! `/`, and `POST /-/reload`.
//!
//! Handlers only read pre-rendered state; none of them calls upstream or
//! waits on a probe. Connections are capped (overall and per client
//! address), headers must arrive within a timeout and within a size limit, a
//! response the client does not take is abandoned after a write deadline, an
//! idle connection is closed, and one connection serves a bounded number of
//! requests, so a slow, flooding or never-reading client cannot take the
//! process (and with it the readiness of the pods that depend on it) down.
//! bcrypt for basic auth runs on blocking threads behind a small semaphore,
//! with failed attempts rate-limited per client address.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};

use crate::metrics::Chunk;
pub use crate::reload::Reloader;
use crate::render::page;
use crate::state::State;
use crate::verdict::Health;
use crate::web::{Credentials, WebConfig};

mod guard;
use guard::*;

/// Limits that protect the server from its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections accepted beyond `max_connections`: served one request each,
    /// probes only (`/livez`, `/readyz`, `/health`), so a flood of scrapes
    /// cannot starve the kubelet. Past this too, connections are closed at once.
    pub overflow_connections: usize,
    /// Connections one client address (an IPv4 address, or an IPv6 /64) may
    /// hold at once, in both pools together; more are closed at once.
    pub max_connections_per_address: usize,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    /// From the first write the client does not take at once, how long it
    /// has to take everything written so far; then the connection is closed.
    pub write_timeout: Duration,
    /// A connection with no bytes either way for this long is closed.
    pub idle_timeout: Duration,
    /// Requests served on one connection (pipelined or not); the last one is
    /// answered with `Connection: close`.
    pub max_requests_per_connection: usize,
    /// bcrypt checks running at once; a request that would need one more is
    /// answered 429 at once instead of queueing.
    pub auth_concurrency: usize,
    /// Failed basic-auth attempts one client address may make in a burst
    /// (0: no limit); the allowance then refills by one every
    /// `auth_failure_refill`. Past it: 429 without a bcrypt check.
    pub auth_failure_burst: u32,
    pub auth_failure_refill: Duration,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            overflow_connections: 64,
            max_connections_per_address: 32,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            write_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_requests_per_connection: 100,
            auth_concurrency: std::thread::available_parallelism()
                .map_or(1, |n| (n.get() / 2).clamp(1, 4)),
            auth_failure_burst: 10,
            auth_failure_refill: Duration::from_secs(6),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// What the handlers need.
pub struct App {
    pub state: Arc<State>,
    /// credwatch's own metrics (the config reload result, counters).
    pub own: Arc<crate::metrics::own::Own>,
    /// Runs reloads (SIGHUP always; `POST /-/reload` only with `lifecycle`).
    pub reloader: Option<Reloader>,
    /// `--web.enable-lifecycle`: `POST /-/reload` reloads; without it, 403.
    pub lifecycle: bool,
    /// TLS, basic auth and headers (`--web.config.file`); `None` for plain HTTP.
    pub web: Option<Arc<WebConfig>>,
    /// Serve only `/livez`, `/readyz` and a minimal `/health`
    /// (the `--probe.listen-address` listener, for kubelet probes).
    pub probe_only: bool,
}

/// A response body made of chunks (no copy of the cached `/metrics` text;
/// the store's deflated pieces are inflated one at a time as they are written).
pub struct Chunks(VecDeque<Chunk>);

impl Chunks {
    pub fn one(b: impl Into<Bytes>) -> Self {
        Chunks(VecDeque::from([Chunk::Ready(b.into())]))
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c.into_bytes()))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|c| c.len() as u64).sum())
    }
}

/// The answer on `/healthz`: the liveness alias, removed because it was one
/// letter from `/health` (the gate) while always 200 (docs/endpoints.md).
const HEALTHZ_REMOVED: &str = "/healthz was removed: use /livez for liveness, \
     /health for the credentials' verdicts\n";

fn is_probe(path: &str) -> bool {
    matches!(path, "/livez" | "/readyz" | "/health")
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let overflow = Arc::new(Semaphore::new(limits.overflow_connections));
    let per_address = Arc::new(PerAddress::default());
    let gate = Arc::new(AuthGate::new(&limits));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let mut overflow_builder = builder.clone();
    overflow_builder.keep_alive(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let address = address_key(peer.ip());
        let Some(held) = per_address.hold(address, limits.max_connections_per_address) else {
            tracing::debug!(
                "connection limit per address reached; closing a new connection from {address}"
            );
            continue;
        };
        let (permit, overflowing) = match connections.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => match overflow.clone().try_acquire_owned() {
                Ok(p) => (p, true),
                Err(_) => {
                    tracing::debug!("connection limit reached; closing a new connection");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        // TLS is per connection (the config current at accept); basic auth
        // and headers are looked up per request.
        let tls = match &app.web {
            Some(w) => w.fresh().await.tls.clone(),
            None => None,
        };
        let app = app.clone();
        let gate = gate.clone();
        let served = Arc::new(AtomicUsize::new(0));
        let max_requests = limits.max_requests_per_connection.max(1);
        let service = service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            let gate = gate.clone();
            let n = served.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                if overflowing && !is_probe(req.uri().path()) {
                    let mut r = text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many connections; retry later\n",
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
                    return Ok::<_, Infallible>(r);
                }
                let mut response = respond(&app, &gate, address, req).await;
                if n >= max_requests {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response)
            }
        });
        let watcher = graceful.watcher();
        let builder = if overflowing {
            overflow_builder.clone()
        } else {
            builder.clone()
        };
        let handshake_timeout = limits.header_read_timeout;
        let stream = Deadlines::new(stream, &limits);
        tokio::spawn(async move {
            match tls {
                None => {
                    let _ = watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), service))
                        .await;
                }
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = watcher
                                .watch(builder.serve_connection(TokioIo::new(stream), service))
                                .await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
            drop(held);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await;
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Chunks> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Chunks::one(body))
        .unwrap_or_else(|_| Response::new(Chunks::one("")))
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Chunks> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Chunks::one(body))
        .unwrap_or_else(|_| Response::new(Chunks::one("")))
}

fn not_allowed(allow: &'static str) -> Response<Chunks> {
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allow}\n"),
    );
    r.headers_mut()
        .insert(header::ALLOW, http::HeaderValue::from_static(allow));
    r
}

fn unauthorized() -> Response<Chunks> {
    let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Basic realm=\"credwatch\""),
    );
    r
}

fn too_many(retry_after: Duration, why: &'static str) -> Response<Chunks> {
    let mut r = text(StatusCode::TOO_MANY_REQUESTS, why);
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    if let Ok(v) = http::HeaderValue::from_str(&seconds.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Basic auth against the current web config: the cache of successful
/// checks first; otherwise a bcrypt check on a blocking thread, if this
/// address has failures left and a check slot is free (else 429 at once).
async fn authenticate(
    web: &WebConfig,
    loaded: &crate::web::Loaded,
    gate: &AuthGate,
    address: IpAddr,
    authorization: Option<&http::HeaderValue>,
) -> Result<(), Response<Chunks>> {
    let verification = match web.credentials(loaded, authorization) {
        Credentials::NotRequired | Credentials::Cached => return Ok(()),
        Credentials::Missing => return Err(unauthorized()),
        Credentials::Verify(v) => v,
    };
    if let Err(wait) = gate.allowed(address) {
        return Err(too_many(
            wait,
            "too many failed authentication attempts; retry later\n",
        ));
    }
    let Ok(permit) = gate.permits.clone().try_acquire_owned() else {
        return Err(too_many(
            Duration::from_secs(1),
            "authentication is busy; retry later\n",
        ));
    };
    let checked = tokio::task::spawn_blocking(move || {
        let ok = verification.run();
        drop(permit);
        (ok, verification)
    })
    .await;
    match checked {
        Ok((true, verification)) => {
            web.remember(verification);
            Ok(())
        }
        Ok((false, _)) => {
            gate.failed(address);
            Err(unauthorized())
        }
        Err(_) => Err(unauthorized()),
    }
}

/// Applies the web config (basic auth, extra headers), then routes.
async fn respond(
    app: &App,
    gate: &AuthGate,
    address: IpAddr,
    req: Request<Incoming>,
) -> Response<Chunks> {
    let loaded = match &app.web {
        Some(w) => Some((w, w.fresh().await)),
        None => None,
    };
    let denied = match &loaded {
        Some((web, loaded)) => authenticate(
            web,
            loaded,
            gate,
            address,
            req.headers().get(header::AUTHORIZATION),
        )
        .await
        .err(),
        None => None,
    };
    let mut response = match denied {
        Some(r) => r,
        None => handle(app, req).await,
    };
    if let Some((_, loaded)) = &loaded {
        for (name, value) in &loaded.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// The answer to `POST /-/reload` when reloading over HTTP is off.
pub const LIFECYCLE_DISABLED: &str =
    "reload over HTTP is disabled; start credwatch with --web.enable-lifecycle, or send SIGHUP\n";

/// The answer to a failed `POST /-/reload` (the detail goes to the log only).
pub const RELOAD_FAILED: &str = "reload failed; the previous config stays; see the log\n";

/// Routes one request. Never panics, never awaits upstream (only a reload).
pub async fn handle(app: &App, req: Request<Incoming>) -> Response<Chunks> {
    if app.probe_only && !is_probe(req.uri().path()) {
        return text(
            StatusCode::NOT_FOUND,
            "this listener serves only /livez, /readyz and /health\n",
        );
    }
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    match path {
        "/metrics" if readable => {
            let gzip = accepts_gzip(req.headers());
            let own = app
                .own
                .render(app.web.as_ref().map(|web| web.last_reload()));
            let chunks = app.state.metrics_body(own, gzip);
            let mut builder = Response::builder()
                .header(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .header(header::VARY, "accept-encoding");
            if gzip {
                builder = builder.header(header::CONTENT_ENCODING, "gzip");
            }
            builder
                .body(Chunks(chunks.into()))
                .unwrap_or_else(|_| Response::new(Chunks::one("")))
        }
        "/health" if readable && app.probe_only => minimal_health(app, query),
        "/health" if readable => health(app, query),
        "/livez" if readable => text(StatusCode::OK, "ok\n"),
        "/readyz" if readable => {
            if app.state.ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "waiting for the first round of checks\n",
                )
            }
        }
        "/" if readable => status_page(app, query),
        "/-/reload" if *req.method() == Method::POST => match &app.reloader {
            _ if !app.lifecycle => text(StatusCode::FORBIDDEN, LIFECYCLE_DISABLED),
            Some(reloader) => {
                if reloader.reload().await {
                    text(StatusCode::OK, "configuration reloaded\n")
                } else {
                    text(StatusCode::INTERNAL_SERVER_ERROR, RELOAD_FAILED)
                }
            }
            None => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reload is not available in this mode\n",
            ),
        },
        "/-/reload" => not_allowed("POST"),
        "/metrics" | "/health" | "/livez" | "/readyz" | "/" => not_allowed("GET, HEAD"),
        // Removed: one letter from `/health` (the gate) while always 200.
        "/healthz" => text(StatusCode::NOT_FOUND, HEALTHZ_REMOVED),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /health, /livez, /readyz or /\n",
        ),
    }
}

/// The first value of `key` in a query string, percent-decoded.
fn query_param<'a>(query: &'a str, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    url::form_urlencoded::parse(query.as_bytes()).find_map(|(k, v)| (k == key).then_some(v))
}

/// What a `/health` query gates on: every named subject must be healthy
/// (a credential) or ready (a call path). Each repeated parameter adds one;
/// the order does not matter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    /// `credential=NAME`.
    Credential(String),
    /// `call_path=NAME`.
    CallPath(String),
}

/// The subjects a `/health` query names, in the order given, without duplicates.
#[derive(Debug, Default, PartialEq, Eq)]
struct Gate {
    subjects: Vec<Subject>,
}

/// The entries a gate resolved to: (healthy or ready, `/health` entry).
#[derive(Default)]
struct Resolved {
    credentials: Vec<(bool, Bytes)>,
    call_paths: Vec<(bool, Bytes)>,
}

impl Resolved {
    fn ok(&self) -> bool {
        self.credentials
            .iter()
            .chain(&self.call_paths)
            .all(|(ok, _)| *ok)
    }
}

impl Gate {
    fn parse(query: &str) -> Self {
        let mut subjects = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let subject = match &*key {
                "credential" => Subject::Credential(value.into_owned()),
                "call_path" => Subject::CallPath(value.into_owned()),
                _ => continue,
            };
            if !subjects.contains(&subject) {
                subjects.push(subject);
            }
        }
        Gate { subjects }
    }

    /// Every named subject's verdict and `/health` entry, or the subjects
    /// that exist nowhere (what they are, and their names).
    fn resolve(&self, state: &State) -> Result<Resolved, Vec<(&'static str, String)>> {
        let mut found = Resolved::default();
        let mut unknown = Vec::new();
        for subject in &self.subjects {
            match subject {
                Subject::Credential(name) => match state.health_entry(name) {
                    Some((health, entry)) => found
                        .credentials
                        .push((health == Some(Health::Healthy), entry)),
                    None => unknown.push(("credential", name.clone())),
                },
                Subject::CallPath(name) => match state.path_health(name) {
                    Some(entry) => found.call_paths.push(entry),
                    None => unknown.push(("call path", name.clone())),
                },
            }
        }
        if unknown.is_empty() {
            Ok(found)
        } else {
            Err(unknown)
        }
    }
}

/// 404 for a gate naming what does not exist; `names` lists them (not on
/// the probe listener, which names nothing).
fn unknown_subjects(names: Option<&[(&str, String)]>) -> Response<Chunks> {
    let body = match names {
        Some(names) => serde_json::json!({
            "status": "unknown",
            "error": names
                .iter()
                .map(|(kind, name)| format!("no {kind} named {name}"))
                .collect::<Vec<_>>()
                .join("; "),
            "unknown": names.iter().map(|(_, name)| name).collect::<Vec<_>>(),
        })
        .to_string(),
        None => "{\"status\":\"unknown\"}".to_string(),
    };
    json(StatusCode::NOT_FOUND, body + "\n")
}

/// `[entry,entry,…]` as chunks.
fn json_list(chunks: &mut VecDeque<Bytes>, entries: Vec<(bool, Bytes)>) {
    for (i, (_, entry)) in entries.into_iter().enumerate() {
        if i > 0 {
            chunks.push_back(Bytes::from_static(b","));
        }
        chunks.push_back(entry);
    }
}

fn health(app: &App, query: &str) -> Response<Chunks> {
    let gate = Gate::parse(query);
    if !gate.subjects.is_empty() {
        let found = match gate.resolve(&app.state) {
            Ok(found) => found,
            Err(unknown) => return unknown_subjects(Some(&unknown)),
        };
        let ok = found.ok();
        let mut response = json(
            if ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            },
            Bytes::new(),
        );
        let paths = !found.call_paths.is_empty();
        let mut chunks = VecDeque::with_capacity(2 * gate.subjects.len() + 3);
        chunks.push_back(Bytes::from_static(if ok {
            b"{\"status\":\"ok\",\"credentials\":["
        } else {
            b"{\"status\":\"fail\",\"credentials\":["
        }));
        json_list(&mut chunks, found.credentials);
        if paths {
            chunks.push_back(Bytes::from_static(b"],\"call_paths\":["));
            json_list(&mut chunks, found.call_paths);
        }
        chunks.push_back(Bytes::from_static(b"]}\n"));
        *response.body_mut() = Chunks(chunks.into_iter().map(Chunk::Ready).collect());
        return response;
    }
    let verbose = matches!(query_param(query, "verbose").as_deref(), Some("1" | "true"));
    let (ok, chunks) = app.state.health_body(verbose);
    let mut response = json(
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Bytes::new(),
    );
    *response.body_mut() = Chunks(chunks.into());
    response
}

/// `/` (every credential) or `/?credential=NAME` (one), as HTML under a
/// strict CSP: no script, nothing loaded from anywhere.
fn status_page(app: &App, query: &str) -> Response<Chunks> {
    let (status, body) = match query_param(query, "credential") {
        Some(name) => match app.state.slot(&name) {
            Some(slot) => {
                let (s, findings) = slot.view();
                (StatusCode::OK, page::detail(s, findings))
            }
            None => (StatusCode::NOT_FOUND, page::not_found(&name)),
        },
        None => {
            let credentials = app.state.slots().iter().map(|s| s.view()).collect();
            let paths = app.state.path_states();
            (StatusCode::OK, page::overview(credentials, &paths))
        }
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, page::CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Chunks::one(body))
        .unwrap_or_else(|_| Response::new(Chunks::one("")))
}

/// `/health` on the probe listener: the status code and `{"status":…}`,
/// nothing about the credentials (no names, reasons or permissions).
fn minimal_health(app: &App, query: &str) -> Response<Chunks> {
    let gate = Gate::parse(query);
    let ok = if gate.subjects.is_empty() {
        app.state.health_body(false).0
    } else {
        match gate.resolve(&app.state) {
            Ok(found) => found.ok(),
            Err(_) => return unknown_subjects(None),
        }
    };
    if ok {
        json(StatusCode::OK, "{\"status\":\"ok\"}\n")
    } else {
        json(StatusCode::SERVICE_UNAVAILABLE, "{\"status\":\"fail\"}\n")
    }
}

/// Whether the client takes a gzip body (Prometheus always does): `gzip`
/// (or `*`) in `Accept-Encoding` with a non-zero q.
pub fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
        })
}
