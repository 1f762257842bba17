//! The raw RSA keyring, the multi-keyring and the required-encryption-context CMM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use envelope_format::{AlgorithmSuite, CommitmentPolicy, EncryptionContext};
use envelope_keyring::{
    DecryptRequest, EncryptionRequest, Error, Keyring, MaterialsManager, MultiKeyring,
    RawAesKeyring, RawRsaKeyring, RequiredEncryptionContextCmm, RsaPadding, SecretBytes,
};

mod common;
use common::decrypt_request;

const PUBLIC: &str = include_str!("data/rsa-2048-public.pem");
const PRIVATE: &str = include_str!("data/rsa-2048-private.pem");
const POLICY: CommitmentPolicy = CommitmentPolicy::RequireEncryptAllowDecrypt;
const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

fn ec() -> EncryptionContext {
    EncryptionContext::from_iter([("tenant", "acme"), ("region", "eu")])
}

fn aes(name: &str, byte: u8) -> RawAesKeyring {
    RawAesKeyring::new("ns", name, SecretBytes::from_slice(&[byte; 32])).unwrap()
}

async fn round_trip(
    encrypt_with: &dyn MaterialsManager,
    decrypt_with: &dyn MaterialsManager,
) -> Result<(), Error> {
    let enc = encrypt_with
        .get_encryption_materials(EncryptionRequest::new(ec(), POLICY).with_suite(SUITE))
        .await?;
    let req = decrypt_request(&enc, POLICY);
    let dec = decrypt_with.decrypt_materials(req).await?;
    assert!(dec.data_key().ct_eq(enc.data_key().expose_secret()));
    Ok(())
}

#[tokio::test]
async fn rsa_every_padding() {
    for padding in [
        RsaPadding::Pkcs1v15,
        RsaPadding::OaepSha1,
        RsaPadding::OaepSha256,
        RsaPadding::OaepSha384,
        RsaPadding::OaepSha512,
    ] {
        // A FIPS build uses PKCS#1 v1.5 only when allowed (the next test); OAEP always.
        let both = RawRsaKeyring::new("ns", "rsa", padding, PUBLIC, PRIVATE)
            .unwrap()
            .allow_non_approved_padding();
        round_trip(&both, &both).await.unwrap();
        let enc = RawRsaKeyring::encrypt_only("ns", "rsa", padding, PUBLIC)
            .unwrap()
            .allow_non_approved_padding();
        let dec = RawRsaKeyring::decrypt_only("ns", "rsa", padding, PRIVATE)
            .unwrap()
            .allow_non_approved_padding();
        round_trip(&enc, &dec).await.unwrap();
        let m = enc
            .get_encryption_materials(EncryptionRequest::new(ec(), POLICY).with_suite(SUITE))
            .await
            .unwrap();
        let edk = &m.encrypted_data_keys()[0];
        assert_eq!(
            (edk.provider_id(), edk.provider_info()),
            ("ns", &b"rsa"[..])
        );
        assert_eq!(edk.ciphertext().len(), 256);
    }
}

/// A FIPS build refuses RSA PKCS#1 v1.5 both ways unless the keyring allows it; other builds use
/// it by default.
#[tokio::test]
async fn rsa_pkcs1_is_refused_by_a_fips_build_unless_allowed() {
    let keyring =
        || RawRsaKeyring::new("ns", "rsa", RsaPadding::Pkcs1v15, PUBLIC, PRIVATE).unwrap();
    let allowed = keyring().allow_non_approved_padding();
    round_trip(&allowed, &allowed).await.unwrap();
    let encrypted = round_trip(&keyring(), &allowed).await;
    let decrypted = round_trip(&allowed, &keyring()).await;
    if envelope_crypto::FIPS_BUILD {
        for (result, side) in [(encrypted, "encrypt"), (decrypted, "decrypt")] {
            let err = result.unwrap_err();
            assert!(
                matches!(err, Error::Unsupported { operation, .. } if operation == side),
                "{err:?}"
            );
            assert!(err.to_string().contains("not a FIPS-approved"), "{err}");
        }
    } else {
        encrypted.unwrap();
        decrypted.unwrap();
    }
}

