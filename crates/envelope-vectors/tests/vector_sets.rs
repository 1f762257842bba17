//! Every vector set in shared/vectors, with the exact counts this build must produce.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envelope_vectors::testing::vectors_or_skip;
use envelope_vectors::{Method, decrypt_file_with};

/// Every set decrypts with the same results one-shot and streaming, sync and async, with the
/// input arriving in chunks of 1, 7, 4096 and 65,536 bytes.
const METHODS: [Method; 9] = [
    Method::OneShot,
    Method::Stream(1),
    Method::Stream(7),
    Method::Stream(4096),
    Method::Stream(65_536),
    Method::AsyncStream(1),
    Method::AsyncStream(7),
    Method::AsyncStream(4096),
    Method::AsyncStream(65_536),
];

#[allow(clippy::print_stdout)] // the counts go to the test log
fn check(set: &str, passed: usize, skipped: usize) {
    let Some(dir) = vectors_or_skip(set) else {
        return;
    };
    for method in METHODS {
        let summary = decrypt_file_with(&dir.join(set), method).unwrap();
        println!(
            "{set} ({method:?}): {summary}; skipped for: {:?}",
            summary.skip_reasons
        );
        assert_eq!(summary.failures, Vec::<String>::new(), "{set} {method:?}");
        let counts = (summary.passed, summary.failed, summary.skipped);
        assert_eq!(counts, (passed, 0, skipped), "{set} {method:?}");
    }
}

/// One test per set, so each reports (and fails) on its own: `name: manifest => passed, skipped`.
macro_rules! vector_sets {
    ($($(#[$note:meta])* $name:ident: $set:literal => $passed:literal, $skipped:literal;)*) => {
        $(
            $(#[$note])*
            #[test]
            fn $name() {
                check($set, $passed, $skipped);
            }
        )*
    };
}

vector_sets! {
    official_dafny_4_1_0: "official/dafny-4.1.0/manifest.json" => 187, 0;
    official_net_4_0_1: "official/net-4.0.1/manifest.json" => 99, 0;
    official_net_4_0_0_valid: "official/net-4.0.0-valid/manifest.json" => 5, 0;
    official_net_4_0_0_invalid_strict: "official/net-4.0.0-invalid/manifest-strict.json" => 28, 0;
    /// The 11 hierarchy vectors (static branch keys) pass; raw ECDH is not in scope yet: 99 skipped.
    official_dafny_extras_ecdh_hierarchy:
        "official/dafny-4.1.0-extras-ecdh-hierarchy/manifest.json" => 11, 99;
    generated_python_4_0_7: "generated/python-4.0.7/manifest.json" => 5451, 0;
    commitment_kat: "official/commitment-kat/commitment-test-vectors.json" => 46, 0;
    /// The 9 aws-kms tests wrap their data keys under a real AWS KMS key: not replayable.
    decrypt_oracle_kat: "official/decrypt-oracle-kat/decrypt_vectors.json" => 18, 9;
    kat_vectors: "kat/kat-vectors.json" => 55, 0;
}
