//! Cache-hit encryption throughput, the miss path, and the raw primitive costs they are bounded by,
//! measured in one run so that the ratios are comparable on a noisy machine.
//!
//! `cargo bench -p envelope --bench caching`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use envelope::blocking::Client;
use envelope::cache::{CachingCmm, LocalCache};
use envelope::crypto::aead::AeadKey;
use envelope::crypto::digest::{HashAlgorithm, Hasher};
use envelope::crypto::ecdsa::{Curve, SigningKey};
use envelope::crypto::hkdf::Prk;
use envelope::{
    AlgorithmSuite, CompleteDecryptionMaterials, DecryptionMaterials, EncryptedDataKey,
    EncryptionContext, EncryptionMaterials, Keyring, RawAesKeyring, SecretBytes, async_trait,
    keyring::Error,
};

const SUITES: [(&str, AlgorithmSuite); 2] = [
    ("0478", AlgorithmSuite::Aes256GcmHkdfSha512CommitKey),
    (
        "0578",
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ),
];

fn keyring() -> RawAesKeyring {
    RawAesKeyring::new("bench", "key", SecretBytes::from_slice(&[7; 32])).unwrap()
}

fn caching_cmm(
    underlying: impl envelope::MaterialsManager + 'static,
    max_messages: u64,
) -> CachingCmm {
    CachingCmm::builder(
        underlying,
        LocalCache::new(NonZeroUsize::new(1000).unwrap()),
    )
    .max_age(Duration::from_secs(3600))
    .max_messages(max_messages)
    .build()
    .unwrap()
}

fn context() -> EncryptionContext {
    EncryptionContext::from_iter([("stream", "orders"), ("shard", "0007")])
}

/// A master key that takes 5 ms per data key, like a remote KMS call.
struct SlowKeyring(RawAesKeyring);

#[async_trait]
impl Keyring for SlowKeyring {
    async fn on_encrypt(&self, m: EncryptionMaterials) -> Result<EncryptionMaterials, Error> {
        std::thread::sleep(Duration::from_millis(5));
        self.0.on_encrypt(m).await
    }
    async fn on_decrypt(
        &self,
        m: DecryptionMaterials,
        e: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        self.0.on_decrypt(m, e).await
    }
}

fn cache_hits(c: &mut Criterion) {
    let plaintext = vec![0x42u8; 1024];
    let client = Client::new();
    let mut group = c.benchmark_group("cache_hit_1KiB_encrypt");
    group.throughput(Throughput::Elements(1));
    for (name, suite) in SUITES {
        let cmm = caching_cmm(keyring(), 1 << 32);
        // Warm the entry.
        client
            .encrypt(&cmm, &plaintext)
            .suite(suite)
            .encryption_context(context())
            .run()
            .unwrap();
        group.bench_function(BenchmarkId::new(name, "1 thread"), |b| {
            b.iter(|| {
                client
                    .encrypt(&cmm, &plaintext)
                    .suite(suite)
                    .encryption_context(context())
                    .run()
                    .unwrap()
            })
        });
        let cmm = Arc::new(cmm);
        group.bench_function(BenchmarkId::new(name, "2 threads"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for half in [iters / 2, iters - iters / 2] {
                        let (cmm, client, plaintext) = (Arc::clone(&cmm), &client, &plaintext);
                        s.spawn(move || {
                            for _ in 0..half {
                                client
                                    .encrypt(&*cmm, plaintext)
                                    .suite(suite)
                                    .encryption_context(context())
                                    .run()
                                    .unwrap();
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
        let stats = cmm.stats();
        assert!(
            stats.underlying_calls <= 2,
            "the bench must measure hits: {stats:?}"
        );
    }
    group.finish();
}

fn miss_path(c: &mut Criterion) {
    let plaintext = vec![0x42u8; 1024];
    let client = Client::new();
    let mut group = c.benchmark_group("miss_1KiB_encrypt_5ms_master_key");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let cmms: [(&str, Box<dyn envelope::MaterialsManager>); 3] = [
        ("no cache", Box::new(SlowKeyring(keyring()))),
        // max_messages = 1: every message misses and pays for the master key.
        (
            "cache, max_messages 1",
            Box::new(caching_cmm(SlowKeyring(keyring()), 1)),
        ),
        (
            "cache, max_messages 1000",
            Box::new(caching_cmm(SlowKeyring(keyring()), 1000)),
        ),
    ];
    for (name, cmm) in &cmms {
        group.bench_function(*name, |b| {
            b.iter(|| {
                client
                    .encrypt(cmm.as_ref(), &plaintext)
                    .suite(suite)
                    .run()
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn primitives(c: &mut Criterion) {
    let mut group = c.benchmark_group("primitives");
    group.throughput(Throughput::Elements(1));
    let key = [9u8; 32];
    let mut buf = vec![0u8; 1024];
    group.bench_function("AES-256-GCM key setup + seal 1 KiB", |b| {
        b.iter(|| {
            let k = AeadKey::new(&key).unwrap();
            k.seal_in_place(&[0; 12], b"aad", &mut buf).unwrap()
        })
    });
    group.bench_function("HKDF-SHA512 extract + 2 x expand 32 B", |b| {
        b.iter(|| {
            let prk = Prk::extract(HashAlgorithm::Sha512, &[1; 32], &key);
            let (mut a, mut c) = ([0u8; 32], [0u8; 32]);
            prk.expand(&[b"\x04\x78DERIVEKEY"], &mut a).unwrap();
            prk.expand(&[b"COMMITKEY"], &mut c).unwrap();
            (a, c)
        })
    });
    support::p384_sign(&mut group, "ECDSA P-384 sign", &buf);
    group.bench_function("ECDSA P-384 keygen", |b| {
        b.iter(|| SigningKey::generate(Curve::P384).unwrap())
    });
    group.bench_function("SHA-384 1 KiB", |b| {
        b.iter(|| {
            let mut h = Hasher::new(HashAlgorithm::Sha384);
            h.update(&buf);
            h.finish()
        })
    });
    group.finish();
    #[allow(clippy::print_stdout)] // which backend the figures are for
    {
        println!("backend: {}", envelope::crypto::BACKEND);
    }
}

criterion_group!(benches, primitives, cache_hits, miss_path);
criterion_main!(benches);