#[tokio::test]
async fn rsa_one_sided_keyrings_say_what_they_cannot_do() {
    let enc = RawRsaKeyring::encrypt_only("ns", "rsa", RsaPadding::OaepSha256, PUBLIC).unwrap();
    let err = round_trip(&enc, &enc).await.unwrap_err();
    assert!(matches!(
        err,
        Error::Unsupported {
            operation: "decrypt",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "raw RSA keyring \"ns\"/\"rsa\" cannot decrypt: it has no private key"
    );
    let dec = RawRsaKeyring::decrypt_only("ns", "rsa", RsaPadding::OaepSha256, PRIVATE).unwrap();
    let err = round_trip(&dec, &dec).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unsupported {
                operation: "encrypt",
                ..
            }
        ),
        "{err}"
    );
    assert!(format!("{dec:?}").contains("[REDACTED]"));
}

#[tokio::test]
async fn rsa_wrong_padding_or_name_fails() {
    let enc = RawRsaKeyring::encrypt_only("ns", "rsa", RsaPadding::OaepSha256, PUBLIC).unwrap();
    let wrong_padding =
        RawRsaKeyring::decrypt_only("ns", "rsa", RsaPadding::OaepSha1, PRIVATE).unwrap();
    assert!(matches!(
        round_trip(&enc, &wrong_padding).await,
        Err(Error::UnwrapFailed { attempts: 1, .. })
    ));
    let wrong_name =
        RawRsaKeyring::decrypt_only("ns", "other", RsaPadding::OaepSha256, PRIVATE).unwrap();
    assert!(matches!(
        round_trip(&enc, &wrong_name).await,
        Err(Error::NoMatchingDataKey { .. })
    ));
    assert!(matches!(
        RawRsaKeyring::encrypt_only("ns", "rsa", RsaPadding::OaepSha256, PRIVATE),
        Err(Error::InvalidConfiguration(_))
    ));
}

#[tokio::test]
async fn multi_keyring_every_member_can_decrypt() {
    let rsa = RawRsaKeyring::new("ns", "rsa", RsaPadding::OaepSha256, PUBLIC, PRIVATE).unwrap();
    let multi = MultiKeyring::builder()
        .generator(aes("a", 1))
        .child(aes("b", 2))
        .child(rsa)
        .build()
        .unwrap();
    let enc = multi
        .get_encryption_materials(EncryptionRequest::new(ec(), POLICY).with_suite(SUITE))
        .await
        .unwrap();
    assert_eq!(enc.encrypted_data_keys().len(), 3);
    for member in [
        Box::new(aes("a", 1)) as Box<dyn Keyring>,
        Box::new(aes("b", 2)),
        Box::new(
            RawRsaKeyring::decrypt_only("ns", "rsa", RsaPadding::OaepSha256, PRIVATE).unwrap(),
        ),
    ] {
        let req = decrypt_request(&enc, POLICY);
        let dec = member.decrypt_materials(req).await.unwrap();
        assert!(dec.data_key().ct_eq(enc.data_key().expose_secret()));
    }
    round_trip(&multi, &multi).await.unwrap();
}

