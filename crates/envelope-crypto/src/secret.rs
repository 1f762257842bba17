//! Secret byte strings: zeroized on drop, never printed, compared only in constant time.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Secret bytes (a data key, a wrapping key, a derived key).
///
/// The bytes are wiped when the value is dropped, `Debug` prints only the length, and there is no
/// `PartialEq`: compare with [`SecretBytes::ct_eq`], which runs in constant time. Reading the bytes
/// takes an explicit [`SecretBytes::expose_secret`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Take ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copy secret bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// `len` bytes from the system CSPRNG.
    pub fn random(len: usize) -> Result<Self, crate::CryptoError> {
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        crate::rand::fill_random(&mut bytes)?;
        Ok(Self(std::mem::take(&mut *bytes)))
    }

    /// `len` zero bytes, to be filled in place through [`SecretBytes::expose_secret_mut`].
    pub fn zeroed(len: usize) -> Self {
        Self(vec![0u8; len])
    }

    /// Mutable access to the secret bytes, e.g. to decrypt a key into them.
    pub fn expose_secret_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// The secret bytes. Keep the borrow short and never log it.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality (length is not secret).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        ct::ct_eq(&self.0, other)
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

/// Constant-time comparison helpers.
pub mod ct {
    use super::ConstantTimeEq;

    /// Whether `a == b`, in time that depends only on the lengths.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && bool::from(a.ct_eq(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from_slice(&[0xAB; 32]);
        let printed = format!("{s:?}");
        assert_eq!(printed, "SecretBytes([REDACTED; 32])");
        assert!(!printed.to_lowercase().contains("ab, "));
    }

    #[test]
    fn ct_eq_works() {
        let s = SecretBytes::from_slice(b"abc");
        assert!(s.ct_eq(b"abc"));
        assert!(!s.ct_eq(b"abd"));
        assert!(!s.ct_eq(b"ab"));
    }
}
