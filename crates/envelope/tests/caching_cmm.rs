//! The caching CMM: bypass rules, limits, age, coalescing, failures, partitions, and the stress and
//! burst tests of the issue.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

mod caching_support;

use std::collections::HashMap;
use std::future::IntoFuture;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use caching_support::CountingKeyring;
use envelope::blocking::Client;
use envelope::cache::{CachingCmm, LocalCache, ManualClock, MaterialsCache, RefreshAhead};
use envelope::keyring::Error as KeyringError;
use envelope::{
    AlgorithmSuite, CommitmentPolicy, EncryptionContext, EncryptionRequest, Error,
    MaterialsManager, RequiredEncryptionContextCmm,
};

const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

fn cache(n: usize) -> LocalCache {
    LocalCache::new(NonZeroUsize::new(n).unwrap())
}

/// A caching CMM without refresh-ahead: the tests of exact miss counts.
fn cmm(keyring: &CountingKeyring, max_messages: u64) -> CachingCmm {
    refreshing(keyring, max_messages, RefreshAhead::Off, Arc::default())
}

/// Refresh-ahead at 30 % of an entry's messages or age left.
const EARLY: RefreshAhead = RefreshAhead::Fraction(0.3);

fn refreshing(
    keyring: &CountingKeyring,
    max_messages: u64,
    refresh: RefreshAhead,
    clock: Arc<ManualClock>,
) -> CachingCmm {
    CachingCmm::builder(keyring.clone(), cache(100))
        .max_age(Duration::from_secs(600))
        .max_messages(max_messages)
        .refresh_ahead(refresh)
        .clock(clock)
        .build()
        .unwrap()
}

/// A caching CMM builder whose entries live ten seconds on `clock`, refreshed by `refresh`.
fn ten_seconds(
    keyring: &CountingKeyring,
    refresh: RefreshAhead,
    clock: &Arc<ManualClock>,
) -> envelope::cache::CachingCmmBuilder<Duration> {
    CachingCmm::builder(keyring.clone(), cache(10))
        .max_age(Duration::from_secs(10))
        .refresh_ahead(refresh)
        .clock(Arc::clone(clock))
}

/// Poll `done` every millisecond for up to ten seconds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The same, awaiting between polls: for tests on a runtime.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: not within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn ec(n: u32) -> EncryptionContext {
    EncryptionContext::from_iter([("tenant", format!("t{n}"))])
}

/// The wrapped data key identifies the data key a message used.
fn data_key_of(message: &[u8]) -> Vec<u8> {
    let (header, _) = envelope::format::Header::parse(message, &Default::default())
        .unwrap()
        .complete("header")
        .unwrap();
    header.body().encrypted_data_keys()[0].ciphertext().to_vec()
}

