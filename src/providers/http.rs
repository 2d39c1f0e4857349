//! The one way credwatch talks to upstream: [`Upstream::get`].
//!
//! There is no other method. A request names a path that must be on the
//! read-only allow-list ([`check_read_path`]), redirects are never followed
//! (so credentials never reach another host), every body is read with a size
//! cap, every request has a timeout, and requests to one host are capped by a
//! semaphore shared by all credentials. Errors never carry the URL or a header.
//!
//! Secrets in transit: the `xi-api-key` and `Authorization` values are built
//! in wiped buffers and marked sensitive, answer bodies (a Twilio account body
//! carries the account's Auth Token) are read into wiped buffers, and a
//! proxy is only ever used for https upstreams, through a CONNECT tunnel
//! ([`ProxyConfig`]): a plain-http request never passes through a proxy.

pub use super::check_read_path;

use crate::outcome::Reason;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::providers::Provider;
use crate::secret::{Secret, WipedBuf};
use crate::section::{Env, ProcessEnv};

/// The largest answer read from any endpoint: a page of 1,000 Twilio
/// numbers is about 1 MiB, ElevenLabs' list of imported numbers of the
/// same order. Each provider caps each of its endpoints at what a real
/// answer needs (its [`Kind::allowed`](super::Kind::allowed) arm, returned
/// by [`check_read_path`]), with these sizes or its own; bodies above the
/// cap are not read to the end.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Answers of a known small shape (an account, a balance, a single small
/// object).
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;
/// Any other answer (a permission probe's, configurable): a page of one item
/// or an error.
pub const OTHER_BODY_LIMIT: usize = 256 * 1024;

/// How a request authenticates; each provider says which (its wire
/// details are its own, this client is generic).
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// `<name>: <prefix><secret>` (ElevenLabs: `xi-api-key: <key>`; a
    /// `Token ` or `Bearer ` scheme is `authorization` with that prefix).
    Header {
        name: &'static str,
        prefix: &'static str,
        secret: &'a Secret,
    },
    /// Pre-emptive HTTP Basic (Twilio).
    Basic { user: &'a str, password: &'a Secret },
}

/// A complete upstream answer (status, the headers we use, the capped body).
/// The body's memory is zeroed when the last clone is dropped; `Debug` shows
/// its length, not its content.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
    pub request_id: Option<String>,
    pub retry_after: Option<Duration>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body", &format_args!("{} bytes", self.body.len()))
            .field("request_id", &self.request_id)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl Answer {
    /// Test data: a JSON answer with `status` and `body`, no headers.
    #[cfg(test)]
    pub(crate) fn json(status: u16, body: &str) -> Answer {
        Answer {
            status,
            content_type: Some("application/json".into()),
            body: Bytes::copy_from_slice(body.as_bytes()),
            request_id: None,
            retry_after: None,
        }
    }

    pub fn is_json(&self) -> bool {
        self.content_type
            .as_deref()
            .is_none_or(|ct| ct.to_ascii_lowercase().contains("json"))
    }

    /// A failure to get a definitive answer, carrying upstream's `Retry-After`.
    pub fn failure(&self, reason: Reason) -> crate::outcome::Failure {
        crate::outcome::Failure {
            retry_after: self.retry_after,
            ..crate::outcome::Failure::new(reason)
        }
    }

    /// The evidence of this answer to `GET path`: status, upstream code and
    /// request id (for support tickets), our one-line reading. Never the body.
    pub fn evidence(
        &self,
        path: &str,
        code: Option<String>,
        detail: String,
    ) -> crate::outcome::Evidence {
        use crate::outcome::Clean;
        crate::outcome::Evidence {
            request: Clean::request(path),
            http_status: Some(self.status),
            upstream_code: code.as_deref().map(Clean::new),
            permission: None,
            request_id: self.request_id.as_deref().map(Clean::new),
            detail: Clean::detail(&detail),
        }
    }

    /// The one gate every classifier passes first: why this answer cannot
    /// be definitive, or `None` when it may be read. Only JSON from the API
    /// itself (`parsed` says the body did parse as JSON), neither 429 nor a
    /// 5xx whatever code it carries, and 200 among the 2xx, ever decides a
    /// verdict. `code` is the upstream error code, shown in the detail.
    pub fn not_definitive(&self, parsed: bool, code: Option<&str>) -> Option<(Reason, String)> {
        let status = self.status;
        let reason = match status {
            429 => Reason::RateLimited,
            500..=599 => Reason::UpstreamError,
            _ => Reason::UnexpectedResponse,
        };
        if !(self.is_json() && parsed) {
            let detail = if status == 403 {
                "HTTP 403 with a non-JSON (HTML) page: a CDN or firewall (e.g. a Cloudflare challenge) answered before the API saw the credential; this is not a credential problem".to_string()
            } else {
                format!("HTTP {status} with a non-JSON body (a proxy, CDN or captive portal?)")
            };
            return Some((reason, detail));
        }
        let code = code.map(|c| format!(" `{c}`")).unwrap_or_default();
        match status {
            200 => None,
            201..=299 => Some((reason, format!("HTTP {status} where 200 was expected"))),
            429 => Some((
                reason,
                format!("429{code}: upstream is busy or rate-limiting"),
            )),
            500..=599 => Some((reason, format!("HTTP {status}{code}: server error"))),
            _ => None,
        }
    }
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Network(String),
    #[error("the answer is larger than {0} bytes, more than a real one needs")]
    TooLarge(usize),
    #[error("refused to send: {0}")]
    NotAllowed(String),
}

