//! Measurements more than one bench takes, each in the same run as the figures it is compared
//! with.

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use envelope::crypto::digest::{HashAlgorithm, Hasher};
use envelope::crypto::ecdsa::{Curve, SigningKey};

/// One ECDSA P-384 signature over the SHA-384 of `data`: the floor of a signed suite's cost per
/// message.
pub(crate) fn p384_sign(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, data: &[u8]) {
    let signer = SigningKey::generate(Curve::P384).unwrap();
    let mut hasher = Hasher::new(HashAlgorithm::Sha384);
    hasher.update(data);
    let digest = hasher.finish();
    group.bench_function(name, |b| b.iter(|| signer.sign_digest(&digest).unwrap()));
}