#[test]
fn hits_share_a_data_key_and_decrypt() {
    let keyring = CountingKeyring::new();
    let cmm = cmm(&keyring, 1000);
    let client = Client::new();
    let messages: Vec<_> = (0..10)
        .map(|i| {
            client
                .encrypt(&cmm, &[i; 100])
                .encryption_context(ec(1))
                .run()
                .unwrap()
        })
        .collect();
    assert_eq!(keyring.encrypts(), 1);
    let keys: std::collections::HashSet<_> = messages
        .iter()
        .map(|m| data_key_of(m.ciphertext()))
        .collect();
    assert_eq!(keys.len(), 1);
    // Every message has its own message id, hence its own derived key.
    let ids: std::collections::HashSet<_> = messages
        .iter()
        .map(|m| *m.header().body().message_id())
        .collect();
    assert_eq!(ids.len(), 10);
    // Signed suite (the default): the signing key is cached with the data key.
    let pk: std::collections::HashSet<_> = messages
        .iter()
        .map(|m| {
            m.encryption_context()
                .get("aws-crypto-public-key")
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(pk.len(), 1);
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(
            client
                .decrypt(&cmm, m.ciphertext())
                .run()
                .unwrap()
                .plaintext(),
            &[i as u8; 100]
        );
    }
    assert_eq!(keyring.decrypts(), 1, "decryption materials are cached too");
    let stats = cmm.stats();
    assert_eq!(
        (
            stats.hits,
            stats.misses,
            stats.underlying_calls,
            stats.bypasses
        ),
        (9 + 9, 2, 2, 0)
    );
    // Different contexts are different entries.
    client
        .encrypt(&cmm, b"x")
        .encryption_context(ec(2))
        .run()
        .unwrap();
    assert_eq!(keyring.encrypts(), 2);
}

#[test]
fn message_limit() {
    let keyring = CountingKeyring::new();
    let cmm = cmm(&keyring, 3);
    let client = Client::new();
    let mut per_key: HashMap<Vec<u8>, usize> = HashMap::new();
    for _ in 0..10 {
        let m = client.encrypt(&cmm, b"x").suite(UNSIGNED).run().unwrap();
        *per_key.entry(data_key_of(m.ciphertext())).or_default() += 1;
    }
    assert_eq!(keyring.encrypts(), 4);
    let mut counts: Vec<usize> = per_key.into_values().collect();
    counts.sort();
    assert_eq!(counts, [1, 3, 3, 3]);
    assert_eq!(cmm.stats().cache.evicted_limits, 3);
}

#[test]
fn byte_limit_and_bypasses() {
    let keyring = CountingKeyring::new();
    let cmm = CachingCmm::builder(keyring.clone(), cache(10))
        .max_age(Duration::from_secs(60))
        .max_bytes(1000)
        // Exact call counts: with refresh-ahead on (the default), two quick 400-byte messages
        // put the entry within its byte limit at their own rate, and the background refresh
        // would race the first assertion.
        .refresh_ahead(RefreshAhead::Off)
        .build()
        .unwrap();
    let client = Client::new();
    for _ in 0..2 {
        seal(&client, &cmm, 400);
    }
    assert_eq!(keyring.encrypts(), 1);
    // 400 + 400 + 400 would pass 1000: the entry is retired and a new key made.
    seal(&client, &cmm, 400);
    assert_eq!(keyring.encrypts(), 2);
    // A message larger than the byte limit on its own bypasses the cache.
    seal(&client, &cmm, 1001);
    seal(&client, &cmm, 1001);
    assert_eq!(keyring.encrypts(), 4);
    assert_eq!(cmm.stats().bypasses, 2);
    // Unknown length bypasses.
    futures::executor::block_on(
        cmm.get_encryption_materials(EncryptionRequest::new(ec(1), CommitmentPolicy::default())),
    )
    .unwrap();
    assert_eq!(cmm.stats().bypasses, 3);
    // Suites without key derivation are never cached.
    let legacy = Client::from(
        envelope::Client::builder()
            .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
            .build(),
    );
    for _ in 0..3 {
        legacy
            .encrypt(&cmm, b"x")
            .suite(AlgorithmSuite::Aes128GcmIv12Tag16NoKdf)
            .run()
            .unwrap();
    }
    assert_eq!(keyring.encrypts(), 8);
    assert_eq!(cmm.stats().bypasses, 6);
}

#[test]
fn age_limit_with_an_injected_clock() {
    let keyring = CountingKeyring::new();
    let clock = Arc::new(ManualClock::new());
    let cmm = CachingCmm::builder(keyring.clone(), cache(10))
        .max_age(Duration::from_secs(300))
        .clock(Arc::clone(&clock))
        .build()
        .unwrap();
    let client = Client::new();
    let first = client.encrypt(&cmm, b"x").suite(UNSIGNED).run().unwrap();
    clock.advance(Duration::from_secs(299));
    client.encrypt(&cmm, b"x").suite(UNSIGNED).run().unwrap();
    assert_eq!(keyring.encrypts(), 1);
    clock.advance(Duration::from_secs(1));
    client.encrypt(&cmm, b"x").suite(UNSIGNED).run().unwrap();
    assert_eq!(keyring.encrypts(), 2, "never served at max_age");
    assert_eq!(cmm.stats().cache.evicted_age, 1);
    // Decryption entries age too.
    client.decrypt(&cmm, first.ciphertext()).run().unwrap();
    client.decrypt(&cmm, first.ciphertext()).run().unwrap();
    assert_eq!(keyring.decrypts(), 1);
    clock.advance(Duration::from_secs(300));
    client.decrypt(&cmm, first.ciphertext()).run().unwrap();
    assert_eq!(keyring.decrypts(), 2);
}

#[test]
fn configuration_is_checked() {
    let k = CountingKeyring::new();
    let builder = |max_age| CachingCmm::builder(k.clone(), cache(1)).max_age(max_age);
    let second = Duration::from_secs(1);
    assert!(builder(Duration::ZERO).build().is_err());
    assert!(builder(second).max_messages(0).build().is_err());
    assert!(builder(second).max_messages((1 << 32) + 1).build().is_err());
    assert!(builder(second).max_bytes(1 << 63).build().is_err());
    let ok = builder(second).max_messages(1 << 32).build().unwrap();
    assert_eq!(ok.partition().len(), 36, "a random UUID");
}

#[test]
fn partitions_share_entries_only_by_name() {
    let keyring = CountingKeyring::new();
    let shared = Arc::new(cache(100));
    let make = |partition: Option<&str>| {
        let shared: Arc<dyn MaterialsCache> = shared.clone();
        let b = CachingCmm::builder_from_arcs(Arc::new(keyring.clone()), shared)
            .max_age(Duration::from_secs(60));
        match partition {
            Some(p) => b.partition(p).build().unwrap(),
            None => b.build().unwrap(),
        }
    };
    let client = Client::new();
    let (a, b) = (make(Some("orders")), make(Some("orders")));
    client.encrypt(&a, b"x").suite(UNSIGNED).run().unwrap();
    client.encrypt(&b, b"x").suite(UNSIGNED).run().unwrap();
    assert_eq!(keyring.encrypts(), 1, "same partition name: shared");
    let (c, d) = (make(None), make(None));
    client.encrypt(&c, b"x").suite(UNSIGNED).run().unwrap();
    client.encrypt(&d, b"x").suite(UNSIGNED).run().unwrap();
    assert_eq!(keyring.encrypts(), 3, "random partitions: separate");
}

#[test]
fn materials_never_cross_between_different_requests() {
    let keyring = CountingKeyring::new();
    let caching = Arc::new(cmm(&keyring, 1000));
    let client = Client::new();
    let full = EncryptionContext::from_iter([("tenant", "acme"), ("stage", "prod")]);
    // Same context, with and without required keys: different materials, different entries.
    let plain = client
        .encrypt(&*caching, b"x")
        .encryption_context(full.clone())
        .run()
        .unwrap();
    let required = RequiredEncryptionContextCmm::from_arc(caching.clone(), ["tenant"]).unwrap();
    let req_msg = client
        .encrypt(&required, b"x")
        .encryption_context(full.clone())
        .run()
        .unwrap();
    assert_eq!(keyring.encrypts(), 2);
    assert!(
        plain
            .header()
            .body()
            .encryption_context()
            .contains_key("tenant")
    );
    assert!(
        !req_msg
            .header()
            .body()
            .encryption_context()
            .contains_key("tenant")
    );
    // A cached decryption entry never vouches for a different reproduced context.
    client
        .decrypt(&required, req_msg.ciphertext())
        .encryption_context([("tenant", "acme")])
        .run()
        .unwrap();
    let wrong = client
        .decrypt(&required, req_msg.ciphertext())
        .encryption_context([("tenant", "evil")])
        .run();
    assert!(wrong.is_err());
    // Policies: a legacy client's entry is never served to a committing client.
    let legacy = Client::from(
        envelope::Client::builder()
            .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
            .build(),
    );
    let old = legacy.encrypt(&*caching, b"y").run().unwrap();
    assert_eq!(
        old.suite(),
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384
    );
    let new = client.encrypt(&*caching, b"y").run().unwrap();
    assert_eq!(
        new.suite(),
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
    );
}

/// The burst test: 64 concurrent encrypts on a cold cache, a master key that takes 5 ms per
/// data key: exactly one keyring call. The key is held until all 63 others wait, so that a
/// request the scheduler starts late is not served by the landed entry instead of waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_on_a_cold_cache_makes_one_call() {
    let keyring = CountingKeyring::new().with_delay(Duration::from_millis(5));
    keyring.hold.store(true, Ordering::SeqCst);
    let cmm = Arc::new(cmm(&keyring, 1 << 32));
    let client = Arc::new(envelope::Client::new());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (cmm, client) = (Arc::clone(&cmm), Arc::clone(&client));
            tokio::spawn(async move {
                client
                    .encrypt(&*cmm, &[i as u8; 1024])
                    .suite(UNSIGNED)
                    .await
                    .unwrap()
                    .into_ciphertext()
            })
        })
        .collect();
    until("63 requests wait", || cmm.stats().coalesced_waits == 63).await;
    keyring.hold.store(false, Ordering::SeqCst);
    let mut keys = std::collections::HashSet::new();
    for t in tasks {
        keys.insert(data_key_of(&t.await.unwrap()));
    }
    assert_eq!(keyring.encrypts(), 1);
    assert_eq!(keys.len(), 1);
    let stats = cmm.stats();
    assert_eq!(
        (
            stats.misses,
            stats.underlying_calls,
            stats.hits + stats.misses
        ),
        (1, 1, 64)
    );
    assert_eq!(stats.coalesced_waits, 63);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_call_is_not_cached_and_every_waiter_gets_the_error() {
    let keyring = CountingKeyring::new().with_delay(Duration::from_millis(20));
    keyring.fail.store(true, Ordering::SeqCst);
    keyring.hold.store(true, Ordering::SeqCst);
    let cmm = Arc::new(cmm(&keyring, 100));
    let client = Arc::new(envelope::Client::new());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (cmm, client) = (Arc::clone(&cmm), Arc::clone(&client));
            tokio::spawn(async move { client.encrypt(&*cmm, b"x").suite(UNSIGNED).await })
        })
        .collect();
    // Fail only once all fifteen others wait on the one call.
    until("15 requests wait", || cmm.stats().coalesced_waits == 15).await;
    keyring.hold.store(false, Ordering::SeqCst);
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(
            matches!(err, Error::Materials(KeyringError::Provider(_))),
            "{err}"
        );
        assert!(err.is_retryable());
    }
    assert_eq!(keyring.encrypts(), 1, "one call for all sixteen");
    keyring.fail.store(false, Ordering::SeqCst);
    client.encrypt(&*cmm, b"x").suite(UNSIGNED).await.unwrap();
    assert_eq!(keyring.encrypts(), 2, "the failure was not cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_is_bounded() {
    let keyring = CountingKeyring::new().with_delay(Duration::from_secs(3));
    let cmm = Arc::new(
        CachingCmm::builder(keyring.clone(), cache(10))
            .max_age(Duration::from_secs(60))
            .max_wait(Duration::from_millis(100))
            .build()
            .unwrap(),
    );
    let client = Arc::new(envelope::Client::new());
    let leader = {
        let (cmm, client) = (Arc::clone(&cmm), Arc::clone(&client));
        tokio::spawn(async move { client.encrypt(&*cmm, b"x").suite(UNSIGNED).await })
    };
    // The keyring is called only once the leader's flight is in place.
    until("the leader calls the keyring", || keyring.encrypts() == 1).await;
    let start = std::time::Instant::now();
    let err = client
        .encrypt(&*cmm, b"x")
        .suite(UNSIGNED)
        .into_future()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Materials(KeyringError::Timeout(_))),
        "{err}"
    );
    assert!(err.is_retryable());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    leader.await.unwrap().unwrap();
    assert_eq!(keyring.encrypts(), 1);
}

