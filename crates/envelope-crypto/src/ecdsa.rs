//! ECDSA over P-256 and P-384 with SEC1 compressed public keys and DER signatures.

use std::fmt;

use crate::digest::{Digest, HashAlgorithm};
use crate::{CryptoError, backend};

/// A NIST curve used for message signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// P-256, signing SHA-256 digests.
    P256,
    /// P-384, signing SHA-384 digests.
    P384,
}

impl Curve {
    /// The hash whose digests this curve signs.
    pub const fn hash(self) -> HashAlgorithm {
        match self {
            Self::P256 => HashAlgorithm::Sha256,
            Self::P384 => HashAlgorithm::Sha384,
        }
    }

    /// Length of a field element / scalar in bytes.
    pub const fn scalar_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    /// Length of a SEC1 compressed point.
    pub const fn compressed_len(self) -> usize {
        self.scalar_len() + 1
    }
}

/// An ECDSA private key. Wiped on drop by the backend; never printed.
pub struct SigningKey {
    curve: Curve,
    inner: backend::SigningKey,
}

impl SigningKey {
    /// A fresh key pair from the system CSPRNG.
    pub fn generate(curve: Curve) -> Result<Self, CryptoError> {
        Ok(Self {
            curve,
            inner: backend::SigningKey::generate(curve)?,
        })
    }

    /// A key from its private scalar, a big-endian integer of at most the curve's scalar length
    /// (shorter input is left-padded with zeros).
    pub fn from_private_scalar(curve: Curve, scalar: &[u8]) -> Result<Self, CryptoError> {
        let n = curve.scalar_len();
        if scalar.len() > n {
            return Err(CryptoError::InvalidKeyLength {
                expected: match curve {
                    Curve::P256 => "at most 32",
                    Curve::P384 => "at most 48",
                },
                found: scalar.len(),
            });
        }
        let mut padded = zeroize::Zeroizing::new([0u8; 48]);
        padded[n - scalar.len()..n].copy_from_slice(scalar);
        Ok(Self {
            curve,
            inner: backend::SigningKey::from_private_scalar(curve, &padded[..n])?,
        })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The public key as a SEC1 compressed point.
    pub fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        self.inner.public_key_compressed()
    }

    /// The matching verification key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CryptoError> {
        VerifyingKey::from_sec1(self.curve, &self.public_key_compressed()?)
    }

    /// Sign a digest of the curve's hash; returns a DER `ECDSA-Sig-Value`.
    pub fn sign_digest(&self, digest: &Digest) -> Result<Vec<u8>, CryptoError> {
        if digest.algorithm() != self.curve.hash() {
            return Err(CryptoError::DigestMismatch);
        }
        self.inner.sign_digest(digest)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("curve", &self.curve)
            .finish_non_exhaustive()
    }
}

/// An ECDSA public key.
#[derive(Clone)]
pub struct VerifyingKey {
    curve: Curve,
    compressed: Vec<u8>,
    inner: backend::VerifyingKey,
}

impl VerifyingKey {
    /// Parse a SEC1 point, compressed or uncompressed; it must lie on the curve.
    pub fn from_sec1(curve: Curve, bytes: &[u8]) -> Result<Self, CryptoError> {
        let n = curve.scalar_len();
        let compressed = match bytes.first() {
            Some(0x02 | 0x03) if bytes.len() == n + 1 => bytes.to_vec(),
            Some(0x04) if bytes.len() == 2 * n + 1 => {
                let y_is_odd = bytes[2 * n] & 1 == 1;
                let mut c = Vec::with_capacity(n + 1);
                c.push(if y_is_odd { 0x03 } else { 0x02 });
                c.extend_from_slice(&bytes[1..=n]);
                c
            }
            _ => {
                return Err(CryptoError::InvalidKey(
                    "not a SEC1 point of the curve's size",
                ));
            }
        };
        let inner = backend::VerifyingKey::from_sec1(curve, bytes)?;
        Ok(Self {
            curve,
            compressed,
            inner,
        })
    }

    /// The curve.
    pub fn curve(&self) -> Curve {
        self.curve
    }

    /// The SEC1 compressed point.
    pub fn compressed(&self) -> &[u8] {
        &self.compressed
    }

    /// Verify a DER signature over a digest of the curve's hash.
    pub fn verify_digest(&self, digest: &Digest, signature: &[u8]) -> Result<(), CryptoError> {
        if digest.algorithm() != self.curve.hash() {
            return Err(CryptoError::DigestMismatch);
        }
        self.inner.verify_digest(digest, signature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({:?}, ", self.curve)?;
        for b in &self.compressed {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.curve == other.curve && self.compressed == other.compressed
    }
}

impl Eq for VerifyingKey {}
