//! credwatch's own HTTP server: `/metrics`, `/health`, `/livez`, `/readyz`,
//! `/`, and `POST /-/reload`.
//!
//! Handlers only read pre-rendered state; none of them calls upstream or
//! waits on a probe. Connections are capped, headers must arrive within a
//! timeout and within a size limit, so a slow or flooding client cannot take
//! the process (and with it the readiness of the pods that depend on it) down.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::state::{Health, State};

/// Reloads the config; `Err` carries the message for the client.
pub type Reloader = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Limits that protect the server from its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections accepted beyond `max_connections`: served one request each,
    /// probes only (`/livez`, `/readyz`, `/health`), so a flood of scrapes
    /// cannot starve the kubelet. Past this too, connections are closed at once.
    pub overflow_connections: usize,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    /// How long shutdown waits for requests in flight.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            overflow_connections: 64,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// What the handlers need.
pub struct App {
    pub state: Arc<State>,
    pub reloader: Option<Reloader>,
    /// TLS, basic auth and headers (`--web.config.file`); `None` for plain HTTP.
    pub web: Option<Arc<crate::web::WebConfig>>,
    /// Serve only `/livez`, `/healthz`, `/readyz` and `/health` (the
    /// `--probe.listen-address` listener, for kubelet probes).
    pub probe_only: bool,
}

/// A response body made of ready chunks (no copy of the cached `/metrics` text).
pub struct Chunks(VecDeque<Bytes>);

impl Chunks {
    pub fn one(b: impl Into<Bytes>) -> Self {
        Chunks(VecDeque::from([b.into()]))
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
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
        let (stream, _) = tokio::select! {
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
        let loaded = app.web.as_ref().map(|w| w.current());
        let tls = loaded.as_ref().and_then(|l| l.tls.clone());
        let app = app.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            let loaded = loaded.clone();
            async move {
                if overflowing
                    && !matches!(
                        req.uri().path(),
                        "/livez" | "/healthz" | "/readyz" | "/health"
                    )
                {
                    let mut r = text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many connections; retry later\n",
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
                    return Ok::<_, Infallible>(r);
                }
                Ok::<_, Infallible>(respond(&app, loaded.as_deref(), req))
            }
        });
        let watcher = graceful.watcher();
        let builder = if overflowing {
            overflow_builder.clone()
        } else {
            builder.clone()
        };
        let handshake_timeout = limits.header_read_timeout;
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

/// Applies the web config (basic auth, extra headers), then routes.
fn respond(
    app: &App,
    web: Option<&crate::web::Loaded>,
    req: Request<Incoming>,
) -> Response<Chunks> {
    let mut response = match (web, &app.web) {
        (Some(loaded), Some(config))
            if !config.authorized(loaded, req.headers().get(header::AUTHORIZATION)) =>
        {
            let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"credwatch\""),
            );
            r
        }
        _ => handle(app, req),
    };
    if let Some(loaded) = web {
        for (name, value) in &loaded.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// Routes one request. Never panics, never awaits upstream.
pub fn handle(app: &App, req: Request<Incoming>) -> Response<Chunks> {
    if app.probe_only
        && !matches!(
            req.uri().path(),
            "/livez" | "/healthz" | "/readyz" | "/health"
        )
    {
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
            let chunks = app.state.metrics_body(gzip);
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
        "/health" if readable => health(app, query),
        "/livez" | "/healthz" if readable => text(StatusCode::OK, "ok\n"),
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
        "/" if readable => Response::builder()
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Chunks::one(landing_page(&app.state)))
            .unwrap_or_else(|_| Response::new(Chunks::one(""))),
        "/-/reload" if *req.method() == Method::POST => match &app.reloader {
            Some(reload) => match reload() {
                Ok(()) => text(StatusCode::OK, "configuration reloaded\n"),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            },
            None => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reload is not available in this mode\n",
            ),
        },
        "/-/reload" => not_allowed("POST"),
        "/metrics" | "/health" | "/livez" | "/healthz" | "/readyz" | "/" => {
            not_allowed("GET, HEAD")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /health, /livez, /readyz or /\n",
        ),
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

fn health(app: &App, query: &str) -> Response<Chunks> {
    if let Some(name) = query_param(query, "credential") {
        return match app.state.health_entry(name) {
            Some((health, entry)) => {
                let ok = health == Some(Health::Healthy);
                let mut response = json(
                    if ok {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    },
                    Bytes::new(),
                );
                *response.body_mut() = Chunks(VecDeque::from([
                    Bytes::from_static(if ok {
                        b"{\"status\":\"ok\",\"credentials\":["
                    } else {
                        b"{\"status\":\"fail\",\"credentials\":["
                    }),
                    entry,
                    Bytes::from_static(b"]}\n"),
                ]));
                response
            }
            None => json(
                StatusCode::NOT_FOUND,
                format!(
                    "{{\"status\":\"unknown\",\"error\":\"no credential named {}\"}}\n",
                    serde_json::to_string(name)
                        .unwrap_or_default()
                        .trim_matches('"')
                ),
            ),
        };
    }
    let (ok, chunks) = app.state.health_body();
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

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn landing_page(state: &State) -> String {
    let mut rows = String::new();
    let slots = state.slots();
    for slot in slots.iter().take(1000) {
        let s = slot.snapshot();
        let (class, status) = match s.health() {
            Health::Healthy => ("ok", "healthy".to_string()),
            Health::Pending => ("pending", "pending".to_string()),
            Health::Unhealthy(r) => ("bad", r.as_str().to_string()),
        };
        let last = s
            .last_success
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_else(|| "never".into());
        rows.push_str(&format!(
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            html_escape(&s.name),
            s.provider.as_str(),
            if s.settings.critical { "yes" } else { "no" },
            html_escape(&status),
            match s.verdict.valid { Some(true) => "yes", Some(false) => "no", None => "unknown" },
            html_escape(&last),
        ));
    }
    if slots.len() > 1000 {
        rows.push_str(&format!(
            "<tr><td colspan=6>… and {} more (see /health)</td></tr>\n",
            slots.len() - 1000
        ));
    }
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>credwatch</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}.ok td:nth-child(4){{color:#1a7f37}}.bad td:nth-child(4){{color:#cf222e;font-weight:bold}}.pending td:nth-child(4){{color:#9a6700}}</style>
</head><body>
<h1>credwatch {version}</h1>
<p>Background checks of ElevenLabs and Twilio credentials. Links: <a href="/metrics">/metrics</a> · <a href="/health">/health</a> · <a href="/livez">/livez</a> · <a href="/readyz">/readyz</a></p>
<table><thead><tr><th>credential</th><th>provider</th><th>critical</th><th>status</th><th>valid</th><th>last definitive answer</th></tr></thead>
<tbody>
{rows}</tbody></table>
</body></html>
"#,
        version = crate::VERSION
    )
}
