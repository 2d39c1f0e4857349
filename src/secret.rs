//! Secrets: the only place a credential's value lives.
//!
//! A [`Secret`] never shows its value through `Debug` or `Display`, zeroes its
//! memory when dropped, and is only readable through [`Secret::expose`], which
//! the upstream clients call when they build a request header. Nothing else
//! should call it; the fingerprint is the safe way to talk about a secret.
//!
//! [`WipedBuf`] holds bytes that carry a secret on their way in or out (a
//! secret file, a header value, an upstream body): every allocation it ever
//! had is zeroed before it is freed, growth included. [`read_secret_file`]
//! reads a file into one. [`disable_core_dumps`] keeps secrets out of core files.

use std::fmt;
use std::io::Read as _;
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize as _, Zeroizing};

/// A credential value (API key, auth token, key secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The value, for building a request header. Never log or format it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Why credwatch will not send this value, if it will not: empty, or a
    /// control character (a line break, a tab, NUL, …), which no header may
    /// carry and no ElevenLabs key or Twilio secret contains. Never names
    /// the value.
    pub fn unsendable(&self) -> Option<&'static str> {
        if self.0.is_empty() {
            Some("is empty")
        } else if self.0.chars().any(char::is_control) {
            Some(
                "contains a line break or another control character, which cannot be sent in an HTTP header",
            )
        } else {
            None
        }
    }

    /// The first 12 hex digits of the SHA-256 of the value: enough to see a
    /// rotation, not enough to learn anything about the secret.
    /// Operators can compute the same with `printf %s "$KEY" | sha256sum | cut -c1-12`.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..6])
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A growable byte buffer whose memory is zeroed before it is freed, also
/// when it grows (a `Vec` would leave the old copy behind in the heap).
#[derive(Default)]
pub struct WipedBuf(Zeroizing<Vec<u8>>);

impl WipedBuf {
    pub fn with_capacity(capacity: usize) -> Self {
        WipedBuf(Zeroizing::new(Vec::with_capacity(capacity)))
    }

    /// `len` zero bytes, to be written through [`WipedBuf::as_mut_slice`].
    pub fn zeroed(len: usize) -> Self {
        WipedBuf(Zeroizing::new(vec![0; len]))
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.0
    }

    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let needed = self.0.len() + data.len();
        if needed > self.0.capacity() {
            let mut next = Vec::with_capacity(needed.max(self.0.capacity() * 2));
            next.extend_from_slice(&self.0);
            // The old allocation is zeroed when it is dropped here.
            self.0 = Zeroizing::new(next);
        }
        self.0.extend_from_slice(data);
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Shared, cheaply cloned bytes over this buffer: zeroed when the last
    /// clone is dropped.
    pub fn into_bytes(self) -> bytes::Bytes {
        bytes::Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for WipedBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WipedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WipedBuf({} bytes)", self.0.len())
    }
}

/// Secret files above this are refused.
pub const SECRET_FILE_LIMIT: usize = 64 * 1024;

/// Reads a secret file (at most `cap` bytes of UTF-8) into wiped memory:
/// [`read_regular_file`] with words for a secret.
pub fn read_secret_file(
    path: &Path,
    cap: usize,
) -> std::io::Result<(Zeroizing<String>, std::fs::Metadata)> {
    read_regular_file(path, cap, "secret")
}

/// The config file is at most this large (4 MiB: a thousand credentials
/// take about 200 KiB).
pub const CONFIG_FILE_LIMIT: usize = 4 * 1024 * 1024;

/// Reads a file credwatch is pointed at (a secret, the config file) into
/// wiped memory: the one hardened reader for every such file. `what` names
/// the file in messages (`secret`, `config file`).
///
/// The file is opened once (non-blocking, so a FIFO cannot hang the open),
/// its type and size are checked on the open handle (no swap between check
/// and read), and at most `cap + 1` bytes are read, so a file that reports a
/// size of 0 (`/proc`, `/sys`) cannot bypass the cap. A file whose content is
/// not the size it reports (a pseudo-file, or one rewritten mid-read) is
/// refused. Returns the text and the handle's metadata (for the mode check).
/// Errors name neither the path (the caller does) nor any content.
/// Symlinks are followed, and the type checked is the target's (a symlink
/// to `/dev/zero` is a device). The read is synchronous: callers on the
/// async runtime run it on a blocking thread.
pub fn read_regular_file(
    path: &Path,
    cap: usize,
    what: &str,
) -> std::io::Result<(Zeroizing<String>, std::fs::Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let mut file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(format!(
            "not a regular file (a directory, FIFO, socket or device, or a symlink to one); the {what} must be a regular file"
        )));
    }
    let too_large =
        || std::io::Error::other(format!("larger than {cap} bytes; is this really a {what}?"));
    if meta.len() > cap as u64 {
        return Err(too_large());
    }
    // Exactly `cap + 1` bytes, allocated once: reads never reallocate.
    let mut buf = Zeroizing::new(vec![0u8; cap + 1]);
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if n > cap {
        return Err(too_large());
    }
    if n as u64 != meta.len() {
        return Err(std::io::Error::other(format!(
            "its size is {} bytes but {} could be read: a pseudo-file (such as /proc or /sys) or a file being rewritten, not a {what}",
            meta.len(),
            if n == 0 {
                "none".to_string()
            } else {
                format!("{n}")
            }
        )));
    }
    buf.truncate(n);
    match String::from_utf8(std::mem::take(&mut *buf)) {
        Ok(text) => Ok((Zeroizing::new(text), meta)),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(std::io::Error::other("not UTF-8 text"))
        }
    }
}

