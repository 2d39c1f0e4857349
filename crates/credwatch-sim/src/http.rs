//! Transport plumbing shared by both fake upstreams: the HTTP server loop, the
//! response body type (which can stream, trickle or break on purpose), the
//! prepared [`Reply`] every handler returns, and small parsing helpers
//! (query strings, Basic auth) written here so the simulator needs no extra
//! dependencies.
//!
//! Nothing in this module may panic on request input: every parser returns
//! `Option` and the handlers turn `None` into the upstream's realistic error.

use std::borrow::Cow;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Sleep;

/// A response prepared by an upstream handler, before any delivery fault
/// (trickle, truncation, …) is applied.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", content_type.to_owned())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: Vec<u8>) -> Reply {
        Reply::new(status, "application/json", body)
    }

    /// Serialises `value`; serialising our own model types cannot fail, but
    /// if it ever did the simulator answers a plain 500 instead of panicking.
    pub fn json_of<T: serde::Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::json(status, body),
            Err(_) => Reply::new(500, "text/plain", "simulator: serialisation failed"),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How the body of a [`Reply`] reaches the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// The whole body at once.
    Normal,
    /// Read the request, then never answer.
    Hang,
    /// Status and headers, then one body byte per second.
    Trickle,
    /// Status, headers and the first half of the body, then the connection
    /// is dropped.
    ResetMidBody,
    /// A `200` whose body is `bytes` long and generated on the fly.
    Oversized(usize),
    /// A `200` JSON array of zeros, about `bytes` long, generated on the fly
    /// and sent chunked (no Content-Length).
    Hostile(usize),
}

/// The body type of every simulator response.
pub(crate) enum SimBody {
    Full(Option<Bytes>),
    /// `remaining` bytes: first `prefix`, then `chunk` repeated.
    Generated {
        prefix: Option<Bytes>,
        chunk: Bytes,
        remaining: usize,
        /// Sent after `remaining` reaches 0.
        suffix: Option<Bytes>,
        /// Whether the length is announced (Content-Length).
        declared: bool,
    },
    Trickle {
        data: Bytes,
        pos: usize,
        sleep: Pin<Box<Sleep>>,
    },
    /// Sends `data`, waits a moment so it is flushed, then fails so hyper
    /// drops the connection with the declared length unmet.
    FailAfter {
        data: Option<Bytes>,
        declared: u64,
        sleep: Pin<Box<Sleep>>,
    },
}

impl SimBody {
    pub fn full(bytes: Bytes) -> SimBody {
        SimBody::Full(Some(bytes))
    }
}

/// 64 KiB of filler for oversized bodies; shared, never copied.
static FILLER: [u8; 65536] = [b'a'; 65536];

/// `0,0,0,…` for hostile arrays: the smallest JSON values, the most of them.
static ZEROS: [u8; 65536] = {
    let mut a = [b'0'; 65536];
    let mut i = 1;
    while i < a.len() {
        a[i] = b',';
        i += 2;
    }
    a
};

impl Body for SimBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            SimBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            SimBody::Generated {
                prefix,
                chunk,
                remaining,
                suffix,
                ..
            } => {
                if *remaining == 0 {
                    return Poll::Ready(suffix.take().map(|s| Ok(Frame::data(s))));
                }
                let mut next = match prefix.take() {
                    Some(p) => p,
                    None => chunk.clone(),
                };
                if next.len() > *remaining {
                    next.truncate(*remaining);
                }
                *remaining -= next.len();
                Poll::Ready(Some(Ok(Frame::data(next))))
            }
            SimBody::Trickle { data, pos, sleep } => {
                if *pos >= data.len() {
                    return Poll::Ready(None);
                }
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let byte = data.slice(*pos..*pos + 1);
                *pos += 1;
                let next = tokio::time::Instant::now() + Duration::from_secs(1);
                sleep.as_mut().reset(next);
                Poll::Ready(Some(Ok(Frame::data(byte))))
            }
            SimBody::FailAfter { data, sleep, .. } => {
                if let Some(d) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionReset,
                        "simulator: reset mid-body",
                    )))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            SimBody::Full(d) => d.is_none(),
            SimBody::Generated {
                remaining, suffix, ..
            } => *remaining == 0 && suffix.is_none(),
            SimBody::Trickle { data, pos, .. } => *pos >= data.len(),
            SimBody::FailAfter { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(d) => SizeHint::with_exact(d.as_ref().map_or(0, |b| b.len() as u64)),
            SimBody::Generated {
                remaining,
                suffix,
                declared: true,
                ..
            } => SizeHint::with_exact((*remaining + suffix.as_ref().map_or(0, Bytes::len)) as u64),
            SimBody::Generated { .. } => SizeHint::default(),
            SimBody::Trickle { data, pos, .. } => {
                SizeHint::with_exact((data.len().saturating_sub(*pos)) as u64)
            }
            SimBody::FailAfter { declared, .. } => SizeHint::with_exact(*declared),
        }
    }
}

