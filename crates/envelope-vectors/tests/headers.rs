//! Every header in shared/vectors parses, re-serializes to the same bytes, and parses the same
//! when its bytes arrive one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use envelope::format::{Header, HeaderLimits, Parsed};
use envelope_vectors::decrypt::{Bytes, load};
use envelope_vectors::testing::vectors_or_skip;

const SETS: [&str; 9] = [
    "official/dafny-4.1.0/manifest.json",
    "official/net-4.0.1/manifest.json",
    "official/net-4.0.0-valid/manifest.json",
    "official/net-4.0.0-invalid/manifest.json",
    "official/dafny-4.1.0-extras-ecdh-hierarchy/manifest.json",
    "generated/python-4.0.7/manifest.json",
    "official/commitment-kat/commitment-test-vectors.json",
    "official/decrypt-oracle-kat/decrypt_vectors.json",
    "kat/kat-vectors.json",
];

fn incremental(message: &[u8]) -> (Header, usize) {
    let mut have = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match Header::parse(&message[..have], &HeaderLimits::default()).unwrap() {
            Parsed::Complete(header, len) => {
                assert!(attempts < 400, "too many attempts: {attempts}");
                return (header, len);
            }
            Parsed::Incomplete(needed) => {
                assert!(
                    needed > have && needed <= message.len(),
                    "{needed} after {have}"
                );
                have = needed;
            }
        }
    }
}

fn check_file(path: &Path) -> (usize, usize) {
    let mut parsed = 0;
    let mut invalid = 0;
    for test in load(path).unwrap() {
        let message = match &test.ciphertext {
            Bytes::Inline(v) => v.clone(),
            Bytes::File(p) => std::fs::read(p).unwrap(),
        };
        match Header::parse(&message, &HeaderLimits::default()) {
            Ok(Parsed::Complete(header, len)) => {
                assert_eq!(header.as_bytes(), &message[..len]);
                assert_eq!(header.serialize().unwrap(), &message[..len], "{}", test.id);
                let (again, len2) = incremental(&message);
                assert_eq!((again, len2), (header, len));
                parsed += 1;
            }
            // Negative vectors: bit flips and truncations inside the header.
            Ok(Parsed::Incomplete(_)) | Err(_) => {
                assert!(
                    matches!(test.expected, envelope_vectors::decrypt::Expected::Error(_)),
                    "{}: a positive vector's header must parse",
                    test.id
                );
                invalid += 1;
            }
        }
    }
    (parsed, invalid)
}

#[test]
fn every_header_round_trips() {
    let Some(dir) = vectors_or_skip("every_header_round_trips") else {
        return;
    };
    let mut total = 0;
    for set in SETS {
        let (parsed, invalid) = check_file(&dir.join(set));
        println!("{set}: {parsed} headers round-trip, {invalid} negative vectors have bad headers");
        assert!(parsed > 0);
        total += parsed;
    }
    assert!(total > 2000, "{total}");
}
