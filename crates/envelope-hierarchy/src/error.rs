//! Errors of branch-key stores, and how the keyring reports them.

use std::sync::Arc;

use envelope_keyring::Error;

/// Why a branch-key store could not create, version or return a branch key.
///
/// `Clone`, so that every message waiting on one coalesced fetch gets the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The store or keyring was configured with unusable settings.
    #[error("invalid key store configuration: {0}")]
    InvalidConfiguration(String),
    /// The branch key (or this version of it) is not in the store.
    #[error("branch key {branch_key_id:?}{} not found in the key store", version.as_ref().map(|v| format!(" version {v}")).unwrap_or_default())]
    NotFound {
        /// The branch key id asked for.
        branch_key_id: String,
        /// The version asked for (`None`: the active version).
        version: Option<String>,
    },
    /// A stored item is malformed, belongs to another key, or was tampered with.
    #[error("branch key {branch_key_id:?}: the key store item is invalid: {reason}")]
    InvalidItem {
        /// The branch key id asked for.
        branch_key_id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A branch key with this id already exists (creating it again would overwrite it).
    #[error("branch key {0:?} already exists")]
    AlreadyExists(String),
    /// Another writer changed the branch key between this one's read and write (e.g. two
    /// concurrent rotations); nothing was written.
    #[error("branch key {0:?} was changed concurrently; nothing was written, try again")]
    Conflict(String),
    /// A call to AWS KMS or Amazon DynamoDB failed.
    #[error("{service} {operation} failed{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Service {
        /// `"kms"` or `"dynamodb"`.
        service: &'static str,
        /// The operation, e.g. `"GetItem"`.
        operation: &'static str,
        /// The service's error code, e.g. `ProvisionedThroughputExceededException`.
        code: Option<String>,
        /// The service's message.
        message: String,
        /// Whether trying again later may succeed.
        retryable: bool,
        /// The underlying SDK error.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
    /// A cryptographic operation failed.
    #[error("cryptographic failure: {0}")]
    Crypto(#[from] envelope_crypto::CryptoError),
}

impl KeyStoreError {
    /// Whether trying again later may succeed (throttling, timeouts, a service unreachable).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Service {
                retryable: true,
                ..
            }
        )
    }

    /// The key-store error a keyring error carries, if it is one: the keyring reports store
    /// failures as provider errors of `aws-kms-hierarchy` whose source is the store error.
    pub fn of(error: &Error) -> Option<&Self> {
        match error {
            Error::Provider(provider) => provider.source.as_deref()?.downcast_ref(),
            _ => None,
        }
    }
}