/// The shared HTTP client: pooled keep-alive connections per host.
pub struct Upstream {
    client: reqwest::Client,
    /// The cap, and each host's semaphore with the permits it was given.
    hosts: Mutex<Hosts>,
    body_limit: usize,
    requests: Option<prometheus::IntCounterVec>,
    sent: std::sync::atomic::AtomicU64,
    /// KiB of answer bodies in flight at most, all requests together
    /// ([`BODY_BUDGET`]).
    budget: Arc<Semaphore>,
}

/// Answer bodies being read hold at most this much memory together: a
/// request reserves its Content-Length (or its endpoint's cap) before
/// reading, and waits (within its timeout) while the budget is taken. Eight
/// full pages of Twilio numbers fit at once.
pub const BODY_BUDGET: usize = 16 * 1024 * 1024;

/// The per-host cap and the semaphores enforcing it.
struct Hosts {
    per_host: usize,
    semaphores: HashMap<String, (Arc<Semaphore>, usize)>,
}

/// The host a `base_url` reaches, as the per-host cap counts it: scheme,
/// host and port after URL parsing (`HTTPS://API.example.com:443/` and
/// `https://api.example.com` are one host). A value that does not parse
/// (refused at load) counts as itself.
pub fn host_key(base_url: &str) -> String {
    match url::Url::parse(base_url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => base_url.to_string(),
    }
}

/// The proxy settings credwatch honours, read from the environment.
///
/// Only https upstreams go through a proxy: `HTTPS_PROXY` (else `ALL_PROXY`,
/// either case), minus the hosts in `NO_PROXY`. The proxy gets a CONNECT and
/// the request travels inside TLS. `HTTP_PROXY` is ignored: a plain-http
/// request through a forward proxy would hand it the secret header in clear,
/// so plain-http upstreams (loopback, or `allow_insecure_http`) are reached
/// directly.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    pub https: Option<String>,
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for ProxyConfig {
    // The proxy URL may hold the proxy's own password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("https", &self.https.as_ref().map(|_| "<set>"))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl ProxyConfig {
    pub fn from_env(env: &dyn Env) -> Self {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env.var(n).filter(|v| !v.trim().is_empty()))
        };
        ProxyConfig {
            https: first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]),
            no_proxy: first(&["NO_PROXY", "no_proxy"]),
        }
    }

    fn apply(&self, builder: reqwest::ClientBuilder) -> anyhow::Result<reqwest::ClientBuilder> {
        // No proxy from reqwest's own reading of the environment, whatever it holds.
        let builder = builder.no_proxy();
        let Some(url) = &self.https else {
            return Ok(builder);
        };
        let proxy = reqwest::Proxy::https(url.as_str())
            .map_err(|_| anyhow::anyhow!("HTTPS_PROXY (or ALL_PROXY) is not a proxy URL"))?
            .no_proxy(
                self.no_proxy
                    .as_deref()
                    .and_then(reqwest::NoProxy::from_string),
            );
        Ok(builder.proxy(proxy))
    }
}

