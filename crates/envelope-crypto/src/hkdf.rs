//! HKDF (RFC 5869) with SHA-256, SHA-384 or SHA-512.

use std::fmt;

use crate::digest::HashAlgorithm;
use crate::{CryptoError, backend};

/// The HKDF pseudorandom key, from which several outputs can be expanded.
pub struct Prk {
    inner: backend::Prk,
}

impl Prk {
    /// HKDF-Extract. An empty `salt` is equivalent to `hash_len` zero bytes (RFC 5869 "no salt").
    pub fn extract(hash: HashAlgorithm, salt: &[u8], ikm: &[u8]) -> Self {
        Self {
            inner: backend::Prk::extract(hash, salt, ikm),
        }
    }

    /// HKDF-Expand into `out` with `info` formed by concatenating the given parts.
    pub fn expand(&self, info: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        self.inner.expand(info, out)
    }
}

impl fmt::Debug for Prk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Prk([REDACTED])")
    }
}

/// HKDF-Extract then HKDF-Expand into `out`.
pub fn hkdf(
    hash: HashAlgorithm,
    salt: &[u8],
    ikm: &[u8],
    info: &[&[u8]],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    Prk::extract(hash, salt, ikm).expand(info, out)
}
