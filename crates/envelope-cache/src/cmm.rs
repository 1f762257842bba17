//! `CachingCmm`: reuses materials across messages within per-entry limits.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use envelope_keyring::{
    CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptRequest, EncryptionRequest,
    Error, MaterialsManager,
};
use futures::FutureExt;
use futures::future::{BoxFuture, Either, Shared};
use parking_lot::Mutex;

use crate::cache::{
    CacheStats, DecryptionEntry, DecryptionHit, EncryptionEntry, EncryptionHit, MaterialsCache,
    Usage, UsageLimits,
};
use crate::clock::{Clock, SystemClock};
use crate::id::{CacheId, IdHasher, decryption_id, encryption_id, extend, partition_hash};
use crate::refresh::{
    Backoff, DefaultSpawner, EntryState, Latency, LatencyHistogram, RefreshAhead, Spawn,
};

/// The default and largest message limit per entry: 2^32.
pub const MAX_MESSAGES_LIMIT: u64 = 1 << 32;
/// The default and largest byte limit per entry: 2^63 - 1.
pub const MAX_BYTES_LIMIT: u64 = i64::MAX as u64;
/// How long a request waits, by default, for another request's call to the underlying CMM.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// What one call to the underlying CMM produced, shared by every request that waited for it.
#[derive(Clone)]
enum Landed {
    /// Encryption materials; `cached` says whether the other waiters may draw on them.
    Encryption {
        materials: Arc<CompleteEncryptionMaterials>,
        cached: bool,
    },
    /// Decryption materials (shareable as they are).
    Decryption(Arc<CompleteDecryptionMaterials>),
}

type Flight = Shared<BoxFuture<'static, Result<Landed, Error>>>;

/// A call in flight and how many requests came to wait on it.
struct InFlight {
    flight: Flight,
    waiters: Arc<AtomicU64>,
    /// A successor taking over, with no call to the underlying CMM: joining it is not waiting.
    takeover: bool,
}

/// What a request does about a call in flight.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// It started the call and awaits it.
    Leader,
    /// It waits for another request's call, or a refresh.
    Waiting,
    /// It waits the moment a successor takes over.
    Following,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bypasses: AtomicU64,
    coalesced_waits: AtomicU64,
    underlying_calls: AtomicU64,
    waited: AtomicU64,
    refreshes_started: AtomicU64,
    refreshes_landed: AtomicU64,
    refreshes_late: AtomicU64,
    refreshes_failed: AtomicU64,
}

/// Counters of a caching CMM, readable at any time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CachingStats {
    /// Requests served from the cache.
    pub hits: u64,
    /// Requests that found nothing usable and called the underlying CMM for everyone waiting.
    pub misses: u64,
    /// Requests passed straight to the underlying CMM: unknown plaintext length, a length above
    /// the byte limit, or a suite without key derivation.
    pub bypasses: u64,
    /// Requests that waited for another request's call instead of making their own.
    pub coalesced_waits: u64,
    /// Calls made to the underlying CMM (misses, bypasses, refreshes and uncacheable results).
    pub underlying_calls: u64,
    /// Requests that waited on a call to the underlying CMM (the master key): misses, bypasses
    /// and requests that joined another request's call or a refresh that had not landed yet.
    pub waited_on_master_key: u64,
    /// Background refreshes started.
    pub refreshes_started: u64,
    /// Refreshes whose materials landed before any request had to wait for them.
    pub refreshes_landed: u64,
    /// Refreshes that landed after the entry ran out, so that requests waited for them.
    pub refreshes_late: u64,
    /// Refreshes that failed (not cached; the entry they were to replace was left alone).
    pub refreshes_failed: u64,
    /// How long the calls to the underlying CMM took.
    pub underlying_latency: LatencyHistogram,
    /// The cache's own counters: entries and evictions by cause.
    pub cache: CacheStats,
}

/// Where a fetched encryption entry goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    /// Into the cache (a miss).
    Now,
    /// Beside the current entry, to take over when it runs out (a refresh).
    AsSuccessor,
}

/// Successors kept at most (they are dropped when they expire unused).
const MAX_SUCCESSORS: usize = 4096;

