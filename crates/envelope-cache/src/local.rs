//! `LocalCache`: an in-memory, capacity-bounded, sharded LRU cache.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use lru::LruCache;
use parking_lot::Mutex;

use crate::cache::{
    CacheStats, DecryptionEntry, DecryptionHit, EncryptionEntry, EncryptionHit, MaterialsCache,
    Usage, UsageLimits,
};
use crate::id::{CacheId, IdHasher};

/// The most shards a cache is split into.
const MAX_SHARDS: usize = 64;
/// How many least-recently-used entries each operation checks for expiry.
const PRUNE_TAIL: usize = 2;

enum Entry {
    Encryption(EncryptionEntry),
    Decryption(DecryptionEntry),
}

impl Entry {
    fn expires(&self) -> Instant {
        match self {
            Self::Encryption(e) => e.expires,
            Self::Decryption(e) => e.expires,
        }
    }
}

#[derive(Default)]
struct Counters {
    capacity: AtomicU64,
    age: AtomicU64,
    limits: AtomicU64,
}

/// An in-memory materials cache holding at most `capacity` entries.
///
/// Entries are spread over independent shards (each an LRU list behind its own lock), so lookups of
/// different entries rarely contend. Each shard evicts its least recently used entry when full; the
/// shards' capacities add up to the cache's capacity, which is never exceeded. Expired entries are
/// never served: they are removed when found, and each operation also checks the least recently
/// used entries of its shard. Evicted materials are dropped, which wipes their data keys.
///
/// ```
/// use std::num::NonZeroUsize;
/// use envelope_cache::LocalCache;
///
/// let cache = LocalCache::new(NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN));
/// assert_eq!(cache.capacity(), 1000);
/// ```
pub struct LocalCache {
    shards: Box<[Mutex<LruCache<CacheId, Entry, IdHasher>>]>,
    capacity: usize,
    evicted: Counters,
}

impl LocalCache {
    /// A cache of `capacity` entries, sharded by the number of CPUs.
    pub fn new(capacity: NonZeroUsize) -> Self {
        let cpus = std::thread::available_parallelism().map_or(4, usize::from);
        Self::with_shards(capacity, (cpus * 4).next_power_of_two())
    }

    /// A cache of `capacity` entries split into (at most) `shards` shards. Fewer shards mean a
    /// closer approximation of global LRU order; more mean less contention.
    pub fn with_shards(capacity: NonZeroUsize, shards: usize) -> Self {
        let capacity = capacity.get();
        let shards = shards.clamp(1, MAX_SHARDS).min(capacity);
        let base = capacity / shards;
        let extra = capacity % shards;
        let shards = (0..shards)
            .map(|i| {
                let cap =
                    NonZeroUsize::new(base + usize::from(i < extra)).unwrap_or(NonZeroUsize::MIN);
                Mutex::new(LruCache::with_hasher(cap, IdHasher::default()))
            })
            .collect();
        Self {
            shards,
            capacity,
            evicted: Counters::default(),
        }
    }

    /// The most entries the cache holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop every entry.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.lock().clear();
        }
    }

    /// Remove every entry expired at `now`.
    pub fn prune_expired(&self, now: Instant) {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            let expired: Vec<CacheId> = shard
                .iter()
                .filter(|(_, e)| e.expires() <= now)
                .map(|(id, _)| *id)
                .collect();
            for id in expired {
                shard.pop(&id);
                self.evicted.age.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn shard(&self, id: &CacheId) -> &Mutex<LruCache<CacheId, Entry, IdHasher>> {
        let b = id.as_bytes();
        let word = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        // Shard counts are small, so the modulo fits in usize on every platform.
        #[allow(clippy::cast_possible_truncation)]
        let index = (word % self.shards.len() as u64) as usize;
        &self.shards[index]
    }

    fn prune_tail(&self, shard: &mut LruCache<CacheId, Entry, IdHasher>, now: Instant) {
        for _ in 0..PRUNE_TAIL {
            match shard.peek_lru() {
                Some((id, entry)) if entry.expires() <= now => {
                    let id = *id;
                    shard.pop(&id);
                    self.evicted.age.fetch_add(1, Ordering::Relaxed);
                }
                _ => break,
            }
        }
    }

    /// Evict the entry under `id`, found expired on lookup.
    fn evict_expired(&self, shard: &mut LruCache<CacheId, Entry, IdHasher>, id: &CacheId) {
        shard.pop(id);
        self.evicted.age.fetch_add(1, Ordering::Relaxed);
    }

    fn put(&self, id: CacheId, entry: Entry, now: Instant) {
        let mut shard = self.shard(&id).lock();
        self.prune_tail(&mut shard, now);
        if let Some((evicted, _)) = shard.push(id, entry)
            && evicted != id
        {
            self.evicted.capacity.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for LocalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCache")
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .field("entries", &self.len())
            .finish()
    }
}

#[async_trait]
impl MaterialsCache for LocalCache {
    async fn get_encryption_materials(
        &self,
        id: &CacheId,
        usage: Usage,
        limits: UsageLimits,
        now: Instant,
    ) -> Option<EncryptionHit> {
        let mut shard = self.shard(id).lock();
        self.prune_tail(&mut shard, now);
        // One lookup on the hit path: it also makes the entry the most recently used.
        let Some(Entry::Encryption(entry)) = shard.get_mut(id) else {
            return None;
        };
        if now >= entry.expires {
            self.evict_expired(&mut shard, id);
            return None;
        }
        let charged = Usage {
            messages: entry.usage.messages.saturating_add(usage.messages),
            bytes: entry.usage.bytes.saturating_add(usage.bytes),
        };
        if !limits.allows(charged) {
            // Serving this request would pass a limit: the entry is done.
            shard.pop(id);
            self.evicted.limits.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        entry.usage = charged;
        let hit = EncryptionHit {
            materials: Arc::clone(&entry.materials),
            usage: charged,
            created: entry.created,
            expires: entry.expires,
        };
        if limits.exhausted_by(charged) {
            // This was the last use the limits allow: remove it now rather than on the next miss.
            shard.pop(id);
            self.evicted.limits.fetch_add(1, Ordering::Relaxed);
        }
        Some(hit)
    }

    async fn put_encryption_materials(&self, id: CacheId, entry: EncryptionEntry) {
        let now = entry.created;
        self.put(id, Entry::Encryption(entry), now);
    }

    async fn get_decryption_materials(&self, id: &CacheId, now: Instant) -> Option<DecryptionHit> {
        let mut shard = self.shard(id).lock();
        self.prune_tail(&mut shard, now);
        let Some(Entry::Decryption(entry)) = shard.get(id) else {
            return None;
        };
        if now >= entry.expires {
            self.evict_expired(&mut shard, id);
            return None;
        }
        Some(DecryptionHit {
            materials: Arc::clone(&entry.materials),
            created: entry.created,
            expires: entry.expires,
        })
    }

    async fn put_decryption_materials(&self, id: CacheId, entry: DecryptionEntry) {
        let now = entry.created;
        self.put(id, Entry::Decryption(entry), now);
    }

    async fn remove(&self, id: &CacheId) {
        self.shard(id).lock().pop(id);
    }

    fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.len() as u64,
            evicted_capacity: self.evicted.capacity.load(Ordering::Relaxed),
            evicted_age: self.evicted.age.load(Ordering::Relaxed),
            evicted_limits: self.evicted.limits.load(Ordering::Relaxed),
        }
    }
}