/// Encrypt `len` zero bytes with the unsigned suite.
fn seal(client: &Client, cmm: &CachingCmm, len: usize) {
    client
        .encrypt(cmm, &vec![0; len])
        .suite(UNSIGNED)
        .run()
        .unwrap();
}

fn encrypt_n(client: &Client, cmm: &CachingCmm, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let m = client
                .encrypt(cmm, b"record")
                .suite(UNSIGNED)
                .run()
                .unwrap();
            data_key_of(m.ciphertext())
        })
        .collect()
}

/// Refresh-ahead at 30 % left of 10 messages: the 7th message starts a background call, whose
/// materials wait beside the entry and take over when its 10 uses are spent, so no request waits
/// on the master key after the first, no use of a data key is thrown away, and the old data key is
/// never used again.
#[test]
fn a_refresh_lands_before_the_entry_runs_out_and_nobody_waits() {
    let keyring = CountingKeyring::new();
    let cmm = refreshing(&keyring, 10, EARLY, Arc::default());
    let client = Client::new();
    let first = encrypt_n(&client, &cmm, 7);
    eventually("the refresh lands", || cmm.stats().refreshes_landed == 1);
    let rest = encrypt_n(&client, &cmm, 3);
    let after = encrypt_n(&client, &cmm, 6); // the new entry, short of its own refresh
    assert!(first.iter().chain(&rest).all(|k| *k == first[0]));
    assert!(after.iter().all(|k| *k == after[0] && *k != first[0]));
    let stats = cmm.stats();
    assert_eq!(
        (
            stats.underlying_calls,
            stats.waited_on_master_key,
            stats.refreshes_started
        ),
        (2, 1, 1),
        "{stats:?}"
    );
    assert_eq!((stats.refreshes_late, stats.refreshes_failed), (0, 0));
    assert_eq!(stats.underlying_latency.count(), 2);
    assert_eq!(
        keyring.last_thread.lock().as_deref(),
        Some("envelope-refresh"),
        "without a runtime, the refresh runs on a thread of its own"
    );
}