/// Either a response to send, or "never answer".
pub(crate) enum Outcome {
    Respond(Box<Response<SimBody>>),
    Hang,
}

/// Turns a prepared reply into a hyper response, delivered as asked.
pub(crate) fn deliver(reply: Reply, delivery: &Delivery) -> Outcome {
    let Reply {
        status,
        headers,
        body,
    } = reply;
    let body = match delivery {
        Delivery::Hang => return Outcome::Hang,
        Delivery::Normal => SimBody::full(body),
        Delivery::Trickle => SimBody::Trickle {
            data: body,
            pos: 0,
            // The first byte goes out after one second, like the rest.
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(1))),
        },
        Delivery::ResetMidBody => {
            let declared = body.len().max(2) as u64;
            let half = body.slice(..body.len() / 2);
            SimBody::FailAfter {
                data: Some(half),
                declared,
                sleep: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
            }
        }
        Delivery::Oversized(bytes) => SimBody::Generated {
            prefix: Some(Bytes::from_static(b"{\"padding\":\"")),
            chunk: Bytes::from_static(&FILLER),
            remaining: *bytes,
            suffix: None,
            declared: true,
        },
        Delivery::Hostile(bytes) => SimBody::Generated {
            prefix: Some(Bytes::from_static(b"[")),
            chunk: Bytes::from_static(&ZEROS),
            // `[` and an even count of `0,`, so the suffix follows a comma.
            remaining: 1 + (bytes.saturating_sub(3) & !1),
            suffix: Some(Bytes::from_static(b"0]")),
            declared: false,
        },
    };
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = response.headers_mut();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::try_from(value) {
            map.append(HeaderName::from_static(name), value);
        }
    }
    Outcome::Respond(Box::new(response))
}

/// Accepts connections until the task is aborted. Dropping the task drops
/// the `JoinSet`, which aborts every connection (including hanging ones).
pub(crate) async fn serve<F, Fut>(
    listener: TcpListener,
    handler: Arc<F>,
    accepted: Arc<std::sync::atomic::AtomicU64>,
) where
    F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<SimBody>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::debug!(%err, "simulator: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let fut = handler(req);
                async move { Ok::<_, Infallible>(fut.await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = conn.await {
                tracing::trace!(%err, "simulator: connection ended with an error");
            }
        });
    }
}

/// Value of `name` in a query string, percent-decoded (`+` is a space;
/// invalid escapes are kept literally, invalid UTF-8 is replaced, as
/// lenient servers do). The first occurrence wins.
pub(crate) fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    url::form_urlencoded::parse(query?.as_bytes()).find_map(|(k, v)| (k == name).then_some(v))
}

/// Percent-encodes a query value (`application/x-www-form-urlencoded`).
pub(crate) fn query_value(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Standard base64 (with or without padding), for `Authorization: Basic`.
pub(crate) fn base64_decode(input: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(input).ok()
}

/// `prefix` followed by 32 random lowercase hex digits.
pub(crate) fn random_hex_id(prefix: &str) -> String {
    format!("{prefix}{:032x}", fastrand::u128(..))
}

/// 20 random alphanumerics, the shape of ElevenLabs ids such as `request-id`.
pub(crate) fn random_alnum(len: usize) -> String {
    (0..len).map(|_| fastrand::alphanumeric()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_decode() {
        let q = Some("a=1&PhoneNumber=%2B1415&x=hello+world&bad=%zz");
        assert_eq!(query_param(q, "a").as_deref(), Some("1"));
        assert_eq!(query_param(q, "PhoneNumber").as_deref(), Some("+1415"));
        assert_eq!(query_param(q, "x").as_deref(), Some("hello world"));
        assert_eq!(query_param(q, "bad").as_deref(), Some("%zz"));
        assert_eq!(query_param(q, "missing"), None);
        let q = Some("a=%&b=%4&c=%41");
        assert_eq!(query_param(q, "a").as_deref(), Some("%"));
        assert_eq!(query_param(q, "b").as_deref(), Some("%4"));
        assert_eq!(query_param(q, "c").as_deref(), Some("A"));
        assert_eq!(query_value("+1 415"), "%2B1+415");
    }

    #[test]
    fn base64_roundtrip() {
        assert_eq!(
            base64_decode("dXNlcjpwYXNz").as_deref(),
            Some(&b"user:pass"[..])
        );
        assert_eq!(base64_decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(base64_decode("!!"), None);
    }
}
