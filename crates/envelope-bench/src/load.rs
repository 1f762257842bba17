//! The `cache` workload: encrypt (and optionally decrypt) load through a caching CMM over a
//! simulated master key, and the same load without the cache.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envelope::cache::RefreshAhead;
use envelope::keyring::Error as KeyringError;
use envelope::{
    AlgorithmSuite, CachingCmm, CommitmentPolicy, CompleteDecryptionMaterials, DecryptionMaterials,
    EncryptedDataKey, EncryptionContext, EncryptionMaterials, Keyring, LocalCache,
    MaterialsManager, RawAesKeyring, SecretBytes, async_trait,
};
use parking_lot::Mutex;
use serde::Serialize;

/// What to run.
#[derive(Clone, Debug, Serialize)]
pub struct LoadSpec {
    /// OS threads (blocking API), or async tasks when `async_tasks`.
    pub concurrency: usize,
    /// Use tokio tasks instead of threads.
    pub async_tasks: bool,
    /// Plaintext bytes per message.
    pub message_size: usize,
    /// The algorithm suite.
    #[serde(serialize_with = "suite_hex")]
    pub suite: AlgorithmSuite,
    /// Distinct encryption contexts, used round-robin.
    pub contexts: usize,
    /// Cache limits.
    pub max_age: Duration,
    /// Messages per data key.
    pub max_messages: u64,
    /// Bytes per data key.
    pub max_bytes: u64,
    /// Cache capacity (entries).
    pub capacity: usize,
    /// Simulated master-key latency per call.
    pub latency: Duration,
    /// Master-key calls per second allowed (a quota); excess calls queue.
    pub rate_limit: Option<f64>,
    /// Stop after this long ...
    pub duration: Option<Duration>,
    /// ... or after this many messages.
    pub messages: Option<u64>,
    /// Also decrypt every message.
    pub decrypt: bool,
    /// Refresh-ahead of the caching CMM.
    #[serde(serialize_with = "display")]
    pub refresh_ahead: RefreshAhead,
    /// Messages per second across all workers (a steady schedule), instead of flat out.
    pub rate: Option<f64>,
}

fn display<S: serde::Serializer>(value: &RefreshAhead, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.to_string())
}

fn suite_hex<S: serde::Serializer>(suite: &AlgorithmSuite, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{:04X}", suite.id()))
}

/// What one run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadResult {
    /// Messages encrypted.
    pub messages: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Messages per second.
    pub msg_per_s: f64,
    /// Plaintext megabytes (10^6) per second.
    pub mb_per_s: f64,
    /// Calls to the master key (generate + decrypt).
    pub master_key_calls: u64,
    /// Cache hits / (hits + misses), encrypt and decrypt together; `None` without a cache.
    pub hit_rate: Option<f64>,
    /// Requests that waited on another request's master-key call.
    pub coalesced_waits: u64,
    /// Requests that waited on a master-key call at all (their own miss, another's, a late
    /// refresh, or a bypass).
    pub waited_on_master_key: u64,
    /// `waited_on_master_key` over all requests (encrypt, and decrypt when enabled).
    pub waited_share: f64,
    /// Messages that took 1 ms or more (on a steady schedule: counted from when they were due).
    pub slow_share: f64,
    /// Background refreshes started, landed in time, landed late, failed.
    pub refreshes: [u64; 4],
    /// Per-message latency percentiles (encrypt, plus decrypt when enabled), microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Maximum.
    pub max_us: u64,
}

/// A master key that takes `latency` per call and honours a calls-per-second quota, wrapping data
/// keys with AES-256 underneath.
pub struct SimulatedMasterKey {
    inner: RawAesKeyring,
    latency: Duration,
    /// Seconds between calls under the quota, and the next free slot.
    quota: Option<(Duration, Mutex<Instant>)>,
    calls: AtomicU64,
}

impl SimulatedMasterKey {
    /// A simulated master key.
    pub fn new(latency: Duration, rate_limit: Option<f64>) -> Result<Self, KeyringError> {
        let quota = match rate_limit {
            Some(rate) => Some((
                Duration::try_from_secs_f64(1.0 / rate).map_err(|_| {
                    KeyringError::InvalidConfiguration(format!(
                        "rate limit {rate}: give calls per second above 0 that a timer can keep"
                    ))
                })?,
                Mutex::new(Instant::now()),
            )),
            None => None,
        };
        Ok(Self {
            inner: RawAesKeyring::new("envelope-bench", "simulated", SecretBytes::random(32)?)?,
            latency,
            quota,
            calls: AtomicU64::new(0),
        })
    }

