//! `LocalCache` on its own: capacity, LRU order, expiry, atomic charging, eviction counters.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envelope_cache::{
    CacheId, DecryptionEntry, EncryptionEntry, LocalCache, MaterialsCache, Usage, UsageLimits,
};
use envelope_format::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};
use envelope_keyring::{
    CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptionMaterials,
    EncryptionMaterials, SecretBytes,
};
use futures::executor::block_on;

fn id(n: u64) -> CacheId {
    let mut b = [0u8; 64];
    // Spread over shards like real digests do.
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    b[..8].copy_from_slice(&h.to_le_bytes());
    b[8..16].copy_from_slice(&h.rotate_left(29).to_le_bytes());
    b[56..].copy_from_slice(&n.to_be_bytes());
    CacheId::from_bytes(b)
}

const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

fn materials() -> Arc<CompleteEncryptionMaterials> {
    let edk = EncryptedDataKey::new("test", b"key".to_vec(), vec![0; 48]).unwrap();
    let pending =
        EncryptionMaterials::new(SUITE, EncryptionContext::new(), Default::default(), None);
    let key = SecretBytes::from_slice(&[1; 32]);
    let m = pending
        .unwrap()
        .with_data_key(key)
        .unwrap()
        .with_encrypted_data_key(edk);
    Arc::new(m.complete().unwrap())
}

fn decryption_materials() -> Arc<CompleteDecryptionMaterials> {
    let pending =
        DecryptionMaterials::new(SUITE, EncryptionContext::new(), Default::default(), None);
    let key = SecretBytes::from_slice(&[1; 32]);
    Arc::new(pending.unwrap().with_data_key(key).unwrap())
}

fn entry(now: Instant, usage: Usage) -> EncryptionEntry {
    EncryptionEntry {
        materials: materials(),
        created: now,
        expires: now + Duration::from_secs(60),
        usage,
    }
}

const NO_LIMITS: UsageLimits = UsageLimits {
    max_messages: u64::MAX,
    max_bytes: u64::MAX,
};

#[test]
fn capacity_is_never_exceeded() {
    for (capacity, shards) in [(1, 1), (10, 4), (10, 64), (100, 16), (7, 3)] {
        let cache = LocalCache::with_shards(NonZeroUsize::new(capacity).unwrap(), shards);
        let now = Instant::now();
        for n in 0..1000 {
            block_on(cache.put_encryption_materials(id(n), entry(now, Usage::message(1))));
            assert!(cache.len() <= capacity);
        }
        assert_eq!(cache.capacity(), capacity);
        let stats = cache.stats();
        assert_eq!(
            stats.entries + stats.evicted_capacity,
            1000,
            "{capacity}/{shards}"
        );
    }
}

#[test]
fn least_recently_used_goes_first() {
    let cache = LocalCache::with_shards(NonZeroUsize::new(3).unwrap(), 1);
    let now = Instant::now();
    for n in 0..3 {
        block_on(cache.put_encryption_materials(id(n), entry(now, Usage::default())));
    }
    // Touch 0, so 1 is now the least recently used.
    assert!(
        block_on(cache.get_encryption_materials(&id(0), Usage::default(), NO_LIMITS, now))
            .is_some()
    );
    block_on(cache.put_encryption_materials(id(3), entry(now, Usage::default())));
    let present: Vec<bool> = (0..4)
        .map(|n| {
            block_on(cache.get_encryption_materials(&id(n), Usage::default(), NO_LIMITS, now))
                .is_some()
        })
        .collect();
    assert_eq!(present, [true, false, true, true]);
    assert_eq!(cache.stats().evicted_capacity, 1);
}

#[test]
fn expired_entries_are_never_served() {
    let cache = LocalCache::new(NonZeroUsize::new(10).unwrap());
    let now = Instant::now();
    block_on(cache.put_encryption_materials(id(1), entry(now, Usage::default())));
    let almost = now + Duration::from_secs(60) - Duration::from_nanos(1);
    assert!(
        block_on(cache.get_encryption_materials(&id(1), Usage::default(), NO_LIMITS, almost))
            .is_some()
    );
    let at = now + Duration::from_secs(60);
    assert!(
        block_on(cache.get_encryption_materials(&id(1), Usage::default(), NO_LIMITS, at)).is_none()
    );
    assert_eq!(cache.stats().evicted_age, 1);
    assert!(cache.is_empty());

    let dec = DecryptionEntry {
        materials: decryption_materials(),
        created: now,
        expires: now + Duration::from_secs(1),
    };
    block_on(cache.put_decryption_materials(id(2), dec));
    assert!(block_on(cache.get_decryption_materials(&id(2), now)).is_some());
    assert!(
        block_on(cache.get_decryption_materials(&id(2), now + Duration::from_secs(1))).is_none()
    );
    // Kinds never mix.
    block_on(cache.put_encryption_materials(id(3), entry(now, Usage::default())));
    assert!(block_on(cache.get_decryption_materials(&id(3), now)).is_none());

    // prune_expired sweeps everything that has expired.
    for n in 10..20 {
        block_on(cache.put_encryption_materials(id(n), entry(now, Usage::default())));
    }
    cache.prune_expired(now + Duration::from_secs(61));
    assert!(cache.is_empty());
}

#[test]
fn limits_are_charged_before_serving_and_exhausted_entries_leave() {
    let cache = LocalCache::new(NonZeroUsize::new(10).unwrap());
    let now = Instant::now();
    let limits = UsageLimits {
        max_messages: 3,
        max_bytes: 1000,
    };
    block_on(cache.put_encryption_materials(id(1), entry(now, Usage::message(100))));
    // 2nd and 3rd messages fit; the 3rd exhausts the message limit and removes the entry.
    assert!(
        block_on(cache.get_encryption_materials(&id(1), Usage::message(100), limits, now))
            .is_some()
    );
    assert!(
        block_on(cache.get_encryption_materials(&id(1), Usage::message(100), limits, now))
            .is_some()
    );
    assert!(
        block_on(cache.get_encryption_materials(&id(1), Usage::message(100), limits, now))
            .is_none()
    );
    assert_eq!(cache.stats().evicted_limits, 1);
    // A request whose bytes would pass the byte limit is not served and ends the entry.
    block_on(cache.put_encryption_materials(id(2), entry(now, Usage::message(600))));
    assert!(
        block_on(cache.get_encryption_materials(&id(2), Usage::message(401), limits, now))
            .is_none()
    );
    assert!(
        block_on(cache.get_encryption_materials(&id(2), Usage::message(1), limits, now)).is_none()
    );
    assert_eq!(cache.stats().evicted_limits, 2);
}

#[test]
fn charging_is_atomic_under_contention() {
    let cache = Arc::new(LocalCache::new(NonZeroUsize::new(16).unwrap()));
    let now = Instant::now();
    let limits = UsageLimits {
        max_messages: 5000,
        max_bytes: u64::MAX,
    };
    block_on(cache.put_encryption_materials(id(1), entry(now, Usage::message(0))));
    let served = Arc::new(AtomicU64::new(1));
    std::thread::scope(|s| {
        for _ in 0..16 {
            let (cache, served) = (Arc::clone(&cache), Arc::clone(&served));
            s.spawn(move || {
                for _ in 0..1000 {
                    if block_on(cache.get_encryption_materials(
                        &id(1),
                        Usage::message(0),
                        limits,
                        now,
                    ))
                    .is_some()
                    {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(
        served.load(Ordering::SeqCst),
        5000,
        "exactly the limit, never more"
    );
}