impl Upstream {
    /// `requests` counts every request sent, by provider. Proxy settings come
    /// from the process environment ([`ProxyConfig`]).
    pub fn new(
        per_host: usize,
        requests: Option<prometheus::IntCounterVec>,
    ) -> anyhow::Result<Self> {
        Self::with_env(per_host, requests, &ProcessEnv)
    }

    /// [`Upstream::new`] with the proxy settings read from `env`.
    pub fn with_env(
        per_host: usize,
        requests: Option<prometheus::IntCounterVec>,
        env: &dyn Env,
    ) -> anyhow::Result<Self> {
        install_crypto_provider();
        let builder = reqwest::Client::builder()
            .user_agent(crate::USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(300))
            .pool_max_idle_per_host(per_host.max(1))
            .tcp_keepalive(Duration::from_secs(60));
        let client = ProxyConfig::from_env(env).apply(builder)?.build()?;
        Ok(Upstream {
            client,
            hosts: Mutex::new(Hosts {
                per_host: per_host.max(1),
                semaphores: HashMap::new(),
            }),
            body_limit: BODY_LIMIT,
            requests,
            sent: std::sync::atomic::AtomicU64::new(0),
            budget: Arc::new(Semaphore::new(BODY_BUDGET / 1024)),
        })
    }

    /// Requests sent so far (all providers), for the achieved request rate.
    pub fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn semaphore(&self, base_url: &str) -> Arc<Semaphore> {
        let host = host_key(base_url);
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let per_host = hosts.per_host;
        hosts
            .semaphores
            .entry(host)
            .or_insert_with(|| (Arc::new(Semaphore::new(per_host)), per_host))
            .0
            .clone()
    }

    /// A reloaded `max_concurrent_requests_per_host`: every host's cap
    /// follows (permits in use when it shrinks are retired as they return).
    pub fn set_per_host(&self, per_host: usize) {
        let per_host = per_host.max(1);
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.per_host = per_host;
        for (semaphore, size) in hosts.semaphores.values_mut() {
            if per_host > *size {
                semaphore.add_permits(per_host - *size);
            } else if per_host < *size {
                let retire = *size - per_host;
                let forgotten = semaphore.forget_permits(retire);
                if forgotten < retire {
                    // The rest are in use: a fresh semaphore of the new size
                    // for new requests; those in flight finish on the old one.
                    *semaphore = Arc::new(Semaphore::new(per_host));
                }
            }
            *size = per_host;
        }
    }