/// A successor fetched ahead ages from when it was fetched: if it expires before its predecessor
/// is spent, it is never served and the next request makes new materials, as on a miss.
#[test]
fn a_successor_that_expires_unused_is_never_served() {
    let keyring = CountingKeyring::new();
    let clock = Arc::new(ManualClock::new());
    let cmm = ten_seconds(&keyring, EARLY, &clock)
        .max_messages(10)
        .build()
        .unwrap();
    let client = Client::new();
    let first = encrypt_n(&client, &cmm, 7); // the 7th starts the refresh
    eventually("the refresh lands", || cmm.stats().refreshes_landed == 1);
    assert_eq!(keyring.encrypts(), 2);
    clock.advance(Duration::from_secs(11)); // both the entry and its successor are past max_age
    let next = encrypt_n(&client, &cmm, 1);
    assert_ne!(next[0], first[0]);
    let stats = cmm.stats();
    assert_eq!(
        (keyring.encrypts(), stats.misses, stats.waited_on_master_key),
        (3, 2, 2),
        "the expired successor was dropped, not served: {stats:?}"
    );
}

/// A refresh still in flight when the entry runs out: the late requests wait for it (once each,
/// coalesced into that one call), and never more than one call runs at a time.
#[test]
fn a_slow_refresh_makes_late_requests_wait_exactly_once() {
    let keyring = CountingKeyring::new();
    let cmm = Arc::new(refreshing(&keyring, 10, EARLY, Arc::default()));
    let client = Arc::new(Client::new());
    let old = encrypt_n(&client, &cmm, 6);
    keyring.hold.store(true, Ordering::SeqCst);
    let old_rest = encrypt_n(&client, &cmm, 4); // the 7th starts the refresh; 8-10 use the old entry
    eventually("the refresh is under way", || keyring.encrypts() == 2);
    let late: Vec<_> = (0..2)
        .map(|_| {
            let (client, cmm) = (Arc::clone(&client), Arc::clone(&cmm));
            std::thread::spawn(move || encrypt_n(&client, &cmm, 1))
        })
        .collect();
    eventually("both late requests wait", || {
        cmm.stats().coalesced_waits == 2
    });
    keyring.hold.store(false, Ordering::SeqCst);
    let late: Vec<Vec<u8>> = late.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(old.iter().chain(&old_rest).all(|k| *k == old[0]));
    assert!(late.iter().all(|k| *k == late[0] && *k != old[0]));
    let stats = cmm.stats();
    assert_eq!(
        (
            stats.underlying_calls,
            stats.refreshes_late,
            stats.refreshes_landed,
            stats.waited_on_master_key
        ),
        (2, 1, 0, 3),
        "{stats:?}"
    );
    assert_eq!(keyring.most_at_once.load(Ordering::SeqCst), 1);
}

