//! The error type of encrypt and decrypt.

use envelope_crypto::CryptoError;
use envelope_format::{AlgorithmSuite, FormatError, PolicyViolation};

/// Why encrypting or decrypting failed.
///
/// Decryption never returns partial plaintext together with an error: when any of these is returned,
/// nothing was released (streaming decryption documents what it may have released before).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The message is malformed or truncated.
    #[error("malformed message: {0}")]
    Format(#[source] FormatError),
    /// The input looks like Base64 text; decode it to bytes first.
    #[error(
        "the input looks Base64-encoded (it starts with {0:?}): decode it to bytes before decrypting"
    )]
    Base64Encoded(&'static str),
    /// The message failed authentication: a tag, the key commitment or the signature did not
    /// verify. The message was tampered with, truncated inside a field, or belongs to another key or
    /// encryption context.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The commitment policy does not allow the suite.
    #[error(transparent)]
    CommitmentPolicy(#[from] PolicyViolation),
    /// More encrypted data keys than the client's maximum.
    #[error("{count} encrypted data keys exceed the configured maximum of {max}")]
    TooManyEncryptedDataKeys {
        /// How many there are.
        count: usize,
        /// The maximum.
        max: usize,
    },
    /// The caller's encryption context is not allowed (reserved prefix, empty key or value, too large).
    #[error("invalid encryption context: {0}")]
    InvalidEncryptionContext(#[source] FormatError),
    /// The materials manager or keyring failed.
    #[error("could not get materials: {0}")]
    Materials(#[from] envelope_keyring::Error),
    /// The materials manager returned materials that do not fit the request or the message (a
    /// suite other than the one asked for or the message's).
    #[error("the materials manager returned unusable materials: {0}")]
    InvalidMaterials(&'static str),
    /// The message is signed but only unsigned messages were accepted.
    #[error(
        "the message uses signed suite {0}, but this decryption accepts only unsigned messages"
    )]
    SignedMessageRejected(AlgorithmSuite),
    /// More plaintext was written than the declared bound.
    #[error("the plaintext exceeds the declared bound of {0} bytes")]
    PlaintextBoundExceeded(u64),
    /// A frame is longer than the client's maximum frame length: the frame length asked for on
    /// encrypt, or a streamed message's frame length (or non-framed body) on decrypt.
    #[error(
        "frame length {length} exceeds this client's maximum of {max} bytes (raise it with ClientBuilder::max_frame_length)"
    )]
    FrameTooLarge {
        /// The frame length (or non-framed body length) concerned.
        length: u64,
        /// The client's maximum frame length.
        max: u32,
    },
    /// The client requires a FIPS module in approved mode
    /// ([`ClientBuilder::require_fips`](crate::ClientBuilder::require_fips)) and this build does
    /// not have one. Nothing was encrypted or decrypted and no key was requested.
    #[error("this client requires a FIPS module in approved mode, but {0}")]
    FipsRequired(envelope_crypto::FipsStatus),
    /// An invariant inside Envelope did not hold: a bug, to be reported. No plaintext was released.
    #[error("internal error (please report it): {0}")]
    Internal(&'static str),
    /// A primitive failed for a reason other than authentication (e.g. the system RNG).
    #[error("cryptographic failure: {0}")]
    Crypto(#[source] CryptoError),
    /// Reading or writing the underlying stream failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether retrying may succeed (only for transient key-provider failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Materials(e) => e.is_retryable(),
            _ => false,
        }
    }
}

impl From<FormatError> for Error {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::Base64Encoded(prefix) => Self::Base64Encoded(prefix),
            FormatError::TooManyEncryptedDataKeys { count, max } => {
                Self::TooManyEncryptedDataKeys { count, max }
            }
            other => Self::Format(other),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::AuthenticationFailed | CryptoError::SignatureInvalid => {
                Self::AuthenticationFailed
            }
            other => Self::Crypto(other),
        }
    }
}

impl Error {
    /// The `std::io::ErrorKind` this error maps to in the streaming adapters.
    pub fn io_kind(&self) -> std::io::ErrorKind {
        match self {
            Self::Io(io) => io.kind(),
            Self::Format(FormatError::Truncated(_)) => std::io::ErrorKind::UnexpectedEof,
            _ => std::io::ErrorKind::InvalidData,
        }
    }
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(io) => io,
            other => std::io::Error::new(other.io_kind(), other),
        }
    }
}