    /// GETs `base_url` + `path`. `path` must pass [`check_read_path`].
    pub async fn get(
        &self,
        provider: Provider,
        base_url: &str,
        path: &str,
        auth: Auth<'_>,
        timeout: Duration,
    ) -> Result<Answer, TransportError> {
        let cap = check_read_path(provider, path).map_err(TransportError::NotAllowed)?;
        let limit = self.body_limit.min(cap);
        let url = format!("{base_url}{path}");
        if let Some(counter) = &self.requests {
            counter.with_label_values(&[provider.as_str()]).inc();
        }
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let permits = self.semaphore(base_url);
        let _permit = permits
            .acquire_owned()
            .await
            .map_err(|_| TransportError::Network("client shutting down".into()))?;
        let mut request = self
            .client
            .get(&url)
            .timeout(timeout)
            .header("accept", "application/json");
        let (name, value) = auth_header(auth)?;
        request = request.header(name, value);
        let work = async {
            let mut response = request
                .send()
                .await
                .map_err(|e| transport_error(&e, timeout))?;
            let status = response.status().as_u16();
            let headers = response.headers();
            let content_type = header(headers, "content-type");
            let request_id = provider
                .request_id_headers()
                .iter()
                .find_map(|name| header(headers, name));
            let retry_after = header(headers, "retry-after")
                .and_then(|v| parse_retry_after(&v, SystemTime::now()));
            if response.content_length().is_some_and(|n| n > limit as u64) {
                return Err(TransportError::TooLarge(limit));
            }
            // Room in the budget of every answer in flight, taken at once
            // (all or nothing, so two answers never wait for each other's):
            // Content-Length, or the endpoint's cap when the length is unknown.
            let reserve = response.content_length().map_or(limit, |n| n as usize);
            let _room = self
                .budget
                .clone()
                .acquire_many_owned(reserve.div_ceil(1024).max(1) as u32)
                .await
                .map_err(|_| TransportError::Network("client shutting down".into()))?;
            // Sized from Content-Length when there is one, so it rarely grows.
            let mut body = WipedBuf::with_capacity(
                response
                    .content_length()
                    .map_or(8 * 1024, |n| n as usize)
                    .min(limit),
            );
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| transport_error(&e, timeout))?
            {
                if body.len() + chunk.len() > limit {
                    return Err(TransportError::TooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Answer {
                status,
                content_type,
                body: body.into_bytes(),
                request_id,
                retry_after,
            })
        };
        // reqwest's timeout covers connect to end of body; this one is a backstop.
        match tokio::time::timeout(timeout + Duration::from_millis(50), work).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout(timeout)),
        }
    }
}

/// The authentication header, built in wiped buffers and marked sensitive
/// (hyper then leaves it out of its own debug output and HPACK tables).
/// reqwest's `basic_auth` would format the credentials through plain
/// `String`s that are freed, not wiped.
pub fn auth_header(
    auth: Auth<'_>,
) -> Result<(http::HeaderName, http::HeaderValue), TransportError> {
    let (name, value, what) = match auth {
        Auth::Header {
            name,
            prefix,
            secret,
        } => {
            let mut value = WipedBuf::with_capacity(prefix.len() + secret.len());
            value.extend_from_slice(prefix.as_bytes());
            value.extend_from_slice(secret.expose().as_bytes());
            (http::HeaderName::from_static(name), value, "secret")
        }
        Auth::Basic { user, password } => {
            let mut plain = WipedBuf::with_capacity(user.len() + 1 + password.len());
            plain.extend_from_slice(user.as_bytes());
            plain.extend_from_slice(b":");
            plain.extend_from_slice(password.expose().as_bytes());
            let engine = &base64::engine::general_purpose::STANDARD;
            let encoded = base64::encoded_len(plain.len(), true).unwrap_or(usize::MAX);
            let mut value = WipedBuf::zeroed(b"Basic ".len().saturating_add(encoded));
            value.as_mut_slice()[..6].copy_from_slice(b"Basic ");
            engine
                .encode_slice(plain.as_slice(), &mut value.as_mut_slice()[6..])
                .map_err(|_| TransportError::NotAllowed("the credentials are too long".into()))?;
            (http::header::AUTHORIZATION, value, "secret")
        }
    };
    let mut value = http::HeaderValue::from_maybe_shared(value.into_bytes()).map_err(|_| {
        TransportError::NotAllowed(format!(
            "the {what} contains characters not allowed in a header"
        ))
    })?;
    value.set_sensitive(true);
    Ok((name, value))
}

fn header(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| crate::outcome::clean_to(v, 128))
}

/// Describes a reqwest error without its URL (which is ours, but errors are
/// logged and shown) and without anything of the request.
fn transport_error(e: &reqwest::Error, timeout: Duration) -> TransportError {
    if e.is_timeout() {
        return TransportError::Timeout(timeout);
    }
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the answer"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    if parts.iter().any(|p| p.contains("timed out")) {
        return TransportError::Timeout(timeout);
    }
    let detail = parts.join(": ");
    TransportError::Network(if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    })
}

/// `Retry-After` as seconds or an HTTP date, capped at one hour.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let d = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(d.min(Duration::from_secs(3600)))
}