/// Sets the core-file size limit to 0 (soft and hard), so a crash cannot
/// write the process memory, secrets included, to disk. Called first thing
/// at start.
pub fn disable_core_dumps() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        rlimit::setrlimit(rlimit::Resource::CORE, 0, 0)
    }
    #[cfg(not(unix))]
    {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("sk_live_supersecret");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(<redacted>)");
    }

    #[test]
    fn fingerprint_is_a_short_sha256_prefix() {
        // echo -n abc | sha256sum → ba7816bf8f01cfea414140de5dae2223...
        assert_eq!(Secret::new("abc").fingerprint(), "ba7816bf8f01");
        assert_ne!(
            Secret::new("abd").fingerprint(),
            Secret::new("abc").fingerprint()
        );
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "credwatch-secret-{tag}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_secret_file_is_read_whole_within_the_cap() {
        let dir = temp_dir("ok");
        let path = dir.join("key");
        std::fs::write(&path, "sk_abc\n").expect("write");
        let (text, meta) = read_secret_file(&path, 16).expect("read");
        assert_eq!(text.as_str(), "sk_abc\n");
        assert_eq!(meta.len(), 7);
        // Exactly at the cap is fine, one byte more is not.
        std::fs::write(&path, "0123456789abcdef").expect("write");
        assert!(read_secret_file(&path, 16).is_ok());
        std::fs::write(&path, "0123456789abcdef!").expect("write");
        let e = read_secret_file(&path, 16).expect_err("too large");
        assert!(e.to_string().contains("larger than 16 bytes"), "{e}");
        std::fs::write(&path, [0xff, 0xfe]).expect("write");
        let e = read_secret_file(&path, 16).expect_err("not UTF-8");
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `/proc` files report a size of 0 and have content: the size check on
    /// the metadata alone let them through, uncapped.
    #[cfg(target_os = "linux")]
    #[test]
    fn proc_files_cannot_bypass_the_cap_and_are_refused() {
        let path = Path::new("/proc/self/status");
        assert_eq!(std::fs::metadata(path).expect("stat").len(), 0);
        // With a cap smaller than its content: reading stops at cap + 1.
        let e = read_secret_file(path, 8).expect_err("larger than the cap");
        assert!(e.to_string().contains("larger than 8 bytes"), "{e}");
        // Within the cap: still not a secret file.
        let e = read_secret_file(path, SECRET_FILE_LIMIT).expect_err("pseudo-file");
        assert!(e.to_string().contains("pseudo-file"), "{e}");
    }

    /// Opening a FIFO for reading blocks until a writer comes; the open is
    /// non-blocking, and a FIFO is refused.
    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = temp_dir("fifo");
        let path = dir.join("key");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || {
            let _ = tx.send(read_secret_file(&p, SECRET_FILE_LIMIT).map(|_| ()));
        });
        // A hang guard, not a timing assertion: an open that blocks never returns.
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("reading a FIFO must not block");
        let e = result.expect_err("a FIFO is not a secret file");
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_wiped_buffer_grows_and_keeps_its_content() {
        let mut b = WipedBuf::with_capacity(2);
        for chunk in [&b"ab"[..], b"cdef", b"", b"ghijklmnop"] {
            b.extend_from_slice(chunk);
        }
        assert_eq!(b.as_slice(), b"abcdefghijklmnop");
        assert!(b.capacity() >= 16);
        let bytes = b.into_bytes();
        let copy = bytes.clone();
        assert_eq!(&copy[..], b"abcdefghijklmnop");
        assert_eq!(
            format!("{:?}", WipedBuf::with_capacity(1)),
            "WipedBuf(0 bytes)"
        );
    }

    /// The start-up call leaves a core-file limit of 0, soft and hard.
    #[cfg(target_os = "linux")]
    #[test]
    fn core_dumps_are_disabled() {
        let (_, hard) = rlimit::getrlimit(rlimit::Resource::CORE).expect("getrlimit");
        if hard > 0 {
            // Make the test able to fail: start from a non-zero soft limit.
            rlimit::setrlimit(rlimit::Resource::CORE, hard.min(1 << 20), hard)
                .expect("raise the soft limit");
        }
        disable_core_dumps().expect("setrlimit");
        let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .expect("core line");
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[4..6], ["0", "0"], "{line}");
    }
}