#[tokio::test]
async fn multi_keyring_failures() {
    // A failing child fails the encryption.
    let enc_only_rsa =
        RawRsaKeyring::decrypt_only("ns", "rsa", RsaPadding::OaepSha256, PRIVATE).unwrap();
    let multi = MultiKeyring::builder()
        .generator(aes("a", 1))
        .child(enc_only_rsa)
        .build()
        .unwrap();
    assert!(matches!(
        multi
            .get_encryption_materials(EncryptionRequest::new(ec(), POLICY))
            .await,
        Err(Error::Unsupported {
            operation: "encrypt",
            ..
        })
    ));
    // Without a generator, a data key must already be there.
    let children_only = MultiKeyring::new(None, vec![Arc::new(aes("a", 1))]).unwrap();
    assert!(matches!(
        children_only
            .get_encryption_materials(EncryptionRequest::new(ec(), POLICY))
            .await,
        Err(Error::IncompleteMaterials(_))
    ));
    assert!(MultiKeyring::new(None, vec![]).is_err());
    // Decrypt: every member's error, in order; a public-key-only RSA member is just one failure.
    // A generator and a public-key-only RSA key that cannot decrypt, then `last`.
    let after_two_failures = |last| {
        let rsa = RawRsaKeyring::encrypt_only("ns", "rsa", RsaPadding::OaepSha256, PUBLIC).unwrap();
        MultiKeyring::builder()
            .generator(aes("x", 9))
            .child(rsa)
            .child(last)
            .build()
            .unwrap()
    };
    let other = after_two_failures(aes("a", 7));
    let err = round_trip(&aes("a", 1), &other).await.unwrap_err();
    let Error::MultiKeyring(errors) = &err else {
        panic!("{err}")
    };
    assert_eq!(errors.len(), 3);
    assert!(matches!(errors[0], Error::NoMatchingDataKey { .. }));
    assert!(matches!(errors[1], Error::Unsupported { .. }));
    assert!(matches!(errors[2], Error::UnwrapFailed { .. }));
    assert!(
        err.to_string()
            .starts_with("every keyring failed: [1] no encrypted data key"),
        "{err}"
    );
    // ... and a member that can decrypt, after ones that cannot, succeeds.
    let recovering = after_two_failures(aes("a", 1));
    round_trip(&aes("a", 1), &recovering).await.unwrap();
}

#[tokio::test]
async fn required_encryption_context_cmm() {
    let cmm = RequiredEncryptionContextCmm::new(aes("a", 1), ["tenant"]).unwrap();
    assert!(RequiredEncryptionContextCmm::new(aes("a", 1), Vec::<String>::new()).is_err());
    // Encrypt: the key must be present, and it is marked required.
    let err = cmm
        .get_encryption_materials(EncryptionRequest::new(
            EncryptionContext::from_iter([("region", "eu")]),
            POLICY,
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingRequiredEncryptionContextKey(ref k) if k == "tenant"));
    let enc = cmm
        .get_encryption_materials(EncryptionRequest::new(ec(), POLICY).with_suite(SUITE))
        .await
        .unwrap();
    assert!(enc.required_encryption_context_keys().contains("tenant"));
    // Decrypt: the header stores only the unrequired pairs; the caller must reproduce the rest.
    let stored = EncryptionContext::from_iter([("region", "eu")]);
    let req = DecryptRequest::new(
        SUITE,
        POLICY,
        enc.encrypted_data_keys().to_vec(),
        stored.clone(),
    );
    let err = cmm.decrypt_materials(req.clone()).await.unwrap_err();
    assert!(matches!(err, Error::MissingRequiredEncryptionContextKey(_)));
    let dec =
        cmm.decrypt_materials(req.clone().with_reproduced_encryption_context(
            EncryptionContext::from_iter([("tenant", "acme")]),
        ))
        .await
        .unwrap();
    assert_eq!(dec.encryption_context(), &ec());
    assert!(dec.required_encryption_context_keys().contains("tenant"));
    // A wrong reproduced value fails the raw AES unwrap (the context is its AAD).
    let err =
        cmm.decrypt_materials(req.with_reproduced_encryption_context(
            EncryptionContext::from_iter([("tenant", "evil")]),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnwrapFailed { .. }), "{err}");
}

#[test]
fn an_rsa_keyring_prints_its_private_key_as_redacted() {
    let keyring =
        RawRsaKeyring::decrypt_only("ns", "rsa", RsaPadding::OaepSha256, PRIVATE).unwrap();
    let printed = format!("{keyring:?}");
    assert!(
        printed.contains("RsaPrivateKey(2048 bits, [REDACTED])"),
        "{printed}"
    );
    assert!(!printed.contains("MII"), "{printed}");
}
