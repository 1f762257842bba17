//! The error type of keyrings and materials managers.

use std::fmt;

use envelope_crypto::CryptoError;
use envelope_format::{FormatError, PolicyViolation};

/// Why a keyring or materials manager could not produce materials.
///
/// Errors are `Clone` so that every caller waiting on one coalesced call (see the caching CMM) gets
/// the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The commitment policy does not allow this suite for this operation.
    #[error(transparent)]
    CommitmentPolicy(#[from] PolicyViolation),
    /// A keyring or CMM was configured with invalid settings.
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),
    /// The encryption context is unacceptable.
    #[error("invalid encryption context: {0}")]
    EncryptionContext(#[source] FormatError),
    /// A signed suite was requested but the encryption context already holds `aws-crypto-public-key`.
    #[error("the encryption context already contains the reserved key \"aws-crypto-public-key\"")]
    PublicKeyAlreadyInContext,
    /// A signed message's encryption context lacks `aws-crypto-public-key`.
    #[error("the message is signed but its encryption context has no \"aws-crypto-public-key\"")]
    MissingVerificationKey,
    /// An unsigned message's encryption context carries `aws-crypto-public-key`.
    #[error(
        "the message is unsigned but its encryption context carries a signature verification key"
    )]
    UnexpectedVerificationKey,
    /// The `aws-crypto-public-key` value is not a valid compressed point for the suite's curve.
    #[error("the signature verification key in the encryption context is malformed")]
    InvalidVerificationKey,
    /// A reproduced encryption context value differs from the one stored in the message.
    #[error("the reproduced encryption context disagrees with the message for key {0:?}")]
    ReproducedContextMismatch(String),
    /// A required encryption context key is missing.
    #[error("required encryption context key {0:?} is missing")]
    MissingRequiredEncryptionContextKey(String),
    /// An encrypting keyring was given materials that already hold a plaintext data key where it
    /// must not (a multi-keyring's generator, or a second `with_data_key`).
    #[error("the materials already hold a plaintext data key")]
    DataKeyAlreadySet,
    /// A data key has the wrong length for the suite.
    #[error("data key length {found} does not match the suite's {expected}")]
    InvalidDataKeyLength {
        /// The suite's key length.
        expected: usize,
        /// The supplied length.
        found: usize,
    },
    /// Encryption materials are incomplete (no data key, no encrypted data key, or no signing key).
    #[error("incomplete materials: {0}")]
    IncompleteMaterials(&'static str),
    /// A keyring cannot do this operation (e.g. a public-key-only RSA keyring asked to decrypt).
    #[error("{keyring} cannot {operation}: {reason}")]
    Unsupported {
        /// Which keyring.
        keyring: String,
        /// The operation.
        operation: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// None of the message's encrypted data keys belongs to this keyring.
    #[error("no encrypted data key in the message matches {keyring}")]
    NoMatchingDataKey {
        /// Which keyring.
        keyring: String,
    },
    /// Encrypted data keys matched this keyring but none could be unwrapped (wrong key or a
    /// different encryption context).
    #[error("{keyring} could not unwrap any of its {attempts} matching encrypted data key(s)")]
    UnwrapFailed {
        /// Which keyring.
        keyring: String,
        /// How many matching keys were tried.
        attempts: usize,
    },
    /// A keyring tried every encrypted data key it could use and each attempt failed; the errors are
    /// in the order the keys were tried (empty when no key was eligible, as with a filter that
    /// matched nothing).
    #[error("{keyring} could not decrypt any data key: {}", DisplayAttempts(.errors))]
    DecryptAttemptsFailed {
        /// Which keyring.
        keyring: String,
        /// One error per attempted encrypted data key.
        errors: Vec<Error>,
    },
    /// Every keyring of a multi-keyring failed; their errors in order.
    #[error("every keyring failed: {}", DisplayList(.0))]
    MultiKeyring(Vec<Error>),
    /// A key provider (such as AWS KMS) reported an error.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A cryptographic operation failed.
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] CryptoError),
    /// A message-format structure could not be built.
    #[error("message format: {0}")]
    Format(#[from] FormatError),
    /// Waiting for materials (e.g. a coalesced cache miss) took longer than allowed.
    #[error("timed out after {0:?} waiting for materials")]
    Timeout(std::time::Duration),
    /// An error from a user-supplied keyring or CMM.
    #[error(transparent)]
    Custom(std::sync::Arc<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Wrap an error from your own keyring or CMM.
    pub fn custom(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Custom(std::sync::Arc::new(error))
    }

    /// What a keyring that tried `attempts` of the message's encrypted data keys and unwrapped
    /// none reports: [`Error::NoMatchingDataKey`] when none was its own, else
    /// [`Error::UnwrapFailed`].
    pub fn nothing_unwrapped(keyring: String, attempts: usize) -> Self {
        if attempts == 0 {
            Self::NoMatchingDataKey { keyring }
        } else {
            Self::UnwrapFailed { keyring, attempts }
        }
    }

    /// Whether trying again later may succeed (throttling, timeouts, unavailable services).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Provider(e) => e.retryable,
            Self::Timeout(_) => true,
            Self::MultiKeyring(errors) | Self::DecryptAttemptsFailed { errors, .. } => {
                errors.iter().any(Error::is_retryable)
            }
            _ => false,
        }
    }
}

struct DisplayList<'a>(&'a [Error]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "[{}] {e}", i + 1)?;
        }
        Ok(())
    }
}

struct DisplayAttempts<'a>(&'a [Error]);

impl fmt::Display for DisplayAttempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("no encrypted data key was eligible")
        } else {
            DisplayList(self.0).fmt(f)
        }
    }
}

/// An error reported by a remote key provider, keeping its service code and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{provider}{}: {}{message}", key_id.as_ref().map(|k| format!(" key {k}")).unwrap_or_default(), code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
#[non_exhaustive]
pub struct ProviderError {
    /// The provider, e.g. `"aws-kms"`.
    pub provider: String,
    /// The key concerned, when known.
    pub key_id: Option<String>,
    /// The service's error code, e.g. `ThrottlingException`.
    pub code: Option<String>,
    /// The service's message.
    pub message: String,
    /// Whether a retry may help.
    pub retryable: bool,
    /// The underlying error.
    #[source]
    pub source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
}

impl ProviderError {
    /// A provider error.
    pub fn new(provider: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            key_id: None,
            code: None,
            message: message.into(),
            retryable: false,
            source: None,
        }
    }

    /// Name the key concerned.
    pub fn with_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// Keep the service's error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Mark whether a retry may help.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Attach the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(source));
        self
    }
}
