//! Behaviour of the raw AES keyring and the default CMM.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use envelope_format::{
    AlgorithmSuite, CommitmentPolicy, EncryptedDataKey, EncryptionContext, Operation,
    PolicyViolation,
};
use envelope_keyring::{
    CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptRequest, DecryptionMaterials,
    DefaultCmm, EncryptionMaterials, EncryptionRequest, Error, Keyring, MaterialsManager,
    RawAesKeyring, SecretBytes, async_trait,
};

mod common;
use common::decrypt_request;

fn keyring(name: &str, key: u8) -> RawAesKeyring {
    RawAesKeyring::new("ns", name, SecretBytes::from_slice(&[key; 32])).unwrap()
}

fn ec() -> EncryptionContext {
    EncryptionContext::from_iter([("tenant", "acme"), ("é", "😀")])
}

const POLICY: CommitmentPolicy = CommitmentPolicy::RequireEncryptAllowDecrypt;

#[tokio::test]
async fn raw_aes_round_trip_for_every_suite_and_key_size() {
    for key_len in [16, 24, 32] {
        let kr = RawAesKeyring::new("ns", "k", SecretBytes::random(key_len).unwrap()).unwrap();
        for suite in AlgorithmSuite::ALL {
            let policy = CommitmentPolicy::strictest_for(suite);
            let req = EncryptionRequest::new(ec(), policy).with_suite(suite);
            let enc = kr.get_encryption_materials(req).await.unwrap();
            assert_eq!(enc.suite(), suite);
            assert_eq!(enc.data_key().len(), suite.key_len());
            assert_eq!(enc.signing_key().is_some(), suite.is_signed());
            assert_eq!(
                enc.encryption_context()
                    .contains_key("aws-crypto-public-key"),
                suite.is_signed()
            );
            let edk = &enc.encrypted_data_keys()[0];
            assert_eq!(edk.provider_id(), "ns");
            // name || 00000080 || 0000000c || IV
            assert_eq!(
                &edk.provider_info()[..9],
                b"k\x00\x00\x00\x80\x00\x00\x00\x0c"
            );
            assert_eq!(edk.provider_info().len(), 1 + 8 + 12);
            assert_eq!(edk.ciphertext().len(), suite.key_len() + 16);

            let req = decrypt_request(&enc, policy);
            let dec = kr.decrypt_materials(req).await.unwrap();
            assert!(dec.data_key().ct_eq(enc.data_key().expose_secret()));
            assert_eq!(dec.verification_key().is_some(), suite.is_signed());
        }
    }
}

/// A raw AES keyring `k`/1, a committing suite, and materials it made for the test context.
async fn encrypted_with_k1() -> (RawAesKeyring, AlgorithmSuite, CompleteEncryptionMaterials) {
    let kr = keyring("k", 1);
    let suite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let enc = kr
        .get_encryption_materials(EncryptionRequest::new(ec(), POLICY).with_suite(suite))
        .await
        .unwrap();
    (kr, suite, enc)
}

#[tokio::test]
async fn raw_aes_binds_the_encryption_context_and_the_key() {
    let (kr, suite, enc) = encrypted_with_k1().await;
    let edks = enc.encrypted_data_keys().to_vec();

    let mut other_ec = ec();
    other_ec.insert("tenant", "evil");
    let err = kr
        .decrypt_materials(DecryptRequest::new(suite, POLICY, edks.clone(), other_ec))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnwrapFailed { attempts: 1, .. }),
        "{err}"
    );

    let wrong_key = keyring("k", 2);
    let err = wrong_key
        .decrypt_materials(DecryptRequest::new(suite, POLICY, edks.clone(), ec()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnwrapFailed { .. }));

    let wrong_name = keyring("other", 1);
    let err = wrong_name
        .decrypt_materials(DecryptRequest::new(suite, POLICY, edks.clone(), ec()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingDataKey { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "no encrypted data key in the message matches raw AES keyring \"ns\"/\"other\""
    );

    // A key name that is a prefix of the real one must not match.
    let prefix = keyring("", 1);
    let err = prefix
        .decrypt_materials(DecryptRequest::new(suite, POLICY, edks, ec()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingDataKey { .. }));
}

#[tokio::test]
async fn raw_aes_tries_every_matching_key_in_order() {
    let (kr, suite, enc) = encrypted_with_k1().await;
    let good = enc.encrypted_data_keys()[0].clone();
    let mut corrupted = good.ciphertext().to_vec();
    corrupted[0] ^= 1;
    let bad = EncryptedDataKey::new("ns", good.provider_info().to_vec(), corrupted).unwrap();
    let foreign = EncryptedDataKey::new("aws-kms", b"arn".to_vec(), vec![1, 2, 3]).unwrap();
    let dec = kr
        .decrypt_materials(DecryptRequest::new(
            suite,
            POLICY,
            vec![foreign, bad, good],
            ec(),
        ))
        .await
        .unwrap();
    assert!(dec.data_key().ct_eq(enc.data_key().expose_secret()));
}

#[test]
fn raw_aes_configuration_is_checked() {
    assert!(matches!(
        RawAesKeyring::new("ns", "k", SecretBytes::from_slice(&[0; 20])),
        Err(Error::InvalidConfiguration(_))
    ));
    assert!(matches!(
        RawAesKeyring::new("aws-kms", "k", SecretBytes::from_slice(&[0; 32])),
        Err(Error::InvalidConfiguration(_))
    ));
    let printed = format!("{:?}", keyring("k", 0xAB));
    assert!(printed.contains("REDACTED"));
    assert!(!printed.contains("171"), "{printed}");
}

/// Whether `err` is the commitment policy refusing `operation`.
fn refused_by_policy(err: &Error, operation: Operation) -> bool {
    matches!(err, Error::CommitmentPolicy(PolicyViolation { operation: o, .. }) if *o == operation)
}

#[tokio::test]
async fn default_cmm_enforces_policy_and_public_key_rules() {
    let kr = keyring("k", 1);
    let encrypt = |policy, suite: Option<AlgorithmSuite>| {
        let request = EncryptionRequest::new(ec(), policy);
        kr.get_encryption_materials(match suite {
            Some(suite) => request.with_suite(suite),
            None => request,
        })
    };
    let legacy = AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256;
    let committing = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let err = encrypt(CommitmentPolicy::RequireEncryptRequireDecrypt, Some(legacy))
        .await
        .unwrap_err();
    assert!(refused_by_policy(&err, Operation::Encrypt), "{err}");
    let err = encrypt(
        CommitmentPolicy::ForbidEncryptAllowDecrypt,
        Some(committing),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::CommitmentPolicy(_)));

    // Default suites.
    for (policy, suite) in [
        (
            CommitmentPolicy::ForbidEncryptAllowDecrypt,
            AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
        ),
        (
            CommitmentPolicy::default(),
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        ),
    ] {
        assert_eq!(encrypt(policy, None).await.unwrap().suite(), suite);
    }

    // A signed suite with the public key already present.
    let mut with_pk = ec();
    with_pk.insert("aws-crypto-public-key", "x");
    let err = kr
        .get_encryption_materials(EncryptionRequest::new(with_pk.clone(), POLICY))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PublicKeyAlreadyInContext));

    // Decrypt: unsigned suite with a public key, signed suite without or with a bad one.
    let unsigned = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
    let signed = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
    let edks = vec![EncryptedDataKey::new("ns", b"k".to_vec(), vec![0; 48]).unwrap()];
    let err = kr
        .decrypt_materials(DecryptRequest::new(
            unsigned,
            POLICY,
            edks.clone(),
            with_pk.clone(),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnexpectedVerificationKey));
    let err = kr
        .decrypt_materials(DecryptRequest::new(signed, POLICY, edks.clone(), ec()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MissingVerificationKey));
    let err = kr
        .decrypt_materials(DecryptRequest::new(signed, POLICY, edks.clone(), with_pk))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidVerificationKey));
    let err = kr
        .decrypt_materials(DecryptRequest::new(
            AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
            CommitmentPolicy::RequireEncryptRequireDecrypt,
            edks,
            ec(),
        ))
        .await
        .unwrap_err();
    assert!(refused_by_policy(&err, Operation::Decrypt), "{err}");
}

