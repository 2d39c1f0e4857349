//! Connection-level defences: a cap per client address, the password
//! gate (bcrypt off the runtime, successes cached, failures limited per
//! address), and read/write/idle deadlines on every connection.

#[allow(unused_imports)]
use super::*;

/// The key client addresses are counted under: IPv4 addresses as they are
/// (IPv4-mapped IPv6 included), IPv6 addresses by /64, the smallest block a
/// client usually holds.
pub(super) fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// Connections held per client address.
#[derive(Default)]
pub(super) struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

/// One connection counted against its address; uncounted on drop.
pub(super) struct Held(Arc<PerAddress>, IpAddr);

impl PerAddress {
    pub(super) fn hold(self: &Arc<Self>, key: IpAddr, max: usize) -> Option<Held> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Held(self.clone(), key))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = (self.0).0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.1);
            }
        }
    }
}

/// Keeps bcrypt off the runtime and guessing in check: a few checks at a
/// time, and a failure allowance per client address (a token bucket).
pub(super) struct AuthGate {
    pub(super) permits: Arc<Semaphore>,
    pub(super) failures: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    pub(super) burst: f64,
    pub(super) refill: Duration,
}

/// Client addresses whose failures are remembered, at most.
pub(super) const FAILURE_TABLE: usize = 10_000;

impl AuthGate {
    pub(super) fn new(limits: &Limits) -> Self {
        AuthGate {
            permits: Arc::new(Semaphore::new(limits.auth_concurrency.max(1))),
            failures: Mutex::new(HashMap::new()),
            burst: f64::from(limits.auth_failure_burst),
            refill: limits.auth_failure_refill.max(Duration::from_millis(1)),
        }
    }

    pub(super) fn tokens(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() / self.refill.as_secs_f64()).min(self.burst)
    }

    /// `Err(retry after)` when this address has no failures left to spend.
    pub(super) fn allowed(&self, key: IpAddr) -> Result<(), Duration> {
        if self.burst == 0.0 {
            return Ok(());
        }
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(bucket) = map.get(&key) else {
            return Ok(());
        };
        let tokens = self.tokens(*bucket, Instant::now());
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.refill.mul_f64(1.0 - tokens))
        }
    }

    pub(super) fn failed(&self, key: IpAddr) {
        if self.burst == 0.0 {
            return;
        }
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= FAILURE_TABLE && !map.contains_key(&key) {
            // Forget addresses whose allowance is whole again.
            let burst = self.burst;
            map.retain(|_, b| self.tokens(*b, now) < burst);
            if map.len() >= FAILURE_TABLE {
                return;
            }
        }
        let bucket = map.entry(key).or_insert((self.burst, now));
        *bucket = ((self.tokens(*bucket, now) - 1.0).max(0.0), now);
    }
}

/// A connection's socket with a write deadline and an idle deadline.
pub(super) struct Deadlines<S> {
    pub(super) io: S,
    pub(super) write_timeout: Duration,
    pub(super) idle_timeout: Duration,
    /// Set at the first write the client does not take at once; cleared
    /// when everything written has been handed over (a completed flush).
    pub(super) write_by: Option<Instant>,
    pub(super) last_progress: Instant,
    pub(super) timer: Pin<Box<Sleep>>,
}

impl<S> Deadlines<S> {
    pub(super) fn new(io: S, limits: &Limits) -> Self {
        let now = Instant::now();
        Deadlines {
            io,
            write_timeout: limits.write_timeout,
            idle_timeout: limits.idle_timeout,
            write_by: None,
            last_progress: now,
            timer: Box::pin(tokio::time::sleep_until(now + limits.idle_timeout)),
        }
    }

    /// On a pending read or write: the error that closes the connection if a
    /// deadline has passed; otherwise arms the timer to wake the task.
    pub(super) fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let idle_at = self.last_progress + self.idle_timeout;
        let deadline = self.write_by.map_or(idle_at, |w| w.min(idle_at));
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            return None;
        }
        let what = if self.write_by.is_some_and(|w| w <= Instant::now()) {
            "the client did not read the response within the write deadline"
        } else {
            "the connection was idle past the idle deadline"
        };
        tracing::debug!("closing a connection: {what}");
        Some(io::Error::new(io::ErrorKind::TimedOut, what))
    }

    pub(super) fn blocked<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.write_by.is_none() {
            self.write_by = Some(Instant::now() + self.write_timeout);
        }
        match self.expired(cx) {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        }
    }

    pub(super) fn wrote(
        &mut self,
        r: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.last_progress = Instant::now();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self.blocked(cx),
            other => other,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.last_progress = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.expired(cx) {
                Some(e) => Poll::Ready(Err(e)),
                None => Poll::Pending,
            },
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(r, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                this.write_by = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.blocked(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.blocked(cx),
            other => other,
        }
    }
}
