//! `--web.config.file`: TLS, mutual TLS, basic auth and extra response
//! headers for credwatch's own server, in the YAML format of Prometheus'
//! exporter-toolkit (`docs/web-configuration.md`), so existing tooling and
//! habits carry over.
//!
//! The file and the files it names are re-read when they change (checked at
//! most once a second, on new connections and requests), so rotated
//! certificates are picked up without a restart. A broken new version is
//! logged and the last good one keeps serving, and so is a new version that
//! would change the security mode (TLS, client certificates, basic auth on or
//! off): that needs a restart, so a truncated file (a non-atomic editor
//! write) can never switch protection off. Settings credwatch cannot honour
//! are refused at load, never silently ignored.
//!
//! Basic-auth users are looked up per request, not per connection. bcrypt is
//! slow on purpose, so [`WebConfig::credentials`] only parses and consults
//! the cache of successful checks; the caller runs
//! [`Verification::run`] off the async runtime (see `server`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

mod load;

use load::modified;
pub use load::{PEM_FILE_LIMIT, load};

/// The security mode of a web config: what a re-read may not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub tls: bool,
    /// `client_auth_type` (`NoClientCert` without TLS).
    pub client_auth: &'static str,
    pub basic_auth: bool,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TLS {}, client certificates {}, basic auth {}",
            if self.tls { "on" } else { "off" },
            self.client_auth,
            if self.basic_auth { "on" } else { "off" }
        )
    }
}

/// One loaded, validated version of the file.
#[derive(Clone)]
pub struct Loaded {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// user → bcrypt hash.
    pub users: HashMap<String, String>,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub mode: Mode,
    /// The configured hash of the highest cost: unknown users are checked
    /// against it (and always refused), so they cost what known ones do.
    dummy: Option<String>,
    files: Vec<(PathBuf, Option<SystemTime>)>,
}

/// Successful checks remembered, at most this many (only successes are
/// cached, so guessing cannot evict them).
const CACHE_CAPACITY: usize = 1024;

/// The web config, re-read on change.
pub struct WebConfig {
    path: PathBuf,
    current: Mutex<(Arc<Loaded>, Instant)>,
    /// Held by the one re-read in progress (on a blocking thread).
    rereading: Mutex<()>,
    /// Successful (user, digest of hash and password) checks, with when
    /// they were last used, so bcrypt runs once per good password.
    verified: Mutex<HashMap<(String, [u8; 32]), Instant>>,
    /// Whether the last re-read was applied, and when one last was.
    status: Mutex<(bool, Option<SystemTime>)>,
}

/// What an `Authorization` header amounts to, before any bcrypt work.
pub enum Credentials {
    /// No `basic_auth_users`: nothing to check.
    NotRequired,
    /// No usable Basic credentials in the request.
    Missing,
    /// This user and password were verified before.
    Cached,
    /// A bcrypt check is needed; run it off the async runtime.
    Verify(Verification),
}

/// One pending bcrypt check.
pub struct Verification {
    password: zeroize::Zeroizing<String>,
    hash: String,
    /// `None` for an unknown user: checked against the dummy, always refused.
    key: Option<(String, [u8; 32])>,
}

impl Verification {
    /// The bcrypt check (slow by design: call it on a blocking thread).
    pub fn run(&self) -> bool {
        let ok = bcrypt::verify(self.password.as_bytes(), &self.hash).unwrap_or(false);
        ok && self.key.is_some()
    }
}

impl WebConfig {
    /// Loads the file; an error here is a startup error.
    pub fn new(path: &Path) -> Result<WebConfig, String> {
        let loaded = load(path)?;
        Ok(WebConfig {
            path: path.to_path_buf(),
            current: Mutex::new((Arc::new(loaded), Instant::now())),
            rereading: Mutex::new(()),
            verified: Mutex::new(HashMap::new()),
            status: Mutex::new((true, Some(SystemTime::now()))),
        })
    }