/// Gives every caching CMM a distinct number for the per-thread id memo.
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// Entries a thread remembers before it starts over.
const ID_MEMO_ENTRIES: usize = 256;

/// What the id memo is keyed by: CMM instance, requested suite, serialized encryption context.
type IdMemoKey = (u64, Option<u16>, Vec<u8>);

thread_local! {
    /// Recently computed encryption cache ids, per thread (no lock, no contention): a producer
    /// encrypts with the same few contexts over and over, and each id costs three SHA-512
    /// compressions. Keyed by CMM instance, suite and the serialized context.
    static ID_MEMO: std::cell::RefCell<HashMap<IdMemoKey, CacheId>> =
        std::cell::RefCell::new(HashMap::new());
}

struct Inner {
    instance: u64,
    underlying: Arc<dyn MaterialsManager>,
    cache: Arc<dyn MaterialsCache>,
    clock: Arc<dyn Clock>,
    partition: String,
    partition_hash: [u8; 64],
    max_age: Duration,
    limits: UsageLimits,
    max_wait: Duration,
    refresh: RefreshAhead,
    spawner: Arc<dyn Spawn>,
    flights: Mutex<HashMap<CacheId, InFlight, IdHasher>>,
    backoff: Mutex<HashMap<CacheId, Backoff, IdHasher>>,
    /// Encryption entries a refresh fetched while the current entry still had uses left; each
    /// takes over when its current entry runs out, so that no use of a data key is thrown away.
    successors: Mutex<HashMap<CacheId, EncryptionEntry, IdHasher>>,
    latency: Latency,
    counters: Counters,
}

/// A materials manager that caches the materials of another and reuses them, within limits.
///
/// Encrypting many messages with one data key saves calls to the master key (AWS KMS, typically):
/// each message still gets its own derived key, because the key derivation includes the message id.
/// The security limits bound how much one data key protects:
///
/// - `max_age` (required): an entry is never served at or after this age;
/// - `max_messages` (default 2^32): an entry never serves more messages;
/// - `max_bytes` (default 2^63 - 1): an entry never serves more plaintext bytes.
///
/// Usage is charged atomically with the lookup, before materials are returned, so the limits hold
/// under any concurrency. Concurrent misses for the same entry make **one** call to the underlying
/// CMM; the other requests wait for it (asynchronously, up to `max_wait`) and then draw on the
/// entry it made, each charging its own use. A failed call is not cached; every waiter gets its
/// error.
///
/// With refresh-ahead (on by default, see [`RefreshAhead`]) an entry close to any of its limits
/// gets its successor fetched by one background call (run by a [`Spawn`]er) while requests keep
/// drawing on it, so that a steady producer never waits on the master key; the new materials
/// replace the entry when they land.
///
/// Encryption requests are cached only when the plaintext length (or a bound on it) is known and no
/// larger than `max_bytes`, and never for the suites without key derivation (0x0014, 0x0046,
/// 0x0078). Signed suites are cached with their signing key, so messages that share an entry
/// share a signing key pair. Cache ids are the SHA-512 construction of the other ESDKs (see
/// [`crate::id`]).
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::{Duration, Instant};
/// use envelope_cache::{CachingCmm, LocalCache};
/// use envelope_keyring::{RawAesKeyring, SecretBytes};
///
/// let keyring = RawAesKeyring::new("app", "key", SecretBytes::random(32)?)?;
/// let cache = LocalCache::new(NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN));
/// let cmm = CachingCmm::builder(keyring, cache)
///     .max_age(Duration::from_secs(300))
///     .max_messages(1000)
///     .build()?;
/// # Ok::<(), envelope_keyring::Error>(())
/// ```
#[derive(Clone)]
pub struct CachingCmm {
    inner: Arc<Inner>,
}

impl CachingCmm {
    /// Start building a caching CMM over `underlying` (a CMM, or a keyring, which acts as the
    /// default CMM) with `cache`. `max_age` must be set before `build`.
    pub fn builder(
        underlying: impl MaterialsManager + 'static,
        cache: impl MaterialsCache + 'static,
    ) -> CachingCmmBuilder<NoMaxAge> {
        Self::builder_from_arcs(Arc::new(underlying), Arc::new(cache))
    }

