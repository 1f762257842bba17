//! The hierarchical keyring.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use envelope_format::{EncryptedDataKey, EncryptionContext};
use envelope_keyring::{
    CompleteDecryptionMaterials, DecryptionMaterials, EncryptionMaterials, Error, Keyring,
    ProviderError,
};
use futures::FutureExt;

use crate::branch_key::BranchKey;
use crate::cache::{BranchKeyCache, EntryId};
use crate::error::KeyStoreError;
use crate::store::BranchKeyStore;
use crate::wire::{self, PROVIDER_ID};

/// Chooses the branch key for a message from its encryption context (one key per tenant, say).
///
/// The keyring asks on encrypt, and on decrypt to know which encrypted data keys are its own.
pub trait BranchKeyIdSupplier: Send + Sync {
    /// The branch key id for a message with `context`.
    fn branch_key_id(&self, context: &EncryptionContext) -> Result<String, Error>;
}

/// A supplier from a closure.
impl<F> BranchKeyIdSupplier for F
where
    F: Fn(&EncryptionContext) -> Result<String, Error> + Send + Sync,
{
    fn branch_key_id(&self, context: &EncryptionContext) -> Result<String, Error> {
        self(context)
    }
}

enum BranchKeyId {
    Fixed(String),
    Supplied(Arc<dyn BranchKeyIdSupplier>),
}

impl fmt::Debug for BranchKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(id) => id.fmt(f),
            Self::Supplied(_) => f.write_str("<supplier>"),
        }
    }
}

/// The AWS KMS hierarchical keyring: wraps each data key under a key derived from a branch key.
///
/// Branch keys live in a key store (a DynamoDB table, each key encrypted under AWS KMS) that every
/// host of a fleet shares. The keyring fetches a branch key once per TTL into its
/// [`BranchKeyCache`] and then derives a fresh AES-256-GCM wrapping key for every message
/// locally, with no call to KMS or DynamoDB. Messages are readable by every AWS Encryption SDK
/// that has the hierarchical keyring (Java, Python, .NET, JavaScript 4.1+, Rust `aws-esdk`).
///
/// ```
/// use std::time::Duration;
/// use envelope_crypto::SecretBytes;
/// use envelope_hierarchy::{BranchKey, BranchKeyVersion, HierarchicalKeyring, StaticKeyStore};
///
/// let version: BranchKeyVersion = "e9ce18a3-edb5-4272-9f86-1cacb7997ff6".parse()?;
/// let store = StaticKeyStore::new("example")
///     .with(BranchKey::new("tenant-a", version, SecretBytes::random(32)?)?);
/// let keyring = HierarchicalKeyring::builder(store)
///     .branch_key_id("tenant-a")
///     .ttl(Duration::from_secs(300))
///     .build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct HierarchicalKeyring {
    store: Arc<dyn BranchKeyStore>,
    branch_key_id: BranchKeyId,
    ttl: Duration,
    cache: BranchKeyCache,
    partition: String,
}

/// Builds a [`HierarchicalKeyring`]: a branch key id (or supplier) and a TTL are required.
#[derive(Debug)]
#[must_use]
pub struct HierarchicalKeyringBuilder {
    store: Arc<dyn BranchKeyStore>,
    branch_key_id: Option<BranchKeyId>,
    ttl: Option<Duration>,
    cache: Option<BranchKeyCache>,
    partition: Option<String>,
}

impl HierarchicalKeyringBuilder {
    /// Use branch key `id` for every message.
    pub fn branch_key_id(mut self, id: impl Into<String>) -> Self {
        self.branch_key_id = Some(BranchKeyId::Fixed(id.into()));
        self
    }

    /// Choose the branch key per message with `supplier`.
    pub fn branch_key_id_supplier(mut self, supplier: impl BranchKeyIdSupplier + 'static) -> Self {
        self.branch_key_id = Some(BranchKeyId::Supplied(Arc::new(supplier)));
        self
    }