/// rustls needs one process-wide crypto provider; ring it is.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    const AC: &str = "AC0123456789abcdef0123456789abcdef";

    #[test]
    fn auth_headers_are_sensitive_and_exact() {
        let key = Secret::new("sk_abc");
        let (name, value) = auth_header(Auth::Header {
            name: "xi-api-key",
            prefix: "",
            secret: &key,
        })
        .expect("header");
        assert_eq!(name.as_str(), "xi-api-key");
        assert_eq!(value.as_bytes(), b"sk_abc");
        assert!(value.is_sensitive());
        assert_eq!(format!("{value:?}"), "Sensitive");

        let token = Secret::new("0123456789abcdef0123456789abcdef");
        let (name, value) = auth_header(Auth::Basic {
            user: AC,
            password: &token,
        })
        .expect("header");
        assert_eq!(name, http::header::AUTHORIZATION);
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{AC}:0123456789abcdef0123456789abcdef"))
        );
        assert_eq!(value.as_bytes(), expected.as_bytes());
        assert!(value.is_sensitive());

        // A value that cannot be a header is refused without being repeated.
        let bad = Secret::new("sk_a\nb");
        let Err(TransportError::NotAllowed(why)) = auth_header(Auth::Header {
            name: "xi-api-key",
            prefix: "",
            secret: &bad,
        }) else {
            panic!("accepted a newline");
        };
        assert!(!why.contains("sk_a"), "{why}");
    }

    #[test]
    fn proxy_settings_take_https_and_no_proxy_never_http() {
        let env: HashMap<String, String> = [
            ("HTTP_PROXY", "http://forward:3128"),
            ("http_proxy", "http://forward:3128"),
            ("ALL_PROXY", "http://all:3128"),
            ("NO_PROXY", "internal.example"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let p = ProxyConfig::from_env(&env);
        assert_eq!(p.https.as_deref(), Some("http://all:3128"));
        assert_eq!(p.no_proxy.as_deref(), Some("internal.example"));
        let mut env = env;
        env.insert("https_proxy".into(), "http://user:pw@tunnel:3128".into());
        let p = ProxyConfig::from_env(&env);
        assert_eq!(p.https.as_deref(), Some("http://user:pw@tunnel:3128"));
        assert!(!format!("{p:?}").contains("pw"), "{p:?}");
        let none: HashMap<String, String> =
            [("HTTP_PROXY".to_string(), "http://forward:3128".to_string())].into();
        assert_eq!(ProxyConfig::from_env(&none), ProxyConfig::default());
    }

    #[tokio::test]
    async fn a_reloaded_cap_applies_to_every_host() {
        let up = Upstream::with_env(4, None, &HashMap::<String, String>::new()).expect("client");
        let a = up.semaphore("https://a.example");
        assert_eq!(a.available_permits(), 4);
        up.set_per_host(6);
        assert_eq!(up.semaphore("https://a.example").available_permits(), 6);
        assert_eq!(up.semaphore("https://b.example").available_permits(), 6);
        let held = up
            .semaphore("https://a.example")
            .acquire_owned()
            .await
            .expect("permit");
        up.set_per_host(2);
        assert!(up.semaphore("https://a.example").available_permits() <= 2);
        drop(held);
        assert_eq!(up.semaphore("https://b.example").available_permits(), 2);
    }

    #[test]
    fn one_host_however_base_url_spells_it() {
        let one = host_key("https://api.elevenlabs.io");
        for spelling in [
            "https://API.ElevenLabs.io",
            "https://api.elevenlabs.io/",
            "https://api.elevenlabs.io:443",
            "HTTPS://api.elevenlabs.io:443/",
        ] {
            assert_eq!(host_key(spelling), one, "{spelling}");
        }
        assert_ne!(host_key("http://api.elevenlabs.io"), one);
        assert_ne!(host_key("https://api.elevenlabs.io:8443"), one);
        assert_ne!(host_key("https://api.us.elevenlabs.io"), one);
    }

    #[test]
    fn retry_after_seconds_and_dates_are_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("999999", now),
            Some(Duration::from_secs(3600))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
