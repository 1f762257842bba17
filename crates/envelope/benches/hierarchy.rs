//! The hierarchical keyring with a warm branch-key cache: encrypting and decrypting 1 KiB messages
//! (0x0478, one thread), beside a caching CMM hit and a raw AES keyring, measured in one run. A
//! warm cache makes no store call, so an in-memory store measures what production pays between
//! fetches: the per-message KDF, the key wrap and the message itself.
//!
//! `cargo bench -p envelope --features hierarchy --bench hierarchy`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use envelope::blocking::Client;
use envelope::hierarchy::{BranchKey, BranchKeyVersion, HierarchicalKeyring, StaticKeyStore};
use envelope::{
    AlgorithmSuite, CachingCmm, LocalCache, MaterialsManager, RawAesKeyring, SecretBytes,
};

fn hierarchical() -> HierarchicalKeyring {
    let key = BranchKey::new(
        "bench-branch-key",
        BranchKeyVersion::from_bytes([9; 16]),
        SecretBytes::from_slice(&[7; 32]),
    )
    .unwrap();
    HierarchicalKeyring::builder(StaticKeyStore::new("bench").with(key))
        .branch_key_id("bench-branch-key")
        .ttl(Duration::from_secs(300))
        .build()
        .unwrap()
}

fn raw_aes() -> RawAesKeyring {
    RawAesKeyring::new("bench", "key", SecretBytes::from_slice(&[7; 32])).unwrap()
}

fn bench(c: &mut Criterion) {
    let client = Client::new();
    let data = vec![0x5a; 1024];
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let caching = CachingCmm::builder(raw_aes(), LocalCache::new(NonZeroUsize::new(64).unwrap()))
        .max_age(Duration::from_secs(300))
        .build()
        .unwrap();
    let cmms: [(&str, Box<dyn MaterialsManager>); 3] = [
        ("hierarchy_warm", Box::new(hierarchical())),
        ("caching_cmm_hit", Box::new(caching)),
        ("raw_aes", Box::new(raw_aes())),
    ];
    let mut group = c.benchmark_group("hierarchy");
    group.throughput(Throughput::Elements(1));
    for (name, cmm) in &cmms {
        let message = client
            .encrypt(cmm.as_ref(), &data)
            .suite(suite)
            .run()
            .unwrap();
        group.bench_function(format!("encrypt_1KiB_0478/{name}"), |b| {
            b.iter(|| {
                client
                    .encrypt(cmm.as_ref(), &data)
                    .suite(suite)
                    .run()
                    .unwrap()
            })
        });
        group.bench_function(format!("decrypt_1KiB_0478/{name}"), |b| {
            b.iter(|| {
                client
                    .decrypt(cmm.as_ref(), message.ciphertext())
                    .run()
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
