//! The branch-key cache: decrypted branch keys kept for a TTL, fetched once however many messages
//! ask at the same moment, and refreshed ahead of expiry so no message waits for the store.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envelope_cache::{Clock, DefaultSpawner, Spawn, SystemClock};
use envelope_crypto::digest::{HashAlgorithm, Hasher};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared, WeakShared};
use lru::LruCache;
use parking_lot::Mutex;

use crate::branch_key::{BranchKey, BranchKeyVersion};
use crate::error::KeyStoreError;

/// The default number of branch keys a cache holds.
pub const DEFAULT_CAPACITY: usize = 1_000;

/// Which branch key an entry holds, hashed with the partition and key store it came from.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EntryId([u8; 64]);

impl EntryId {
    /// SHA-512 over the length-prefixed partition id, logical key store name, branch key id and
    /// version (none for the active key). Length prefixes keep distinct tuples distinct.
    pub(crate) fn new(
        partition: &str,
        logical_name: &str,
        branch_key_id: &str,
        version: Option<BranchKeyVersion>,
    ) -> Self {
        let mut hasher = Hasher::new(HashAlgorithm::Sha512);
        for field in [partition, logical_name, branch_key_id] {
            hasher.update(&(field.len() as u64).to_be_bytes());
            hasher.update(field.as_bytes());
        }
        match version {
            None => hasher.update(b"\x00active"),
            Some(version) => {
                hasher.update(b"\x01");
                hasher.update(version.as_bytes());
            }
        }
        let mut id = [0u8; 64];
        id.copy_from_slice(hasher.finish().as_bytes());
        Self(id)
    }
}

type Fetch = Shared<BoxFuture<'static, Result<Arc<BranchKey>, KeyStoreError>>>;

/// A fetch older than this is not joined: the next lookup starts another (a store call that hangs
/// does not hold every later lookup of its key).
const FLIGHT_TIMEOUT: Duration = Duration::from_secs(60);
/// After a failed refresh, the old entry keeps serving and the next refresh waits this long.
const REFRESH_RETRY: Duration = Duration::from_secs(1);
/// Above this many recorded flights, the ones nobody holds any more are dropped.
const FLIGHTS_PRUNE_AT: usize = 1_024;

struct Entry {
    key: Arc<BranchKey>,
    fetched: Instant,
    expires: Instant,
    /// No refresh before this (set when one failed).
    refresh_after: Option<Instant>,
}

/// A fetch in flight. Held weakly: when every waiter is gone (cancelled, timed out) the fetch is
/// dropped with them and the next lookup starts afresh.
struct InFlight {
    fetch: WeakShared<BoxFuture<'static, Result<Arc<BranchKey>, KeyStoreError>>>,
    started: Instant,
    generation: u64,
}

/// Counters of a [`BranchKeyCache`], cumulative since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BranchKeyCacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found no live entry and waited for a fetch (their own or one in flight).
    pub misses: u64,
    /// Calls made to the key store (misses coalesce: many misses, one fetch).
    pub fetches: u64,
    /// Fetches started ahead of expiry while the old entry kept serving.
    pub refreshes: u64,
    /// Fetches that failed (nothing was cached).
    pub failures: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    fetches: AtomicU64,
    refreshes: AtomicU64,
    failures: AtomicU64,
}

struct Inner {
    entries: Mutex<LruCache<EntryId, Entry>>,
    flights: Mutex<HashMap<EntryId, InFlight>>,
    generations: AtomicU64,
    clock: Arc<dyn Clock>,
    spawner: Arc<dyn Spawn>,
    /// Fetch the next copy of an entry in the last tenth of its life (the default).
    refresh_ahead: bool,
    counters: Counters,
}

