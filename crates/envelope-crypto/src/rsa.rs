//! RSA encryption (PKCS#1 v1.5 and OAEP with SHA-1/256/384/512) for wrapping data keys.
//!
//! # Side channels
//!
//! With the `aws-lc` backend, RSA decryption is AWS-LC's constant-time implementation.
//!
//! With the `rustcrypto` backend it is the pure-Rust `rsa` crate, which is affected by
//! [RUSTSEC-2023-0071](https://rustsec.org/advisories/RUSTSEC-2023-0071) ("Marvin"): its big-integer
//! arithmetic is not constant time, so an attacker who can submit many ciphertexts to a decrypting
//! service and time the responses precisely may recover the private key. No fixed version exists.
//! This backend decrypts with blinding, which raises the cost of the attack but does not remove the
//! leak. Use the default `aws-lc` backend wherever RSA private keys decrypt attacker-supplied
//! messages over a network.

use std::fmt;

use crate::secret::SecretBytes;
use crate::{CryptoError, backend, pem};

/// An RSA encryption padding. OAEP uses the same hash for MGF1 and an empty label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RsaPadding {
    /// RSAES-PKCS1-v1_5.
    Pkcs1v15,
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1.
    OaepSha1,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    OaepSha256,
    /// RSAES-OAEP with SHA-384 and MGF1-SHA-384.
    OaepSha384,
    /// RSAES-OAEP with SHA-512 and MGF1-SHA-512.
    OaepSha512,
}

impl RsaPadding {
    /// Every padding.
    pub const ALL: [Self; 5] = [
        Self::Pkcs1v15,
        Self::OaepSha1,
        Self::OaepSha256,
        Self::OaepSha384,
        Self::OaepSha512,
    ];

    /// The short name: `pkcs1`, `oaep-sha1`, `oaep-sha256`, `oaep-sha384` or `oaep-sha512`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pkcs1v15 => "pkcs1",
            Self::OaepSha1 => "oaep-sha1",
            Self::OaepSha256 => "oaep-sha256",
            Self::OaepSha384 => "oaep-sha384",
            Self::OaepSha512 => "oaep-sha512",
        }
    }
}

impl fmt::Display for RsaPadding {
    /// The short name ([`RsaPadding::name`]); [`str::parse`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an RSA padding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an RSA padding: expected pkcs1, oaep-sha1, oaep-sha256, oaep-sha384 or oaep-sha512"
)]
pub struct UnknownPadding(pub String);

impl std::str::FromStr for RsaPadding {
    type Err = UnknownPadding;

    /// A padding from its short name, in any case (`_` or `-` between the words).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let normalized = text.trim().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(&normalized))
            .ok_or_else(|| UnknownPadding(text.to_owned()))
    }
}

/// The error for an RSA key below [`MIN_RSA_BITS`], on either backend.
pub(crate) const TOO_SMALL: &str = "an RSA key under 2048 bits: too small to use";
/// The error for an RSA key above [`MAX_RSA_BITS`], on either backend.
pub(crate) const TOO_LARGE: &str = "an RSA key over 8192 bits";
/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// An RSA public key, for encryption.
#[derive(Clone)]
pub struct RsaPublicKey {
    inner: backend::RsaPublicKey,
}

impl RsaPublicKey {
    /// Parse a PEM `PUBLIC KEY` (X.509 SubjectPublicKeyInfo) block.
    pub fn from_pem(pem_text: &str) -> Result<Self, CryptoError> {
        Self::from_der(&pem::decode(pem_text, "PUBLIC KEY")?)
    }

    /// Parse a DER SubjectPublicKeyInfo.
    pub fn from_der(spki: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self {
            inner: backend::RsaPublicKey::from_der(spki)?,
        })
    }

    /// Modulus length in bytes (the ciphertext length).
    pub fn size_bytes(&self) -> usize {
        self.inner.size_bytes()
    }

    /// Encrypt `plaintext` (at most the padding's capacity).
    pub fn encrypt(&self, padding: RsaPadding, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.inner.encrypt(padding, plaintext)
    }
}

impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.size_bytes() * 8)
    }
}

/// An RSA private key, for decryption. Never printed.
pub struct RsaPrivateKey {
    inner: backend::RsaPrivateKey,
}

impl RsaPrivateKey {
    /// Parse a PEM `PRIVATE KEY` (unencrypted PKCS#8) block.
    pub fn from_pem(pem_text: &str) -> Result<Self, CryptoError> {
        Self::from_pkcs8_der(&pem::decode(pem_text, "PRIVATE KEY")?)
    }

    /// Parse an unencrypted DER PKCS#8 `PrivateKeyInfo`.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        Ok(Self {
            inner: backend::RsaPrivateKey::from_pkcs8_der(der)?,
        })
    }

    /// Modulus length in bytes.
    pub fn size_bytes(&self) -> usize {
        self.inner.size_bytes()
    }

    /// The public half of this key pair.
    ///
    /// Envelope's raw RSA keyring never calls this: the ESDK specification has it encrypt only
    /// with a public key it was given. It is here for tools that are told to (the test-vector
    /// framework marks a private key `"encrypt": true`).
    pub fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey {
            inner: self.inner.public_key(),
        }
    }

    /// Decrypt `ciphertext`.
    pub fn decrypt(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        self.inner.decrypt(padding, ciphertext)
    }
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RsaPrivateKey({} bits, [REDACTED])",
            self.size_bytes() * 8
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paddings_parse_their_display() {
        for padding in RsaPadding::ALL {
            assert_eq!(padding.to_string().parse(), Ok(padding));
            assert_eq!(
                padding.name().to_uppercase().replace('-', "_").parse(),
                Ok(padding)
            );
        }
        assert_eq!(
            "oaep".parse::<RsaPadding>(),
            Err(UnknownPadding("oaep".into()))
        );
    }
}
