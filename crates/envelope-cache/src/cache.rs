//! The `MaterialsCache` trait and its entries.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use envelope_keyring::{CompleteDecryptionMaterials, CompleteEncryptionMaterials};

use crate::id::CacheId;

/// Usage counted against an entry: messages encrypted and plaintext bytes encrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Messages.
    pub messages: u64,
    /// Plaintext bytes.
    pub bytes: u64,
}

impl Usage {
    /// One message of `bytes` bytes.
    pub const fn message(bytes: u64) -> Self {
        Self { messages: 1, bytes }
    }
}

/// The most an encryption entry may serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageLimits {
    /// Messages per entry.
    pub max_messages: u64,
    /// Plaintext bytes per entry.
    pub max_bytes: u64,
}

impl UsageLimits {
    /// Whether `usage` is within the limits.
    pub fn allows(&self, usage: Usage) -> bool {
        usage.messages <= self.max_messages && usage.bytes <= self.max_bytes
    }

    /// Whether `usage` leaves no room for another message.
    pub fn exhausted_by(&self, usage: Usage) -> bool {
        usage.messages >= self.max_messages || usage.bytes >= self.max_bytes
    }
}

/// Cached encryption materials with their age and usage.
#[derive(Clone, Debug)]
pub struct EncryptionEntry {
    /// The materials (their data key is wiped when the last reference drops).
    pub materials: Arc<CompleteEncryptionMaterials>,
    /// When the entry went into service: when its materials were made, or, for materials a
    /// refresh fetched ahead, when they took over from their predecessor.
    pub created: Instant,
    /// From this instant on the entry is never served (`max_age` after the materials were made).
    pub expires: Instant,
    /// What the entry has served so far (including the request that created it).
    pub usage: Usage,
}

/// What a cache returns on an encryption hit: the materials and the entry's state after this
/// request was charged, from which a caching CMM judges how close the entry is to its limits.
#[derive(Clone, Debug)]
pub struct EncryptionHit {
    /// The materials.
    pub materials: Arc<CompleteEncryptionMaterials>,
    /// What the entry has served, including this request.
    pub usage: Usage,
    /// When the materials were made.
    pub created: Instant,
    /// From this instant on the entry is never served.
    pub expires: Instant,
}

/// What a cache returns on a decryption hit.
#[derive(Clone, Debug)]
pub struct DecryptionHit {
    /// The materials.
    pub materials: Arc<CompleteDecryptionMaterials>,
    /// When the materials were made.
    pub created: Instant,
    /// From this instant on the entry is never served.
    pub expires: Instant,
}

/// Cached decryption materials with their age.
#[derive(Clone, Debug)]
pub struct DecryptionEntry {
    /// The materials.
    pub materials: Arc<CompleteDecryptionMaterials>,
    /// When the materials were made.
    pub created: Instant,
    /// From this instant on the entry is never served.
    pub expires: Instant,
}

/// What a cache has evicted and holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Entries currently held.
    pub entries: u64,
    /// Entries evicted to make room (least recently used first).
    pub evicted_capacity: u64,
    /// Entries removed because they reached their age limit.
    pub evicted_age: u64,
    /// Entries removed because they reached (or a request would pass) a usage limit.
    pub evicted_limits: u64,
}

/// A store of cryptographic materials, shared by caching CMMs.
///
/// Implement it to plug in your own cache. The operations a caching CMM relies on:
///
/// - [`MaterialsCache::get_encryption_materials`] must find the entry, check its age, charge the
///   request's usage and check the limits **atomically**: no two callers may both be served the
///   last message an entry allows. An entry that is expired or that the charge would push over a
///   limit is removed and not served.
/// - Entries are never served at or after their `expires` instant.
///
/// Materials hold plaintext data keys: a cache must keep them in this process's memory.
#[async_trait]
pub trait MaterialsCache: Send + Sync {
    /// Serve encryption materials for one more use of `usage`, if the entry under `id` is unexpired
    /// at `now` and stays within `limits` after the charge; charge it atomically with the lookup.
    async fn get_encryption_materials(
        &self,
        id: &CacheId,
        usage: Usage,
        limits: UsageLimits,
        now: Instant,
    ) -> Option<EncryptionHit>;

    /// Store encryption materials, replacing any entry under `id`.
    async fn put_encryption_materials(&self, id: CacheId, entry: EncryptionEntry);

    /// Serve decryption materials if the entry under `id` is unexpired at `now`.
    async fn get_decryption_materials(&self, id: &CacheId, now: Instant) -> Option<DecryptionHit>;

    /// Store decryption materials, replacing any entry under `id`.
    async fn put_decryption_materials(&self, id: CacheId, entry: DecryptionEntry);

    /// Remove the entry under `id`, if any.
    async fn remove(&self, id: &CacheId);

    /// What the cache holds and has evicted.
    fn stats(&self) -> CacheStats {
        CacheStats::default()
    }
}