/// A cache of decrypted branch keys, shared by every keyring given a clone of it.
///
/// Each entry lives for the TTL of the keyring that fetched it (keyrings sharing a partition share
/// entries, so give them one TTL). Concurrent misses for one key make one key-store call and all
/// wait for it; errors are not cached, so each miss after a failure asks the store again. A fetch
/// that every waiter gave up on is dropped, and one older than a minute is not joined. When a
/// lookup finds an entry in the last tenth of its life (at most the last 10 seconds), the entry
/// keeps serving and one background fetch replaces it, so a steady stream of messages never waits
/// for the store at expiry. Keyrings sharing a cache are kept apart by their partition id and their key store's
/// logical name; give two keyrings the same partition id only when they use the same key store.
///
/// Refresh-ahead trades store calls for latency: with a 300 s TTL each entry is fetched every
/// 290 s rather than every 300 s. [`without_refresh_ahead`](Self::without_refresh_ahead) makes it
/// exactly one fetch per TTL, and the first lookup after expiry waits for the store.
///
/// ```
/// use std::num::NonZeroUsize;
/// use envelope_hierarchy::BranchKeyCache;
///
/// let shared = BranchKeyCache::new(NonZeroUsize::MIN.saturating_add(99));
/// assert!(shared.is_empty());
/// ```
#[derive(Clone)]
pub struct BranchKeyCache {
    inner: Arc<Inner>,
}

impl Default for BranchKeyCache {
    fn default() -> Self {
        Self::new(NonZeroUsize::new(DEFAULT_CAPACITY).unwrap_or(NonZeroUsize::MIN))
    }
}

impl fmt::Debug for BranchKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BranchKeyCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("stats", &self.stats())
            .finish()
    }
}