    /// Like [`CachingCmm::builder`], for an underlying CMM and a cache that are already shared:
    /// caching CMMs built with one `Arc` of a cache share its entries (by partition name, see
    /// [`CachingCmmBuilder::partition`]).
    pub fn builder_from_arcs(
        underlying: Arc<dyn MaterialsManager>,
        cache: Arc<dyn MaterialsCache>,
    ) -> CachingCmmBuilder<NoMaxAge> {
        CachingCmmBuilder {
            underlying,
            cache,
            max_age: NoMaxAge,
            max_messages: MAX_MESSAGES_LIMIT,
            max_bytes: MAX_BYTES_LIMIT,
            partition: None,
            clock: Arc::new(SystemClock),
            max_wait: DEFAULT_MAX_WAIT,
            refresh: RefreshAhead::default(),
            spawner: Arc::new(DefaultSpawner),
        }
    }

    /// The counters. A refresh outcome (`refreshes_landed`, `refreshes_late`, `refreshes_failed`)
    /// is counted once the refresh is over: a request made after the count shows cannot wait on it.
    pub fn stats(&self) -> CachingStats {
        let c = &self.inner.counters;
        CachingStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            bypasses: c.bypasses.load(Ordering::Relaxed),
            coalesced_waits: c.coalesced_waits.load(Ordering::Relaxed),
            underlying_calls: c.underlying_calls.load(Ordering::Relaxed),
            waited_on_master_key: c.waited.load(Ordering::Relaxed),
            refreshes_started: c.refreshes_started.load(Ordering::Relaxed),
            refreshes_landed: c.refreshes_landed.load(Ordering::Acquire),
            refreshes_late: c.refreshes_late.load(Ordering::Acquire),
            refreshes_failed: c.refreshes_failed.load(Ordering::Acquire),
            underlying_latency: self.inner.latency.snapshot(),
            cache: self.inner.cache.stats(),
        }
    }

    /// The partition name (random unless one was given).
    pub fn partition(&self) -> &str {
        &self.inner.partition
    }

    /// The entry limits.
    pub fn limits(&self) -> (Duration, UsageLimits) {
        (self.inner.max_age, self.inner.limits)
    }
}

impl fmt::Debug for CachingCmm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingCmm")
            .field("partition", &self.inner.partition)
            .field("max_age", &self.inner.max_age)
            .field("max_messages", &self.inner.limits.max_messages)
            .field("max_bytes", &self.inner.limits.max_bytes)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Marks a [`CachingCmmBuilder`] whose required `max_age` is not set yet.
#[derive(Debug)]
pub struct NoMaxAge;

/// Builds a [`CachingCmm`]. `build` exists only once `max_age` is set.
#[must_use]
pub struct CachingCmmBuilder<MaxAge> {
    underlying: Arc<dyn MaterialsManager>,
    cache: Arc<dyn MaterialsCache>,
    max_age: MaxAge,
    max_messages: u64,
    max_bytes: u64,
    partition: Option<String>,
    clock: Arc<dyn Clock>,
    max_wait: Duration,
    refresh: RefreshAhead,
    spawner: Arc<dyn Spawn>,
}

impl<M> CachingCmmBuilder<M> {
    /// The longest an entry is served after its materials were made (required, above zero).
    pub fn max_age(self, max_age: Duration) -> CachingCmmBuilder<Duration> {
        CachingCmmBuilder {
            underlying: self.underlying,
            cache: self.cache,
            max_age,
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
            partition: self.partition,
            clock: self.clock,
            max_wait: self.max_wait,
            refresh: self.refresh,
            spawner: self.spawner,
        }
    }

    /// When to fetch an entry's successor in the background (default [`RefreshAhead::Auto`]).
    pub fn refresh_ahead(mut self, refresh: RefreshAhead) -> Self {
        self.refresh = refresh;
        self
    }

    /// What runs background refreshes (default [`DefaultSpawner`]: a task on the current tokio
    /// runtime with the `tokio` feature, else a thread).
    pub fn spawner(mut self, spawner: impl Spawn + 'static) -> Self {
        self.spawner = Arc::new(spawner);
        self
    }