#[tokio::test]
async fn reproduced_encryption_context() {
    let (kr, suite, enc) = encrypted_with_k1().await;
    let edks = enc.encrypted_data_keys().to_vec();
    let req = |stored: EncryptionContext, reproduced: EncryptionContext| {
        DecryptRequest::new(suite, POLICY, edks.clone(), stored)
            .with_reproduced_encryption_context(reproduced)
    };
    // Matching subset: fine, nothing required.
    let dec = kr
        .decrypt_materials(req(
            ec(),
            EncryptionContext::from_iter([("tenant", "acme")]),
        ))
        .await
        .unwrap();
    assert!(dec.required_encryption_context_keys().is_empty());
    // Differing value: rejected before any unwrapping.
    let err = kr
        .decrypt_materials(req(ec(), EncryptionContext::from_iter([("tenant", "x")])))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ReproducedContextMismatch(ref k) if k == "tenant"));
    // Pairs missing from the stored context are merged and become required.
    let stored = EncryptionContext::from_iter([("tenant", "acme")]);
    let dec = kr.decrypt_materials(req(stored, ec())).await.unwrap();
    assert_eq!(dec.encryption_context(), &ec());
    assert_eq!(
        dec.required_encryption_context_keys(),
        &BTreeSet::from(["é".to_string()])
    );
}

/// A user-written keyring: the trait is open and every keyring is a CMM.
struct StaticKeyring(Vec<u8>);

#[async_trait]
impl Keyring for StaticKeyring {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
        let edk = EncryptedDataKey::new("static", b"".to_vec(), b"opaque".to_vec())?;
        Ok(materials
            .with_data_key(SecretBytes::from_slice(&self.0))?
            .with_encrypted_data_key(edk))
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        if edks.iter().any(|e| e.provider_id() == "static") {
            materials.with_data_key(SecretBytes::from_slice(&self.0))
        } else {
            Err(Error::NoMatchingDataKey {
                keyring: "static".into(),
            })
        }
    }
}

#[tokio::test]
async fn user_keyrings_plug_in_and_wrong_lengths_are_caught() {
    let cmm = DefaultCmm::new(StaticKeyring(vec![9; 32]));
    let m = cmm
        .get_encryption_materials(EncryptionRequest::new(ec(), POLICY))
        .await
        .unwrap();
    assert_eq!(m.encrypted_data_keys()[0].provider_id(), "static");
    let dyn_keyring: &dyn Keyring = &StaticKeyring(vec![9; 16]);
    let err = dyn_keyring
        .get_encryption_materials(EncryptionRequest::new(ec(), POLICY))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidDataKeyLength {
            expected: 32,
            found: 16
        }
    ));
}

#[test]
fn errors_report_retryability() {
    let e = Error::Provider(
        envelope_keyring::ProviderError::new("aws-kms", "slow down")
            .with_code("ThrottlingException")
            .retryable(true),
    );
    assert!(e.is_retryable());
    assert_eq!(e.to_string(), "aws-kms: ThrottlingException: slow down");
    assert!(Error::MultiKeyring(vec![Error::DataKeyAlreadySet, e]).is_retryable());
    assert!(!Error::DataKeyAlreadySet.is_retryable());
}
