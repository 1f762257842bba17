//! Where branch keys come from: the [`BranchKeyStore`] trait and an in-memory store.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::branch_key::{BranchKey, BranchKeyVersion};
use crate::error::KeyStoreError;

/// A source of branch keys, read by the hierarchical keyring through its cache.
///
/// The DynamoDB key store of the `envelope-kms` crate (feature `hierarchy`) is the production
/// one; [`StaticKeyStore`] holds keys in memory (tests, test vectors, keys you manage yourself).
#[async_trait]
pub trait BranchKeyStore: Send + Sync + fmt::Debug {
    /// The store's logical name: it partitions the shared branch-key cache, so two stores with the
    /// same name must hold the same keys (the key store's "logical key store name").
    fn logical_name(&self) -> &str;

    /// The active (newest) version of branch key `branch_key_id`, for encrypting.
    async fn active_branch_key(&self, branch_key_id: &str) -> Result<BranchKey, KeyStoreError>;

    /// Version `version` of branch key `branch_key_id`, for decrypting.
    async fn branch_key_version(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, KeyStoreError>;
}

#[async_trait]
impl<S: BranchKeyStore + ?Sized> BranchKeyStore for Arc<S> {
    fn logical_name(&self) -> &str {
        (**self).logical_name()
    }

    async fn active_branch_key(&self, branch_key_id: &str) -> Result<BranchKey, KeyStoreError> {
        (**self).active_branch_key(branch_key_id).await
    }

    async fn branch_key_version(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, KeyStoreError> {
        (**self).branch_key_version(branch_key_id, version).await
    }
}

#[derive(Default)]
struct Keys {
    /// Every version of every key.
    versions: HashMap<(String, BranchKeyVersion), BranchKey>,
    /// The active version of each key.
    active: HashMap<String, BranchKeyVersion>,
}

/// Branch keys held in memory, with no service behind them.
///
/// For tests, for the official test vectors (which ship their branch keys in plain text) and for
/// applications that distribute branch keys themselves. The last version inserted for an id is
/// its active one.
pub struct StaticKeyStore {
    name: String,
    keys: RwLock<Keys>,
}

impl StaticKeyStore {
    /// An empty store with logical name `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            keys: RwLock::new(Keys::default()),
        }
    }

    /// Add `key`, making it its id's active version.
    pub fn insert(&self, key: BranchKey) {
        let mut keys = self.keys.write();
        keys.active.insert(key.id().to_owned(), key.version());
        keys.versions
            .insert((key.id().to_owned(), key.version()), key);
    }

    /// [`insert`](Self::insert) in a builder chain.
    pub fn with(self, key: BranchKey) -> Self {
        self.insert(key);
        self
    }
}

impl fmt::Debug for StaticKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.read();
        f.debug_struct("StaticKeyStore")
            .field("name", &self.name)
            .field("branch_keys", &keys.active.len())
            .field("versions", &keys.versions.len())
            .finish()
    }
}

#[async_trait]
impl BranchKeyStore for StaticKeyStore {
    fn logical_name(&self) -> &str {
        &self.name
    }

    async fn active_branch_key(&self, branch_key_id: &str) -> Result<BranchKey, KeyStoreError> {
        let keys = self.keys.read();
        keys.active
            .get(branch_key_id)
            .and_then(|version| keys.versions.get(&(branch_key_id.to_owned(), *version)))
            .cloned()
            .ok_or_else(|| KeyStoreError::NotFound {
                branch_key_id: branch_key_id.to_owned(),
                version: None,
            })
    }

    async fn branch_key_version(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, KeyStoreError> {
        self.keys
            .read()
            .versions
            .get(&(branch_key_id.to_owned(), version))
            .cloned()
            .ok_or_else(|| KeyStoreError::NotFound {
                branch_key_id: branch_key_id.to_owned(),
                version: Some(version.to_string()),
            })
    }
}