impl BranchKeyCache {
    /// A cache of at most `capacity` branch keys (the least recently used is evicted).
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: Mutex::new(LruCache::new(capacity)),
                flights: Mutex::new(HashMap::new()),
                generations: AtomicU64::new(0),
                clock: Arc::new(SystemClock),
                spawner: Arc::new(DefaultSpawner),
                refresh_ahead: true,
                counters: Counters::default(),
            }),
        }
    }

    /// Measure entry ages with `clock` (tests move a [`ManualClock`](envelope_cache::ManualClock)).
    /// This makes a new, empty cache: call it right after [`new`](Self::new), before any clone.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.rebuild(|inner| inner.clock = clock)
    }

    /// Run refreshes ahead of expiry with `spawner` (default: [`DefaultSpawner`]). This makes a
    /// new, empty cache: call it right after [`new`](Self::new), before any clone.
    pub fn with_spawner(self, spawner: Arc<dyn Spawn>) -> Self {
        self.rebuild(|inner| inner.spawner = spawner)
    }

    /// Never fetch ahead of expiry: one store call per entry per TTL, and the lookup that finds
    /// the entry expired waits for the next (the others wait with it). This makes a new, empty
    /// cache: call it right after [`new`](Self::new), before any clone.
    pub fn without_refresh_ahead(self) -> Self {
        self.rebuild(|inner| inner.refresh_ahead = false)
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let capacity = self.capacity();
        let (clock, spawner) = (self.inner.clock.clone(), self.inner.spawner.clone());
        let refresh_ahead = self.inner.refresh_ahead;
        let mut inner = Inner {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            flights: Mutex::new(HashMap::new()),
            generations: AtomicU64::new(0),
            clock,
            spawner,
            refresh_ahead,
            counters: Counters::default(),
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// How many branch keys it holds (live or not yet pruned).
    pub fn len(&self) -> usize {
        self.inner.entries.lock().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most it holds.
    pub fn capacity(&self) -> usize {
        self.inner.entries.lock().cap().get()
    }

    /// Drop every entry. A fetch already in flight still stores its key when it lands: this
    /// forgets keys, it does not revoke them (to stop using a key, rotate it in the key store).
    pub fn clear(&self) {
        self.inner.entries.lock().clear();
    }

    /// Counters since the cache was made.
    pub fn stats(&self) -> BranchKeyCacheStats {
        let c = &self.inner.counters;
        BranchKeyCacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            fetches: c.fetches.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
        }
    }

    /// The branch key `id` names: from the cache, or fetched with `fetch` and kept for `ttl`.
    pub(crate) async fn get(
        &self,
        id: EntryId,
        ttl: Duration,
        fetch: impl FnOnce() -> BoxFuture<'static, Result<BranchKey, KeyStoreError>>,
    ) -> Result<Arc<BranchKey>, KeyStoreError> {
        let now = self.inner.clock.now();
        let counters = &self.inner.counters;
        let found = self.inner.entries.lock().get(&id).and_then(|entry| {
            (now < entry.expires).then(|| {
                let refresh = self.inner.refresh_ahead && refresh_due(entry, now);
                (entry.key.clone(), refresh)
            })
        });
        if let Some((key, refresh)) = found {
            counters.hits.fetch_add(1, Ordering::Relaxed);
            if refresh {
                let (flight, started) = self.flight(id, ttl, fetch);
                if started {
                    counters.refreshes.fetch_add(1, Ordering::Relaxed);
                    self.inner.spawner.spawn(flight.map(drop).boxed());
                }
            }
            return Ok(key);
        }
        counters.misses.fetch_add(1, Ordering::Relaxed);
        let (flight, _) = self.flight(id, ttl, fetch);
        flight.await
    }

    /// The fetch in flight for `id`, or a new one (then `true`).
    fn flight(
        &self,
        id: EntryId,
        ttl: Duration,
        fetch: impl FnOnce() -> BoxFuture<'static, Result<BranchKey, KeyStoreError>>,
    ) -> (Fetch, bool) {
        let now = self.inner.clock.now();
        let mut flights = self.inner.flights.lock();
        let joined = flights
            .get(&id)
            .filter(|f| now.saturating_duration_since(f.started) < FLIGHT_TIMEOUT)
            .and_then(|f| f.fetch.upgrade());
        if let Some(flight) = joined {
            return (flight, false);
        }
        if flights.len() >= FLIGHTS_PRUNE_AT {
            flights.retain(|_, f| f.fetch.upgrade().is_some());
        }
        self.inner.counters.fetches.fetch_add(1, Ordering::Relaxed);
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed);
        let fetching = fetch();
        let inner = Arc::downgrade(&self.inner);
        let flight = async move {
            let result = fetching.await.map(Arc::new);
            if let Some(inner) = inner.upgrade() {
                // Store before leaving the flight map, so no lookup in between misses twice.
                let landed = inner.clock.now();
                match &result {
                    Ok(key) => {
                        let entry = Entry {
                            key: key.clone(),
                            fetched: landed,
                            expires: landed + ttl,
                            refresh_after: None,
                        };
                        inner.entries.lock().put(id, entry);
                    }
                    Err(_) => {
                        inner.counters.failures.fetch_add(1, Ordering::Relaxed);
                        if let Some(entry) = inner.entries.lock().peek_mut(&id) {
                            entry.refresh_after = Some(landed + REFRESH_RETRY);
                        }
                    }
                }
                let mut flights = inner.flights.lock();
                if flights.get(&id).is_some_and(|f| f.generation == generation) {
                    flights.remove(&id);
                }
            }
            result
        }
        .boxed()
        .shared();
        if let Some(weak) = flight.downgrade() {
            flights.insert(
                id,
                InFlight {
                    fetch: weak,
                    started: now,
                    generation,
                },
            );
        }
        (flight, true)
    }
}

