//! Header parse time against header size, fed in 1-byte and 4 KiB pieces: linear in the size
//! whatever the piece size (`cargo bench -p envelope-format --bench header_parse`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use envelope_format::{EncryptedDataKey, Header, HeaderDecoder, HeaderLimits, Parsed};

/// A v2 header of about `size` bytes made of 64-byte encrypted data keys.
fn header_of(size: usize) -> Header {
    let keys = (size / 70).clamp(1, usize::from(u16::MAX));
    let edks = (0..keys)
        .map(|i| {
            EncryptedDataKey::new("raw", format!("key-{i}").into_bytes(), vec![0xab; 58 - 4])
                .unwrap()
        })
        .collect();
    common::v2_header(edks)
}

fn decode(bytes: &[u8], piece: usize) -> Header {
    let limits = HeaderLimits {
        max_encrypted_data_keys: None,
        max_header_len: None,
    };
    let mut decoder = HeaderDecoder::new(limits);
    for chunk in bytes.chunks(piece) {
        if let Parsed::Complete(header, _) = decoder.feed(chunk).unwrap() {
            return header;
        }
    }
    panic!("incomplete header");
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_parse");
    for size in [1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let header = header_of(size);
        let bytes = header.as_bytes().to_vec();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        for (name, piece) in [("1-byte reads", 1), ("4KiB reads", 4096)] {
            group.bench_with_input(BenchmarkId::new(name, size), &bytes, |b, bytes| {
                b.iter(|| decode(bytes, piece));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