    /// How long a fetched branch key is used before it is fetched again (at least one second).
    /// Rotation takes effect for encryption within one TTL. Keyrings sharing a cache partition
    /// share entries, each kept for the TTL of the keyring that fetched it.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Share `cache` with other keyrings (default: a cache of its own holding
    /// [`DEFAULT_CAPACITY`](crate::cache::DEFAULT_CAPACITY) keys).
    pub fn cache(mut self, cache: BranchKeyCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The partition of a shared cache this keyring uses (default: a random one, so keyrings
    /// share entries only when you give them the same partition id and the same key store).
    pub fn partition_id(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// The keyring.
    pub fn build(self) -> Result<HierarchicalKeyring, Error> {
        let branch_key_id = self.branch_key_id.ok_or_else(|| {
            Error::InvalidConfiguration(
                "a hierarchical keyring needs a branch key id or a branch key id supplier".into(),
            )
        })?;
        if let BranchKeyId::Fixed(id) = &branch_key_id
            && id.is_empty()
        {
            return Err(Error::InvalidConfiguration(
                "the branch key id must not be empty".into(),
            ));
        }
        let ttl = self.ttl.ok_or_else(|| {
            Error::InvalidConfiguration("a hierarchical keyring needs a cache TTL".into())
        })?;
        if ttl < Duration::from_secs(1) {
            return Err(Error::InvalidConfiguration(format!(
                "the branch key TTL must be at least one second, not {ttl:?}"
            )));
        }
        let partition = match self.partition {
            Some(partition) => partition,
            None => crate::BranchKeyVersion::random()?.to_string(),
        };
        Ok(HierarchicalKeyring {
            store: self.store,
            branch_key_id,
            ttl,
            cache: self.cache.unwrap_or_default(),
            partition,
        })
    }
}

impl HierarchicalKeyring {
    /// Start building a keyring over `store`.
    pub fn builder(store: impl BranchKeyStore + 'static) -> HierarchicalKeyringBuilder {
        Self::builder_shared(Arc::new(store))
    }

    /// [`builder`](Self::builder) for a store already behind an `Arc` (one store, many keyrings).
    pub fn builder_shared(store: Arc<dyn BranchKeyStore>) -> HierarchicalKeyringBuilder {
        HierarchicalKeyringBuilder {
            store,
            branch_key_id: None,
            ttl: None,
            cache: None,
            partition: None,
        }
    }

    /// The branch-key cache (for its counters, or to share it).
    pub fn cache(&self) -> &BranchKeyCache {
        &self.cache
    }

    fn branch_key_id(&self, context: &EncryptionContext) -> Result<String, Error> {
        match &self.branch_key_id {
            BranchKeyId::Fixed(id) => Ok(id.clone()),
            BranchKeyId::Supplied(supplier) => {
                let id = supplier.branch_key_id(context)?;
                if id.is_empty() {
                    return Err(Error::InvalidConfiguration(
                        "the branch key id supplier returned an empty id".into(),
                    ));
                }
                Ok(id)
            }
        }
    }

    fn describe(&self, branch_key_id: &str) -> String {
        format!("hierarchical keyring (branch key {branch_key_id:?})")
    }

    /// The branch key from the cache, or fetched from the store once for every caller waiting:
    /// the active version (`None`) or the given one.
    async fn branch_key(
        &self,
        branch_key_id: &str,
        version: Option<crate::BranchKeyVersion>,
    ) -> Result<Arc<BranchKey>, KeyStoreError> {
        let entry = EntryId::new(
            &self.partition,
            self.store.logical_name(),
            branch_key_id,
            version,
        );
        let store = self.store.clone();
        let id = branch_key_id.to_owned();
        self.cache
            .get(entry, self.ttl, move || {
                async move {
                    let key = match version {
                        None => store.active_branch_key(&id).await?,
                        Some(version) => store.branch_key_version(&id, version).await?,
                    };
                    check_identity(&key, &id, version)?;
                    Ok(key)
                }
                .boxed()
            })
            .await
    }
}

/// A store must answer with the key asked for: a different id or version is refused (before it
/// is cached).
fn check_identity(
    key: &BranchKey,
    branch_key_id: &str,
    version: Option<crate::BranchKeyVersion>,
) -> Result<(), KeyStoreError> {
    if key.id() != branch_key_id || version.is_some_and(|v| v != key.version()) {
        return Err(KeyStoreError::InvalidItem {
            branch_key_id: branch_key_id.to_owned(),
            reason: format!(
                "the key store returned branch key {:?} version {}",
                key.id(),
                key.version()
            ),
        });
    }
    Ok(())
}

#[async_trait]
impl Keyring for HierarchicalKeyring {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
        let branch_key_id = self.branch_key_id(materials.encryption_context())?;
        let branch_key = self.branch_key(&branch_key_id, None).await?;
        materials.wrap_data_key(|context, data_key| wire::wrap(&branch_key, context, data_key))
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        let branch_key_id = self.branch_key_id(materials.encryption_context())?;
        let key_len = materials.suite().key_len();
        let mut errors = Vec::new();
        let mut eligible = 0;
        for edk in encrypted_data_keys {
            if edk.provider_id() != PROVIDER_ID || edk.provider_info() != branch_key_id.as_bytes() {
                continue;
            }
            eligible += 1;
            let Some(parsed) = wire::parse(edk.ciphertext(), key_len) else {
                errors.push(Error::UnwrapFailed {
                    keyring: self.describe(&branch_key_id),
                    attempts: 1,
                });
                continue;
            };
            let branch_key = match self.branch_key(&branch_key_id, Some(parsed.version)).await {
                Ok(key) => key,
                Err(e) => {
                    errors.push(e.into());
                    continue;
                }
            };
            match wire::unwrap(&branch_key, materials.encryption_context(), &parsed) {
                Ok(data_key) => return materials.with_data_key(data_key),
                Err(e) => errors.push(e),
            }
        }
        if eligible == 0 {
            return Err(Error::NoMatchingDataKey {
                keyring: self.describe(&branch_key_id),
            });
        }
        Err(Error::DecryptAttemptsFailed {
            keyring: self.describe(&branch_key_id),
            errors,
        })
    }
}

impl From<KeyStoreError> for Error {
    /// A keyring error from provider `aws-kms-hierarchy`, keeping the store error as its source
    /// ([`KeyStoreError::of`] gets it back).
    fn from(error: KeyStoreError) -> Self {
        let mut provider =
            ProviderError::new(PROVIDER_ID, error.to_string()).retryable(error.is_retryable());
        if let KeyStoreError::Service {
            code: Some(code), ..
        } = &error
        {
            provider = provider.with_code(code.clone());
        }
        Error::Provider(provider.with_source(error))
    }
}