/// A failing refresh is not cached and leaves the entry serving; it is retried with backoff
/// (100 ms, then 200 ms, on the CMM's clock), and lands once the master key answers again.
#[test]
fn a_failing_refresh_leaves_service_intact_and_backs_off() {
    let keyring = CountingKeyring::new();
    let clock = Arc::new(ManualClock::new());
    let cmm = refreshing(&keyring, 10, EARLY, Arc::clone(&clock));
    let client = Client::new();
    let old = encrypt_n(&client, &cmm, 6);
    keyring.fail.store(true, Ordering::SeqCst);
    encrypt_n(&client, &cmm, 1); // the 7th: the refresh starts and fails
    eventually("the refresh fails", || cmm.stats().refreshes_failed == 1);
    let served = encrypt_n(&client, &cmm, 1); // backing off: no second attempt yet
    assert_eq!(cmm.stats().refreshes_started, 1);
    clock.advance(Duration::from_millis(150));
    encrypt_n(&client, &cmm, 1); // past the backoff: tried again, fails again
    eventually("the second refresh fails", || {
        cmm.stats().refreshes_failed == 2
    });
    keyring.fail.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_millis(250));
    let last_old = encrypt_n(&client, &cmm, 1); // the 10th: the third attempt lands
    eventually("the third refresh lands", || {
        cmm.stats().refreshes_landed == 1
    });
    let new = encrypt_n(&client, &cmm, 1);
    assert!(
        served.iter().chain(&last_old).all(|k| *k == old[0]),
        "the old entry kept serving"
    );
    assert_ne!(new[0], old[0]);
    let stats = cmm.stats();
    assert_eq!(
        (
            stats.refreshes_started,
            stats.refreshes_failed,
            stats.refreshes_landed,
            stats.waited_on_master_key
        ),
        (3, 2, 1, 1),
        "{stats:?}"
    );
}