    /// The version in use, as last read (no file is looked at).
    pub fn current(&self) -> Arc<Loaded> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// The version in use, re-read first if any of its files changed (looked
    /// at most once a second). The files are looked at and read on a
    /// blocking thread, never on the runtime's: a hung mount must not stall
    /// the server.
    pub async fn fresh(self: &Arc<Self>) -> Arc<Loaded> {
        let due = {
            let mut guard = self.current.lock().unwrap_or_else(|p| p.into_inner());
            let due = guard.1.elapsed() >= std::time::Duration::from_secs(1);
            if due {
                guard.1 = Instant::now();
            }
            due
        };
        if due {
            let web = Arc::clone(self);
            // A failed task leaves the version in use.
            let _ = tokio::task::spawn_blocking(move || web.reread()).await;
        }
        self.current()
    }

    /// Re-reads the files if any changed (blocking: file system calls).
    fn reread(&self) {
        let _one = self.rereading.lock().unwrap_or_else(|p| p.into_inner());
        let old = self.current();
        if !old.files.iter().any(|(p, m)| modified(p) != *m) {
            return;
        }
        let refused = match load(&self.path) {
            Ok(new) if new.mode != old.mode => Some(format!(
                "{}: the new version changes the security mode from ({}) to ({}); \
                 that needs a restart",
                self.path.display(),
                old.mode,
                new.mode
            )),
            Ok(new) => {
                tracing::info!(file = %self.path.display(), "web config reloaded");
                self.current.lock().unwrap_or_else(|p| p.into_inner()).0 = Arc::new(new);
                self.set_status(true);
                None
            }
            Err(e) => Some(e),
        };
        if let Some(why) = refused {
            tracing::error!("web config changed but was refused, keeping the previous one: {why}");
            self.set_status(false);
            // Don't retry until the files change again.
            let mut kept = (*old).clone();
            kept.files = kept
                .files
                .iter()
                .map(|(p, _)| (p.clone(), modified(p)))
                .collect();
            self.current.lock().unwrap_or_else(|p| p.into_inner()).0 = Arc::new(kept);
        }
    }

    fn set_status(&self, ok: bool) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = ok;
        if ok {
            s.1 = Some(SystemTime::now());
        }
    }

    /// Whether the last re-read was applied, and when one last was (the
    /// initial load counts).
    pub fn last_reload(&self) -> (bool, Option<SystemTime>) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads an `Authorization` header against `basic_auth_users`, without
    /// running bcrypt.
    pub fn credentials(
        &self,
        loaded: &Loaded,
        authorization: Option<&http::HeaderValue>,
    ) -> Credentials {
        if loaded.users.is_empty() {
            return Credentials::NotRequired;
        }
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Credentials::Missing;
        };
        let Some(hash) = loaded.users.get(&user) else {
            // Checked against the costliest configured hash, so a name
            // cannot be told from a known one by timing.
            return match &loaded.dummy {
                Some(dummy) => Credentials::Verify(Verification {
                    password,
                    hash: dummy.clone(),
                    key: None,
                }),
                None => Credentials::Missing,
            };
        };
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(hash.as_bytes());
        hasher.update([0]);
        hasher.update(password.as_bytes());
        let key = (user, hasher.finalize().into());
        if let Some(used) = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&key)
        {
            *used = Instant::now();
            return Credentials::Cached;
        }
        Credentials::Verify(Verification {
            password,
            hash: hash.clone(),
            key: Some(key),
        })
    }

    /// Remembers a successful check. Only successes are kept: a full cache
    /// drops its least recently used entry, never because of a failure.
    pub fn remember(&self, verification: Verification) {
        let Some(key) = verification.key else {
            return;
        };
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY && !cache.contains_key(&key) {
            let oldest = cache
                .iter()
                .min_by_key(|(_, used)| **used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, Instant::now());
    }

    /// The whole check, bcrypt included, on this thread (for tests and tools).
    pub fn authorized_blocking(
        &self,
        loaded: &Loaded,
        authorization: Option<&http::HeaderValue>,
    ) -> bool {
        match self.credentials(loaded, authorization) {
            Credentials::NotRequired | Credentials::Cached => true,
            Credentials::Missing => false,
            Credentials::Verify(v) => {
                let ok = v.run();
                if ok {
                    self.remember(v);
                }
                ok
            }
        }
    }
}