    /// Calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// One simulated call: the latency, after any wait for the quota.
    pub async fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut wait = self.latency;
        if let Some((interval, next)) = &self.quota {
            let now = Instant::now();
            let mut next = next.lock();
            let slot = (*next).max(now);
            *next = slot + *interval;
            wait += slot - now;
        }
        if !wait.is_zero() {
            futures_timer::Delay::new(wait).await;
        }
    }
}

#[async_trait]
impl Keyring for SimulatedMasterKey {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        self.call().await;
        self.inner.on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, KeyringError> {
        self.call().await;
        self.inner.on_decrypt(materials, encrypted_data_keys).await
    }
}

/// The result with the cache and, unless `baseline` is false, without it.
#[derive(Clone, Debug, Serialize)]
pub struct CacheReport {
    /// The workload.
    pub spec: LoadSpec,
    /// The crypto backend.
    pub backend: &'static str,
    /// Through the caching CMM.
    pub cached: LoadResult,
    /// Straight to the master key.
    pub uncached: Option<LoadResult>,
}

/// Run the workload with the cache, then (if asked) without.
pub fn run_cache(spec: &LoadSpec, baseline: bool) -> Result<CacheReport, String> {
    let cached = run_one(spec, true)?;
    let uncached = if baseline {
        Some(run_one(spec, false)?)
    } else {
        None
    };
    Ok(CacheReport {
        spec: spec.clone(),
        backend: envelope::crypto::BACKEND,
        cached,
        uncached,
    })
}

struct Shared {
    cmm: Arc<dyn MaterialsManager>,
    client: envelope::Client,
    plaintext: Vec<u8>,
    contexts: Vec<EncryptionContext>,
    suite: AlgorithmSuite,
    decrypt: bool,
    deadline: Option<Instant>,
    budget: Option<u64>,
    issued: AtomicU64,
    /// With a steady rate: when the run started and the interval between messages.
    schedule: Option<(Instant, Duration)>,
    /// Workers are OS threads (they may block), not async tasks.
    threads: bool,
}

impl Shared {
    /// Claim the next message number, or `None` when the run is over.
    fn next(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        match self.budget {
            Some(budget) if n >= budget => None,
            _ => Some(n),
        }
    }

    async fn one(&self, n: u64) -> Result<(), String> {
        let index = usize::try_from(n % self.contexts.len() as u64).unwrap_or(0);
        let context = &self.contexts[index];
        let message = self
            .client
            .encrypt(&*self.cmm, &self.plaintext)
            .encryption_context(context.clone())
            .suite(self.suite)
            .await
            .map_err(|e| format!("encrypt failed: {e}"))?;
        if self.decrypt {
            let decrypted = self
                .client
                .decrypt(&*self.cmm, message.ciphertext())
                .await
                .map_err(|e| format!("decrypt failed: {e}"))?;
            if decrypted.plaintext().len() != self.plaintext.len() {
                return Err("decrypted to the wrong length".into());
            }
        }
        Ok(())
    }

    /// Wait until `due`. Threads sleep to within 200 us of it and spin the rest, so the schedule
    /// is kept to a few microseconds (a timer wheel would add a millisecond of its own); tasks
    /// must not block their runtime and use its timer.
    async fn sleep_until(&self, due: Instant) {
        let now = Instant::now();
        if due <= now {
            return;
        }
        if !self.threads {
            futures_timer::Delay::new(due - now).await;
            return;
        }
        let early = Duration::from_micros(200);
        if due - now > early {
            std::thread::sleep(due - now - early);
        }
        while Instant::now() < due {
            std::hint::spin_loop();
        }
    }

    /// One worker: messages until the run is over; per-message latencies in microseconds.
    async fn worker(&self) -> Result<Vec<u32>, String> {
        let mut latencies = Vec::new();
        while let Some(n) = self.next() {
            // On a steady schedule a message's latency counts from when it was due, so a request
            // held up behind one that waits on the master key counts as held up too (no
            // coordinated omission).
            let mut started = Instant::now();
            if let Some((start, interval)) = self.schedule {
                let due = start + interval.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
                self.sleep_until(due).await;
                started = due;
            }
            self.one(n).await?;
            latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
        }
        Ok(latencies)
    }
}

