//! Known-answer and behaviour tests for every primitive; the same file runs on both backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envelope_crypto::aead::AeadKey;
use envelope_crypto::digest::{HashAlgorithm, Hasher, digest};
use envelope_crypto::ecdsa::{Curve, SigningKey, VerifyingKey};
use envelope_crypto::hkdf::{Prk, hkdf};
use envelope_crypto::rsa::{RsaPadding, RsaPrivateKey, RsaPublicKey};
use envelope_crypto::{CryptoError, SecretBytes};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

/// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 4, 10 and 16
/// (AES-128/192/256, 60-byte plaintext, 20-byte AAD, 96-bit IV).
#[test]
fn aes_gcm_known_answers() {
    let pt = h(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    );
    let aad = h("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    let iv: [u8; 12] = h("cafebabefacedbaddecaf888").try_into().unwrap();
    let cases = [
        (
            "feffe9928665731c6d6a8f9467308308",
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
            "5bc94fbc3221a5db94fae95ae7121a47",
        ),
        (
            "feffe9928665731c6d6a8f9467308308feffe9928665731c",
            "3980ca0b3c00e841eb06fac4872a2757859e1ceaa6efd984628593b40ca1e19c7d773d00c144c525ac619d18c84a3f4718e2448b2fe324d9ccda2710",
            "2519498e80f1478f37ba55bd6d27618c",
        ),
        (
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ),
    ];
    for (key, ct, tag) in cases {
        let key = AeadKey::new(&h(key)).unwrap();
        let mut buf = pt.clone();
        let got_tag = key.seal_in_place(&iv, &aad, &mut buf).unwrap();
        assert_eq!(hex::encode(&buf), ct);
        assert_eq!(hex::encode(got_tag), tag);

        let mut out = vec![0u8; pt.len() + 16];
        key.seal_to(&iv, &aad, &pt, &mut out).unwrap();
        assert_eq!(hex::encode(&out), format!("{ct}{tag}"));

        let tag: [u8; 16] = h(tag).try_into().unwrap();
        let mut opened = vec![0u8; pt.len()];
        key.open_to(&iv, &aad, &h(ct), &tag, &mut opened).unwrap();
        assert_eq!(opened, pt);
        key.open_in_place(&iv, &aad, &mut buf, &tag).unwrap();
        assert_eq!(buf, pt);
    }
}

#[test]
fn aes_gcm_failure_wipes_output_and_is_opaque() {
    let key = AeadKey::new(&[7u8; 32]).unwrap();
    let iv = [1u8; 12];
    let mut data = b"sixteen byte msg".to_vec();
    let tag = key.seal_in_place(&iv, b"aad", &mut data).unwrap();
    let mut bad_tag = tag;
    bad_tag[0] ^= 1;

    let mut out = vec![0xAA; data.len()];
    assert_eq!(
        key.open_to(&iv, b"aad", &data, &bad_tag, &mut out),
        Err(CryptoError::AuthenticationFailed)
    );
    assert!(
        out.iter().all(|&b| b == 0),
        "no unauthenticated plaintext may remain"
    );

    assert_eq!(
        key.open_to(&iv, b"other", &data, &tag, &mut out),
        Err(CryptoError::AuthenticationFailed)
    );
    let mut copy = data.clone();
    assert_eq!(
        key.open_in_place(&iv, b"aad", &mut copy, &bad_tag),
        Err(CryptoError::AuthenticationFailed)
    );
    assert!(copy.iter().all(|&b| b == 0));

    // Empty plaintext: the header-authentication case.
    let tag = key
        .seal_in_place(&[0; 12], b"header bytes", &mut [])
        .unwrap();
    key.open_in_place(&[0; 12], b"header bytes", &mut [], &tag)
        .unwrap();
    assert!(
        key.open_in_place(&[0; 12], b"header byteZ", &mut [], &tag)
            .is_err()
    );

    assert!(matches!(
        AeadKey::new(&[0; 20]),
        Err(CryptoError::InvalidKeyLength { found: 20, .. })
    ));
    let mut wrong = vec![0u8; 3];
    assert!(key.seal_to(&iv, b"", b"abcd", &mut wrong).is_err());
}

#[test]
fn sha2_known_answers() {
    let cases = [
        (
            HashAlgorithm::Sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            HashAlgorithm::Sha384,
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7",
        ),
        (
            HashAlgorithm::Sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        ),
    ];
    for (alg, expected) in cases {
        assert_eq!(hex::encode(digest(alg, b"abc").as_bytes()), expected);
        let mut hasher = Hasher::new(alg);
        hasher.update(b"a");
        hasher.update(b"");
        hasher.update(b"bc");
        let d = hasher.finish();
        assert_eq!(d.algorithm(), alg);
        assert_eq!(d.as_bytes().len(), alg.output_len());
        assert_eq!(hex::encode(d.as_bytes()), expected);
    }
}

/// RFC 5869 test case 1 (SHA-256) and test case 3 (no salt, empty info).
#[test]
fn hkdf_known_answers() {
    let ikm = [0x0bu8; 22];
    let salt = h("000102030405060708090a0b0c");
    let info = h("f0f1f2f3f4f5f6f7f8f9");
    let mut okm = [0u8; 42];
    hkdf(
        HashAlgorithm::Sha256,
        &salt,
        &ikm,
        &[&info[..5], &info[5..]],
        &mut okm,
    )
    .unwrap();
    assert_eq!(
        hex::encode(okm),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
    let ikm = [0x0bu8; 22];
    hkdf(HashAlgorithm::Sha256, &[], &ikm, &[], &mut okm).unwrap();
    assert_eq!(
        hex::encode(okm),
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    );
    // "No salt" is the same as hash-length zero bytes.
    let mut zeros = [0u8; 42];
    hkdf(HashAlgorithm::Sha256, &[0u8; 32], &ikm, &[], &mut zeros).unwrap();
    assert_eq!(okm, zeros);
    // Test case 2: salt longer than the hash block, output over three blocks.
    let ikm: Vec<u8> = (0x00..=0x4f).collect();
    let salt: Vec<u8> = (0x60..=0xaf).collect();
    let info: Vec<u8> = (0xb0..=0xff).collect();
    let mut okm = [0u8; 82];
    hkdf(HashAlgorithm::Sha256, &salt, &ikm, &[&info], &mut okm).unwrap();
    assert_eq!(
        hex::encode(okm),
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"
    );

    // One extract, several expands (the committing-suite pattern).
    let prk = Prk::extract(HashAlgorithm::Sha512, &[0x5a; 32], &[1u8; 32]);
    let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
    prk.expand(&[b"COMMITKEY"], &mut a).unwrap();
    hkdf(
        HashAlgorithm::Sha512,
        &[0x5a; 32],
        &[1u8; 32],
        &[b"COMMIT", b"KEY"],
        &mut b,
    )
    .unwrap();
    assert_eq!(a, b);
    let mut too_long = vec![0u8; 255 * 64 + 1];
    assert!(prk.expand(&[], &mut too_long).is_err());
}

#[test]
fn ecdsa_generator_points_and_round_trips() {
    // Private scalar 1: the public key is the base point G.
    let mut k = None;
    for (curve, scalar_len, base_point) in [
        (
            Curve::P256,
            32,
            "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
        ),
        (
            Curve::P384,
            48,
            "03aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
        ),
    ] {
        let mut one = vec![0u8; scalar_len];
        one[scalar_len - 1] = 1;
        let key = SigningKey::from_private_scalar(curve, &one).unwrap();
        assert_eq!(
            hex::encode(key.public_key_compressed().unwrap()),
            base_point
        );
        k = Some(key);
    }
    let k = k.unwrap();
    assert!(SigningKey::from_private_scalar(Curve::P384, &[0u8; 48]).is_err());
    assert!(SigningKey::from_private_scalar(Curve::P384, &[1u8; 49]).is_err());
    // Short scalars are integers: 0x01 is the same key as 47 zero bytes then 0x01.
    let short = SigningKey::from_private_scalar(Curve::P384, &[1]).unwrap();
    assert_eq!(
        short.public_key_compressed().unwrap(),
        k.public_key_compressed().unwrap()
    );

    for curve in [Curve::P256, Curve::P384] {
        let key = SigningKey::generate(curve).unwrap();
        let public = key.public_key_compressed().unwrap();
        assert_eq!(public.len(), curve.compressed_len());
        let verifier = VerifyingKey::from_sec1(curve, &public).unwrap();
        assert_eq!(verifier.compressed(), &public[..]);

        let d = digest(curve.hash(), b"the message");
        let sig = key.sign_digest(&d).unwrap();
        assert_eq!(sig[0], 0x30, "DER SEQUENCE");
        verifier.verify_digest(&d, &sig).unwrap();

        let other = digest(curve.hash(), b"the messagf");
        assert_eq!(
            verifier.verify_digest(&other, &sig),
            Err(CryptoError::SignatureInvalid)
        );
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(
            verifier.verify_digest(&d, &bad),
            Err(CryptoError::SignatureInvalid)
        );
        assert_eq!(
            verifier.verify_digest(&d, b"not der"),
            Err(CryptoError::SignatureInvalid)
        );

        let wrong_hash = digest(HashAlgorithm::Sha512, b"x");
        assert_eq!(
            key.sign_digest(&wrong_hash),
            Err(CryptoError::DigestMismatch)
        );
        assert!(format!("{key:?}").starts_with("SigningKey { curve"));
    }
}

#[test]
fn ecdsa_uncompressed_points_are_compressed() {
    // P-256 G, uncompressed.
    let g = h(
        "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
    );
    let key = VerifyingKey::from_sec1(Curve::P256, &g).unwrap();
    assert_eq!(
        hex::encode(key.compressed()),
        "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    );
    // Not on the curve.
    let mut off = g.clone();
    off[64] ^= 1;
    assert!(VerifyingKey::from_sec1(Curve::P256, &off).is_err());
    assert!(
        VerifyingKey::from_sec1(Curve::P384, &g).is_err(),
        "wrong size for the curve"
    );
    assert!(VerifyingKey::from_sec1(Curve::P256, &[]).is_err());
}

#[test]
fn rsa_round_trips_every_padding() {
    let private = RsaPrivateKey::from_pem(include_str!("data/rsa-2048-private.pem")).unwrap();
    let public = RsaPublicKey::from_pem(include_str!("data/rsa-2048-public.pem")).unwrap();
    assert_eq!(public.size_bytes(), 256);
    assert_eq!(private.size_bytes(), 256);
    assert!(format!("{private:?}").contains("REDACTED"));
    let key = SecretBytes::random(32).unwrap();
    let paddings = [
        RsaPadding::Pkcs1v15,
        RsaPadding::OaepSha1,
        RsaPadding::OaepSha256,
        RsaPadding::OaepSha384,
        RsaPadding::OaepSha512,
    ];
    for padding in paddings {
        let ct = public.encrypt(padding, key.expose_secret()).unwrap();
        assert_eq!(ct.len(), 256);
        let pt = private.decrypt(padding, &ct).unwrap();
        assert_eq!(pt.expose_secret(), key.expose_secret(), "{padding:?}");
        // Decrypting with another OAEP hash fails.
        if padding != RsaPadding::Pkcs1v15 {
            let other = if padding == RsaPadding::OaepSha1 {
                RsaPadding::OaepSha256
            } else {
                RsaPadding::OaepSha1
            };
            assert_eq!(
                private.decrypt(other, &ct).unwrap_err(),
                CryptoError::RsaDecryptFailed
            );
        }
    }
    let mut ct = public.encrypt(RsaPadding::OaepSha256, b"x").unwrap();
    ct[10] ^= 0x40;
    assert!(private.decrypt(RsaPadding::OaepSha256, &ct).is_err());
    // OAEP-SHA512 on a 2048-bit key holds at most 256 - 2*64 - 2 = 126 bytes.
    assert!(public.encrypt(RsaPadding::OaepSha512, &[0u8; 127]).is_err());
}

#[test]
fn rsa_rejects_wrong_key_kinds() {
    assert!(RsaPrivateKey::from_pem(include_str!("data/rsa-2048-public.pem")).is_err());
    assert!(RsaPublicKey::from_pem(include_str!("data/rsa-2048-private.pem")).is_err());
    assert!(RsaPublicKey::from_der(&[0x30, 0x00]).is_err());
}

#[test]
fn rsa_keys_under_2048_bits_are_refused_as_too_small_on_every_backend() {
    let too_small = CryptoError::InvalidKey("an RSA key under 2048 bits: too small to use");
    assert_eq!(
        RsaPublicKey::from_pem(include_str!("data/rsa-1024-public.pem")).err(),
        Some(too_small.clone())
    );
    assert_eq!(
        RsaPrivateKey::from_pem(include_str!("data/rsa-1024-private.pem")).err(),
        Some(too_small)
    );
    assert_eq!(
        RsaPublicKey::from_der(&[0x30, 0x00]).err(),
        Some(CryptoError::InvalidKey("not an RSA SubjectPublicKeyInfo"))
    );
}

#[test]
fn random_bytes_differ() {
    let a = SecretBytes::random(32).unwrap();
    let b = SecretBytes::random(32).unwrap();
    assert!(!a.ct_eq(b.expose_secret()));
    println!("backend: {}", envelope_crypto::BACKEND);
}

/// Feature unification could silently build the other backend: CI says which one it means to test.
#[test]
fn backend_is_the_one_ci_expects() {
    if let Ok(expected) = std::env::var("ENVELOPE_EXPECT_BACKEND") {
        assert_eq!(envelope_crypto::BACKEND, expected);
    }
}

/// The approved-mode check: the FIPS module reports approved mode in a `fips` build, and every
/// other build says it has no FIPS module.
#[test]
fn fips_status_is_approved_exactly_in_a_fips_build() {
    let status = envelope_crypto::fips_status();
    if cfg!(feature = "fips") {
        assert_eq!(status, envelope_crypto::FipsStatus::Approved);
        assert!(status.is_approved());
    } else {
        assert_eq!(status, envelope_crypto::FipsStatus::NotFipsBuild);
        assert!(!status.is_approved());
    }
}
