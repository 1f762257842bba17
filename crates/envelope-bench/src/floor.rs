//! `floor`: what the primitives cost on this machine and backend, so results can be stated as a
//! fraction of the limit.

use std::hint::black_box;
use std::time::{Duration, Instant};

use envelope::crypto::aead::AeadKey;
use envelope::crypto::digest::{HashAlgorithm, Hasher};
use envelope::crypto::ecdsa::{Curve, SigningKey};
use envelope::crypto::hkdf::hkdf;
use envelope::crypto::rsa::{RsaPadding, RsaPrivateKey, RsaPublicKey};
use serde::Serialize;

/// One primitive's cost.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    /// What was measured.
    pub name: &'static str,
    /// Nanoseconds per operation.
    pub ns_per_op: f64,
    /// Operations per second.
    pub ops_per_s: f64,
    /// Megabytes (10^6) per second, for bulk operations.
    pub mb_per_s: Option<f64>,
}

/// Run `op` repeatedly for about `budget`, after a short warm-up.
fn measure(
    name: &'static str,
    bytes: Option<usize>,
    budget: Duration,
    mut op: impl FnMut() -> Result<(), String>,
) -> Result<Floor, String> {
    let warm = Instant::now();
    while warm.elapsed() < budget / 10 {
        op()?;
    }
    let mut iterations = 0u64;
    let started = Instant::now();
    while started.elapsed() < budget {
        for _ in 0..8 {
            op()?;
        }
        iterations += 8;
    }
    let seconds = started.elapsed().as_secs_f64();
    let per = seconds / iterations as f64;
    Ok(Floor {
        name,
        ns_per_op: per * 1e9,
        ops_per_s: 1.0 / per,
        mb_per_s: bytes.map(|b| b as f64 / per / 1e6),
    })
}

/// Measure every primitive for about `budget` each.
pub fn run(budget: Duration) -> Result<Vec<Floor>, String> {
    let e = |e: envelope::crypto::CryptoError| e.to_string();
    let key = [7u8; 32];
    let iv = [1u8; 12];
    let aad = [2u8; 64];
    let aead = AeadKey::new(&key).map_err(e)?;
    let mut frame = vec![0u8; 4096];
    let mut message = vec![0u8; 1024];
    let mut mb = vec![0u8; 1 << 20];
    let signer = SigningKey::generate(Curve::P384).map_err(e)?;
    let verifier = signer.verifying_key().map_err(e)?;
    let mut hasher = Hasher::new(HashAlgorithm::Sha384);
    hasher.update(b"envelope floor");
    let digest = hasher.finish();
    let signature = signer.sign_digest(&digest).map_err(e)?;
    let mut out = [0u8; 32];
    let rsa_private =
        RsaPrivateKey::from_pem(include_str!("../data/rsa-4096-private.pem")).map_err(e)?;
    let rsa_public =
        RsaPublicKey::from_pem(include_str!("../data/rsa-4096-public.pem")).map_err(e)?;
    let wrapped = rsa_public
        .encrypt(RsaPadding::OaepSha256, &key)
        .map_err(e)?;

    Ok(vec![
        measure("AES-256-GCM seal, 4 KiB frame", Some(4096), budget, || {
            aead.seal_in_place(&iv, &aad, black_box(&mut frame))
                .map(drop)
                .map_err(e)
        })?,
        measure(
            "AES-256-GCM key setup + seal, 1 KiB message",
            Some(1024),
            budget,
            || {
                let k = AeadKey::new(black_box(&key)).map_err(e)?;
                k.seal_in_place(&iv, &aad, black_box(&mut message))
                    .map(drop)
                    .map_err(e)
            },
        )?,
        measure("HKDF-SHA512, 32-byte output", None, budget, || {
            hkdf(
                HashAlgorithm::Sha512,
                black_box(&[0u8; 32]),
                black_box(&key),
                &[b"DERIVEKEY"],
                &mut out,
            )
            .map_err(e)
        })?,
        measure("ECDSA P-384 key generation", None, budget, || {
            SigningKey::generate(Curve::P384).map(drop).map_err(e)
        })?,
        measure("ECDSA P-384 sign (prehashed)", None, budget, || {
            signer.sign_digest(black_box(&digest)).map(drop).map_err(e)
        })?,
        measure("ECDSA P-384 verify (prehashed)", None, budget, || {
            verifier
                .verify_digest(black_box(&digest), &signature)
                .map_err(e)
        })?,
        // What a keyring pays per encrypted data key it tries: `max_encrypted_data_keys` bounds it.
        measure(
            "RSA-4096 OAEP-SHA256 decrypt (unwrap)",
            None,
            budget,
            || {
                rsa_private
                    .decrypt(RsaPadding::OaepSha256, black_box(&wrapped))
                    .map(drop)
                    .map_err(e)
            },
        )?,
        measure("SHA-384, 1 MiB", Some(1 << 20), budget, || {
            let mut h = Hasher::new(HashAlgorithm::Sha384);
            h.update(black_box(&mb));
            black_box(h.finish());
            Ok(())
        })?,
        measure(
            "AES-256-GCM seal, 1 MiB as 4 KiB frames",
            Some(1 << 20),
            budget,
            || {
                for chunk in mb.chunks_mut(4096) {
                    aead.seal_in_place(&iv, &aad, chunk).map_err(e)?;
                }
                Ok(())
            },
        )?,
    ])
}