/// Whether an entry is in the last tenth of its life, capped at its last 10 seconds, and not
/// waiting out a failed refresh.
fn refresh_due(entry: &Entry, now: Instant) -> bool {
    if entry.refresh_after.is_some_and(|after| now < after) {
        return false;
    }
    let life = entry.expires.saturating_duration_since(entry.fetched);
    let lead = (life / 10).min(Duration::from_secs(10));
    entry.expires.saturating_duration_since(now) <= lead
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use envelope_cache::{InlineSpawner, ManualClock};
    use envelope_crypto::SecretBytes;
    use futures::executor::block_on;

    use super::*;

    fn key(version: u8) -> BranchKey {
        BranchKey::new(
            "bk",
            BranchKeyVersion::from_bytes([version; 16]),
            SecretBytes::new(vec![version; 32]),
        )
        .unwrap()
    }

    struct Setup {
        cache: BranchKeyCache,
        clock: Arc<ManualClock>,
        calls: Arc<AtomicUsize>,
    }

    fn setup() -> Setup {
        setup_with(|cache| cache)
    }

    /// A two-entry cache on a manual clock with inline refreshes, then `configure`d.
    fn setup_with(configure: impl FnOnce(BranchKeyCache) -> BranchKeyCache) -> Setup {
        let clock = Arc::new(ManualClock::new());
        let cache = configure(
            BranchKeyCache::new(NonZeroUsize::new(2).unwrap())
                .with_clock(clock.clone())
                .with_spawner(Arc::new(InlineSpawner)),
        );
        Setup {
            cache,
            clock,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    impl Setup {
        /// Look `id` up, fetching version `calls + 1` on a miss.
        fn get(&self, id: EntryId, ttl: Duration) -> Result<u8, KeyStoreError> {
            let calls = self.calls.clone();
            block_on(self.cache.get(id, ttl, move || {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                async move { Ok(key(u8::try_from(n).unwrap())) }.boxed()
            }))
            .map(|k| k.version().as_bytes()[0])
        }
    }

    /// A TTL no test reaches unless it advances the clock.
    const TTL: Duration = Duration::from_secs(60);

    /// A fetch of version `version` that answers once the returned sender sends (or is dropped).
    fn gated(
        version: u8,
    ) -> (
        futures::channel::oneshot::Sender<()>,
        impl FnOnce() -> BoxFuture<'static, Result<BranchKey, KeyStoreError>>,
    ) {
        let (release, gate) = futures::channel::oneshot::channel::<()>();
        let fetch = move || {
            async move {
                let _ = gate.await;
                Ok(key(version))
            }
            .boxed()
        };
        (release, fetch)
    }

    /// A fetch that fails: the store has no key `a`.
    fn not_found() -> BoxFuture<'static, Result<BranchKey, KeyStoreError>> {
        async {
            Err(KeyStoreError::NotFound {
                branch_key_id: "a".into(),
                version: None,
            })
        }
        .boxed()
    }

    fn id(name: &str) -> EntryId {
        EntryId::new("partition", "store", name, None)
    }

    #[test]
    fn entries_live_for_their_ttl_then_are_fetched_again() {
        let s = setup();
        let ttl = Duration::from_secs(300);
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        s.clock.advance(Duration::from_secs(200));
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        s.clock.advance(Duration::from_secs(100));
        assert_eq!(
            s.get(id("a"), ttl).unwrap(),
            2,
            "expired at exactly the TTL"
        );
        let stats = s.cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.fetches), (1, 2, 2));
    }

    #[test]
    fn an_entry_near_expiry_serves_while_one_refresh_replaces_it() {
        let s = setup();
        let ttl = Duration::from_secs(300);
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        // 30 s lead would be a tenth of 300 s; the cap is 10 s.
        s.clock.advance(Duration::from_secs(289));
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        assert_eq!(s.cache.stats().refreshes, 0);
        s.clock.advance(Duration::from_secs(2));
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1, "the old key answers");
        assert_eq!(s.cache.stats().refreshes, 1);
        assert_eq!(
            s.get(id("a"), ttl).unwrap(),
            2,
            "the refreshed key took over"
        );
        s.clock.advance(Duration::from_secs(20));
        assert_eq!(s.get(id("a"), ttl).unwrap(), 2, "and lives its own TTL");
        assert_eq!(s.calls.load(Ordering::SeqCst), 2);
        assert_eq!(s.cache.stats().misses, 1);
    }

    #[test]
    fn without_refresh_ahead_an_entry_is_fetched_once_per_ttl_and_never_early() {
        let s = setup_with(BranchKeyCache::without_refresh_ahead);
        let ttl = Duration::from_secs(300);
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        s.clock.advance(Duration::from_secs(299));
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1, "still the first key");
        s.clock.advance(Duration::from_secs(1));
        assert_eq!(s.get(id("a"), ttl).unwrap(), 2, "fetched at expiry");
        let stats = s.cache.stats();
        assert_eq!(
            (stats.fetches, stats.refreshes, stats.misses, stats.hits),
            (2, 0, 2, 2)
        );
    }

    #[test]
    fn a_failed_refresh_keeps_the_old_key_and_waits_a_second_before_the_next() {
        let s = setup();
        let ttl = Duration::from_secs(300);
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        s.clock.advance(Duration::from_secs(295));
        let served = block_on(s.cache.get(id("a"), ttl, not_found)).unwrap();
        assert_eq!(served.version(), key(1).version(), "the old key answers");
        assert_eq!(s.cache.stats().failures, 1);
        // Within the second, hits do not ask the store again.
        for _ in 0..100 {
            assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        }
        assert_eq!(s.calls.load(Ordering::SeqCst), 1);
        s.clock.advance(REFRESH_RETRY);
        assert_eq!(s.get(id("a"), ttl).unwrap(), 1);
        assert_eq!(s.get(id("a"), ttl).unwrap(), 2, "the next refresh landed");
        assert_eq!(s.cache.stats().refreshes, 2);
    }

    #[test]
    fn a_fetch_every_waiter_gave_up_on_is_dropped_and_the_next_lookup_starts_again() {
        let s = setup();
        let (_keep, fetch) = gated(9);
        let abandoned = s.cache.get(id("a"), TTL, fetch);
        // Polled once (the fetch starts and waits), then cancelled.
        assert!(abandoned.now_or_never().is_none());
        assert_eq!(s.get(id("a"), TTL).unwrap(), 1);
        assert_eq!(s.cache.stats().fetches, 2);
    }

    #[test]
    fn a_fetch_older_than_the_timeout_is_not_joined() {
        let s = setup();
        let (_keep, fetch) = gated(9);
        let hanging = s.cache.get(id("a"), TTL, fetch);
        let mut hanging = Box::pin(hanging);
        let _ = block_on(async { futures::poll!(hanging.as_mut()) });
        s.clock.advance(FLIGHT_TIMEOUT);
        assert_eq!(
            s.get(id("a"), TTL).unwrap(),
            1,
            "a new fetch, not the hanging one"
        );
        drop(hanging);
    }

    #[test]
    fn failures_are_not_cached() {
        let s = setup();
        let failed = block_on(s.cache.get(id("a"), TTL, not_found));
        assert!(matches!(failed, Err(KeyStoreError::NotFound { .. })));
        assert!(s.cache.is_empty());
        assert_eq!(s.get(id("a"), TTL).unwrap(), 1);
        assert_eq!(s.cache.stats().failures, 1);
    }

    #[test]
    fn concurrent_misses_make_one_fetch() {
        let s = setup();
        let (release, fetch) = gated(7);
        let first = s.cache.get(id("a"), TTL, fetch);
        let others: Vec<_> = (0..8)
            .map(|_| {
                s.cache
                    .get(id("a"), TTL, || unreachable!("a fetch is in flight"))
            })
            .collect();
        let all = futures::future::join_all(
            std::iter::once(first.boxed()).chain(others.into_iter().map(FutureExt::boxed)),
        );
        // Every lookup is polled (and misses) before the store answers.
        let (results, ()) = block_on(async {
            futures::join!(all, async {
                release.send(()).unwrap();
            })
        });
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().unwrap().version() == key(7).version())
        );
        let stats = s.cache.stats();
        assert_eq!((stats.misses, stats.fetches), (9, 1));
    }

    #[test]
    fn capacity_evicts_the_least_recently_used() {
        let s = setup();
        assert_eq!(s.get(id("a"), TTL).unwrap(), 1);
        assert_eq!(s.get(id("b"), TTL).unwrap(), 2);
        assert_eq!(s.get(id("a"), TTL).unwrap(), 1);
        assert_eq!(s.get(id("c"), TTL).unwrap(), 3);
        assert_eq!(s.cache.len(), 2);
        assert_eq!(
            s.get(id("a"), TTL).unwrap(),
            1,
            "a was used more recently than b"
        );
        assert_eq!(s.get(id("b"), TTL).unwrap(), 4, "b was evicted");
    }

    #[test]
    fn partitions_and_stores_and_versions_are_distinct_entries() {
        let v = Some(BranchKeyVersion::from_bytes([1; 16]));
        let ids = [
            EntryId::new("p", "s", "k", None),
            EntryId::new("q", "s", "k", None),
            EntryId::new("p", "t", "k", None),
            EntryId::new("p", "s", "k", v),
            EntryId::new("ps", "", "k", None),
        ];
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert!(a != b);
            }
        }
    }
}
