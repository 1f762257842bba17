//! AES-GCM with 12-byte IVs and 16-byte tags, for 128-, 192- and 256-bit keys.

use std::fmt;

use zeroize::Zeroize;

use crate::{CryptoError, backend};

/// AES-GCM IV length.
pub const IV_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;

/// An AES-GCM key, ready to seal and open.
///
/// The key length picks the variant: 16, 24 or 32 bytes. Opening never leaves unauthenticated
/// plaintext behind: on a tag mismatch the output buffer is wiped before the error is returned.
pub struct AeadKey {
    inner: backend::AeadKey,
}

impl AeadKey {
    /// Set up a key of 16, 24 or 32 bytes.
    pub fn new(key: &[u8]) -> Result<Self, CryptoError> {
        if !matches!(key.len(), 16 | 24 | 32) {
            return Err(CryptoError::InvalidKeyLength {
                expected: "16, 24 or 32",
                found: key.len(),
            });
        }
        Ok(Self {
            inner: backend::AeadKey::new(key)?,
        })
    }

    /// Encrypt `in_out` in place and return the tag.
    pub fn seal_in_place(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], CryptoError> {
        self.inner.seal_in_place(iv, aad, in_out)
    }

    /// Encrypt `plaintext` into `out`, which must be exactly `plaintext.len() + TAG_LEN` long and
    /// receives the ciphertext followed by the tag.
    pub fn seal_to(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if out.len() != plaintext.len() + TAG_LEN {
            return Err(CryptoError::Backend(
                "seal output must be plaintext length + 16",
            ));
        }
        self.inner.seal_to(iv, aad, plaintext, out)
    }

    /// Decrypt `in_out` in place if `tag` verifies; otherwise wipe it and fail.
    pub fn open_in_place(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), CryptoError> {
        let result = self.inner.open_in_place(iv, aad, in_out, tag);
        if result.is_err() {
            in_out.zeroize();
        }
        result
    }

    /// Decrypt `ciphertext` into `out` (same length) if `tag` verifies; otherwise wipe `out` and fail.
    pub fn open_to(
        &self,
        iv: &[u8; IV_LEN],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; TAG_LEN],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        if out.len() != ciphertext.len() {
            return Err(CryptoError::Backend(
                "open output must be ciphertext length",
            ));
        }
        let result = self.inner.open_to(iv, aad, ciphertext, tag, out);
        if result.is_err() {
            out.zeroize();
        }
        result
    }
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AeadKey([REDACTED])")
    }
}
