//! Secrets: the only place a credential's value lives.
//!
//! A [`Secret`] never shows its value through `Debug` or `Display`, zeroes its
//! memory when dropped, and is only readable through [`Secret::expose`], which
//! the upstream clients call when they build a request header. Nothing else
//! should call it; the fingerprint is the safe way to talk about a secret.

use std::fmt;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

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
}
