//! What this crate needs from an ESDK implementation: encrypt a record's bytes under an encryption
//! context, and decrypt a message back.
//!
//! The crate sits below the `envelope` facade, so it does not name `envelope::Client`; the facade
//! implements [`MessageCipher`] (as `envelope::kinesis::ClientCipher`, over a client and a
//! materials manager, normally a caching CMM) and re-exports this crate as `envelope::kinesis`.

use std::error::Error as StdError;
use std::fmt;

use async_trait::async_trait;
use envelope_format::EncryptionContext;

/// Encrypts and decrypts whole ESDK messages.
///
/// Implementations must be cheap to call concurrently: producers and consumers share one.
#[async_trait]
pub trait MessageCipher: Send + Sync + fmt::Debug {
    /// Encrypt `plaintext` under `context` into one ESDK message.
    async fn encrypt(
        &self,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, CipherError>;

    /// Decrypt a whole ESDK message; nothing is returned until it is authenticated.
    async fn decrypt(&self, message: &[u8]) -> Result<Opened, CipherError>;
}

/// A decrypted message.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Opened {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The authenticated encryption context.
    pub encryption_context: EncryptionContext,
}

impl Opened {
    /// A decrypted message.
    pub fn new(plaintext: Vec<u8>, encryption_context: EncryptionContext) -> Self {
        Self {
            plaintext,
            encryption_context,
        }
    }
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("plaintext", &Length(&self.plaintext))
            .field("encryption_context", &self.encryption_context)
            .finish()
    }
}

/// Prints bytes as their length only: plaintext never reaches a log through `Debug`.
pub(crate) struct Length<'a>(pub(crate) &'a [u8]);

impl fmt::Debug for Length<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// Why a [`MessageCipher`] failed: the implementation's own error, and whether a retry may help
/// (a throttled or unreachable key service).
#[derive(Debug)]
pub struct CipherError {
    retryable: bool,
    source: Box<dyn StdError + Send + Sync>,
}

impl CipherError {
    /// Wrap an implementation's error.
    pub fn new(source: impl Into<Box<dyn StdError + Send + Sync>>, retryable: bool) -> Self {
        Self {
            retryable,
            source: source.into(),
        }
    }

    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The implementation's error, e.g. an `envelope::Error` from `envelope::kinesis::ClientCipher`.
    pub fn inner(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.source
    }

    /// The implementation's error as a concrete type.
    pub fn downcast_ref<T: StdError + 'static>(&self) -> Option<&T> {
        self.source.downcast_ref::<T>()
    }
}

impl fmt::Display for CipherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl StdError for CipherError {
    // Display already shows the wrapped error; the chain continues with its source.
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.source()
    }
}
