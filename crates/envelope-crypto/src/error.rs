//! The error type of the crypto layer.

/// A cryptographic operation failed.
///
/// Authentication failures are deliberately opaque: a failed AES-GCM tag or ECDSA signature says
/// nothing about why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// An AEAD tag did not verify.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// A signature did not verify.
    #[error("signature verification failed")]
    SignatureInvalid,
    /// A key has the wrong length for the algorithm.
    #[error("invalid key length {found} (expected {expected})")]
    InvalidKeyLength {
        /// What the algorithm requires.
        expected: &'static str,
        /// The supplied length.
        found: usize,
    },
    /// Key material could not be parsed or is unacceptable.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A digest of the wrong algorithm was passed to a signing or verification key.
    #[error("the digest algorithm does not match the key's curve")]
    DigestMismatch,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Rng,
    /// An input is longer than the primitive accepts.
    #[error("input too long for {0}")]
    InputTooLong(&'static str),
    /// RSA decryption failed (wrong key, padding or corrupted ciphertext).
    #[error("RSA decryption failed")]
    RsaDecryptFailed,
    /// The backend reported a failure it gave no detail for.
    #[error("the crypto backend failed: {0}")]
    Backend(&'static str),
}
