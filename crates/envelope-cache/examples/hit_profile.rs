//! Profiling driver: cache-hit 1 KiB encrypts in a loop.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]
use envelope::blocking::Client;
use envelope::{AlgorithmSuite, EncryptionContext, RawAesKeyring, SecretBytes};
use envelope_cache::{CachingCmm, LocalCache};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};
fn main() {
    let keyring = RawAesKeyring::new("bench", "key", SecretBytes::from_slice(&[7; 32])).unwrap();
    let cmm = CachingCmm::builder(keyring, LocalCache::new(NonZeroUsize::new(1000).unwrap()))
        .max_age(Duration::from_secs(3600))
        .build()
        .unwrap();
    let client = Client::new();
    let pt = vec![0u8; 1024];
    let ec = EncryptionContext::from_iter([("stream", "orders"), ("shard", "0007")]);
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300_000);
    let t = Instant::now();
    for _ in 0..n {
        client
            .encrypt(&cmm, &pt)
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
            .encryption_context(ec.clone())
            .run()
            .unwrap();
    }
    println!(
        "{:.2} us/msg",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}