fn run_one(spec: &LoadSpec, with_cache: bool) -> Result<LoadResult, String> {
    let master = Arc::new(
        SimulatedMasterKey::new(spec.latency, spec.rate_limit).map_err(|e| e.to_string())?,
    );
    let caching = if with_cache {
        let capacity = NonZeroUsize::new(spec.capacity).ok_or("the capacity must be > 0")?;
        Some(
            CachingCmm::builder(master.clone(), LocalCache::new(capacity))
                .max_age(spec.max_age)
                .max_messages(spec.max_messages)
                .max_bytes(spec.max_bytes)
                .refresh_ahead(spec.refresh_ahead)
                .build()
                .map_err(|e| format!("invalid cache limits: {e}"))?,
        )
    } else {
        None
    };
    let cmm: Arc<dyn MaterialsManager> = match &caching {
        Some(c) => Arc::new(c.clone()),
        None => master.clone(),
    };
    let policy = CommitmentPolicy::strictest_for(spec.suite);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        cmm,
        client: envelope::Client::builder()
            .commitment_policy(policy)
            .build(),
        plaintext: vec![0x5a; spec.message_size],
        contexts: (0..spec.contexts.max(1))
            .map(|i| EncryptionContext::from([("tenant", format!("tenant-{i}"))]))
            .collect(),
        suite: spec.suite,
        decrypt: spec.decrypt,
        deadline: spec.duration.map(|d| started + d),
        budget: spec.messages,
        issued: AtomicU64::new(0),
        schedule: match spec.rate {
            Some(rate) => match Duration::try_from_secs_f64(1.0 / rate) {
                Ok(interval) if rate > 0.0 => Some((started, interval)),
                _ => return Err(format!("--rate {rate}: give messages per second above 0")),
            },
            None => None,
        },
        threads: !spec.async_tasks,
    });
    let concurrency = spec.concurrency.max(1);
    let per_worker: Vec<Result<Vec<u32>, String>> = if spec.async_tasks {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let handles: Vec<_> = (0..concurrency)
                .map(|_| {
                    let shared = shared.clone();
                    tokio::spawn(async move { shared.worker().await })
                })
                .collect();
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.map_err(|e| e.to_string()).and_then(|r| r));
            }
            out
        })
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..concurrency)
                .map(|_| {
                    let shared = shared.clone();
                    scope.spawn(move || futures::executor::block_on(shared.worker()))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| "a worker thread panicked".to_string())
                        .and_then(|r| r)
                })
                .collect()
        })
    };
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for worker in per_worker {
        latencies.extend(worker?);
    }
    latencies.sort_unstable();
    let messages = latencies.len() as u64;
    let percentile = |per_mille: usize| -> u64 {
        match latencies.len() {
            0 => 0,
            n => u64::from(latencies[(n - 1) * per_mille / 1000]),
        }
    };
    let stats = caching.as_ref().map(CachingCmm::stats);
    Ok(LoadResult {
        messages,
        seconds,
        msg_per_s: messages as f64 / seconds,
        mb_per_s: (messages as f64 * spec.message_size as f64) / seconds / 1e6,
        master_key_calls: master.calls(),
        hit_rate: stats.map(|s| {
            let lookups = s.hits + s.misses;
            if lookups == 0 {
                0.0
            } else {
                s.hits as f64 / lookups as f64
            }
        }),
        coalesced_waits: stats.map_or(0, |s| s.coalesced_waits),
        waited_on_master_key: stats.map_or(messages, |s| s.waited_on_master_key),
        waited_share: {
            let requests = messages * if spec.decrypt { 2 } else { 1 };
            let waited = stats.map_or(requests, |s| s.waited_on_master_key);
            if requests == 0 {
                0.0
            } else {
                waited as f64 / requests as f64
            }
        },
        slow_share: if latencies.is_empty() {
            0.0
        } else {
            latencies.iter().filter(|&&us| us >= 1000).count() as f64 / latencies.len() as f64
        },
        refreshes: stats.map_or([0; 4], |s| {
            [
                s.refreshes_started,
                s.refreshes_landed,
                s.refreshes_late,
                s.refreshes_failed,
            ]
        }),
        p50_us: percentile(500),
        p99_us: percentile(990),
        max_us: latencies.last().copied().map_or(0, u64::from),
    })
}
