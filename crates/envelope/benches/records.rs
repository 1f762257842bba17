//! Kinesis record encryption: 1 KiB records to `PutRecords` entries through a caching CMM over a
//! local master key (no KMS), one thread, against the primitive a signed suite cannot avoid (one
//! ECDSA P-384 signature per record), measured in one run.
//!
//! `cargo bench -p envelope --features kinesis --bench records`
//!
//! The bench lives in the facade rather than in `envelope-kinesis`: record encryption needs an
//! ESDK message writer, which that crate reaches only through the facade's `ClientCipher`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use envelope::kinesis::{ClientCipher, Record, RecordEncryptor};
use envelope::{
    AlgorithmSuite, CachingCmm, Client, EncryptOptions, LocalCache, RawAesKeyring, SecretBytes,
};

fn encryptor(suite: AlgorithmSuite) -> RecordEncryptor {
    let keyring = RawAesKeyring::new("bench", "key", SecretBytes::from_slice(&[7; 32])).unwrap();
    let cmm = CachingCmm::builder(keyring, LocalCache::new(NonZeroUsize::new(64).unwrap()))
        .max_age(Duration::from_secs(300))
        .max_messages(100)
        .build()
        .unwrap();
    let mut options = EncryptOptions::default();
    options.suite = Some(suite);
    let cipher = ClientCipher::new(Client::new(), Arc::new(cmm)).encrypt_options(options);
    RecordEncryptor::new("orders", cipher.shared())
}

fn records(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let data = vec![0x5a; 1024];
    let mut group = c.benchmark_group("records");
    group.throughput(Throughput::Elements(1));
    for (name, suite) in [
        ("0478", AlgorithmSuite::Aes256GcmHkdfSha512CommitKey),
        (
            "0578",
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        ),
    ] {
        let encryptor = encryptor(suite);
        group.bench_function(format!("encrypt_1KiB_to_entry/{name}"), |b| {
            b.iter(|| {
                let record = Record::new("customer-42", data.clone());
                let encrypted = runtime.block_on(encryptor.encrypt(record)).unwrap();
                encrypted.to_entry().unwrap()
            })
        });
    }
    support::p384_sign(&mut group, "ecdsa_p384_sign", &data);
    group.finish();
}

criterion_group!(benches, records);
criterion_main!(benches);
