//! Large-message throughput: one-shot and streaming, encrypt and decrypt, 0x0478 and 0x0578, with
//! the raw AES-GCM cost of sealing the same data as 4 KiB frames, the SHA-384 cost of hashing it
//! and what a fresh output buffer of that size costs, measured in the same run. Signed messages
//! also with all hashing inline (the default hashes large signed messages on a spare core where
//! there is one).
//!
//! `cargo bench -p envelope --bench streaming`
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::io::{Read, Write};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use envelope::blocking::Client;
use envelope::crypto::aead::AeadKey;
use envelope::crypto::digest::{HashAlgorithm, Hasher};
use envelope::{AlgorithmSuite, RawAesKeyring, SecretBytes};

const SIZES: [(&str, usize); 2] = [("16MiB", 16 << 20), ("256MiB", 256 << 20)];
const SUITES: [(&str, AlgorithmSuite); 2] = [
    ("0478", AlgorithmSuite::Aes256GcmHkdfSha512CommitKey),
    (
        "0578",
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ),
];
const FRAME: usize = 4096;
const IO_CHUNK: usize = 64 << 10;

/// Bench `op`, handing the buffer each run returns to the next run (as a caller reusing one
/// buffer across messages does).
fn reusing_buffer(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    mut op: impl FnMut(Vec<u8>) -> Vec<u8>,
) {
    let mut reused = Vec::new();
    group.bench_function(id, |b| {
        b.iter(|| reused = op(std::mem::take(&mut reused)));
    });
}

fn bench(c: &mut Criterion) {
    let keyring = RawAesKeyring::new("bench", "key", SecretBytes::from_slice(&[7; 32])).unwrap();
    let client = Client::new();
    let inline = Client::from(
        envelope::Client::builder()
            .signature_hashing(envelope::SignatureHashing::Inline)
            .build(),
    );
    for (size_name, size) in SIZES {
        let plaintext = vec![0x5au8; size];
        let mut group = c.benchmark_group(format!("large_{size_name}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(if size > (32 << 20) { 20 } else { 8 }));
        group.warm_up_time(Duration::from_secs(1));

        // The limits: AES-256-GCM over 4 KiB frames (in place, one key), and SHA-384 over the data.
        let key = AeadKey::new(&[9; 32]).unwrap();
        let mut buf = plaintext.clone();
        group.bench_function("raw AES-256-GCM, 4 KiB frames", |b| {
            b.iter(|| {
                for (i, frame) in buf.chunks_mut(FRAME).enumerate() {
                    let mut iv = [0u8; 12];
                    iv[8..].copy_from_slice(&(i as u32).to_be_bytes());
                    key.seal_in_place(&iv, b"aad of about the same size as a frame's", frame)
                        .unwrap();
                }
            })
        });
        // What a fresh output buffer of this size costs before anything is written to it: the
        // allocation, the first write to each 4 KiB page (the kernel zero-fills it then) and the
        // free. A one-shot call into a fresh buffer pays this on top of the crypto.
        group.bench_function("fresh buffer, first touch of each page", |b| {
            b.iter(|| {
                let mut fresh = vec![0u8; size + 4096];
                for page in fresh.chunks_mut(4096) {
                    page[0] = 1;
                }
                std::hint::black_box(fresh)
            })
        });
        group.bench_function("raw SHA-384", |b| {
            b.iter(|| {
                let mut h = Hasher::new(HashAlgorithm::Sha384);
                h.update(&plaintext);
                h.finish()
            })
        });

        for (suite_name, suite) in SUITES {
            // The default client hashes large signed messages on a spare core where there is
            // one; signed messages are measured once more with all hashing inline.
            let clients: &[(&str, &Client)] = if suite.is_signed() {
                &[("", &client), (", inline hashing", &inline)]
            } else {
                &[("", &client)]
            };
            for &(how, client) in clients {
                let id =
                    |what: &str| BenchmarkId::new(format!("{suite_name} {what}{how}"), size_name);
                let message = client
                    .encrypt(&keyring, &plaintext)
                    .suite(suite)
                    .run()
                    .unwrap()
                    .into_ciphertext();
                group.bench_function(id("one-shot encrypt"), |b| {
                    b.iter(|| {
                        client
                            .encrypt(&keyring, &plaintext)
                            .suite(suite)
                            .run()
                            .unwrap()
                    })
                });
                group.bench_function(id("one-shot decrypt"), |b| {
                    b.iter(|| client.decrypt(&keyring, &message).run().unwrap())
                });
                reusing_buffer(&mut group, id("one-shot encrypt, reused buffer"), |out| {
                    client
                        .encrypt(&keyring, &plaintext)
                        .suite(suite)
                        .reuse_buffer(out)
                        .run()
                        .unwrap()
                        .into_ciphertext()
                });
                reusing_buffer(&mut group, id("one-shot decrypt, reused buffer"), |out| {
                    client
                        .decrypt(&keyring, &message)
                        .reuse_buffer(out)
                        .run()
                        .unwrap()
                        .into_plaintext()
                });
                group.bench_function(id("stream encrypt"), |b| {
                    b.iter(|| {
                        let mut writer = client
                            .encrypt_stream(&keyring, std::io::sink())
                            .suite(suite)
                            .run()
                            .unwrap();
                        for chunk in plaintext.chunks(IO_CHUNK) {
                            writer.write_all(chunk).unwrap();
                        }
                        writer.finish().unwrap()
                    })
                });
                group.bench_function(id("stream decrypt"), |b| {
                    let mut out = vec![0u8; IO_CHUNK];
                    b.iter(|| {
                        let mut reader =
                            client.decrypt_stream(&keyring, &message[..]).run().unwrap();
                        while reader.read(&mut out).unwrap() > 0 {}
                    })
                });
            }
        }
        group.finish();
    }
    #[allow(clippy::print_stdout)] // which backend the figures are for
    {
        println!("backend: {}", envelope::crypto::BACKEND);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