/// Decryption entries refresh by age: at 20 % of a 10 s age left, the next decryption starts a
/// refresh, so the entry never expires under a steady reader.
#[test]
fn decryption_entries_refresh_by_age() {
    let keyring = CountingKeyring::new();
    let clock = Arc::new(ManualClock::new());
    let cmm = ten_seconds(&keyring, RefreshAhead::Fraction(0.2), &clock)
        .build()
        .unwrap();
    let client = Client::new();
    let message = client
        .encrypt(&keyring, b"x")
        .suite(UNSIGNED)
        .run()
        .unwrap();
    client.decrypt(&cmm, message.ciphertext()).run().unwrap();
    clock.advance(Duration::from_millis(8500));
    client.decrypt(&cmm, message.ciphertext()).run().unwrap();
    eventually("the decryption refresh lands", || {
        cmm.stats().refreshes_landed == 1
    });
    assert_eq!(keyring.decrypts(), 2);
    clock.advance(Duration::from_secs(5)); // past the first entry's age, within the new one's
    client.decrypt(&cmm, message.ciphertext()).run().unwrap();
    assert_eq!(keyring.decrypts(), 2, "served by the refreshed entry");
}

/// On a tokio runtime the default spawner runs the refresh as a task there, not on a thread
/// (with the `tokio` feature; without it, on a thread of its own).
#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_tokio_the_refresh_runs_as_a_task() {
    let keyring = CountingKeyring::new();
    let cmm = refreshing(&keyring, 10, EARLY, Arc::default());
    let client = envelope::Client::new();
    for _ in 0..7 {
        client
            .encrypt(&cmm, b"record")
            .suite(UNSIGNED)
            .await
            .unwrap();
    }
    until("the refresh lands", || cmm.stats().refreshes_landed == 1).await;
    let thread = keyring.last_thread.lock().clone();
    assert!(
        thread.as_deref().is_some_and(|t| t.starts_with("tokio")),
        "{thread:?}"
    );
}