    /// The most messages one entry encrypts (1 to 2^32; default 2^32).
    pub fn max_messages(mut self, max_messages: u64) -> Self {
        self.max_messages = max_messages;
        self
    }

    /// The most plaintext bytes one entry encrypts (default and maximum 2^63 - 1).
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// A partition name. Caching CMMs with the same name share the entries of a shared cache;
    /// by default each CMM gets a random one.
    pub fn partition(mut self, name: impl Into<String>) -> Self {
        self.partition = Some(name.into());
        self
    }

    /// The clock that ages entries (default: the system's monotonic clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// How long a request waits for another request's call to the underlying CMM before it fails
    /// with a retryable timeout (default 60 s).
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

impl CachingCmmBuilder<Duration> {
    /// The caching CMM; fails if a limit is out of range.
    pub fn build(self) -> Result<CachingCmm, Error> {
        if self.max_age.is_zero() {
            return Err(Error::InvalidConfiguration(
                "max_age must be above zero".into(),
            ));
        }
        if !(1..=MAX_MESSAGES_LIMIT).contains(&self.max_messages) {
            return Err(Error::InvalidConfiguration(format!(
                "max_messages must be between 1 and 2^32, not {}",
                self.max_messages
            )));
        }
        if self.max_bytes > MAX_BYTES_LIMIT {
            return Err(Error::InvalidConfiguration(format!(
                "max_bytes must be at most 2^63 - 1, not {}",
                self.max_bytes
            )));
        }
        let partition = match self.partition {
            Some(p) => p,
            None => random_partition()?,
        };
        Ok(CachingCmm {
            inner: Arc::new(Inner {
                instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
                underlying: self.underlying,
                cache: self.cache,
                clock: self.clock,
                partition_hash: partition_hash(&partition),
                partition,
                max_age: self.max_age,
                limits: UsageLimits {
                    max_messages: self.max_messages,
                    max_bytes: self.max_bytes,
                },
                max_wait: self.max_wait,
                refresh: self.refresh,
                spawner: self.spawner,
                flights: Mutex::new(HashMap::with_hasher(IdHasher::default())),
                backoff: Mutex::new(HashMap::with_hasher(IdHasher::default())),
                successors: Mutex::new(HashMap::with_hasher(IdHasher::default())),
                latency: Latency::default(),
                counters: Counters::default(),
            }),
        })
    }
}

/// A random UUID (version 4) string, as the Python and Java ESDKs use for partitions.
fn random_partition() -> Result<String, Error> {
    let mut b = [0u8; 16];
    envelope_crypto::rand::fill_random(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

fn serialize_keys<'a>(keys: impl ExactSizeIterator<Item = &'a String>) -> Vec<u8> {
    let mut out = (keys.len() as u64).to_be_bytes().to_vec();
    for k in keys {
        out.extend_from_slice(&(k.len() as u64).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
    }
    out
}

impl Inner {
    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn encryption_id(&self, request: &EncryptionRequest) -> Result<CacheId, Error> {
        let required = &request.required_encryption_context_keys;
        if !required.is_empty() {
            let id = encryption_id(
                &self.partition_hash,
                request.suite,
                &request.encryption_context,
            )?;
            let keys = serialize_keys(required.iter());
            return Ok(extend(id, b"required encryption context keys", &keys));
        }
        let key = (
            self.instance,
            request.suite.map(|s| s.id()),
            request.encryption_context.serialize()?,
        );
        if let Some(id) = ID_MEMO.with(|memo| memo.borrow().get(&key).copied()) {
            return Ok(id);
        }
        let id = encryption_id(
            &self.partition_hash,
            request.suite,
            &request.encryption_context,
        )?;
        ID_MEMO.with(|memo| {
            let mut memo = memo.borrow_mut();
            if memo.len() >= ID_MEMO_ENTRIES {
                memo.clear();
            }
            memo.insert(key, id);
        });
        Ok(id)
    }

    fn decryption_id(&self, request: &DecryptRequest) -> Result<CacheId, Error> {
        let id = decryption_id(
            &self.partition_hash,
            request.suite,
            &request.encrypted_data_keys,
            &request.encryption_context,
        )?;
        Ok(match &request.reproduced_encryption_context {
            None => id,
            Some(ec) => extend(id, b"reproduced encryption context", &ec.serialize()?),
        })
    }

    /// Call the underlying CMM, timing the call.
    async fn timed<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        self.count(&self.counters.underlying_calls);
        let started = self.clock.now();
        let result = call.await;
        let took = self.clock.now().saturating_duration_since(started);
        self.latency.record(took);
        let latency_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        match &result {
            Ok(_) => tracing::debug!(latency_us, "underlying CMM call"),
            Err(e) => tracing::warn!(
                latency_us,
                error = %e,
                "underlying CMM call failed"
            ),
        }
        result
    }

    async fn bypass_encrypt(
        &self,
        request: EncryptionRequest,
    ) -> Result<CompleteEncryptionMaterials, Error> {
        self.count(&self.counters.bypasses);
        self.count(&self.counters.waited);
        tracing::trace!("cache bypassed");
        self.timed(self.underlying.get_encryption_materials(request))
            .await
    }

    async fn bypass_decrypt(
        &self,
        request: DecryptRequest,
    ) -> Result<CompleteDecryptionMaterials, Error> {
        self.count(&self.counters.bypasses);
        self.count(&self.counters.waited);
        tracing::trace!("cache bypassed");
        self.timed(self.underlying.decrypt_materials(request)).await
    }

    /// Join the call in flight for `id`, or start one with `start` and lead it.
    fn join_or_start(
        self: &Arc<Self>,
        id: CacheId,
        start: impl FnOnce(Arc<Self>, Arc<AtomicU64>) -> BoxFuture<'static, Result<Landed, Error>>,
    ) -> (Flight, Role) {
        self.join_take_over_or_start(id, None, start)
    }

    /// Join the call in flight for `id`; else, with `usage` given and a successor fetched ahead
    /// for `id`, put it in the cache charged with `usage` (no call, under a flight of its own so
    /// that nobody else stores meanwhile); else start a call with `start` and lead it.
    fn join_take_over_or_start(
        self: &Arc<Self>,
        id: CacheId,
        usage: Option<(Usage, &EncryptionRequest)>,
        start: impl FnOnce(Arc<Self>, Arc<AtomicU64>) -> BoxFuture<'static, Result<Landed, Error>>,
    ) -> (Flight, Role) {
        let mut flights = self.flights.lock();
        if let Some(in_flight) = flights.get(&id) {
            in_flight.waiters.fetch_add(1, Ordering::Relaxed);
            let role = if in_flight.takeover {
                Role::Following
            } else {
                Role::Waiting
            };
            return (in_flight.flight.clone(), role);
        }
        if let Some((usage, request)) = usage
            && let Some(entry) = self.successors.lock().remove(&id)
        {
            let request = request.clone();
            let take_over = move |inner: Arc<Self>, _| {
                inner.fly_encrypt(id, request, usage, Some(entry)).boxed()
            };
            return (self.launch(&mut flights, id, true, take_over), Role::Leader);
        }
        (self.launch(&mut flights, id, false, start), Role::Leader)
    }

    /// Start the call for `id` and enter it in the flight map (whose lock the caller holds).
    fn launch(
        self: &Arc<Self>,
        flights: &mut HashMap<CacheId, InFlight, IdHasher>,
        id: CacheId,
        takeover: bool,
        start: impl FnOnce(Arc<Self>, Arc<AtomicU64>) -> BoxFuture<'static, Result<Landed, Error>>,
    ) -> Flight {
        let waiters = Arc::new(AtomicU64::new(0));
        let flight = start(Arc::clone(self), Arc::clone(&waiters)).shared();
        flights.insert(
            id,
            InFlight {
                flight: flight.clone(),
                waiters,
                takeover,
            },
        );
        flight
    }

    /// Await the flight `role` says this request is part of; a wait for another's call (or a
    /// refresh) is counted and bounded by `max_wait`.
    async fn await_flight(&self, flight: Flight, role: Role) -> Result<Landed, Error> {
        match role {
            Role::Leader | Role::Following => flight.await,
            Role::Waiting => self.wait(flight).await,
        }
    }

    /// Wait for another request's call (or a refresh), at most `max_wait`.
    async fn wait(&self, flight: Flight) -> Result<Landed, Error> {
        self.count(&self.counters.coalesced_waits);
        self.count(&self.counters.waited);
        let timer = futures_timer::Delay::new(self.max_wait);
        match futures::future::select(flight, timer).await {
            Either::Left((landed, _)) => landed,
            Either::Right(_) => Err(Error::Timeout(self.max_wait)),
        }
    }

    /// Whether the entry just served should get a successor now, and may (no backoff pending).
    fn refresh_due(
        &self,
        id: &CacheId,
        entry: EntryState,
        limits: Option<UsageLimits>,
        now: Instant,
    ) -> bool {
        if !self.refresh.due(entry, limits, now, self.latency.average()) {
            return false;
        }
        if self.successors.lock().contains_key(id) {
            return false;
        }
        let backoff = self.backoff.lock();
        backoff.get(id).is_none_or(|b| now >= b.until)
    }

    /// Start a background refresh of `id` with `start`, unless a call for it is in flight already.
    fn start_refresh(
        self: &Arc<Self>,
        id: CacheId,
        start: impl FnOnce(Arc<Self>, Arc<AtomicU64>) -> BoxFuture<'static, Result<Landed, Error>>,
    ) {
        let flight = {
            let mut flights = self.flights.lock();
            // A refresh stores its successor before it leaves the flight map, so under this lock
            // a landed refresh is seen either here or in the successors.
            if flights.contains_key(&id) || self.successors.lock().contains_key(&id) {
                return;
            }
            self.launch(&mut flights, id, false, start)
        };
        self.count(&self.counters.refreshes_started);
        tracing::debug!("refresh-ahead started");
        self.spawner.spawn(Box::pin(async move {
            // The outcome is counted, cached or backed off inside the flight itself.
            let _ = flight.await;
        }));
    }

    /// After a refresh: clear or extend the backoff for `id`, leave the flight map, and only then
    /// count the outcome. Once a count shows, no request can join the finished flight any more:
    /// the next one to find the cache empty takes the successor over itself.
    fn refreshed(&self, id: CacheId, waiters: &AtomicU64, ok: bool) {
        if ok {
            self.backoff.lock().remove(&id);
        } else {
            let now = self.clock.now();
            let mut backoff = self.backoff.lock();
            let next = Backoff::after_failure(backoff.get(&id).copied(), now);
            backoff.insert(id, next);
        }
        self.flights.lock().remove(&id);
        // Read after the removal, so a request that joined in the meantime makes it late.
        let outcome = if !ok {
            &self.counters.refreshes_failed
        } else if waiters.load(Ordering::Relaxed) == 0 {
            &self.counters.refreshes_landed
        } else {
            &self.counters.refreshes_late
        };
        // Release, paired with `stats`' Acquire: whoever reads the count sees the flight gone.
        outcome.fetch_add(1, Ordering::Release);
    }

    /// Lead the flight for `id` after finding the cache empty: with `successor` (fetched ahead by a
    /// refresh), put it in the cache charged with `usage`, with no call to the underlying CMM;
    /// otherwise (or if it expired unused) call the underlying CMM, as on a miss.
    async fn fly_encrypt(
        self: Arc<Self>,
        id: CacheId,
        request: EncryptionRequest,
        usage: Usage,
        successor: Option<EncryptionEntry>,
    ) -> Result<Landed, Error> {
        // The previous flight for this id may have stored its entry between our lookup and our
        // taking the lead (it leaves the flight map only after storing): look once more, or a
        // half-used entry would be replaced. A successor then waits on.
        let now = self.clock.now();
        if let Some(hit) = self
            .cache
            .get_encryption_materials(&id, usage, self.limits, now)
            .await
        {
            self.count(&self.counters.hits);
            if let Some(successor) = successor {
                self.successors.lock().entry(id).or_insert(successor);
            }
            self.flights.lock().remove(&id);
            return Ok(Landed::Encryption {
                materials: hit.materials,
                cached: true,
            });
        }
        if let Some(mut entry) = successor.filter(|e| now < e.expires) {
            self.count(&self.counters.hits);
            entry.usage = usage;
            // In service from now: refresh-ahead judges the entry's rate of use from this instant.
            // Its age still runs out at `expires`, counted from when the materials were made.
            entry.created = now;
            let materials = Arc::clone(&entry.materials);
            self.cache.put_encryption_materials(id, entry).await;
            self.flights.lock().remove(&id);
            tracing::debug!("refreshed entry took over");
            return Ok(Landed::Encryption {
                materials,
                cached: true,
            });
        }
        let store = self.store_encryption(id, request, usage, Store::Now);
        self.missed(id, store).await
    }

    /// A refresh: `store` makes the new materials for `id` and keeps them as the successor of the
    /// entry that is about to run out.
    async fn refresh(
        self: Arc<Self>,
        id: CacheId,
        waiters: Arc<AtomicU64>,
        store: impl Future<Output = Result<Landed, Error>>,
    ) -> Result<Landed, Error> {
        // The successor is stashed, not cached: requests waiting for it (the current entry ran
        // out) look again, and the first to find the cache empty puts it there under its own
        // flight. Putting it here could replace an entry a miss stored meanwhile.
        let landed = store.await;
        self.refreshed(id, &waiters, landed.is_ok());
        landed
    }

    /// A miss, led by this request: `store` makes and stores the materials.
    async fn missed(
        &self,
        id: CacheId,
        store: impl Future<Output = Result<Landed, Error>>,
    ) -> Result<Landed, Error> {
        self.count(&self.counters.misses);
        self.count(&self.counters.waited);
        tracing::trace!("cache miss");
        let landed = store.await;
        // Only after the entry is in the cache, so that nobody starts a second call meanwhile.
        self.flights.lock().remove(&id);
        landed
    }

    /// Call the underlying CMM and store what it returns under `id`, charged with `usage`: in
    /// the cache, or (a refresh) as the successor of the entry there.
    async fn store_encryption(
        &self,
        id: CacheId,
        request: EncryptionRequest,
        usage: Usage,
        store: Store,
    ) -> Result<Landed, Error> {
        let materials = self
            .timed(self.underlying.get_encryption_materials(request))
            .await?;
        let materials = Arc::new(materials);
        // Suites without key derivation must never share a data key; an entry whose first use
        // already exhausts it would never be served again.
        let cached = materials.suite().has_kdf() && !self.limits.exhausted_by(usage);
        if cached {
            let created = self.clock.now();
            let entry = EncryptionEntry {
                materials: Arc::clone(&materials),
                created,
                expires: created + self.max_age,
                usage,
            };
            if store == Store::Now || !self.stash_successor(id, &entry, created) {
                self.cache.put_encryption_materials(id, entry).await;
            }
        }
        Ok(Landed::Encryption { materials, cached })
    }

    /// Keep `entry` as the successor of `id`'s current entry; false if too many are kept already
    /// (then it replaces the current entry at once).
    fn stash_successor(&self, id: CacheId, entry: &EncryptionEntry, now: Instant) -> bool {
        let mut successors = self.successors.lock();
        if successors.len() >= MAX_SUCCESSORS {
            successors.retain(|_, e| e.expires > now);
            if successors.len() >= MAX_SUCCESSORS {
                return false;
            }
        }
        successors.insert(id, entry.clone());
        true
    }

    async fn fly_decrypt(
        self: Arc<Self>,
        id: CacheId,
        request: DecryptRequest,
    ) -> Result<Landed, Error> {
        if let Some(hit) = self
            .cache
            .get_decryption_materials(&id, self.clock.now())
            .await
        {
            self.count(&self.counters.hits);
            self.flights.lock().remove(&id);
            return Ok(Landed::Decryption(hit.materials));
        }
        let store = self.store_decryption(id, request);
        self.missed(id, store).await
    }

    async fn store_decryption(
        &self,
        id: CacheId,
        request: DecryptRequest,
    ) -> Result<Landed, Error> {
        let materials = self
            .timed(self.underlying.decrypt_materials(request))
            .await?;
        let materials = Arc::new(materials);
        let created = self.clock.now();
        let entry = DecryptionEntry {
            materials: Arc::clone(&materials),
            created,
            expires: created + self.max_age,
        };
        self.cache.put_decryption_materials(id, entry).await;
        Ok(Landed::Decryption(materials))
    }
}

fn state_of_encryption(hit: &EncryptionHit) -> EntryState {
    EntryState {
        usage: hit.usage,
        created: hit.created,
        expires: hit.expires,
    }
}

fn state_of_decryption(hit: &DecryptionHit) -> EntryState {
    EntryState {
        usage: Usage::default(),
        created: hit.created,
        expires: hit.expires,
    }
}

#[async_trait]
impl MaterialsManager for CachingCmm {
    async fn get_encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<CompleteEncryptionMaterials, Error> {
        let inner = &self.inner;
        let Some(len) = request.max_plaintext_length else {
            return inner.bypass_encrypt(request).await;
        };
        if len > inner.limits.max_bytes || request.suite.is_some_and(|s| !s.has_kdf()) {
            return inner.bypass_encrypt(request).await;
        }
        let policy = request.commitment_policy;
        if let Some(suite) = request.suite {
            policy.check_encrypt(suite)?;
        }
        let id = inner.encryption_id(&request)?;
        let usage = Usage::message(len);
        loop {
            let now = inner.clock.now();
            if let Some(hit) = inner
                .cache
                .get_encryption_materials(&id, usage, inner.limits, now)
                .await
            {
                if policy.allows_encrypt(hit.materials.suite()) {
                    inner.count(&inner.counters.hits);
                    tracing::trace!("cache hit");
                    if inner.refresh_due(&id, state_of_encryption(&hit), Some(inner.limits), now) {
                        let refresh_request = request.clone();
                        inner.start_refresh(id, move |inner, waiters| {
                            let store = Arc::clone(&inner);
                            let store = async move {
                                store
                                    .store_encryption(
                                        id,
                                        refresh_request,
                                        Usage::default(),
                                        Store::AsSuccessor,
                                    )
                                    .await
                            };
                            inner.refresh(id, waiters, store).boxed()
                        });
                    }
                    return Ok((*hit.materials).clone());
                }
                // Made for a client with another commitment policy: do not mix them.
                return inner.bypass_encrypt(request).await;
            }
            let (flight, role) =
                inner.join_take_over_or_start(id, Some((usage, &request)), |inner, _| {
                    inner.fly_encrypt(id, request.clone(), usage, None).boxed()
                });
            let leader = role == Role::Leader;
            match inner.await_flight(flight, role).await? {
                // The leader's use was charged when the entry was stored (or found).
                Landed::Encryption { materials, .. } if leader => {
                    if policy.allows_encrypt(materials.suite()) {
                        return Ok((*materials).clone());
                    }
                    return inner.bypass_encrypt(request).await;
                }
                // Draw on the new entry, charging this request's own use.
                Landed::Encryption { cached: true, .. } => continue,
                // Nothing to share: get materials of our own.
                Landed::Encryption { cached: false, .. } | Landed::Decryption(_) => {
                    return inner.bypass_encrypt(request).await;
                }
            }
        }
    }

    async fn decrypt_materials(
        &self,
        request: DecryptRequest,
    ) -> Result<CompleteDecryptionMaterials, Error> {
        let inner = &self.inner;
        let policy = request.commitment_policy;
        policy.check_decrypt(request.suite)?;
        if !request.suite.has_kdf() {
            return inner.bypass_decrypt(request).await;
        }
        let id = inner.decryption_id(&request)?;
        let now = inner.clock.now();
        if let Some(hit) = inner.cache.get_decryption_materials(&id, now).await {
            inner.count(&inner.counters.hits);
            tracing::trace!("cache hit");
            if inner.refresh_due(&id, state_of_decryption(&hit), None, now) {
                let refresh_request = request.clone();
                inner.start_refresh(id, move |inner, waiters| {
                    let store = Arc::clone(&inner);
                    let store = async move { store.store_decryption(id, refresh_request).await };
                    inner.refresh(id, waiters, store).boxed()
                });
            }
            return Ok((*hit.materials).clone());
        }
        let (flight, role) = inner.join_or_start(id, |inner, _| {
            inner.fly_decrypt(id, request.clone()).boxed()
        });
        match inner.await_flight(flight, role).await? {
            Landed::Decryption(materials) => Ok((*materials).clone()),
            Landed::Encryption { .. } => inner.bypass_decrypt(request).await,
        }
    }
}