fn parse_basic(value: &http::HeaderValue) -> Option<(String, zeroize::Zeroizing<String>)> {
    let text = value.to_str().ok()?;
    let encoded = text
        .strip_prefix("Basic ")
        .or_else(|| text.strip_prefix("basic "))?;
    use base64::Engine as _;
    let encoded = encoded.trim();
    if encoded.len() > 4096 {
        return None;
    }
    let decoded = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?,
    );
    let text = std::str::from_utf8(&decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((
        user.to_string(),
        zeroize::Zeroizing::new(password.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::load::bcrypt_cost;
    use super::*;

    #[test]
    fn basic_credentials_are_parsed() {
        let v = |s: &str| http::HeaderValue::from_str(s).expect("header");
        let (user, password) = parse_basic(&v("Basic dXNlcjpwYXNz")).expect("parsed");
        assert_eq!((user.as_str(), password.as_str()), ("user", "pass"));
        assert!(parse_basic(&v("Basic not base64!")).is_none());
        assert!(parse_basic(&v("Bearer dXNlcjpwYXNz")).is_none());
        assert!(
            parse_basic(&v("Basic dXNlcg==")).is_none(),
            "no colon, no password"
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn basic(user: &str, password: &str) -> http::HeaderValue {
        use base64::Engine as _;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        http::HeaderValue::from_str(&format!("Basic {encoded}")).expect("header")
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("credwatch-web-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn failures_are_never_cached_so_guessing_cannot_evict_a_good_password() {
        let dir = scratch("cache");
        let hash = bcrypt::hash("right", 4).expect("hash");
        let p = write(
            &dir,
            "w.yml",
            &format!("basic_auth_users:\n  alice: \"{hash}\"\n"),
        );
        let web = WebConfig::new(&p).expect("web config");
        let loaded = web.current();
        assert!(web.authorized_blocking(&loaded, Some(&basic("alice", "right"))));
        assert!(matches!(
            web.credentials(&loaded, Some(&basic("alice", "right"))),
            Credentials::Cached
        ));
        // More failures than the cache holds, for a known and an unknown user.
        for i in 0..(CACHE_CAPACITY + 10) {
            let user = if i % 2 == 0 { "alice" } else { "mallory" };
            let Credentials::Verify(v) =
                web.credentials(&loaded, Some(&basic(user, &format!("guess{i}"))))
            else {
                panic!("a wrong password must need a real check");
            };
            assert!(!v.run());
        }
        assert!(
            matches!(
                web.credentials(&loaded, Some(&basic("alice", "right"))),
                Credentials::Cached
            ),
            "the good password is still cached"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_users_are_checked_against_the_costliest_hash_and_always_refused() {
        let dir = scratch("dummy");
        let cheap = bcrypt::hash("a", 4).expect("hash");
        let costly = bcrypt::hash("b", 6).expect("hash");
        let p = write(
            &dir,
            "w.yml",
            &format!("basic_auth_users:\n  a: \"{cheap}\"\n  b: \"{costly}\"\n"),
        );
        let web = WebConfig::new(&p).expect("web config");
        let loaded = web.current();
        let Credentials::Verify(v) = web.credentials(&loaded, Some(&basic("nobody", "b"))) else {
            panic!("an unknown user costs a real check");
        };
        assert_eq!(bcrypt_cost(&v.hash), 6);
        assert!(!v.run(), "even with the password of the costliest user");
        assert!(matches!(
            web.credentials(&loaded, None),
            Credentials::Missing
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unsupported_and_unknown_settings_are_refused_not_ignored() {
        let dir = std::env::temp_dir().join(format!("credwatch-web-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = write(
            &dir,
            "a.yml",
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_allowed_sans: [x]\n",
        );
        assert!(
            load(&p)
                .err()
                .is_some_and(|e| e.contains("client_allowed_sans: not supported"))
        );
        let p = write(&dir, "b.yml", "basic_auth_users:\n  alice: plaintext\n");
        assert!(
            load(&p)
                .err()
                .is_some_and(|e| e.contains("not a bcrypt hash"))
        );
        let p = write(
            &dir,
            "c.yml",
            "http_server_config:\n  headers:\n    Set-Cookie: x\n",
        );
        assert!(load(&p).err().is_some_and(|e| e.contains("not allowed")));
        let p = write(&dir, "d.yml", "tls_server_confg: {}\n");
        assert!(load(&p).err().is_some_and(|e| e.contains("unknown field")));
        let p = write(&dir, "e.yml", "");
        assert!(load(&p).is_ok(), "an empty file means no TLS and no auth");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