/// The stress test: 8 threads x 20,000 encrypts, max_messages = 100. No data key ever
/// encrypts more than 100 messages, and the keyring is called at most ceil(160,000 / 100) times.
#[test]
fn stress_no_limit_is_ever_exceeded() {
    stress(RefreshAhead::Off);
}

/// The stress test with refresh-ahead on: limits still hold per entry, and calls for the one id
/// never overlap.
#[test]
fn stress_with_refresh_ahead_no_limit_is_ever_exceeded() {
    stress(RefreshAhead::Auto);
    stress(RefreshAhead::Fraction(0.2));
}

#[allow(clippy::print_stdout)] // the figures, for the test log
fn stress(refresh: RefreshAhead) {
    const THREADS: usize = 8;
    const PER_THREAD: usize = 20_000;
    let keyring = CountingKeyring::new();
    let cmm = Arc::new(
        CachingCmm::builder(keyring.clone(), cache(100))
            .max_age(Duration::from_secs(600))
            .max_messages(100)
            .refresh_ahead(refresh)
            .build()
            .unwrap(),
    );
    let client = Arc::new(Client::new());
    let per_key: Vec<HashMap<Vec<u8>, usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (cmm, client) = (Arc::clone(&cmm), Arc::clone(&client));
                s.spawn(move || {
                    let mut counts = HashMap::new();
                    for i in 0..PER_THREAD {
                        let m = client
                            .encrypt(&*cmm, &[(t + i) as u8; 16])
                            .suite(UNSIGNED)
                            .run()
                            .unwrap();
                        *counts.entry(data_key_of(m.ciphertext())).or_insert(0) += 1;
                    }
                    counts
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total: HashMap<Vec<u8>, usize> = HashMap::new();
    for counts in per_key {
        for (k, n) in counts {
            *total.entry(k).or_default() += n;
        }
    }
    let messages: usize = total.values().sum();
    let max_use = total.values().copied().max().unwrap();
    // Every data key but the last in use serves its 100 messages: none is cut short by a refresh
    // or a miss replacing it.
    let partial: Vec<usize> = total.values().copied().filter(|&n| n < 100).collect();
    assert!(partial.len() <= 1, "{refresh}: keys cut short: {partial:?}");
    let calls = keyring.encrypts();
    let stats = cmm.stats();
    println!(
        "{messages} messages, {} data keys, most uses of one key {max_use}, {calls} keyring calls, {stats:?}",
        total.len()
    );
    assert_eq!(messages, THREADS * PER_THREAD);
    assert!(max_use <= 100, "a data key encrypted {max_use} messages");
    let bound = (THREADS * PER_THREAD).div_ceil(100);
    if refresh == RefreshAhead::Off {
        assert!(calls <= bound, "{calls} calls");
    } else {
        // A refreshed entry takes over only when the current one is spent: no use is lost, and
        // at most the last successor goes unused.
        assert!(calls <= bound + 1, "{refresh}: {calls} calls");
    }
    if refresh == RefreshAhead::Off {
        assert_eq!(calls, total.len());
    } else {
        // A refresh that lands after the last message leaves one key unused.
        assert!(
            (total.len()..=total.len() + 1).contains(&calls),
            "{calls} calls, {} keys",
            total.len()
        );
    }
    assert_eq!(
        keyring.most_at_once.load(Ordering::SeqCst),
        1,
        "{refresh}: calls for one id overlapped"
    );
}
