//! Multi-keyrings, RSA and the required-encryption-context CMM through the client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envelope::blocking::Client;
use envelope::keyring::Error as KeyringError;
use envelope::{
    EncryptionContext, Error, MultiKeyring, RawAesKeyring, RawRsaKeyring,
    RequiredEncryptionContextCmm, RsaPadding, SecretBytes,
};

const PUBLIC: &str = include_str!("../../envelope-crypto/tests/data/rsa-2048-public.pem");
const PRIVATE: &str = include_str!("../../envelope-crypto/tests/data/rsa-2048-private.pem");

fn aes() -> RawAesKeyring {
    RawAesKeyring::new("app", "aes", SecretBytes::from_slice(&[3; 32])).unwrap()
}

fn ec() -> EncryptionContext {
    EncryptionContext::from_iter([("tenant", "acme"), ("stage", "prod")])
}

#[test]
fn required_keys_are_authenticated_but_not_stored() {
    let client = Client::new();
    let cmm = RequiredEncryptionContextCmm::new(aes(), ["tenant"]).unwrap();
    let msg = client
        .encrypt(&cmm, b"secret")
        .encryption_context(ec())
        .run()
        .unwrap();
    let stored = msg.header().body().encryption_context();
    assert!(!stored.contains_key("tenant"));
    assert_eq!(stored.get("stage"), Some("prod"));
    assert_eq!(msg.encryption_context().get("tenant"), Some("acme"));

    // Without the required pair: the CMM refuses; the bare keyring cannot authenticate the header.
    let err = client.decrypt(&cmm, msg.ciphertext()).run().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Materials(KeyringError::MissingRequiredEncryptionContextKey(_))
        ),
        "{err}"
    );
    assert!(client.decrypt(&aes(), msg.ciphertext()).run().is_err());

    // With it: both the CMM and the plain keyring (reproduced context) decrypt.
    let reproduced = EncryptionContext::from_iter([("tenant", "acme")]);
    let out = client
        .decrypt(&cmm, msg.ciphertext())
        .encryption_context(reproduced.clone())
        .run()
        .unwrap();
    assert_eq!(out.plaintext(), b"secret");
    assert_eq!(out.encryption_context().get("tenant"), Some("acme"));
    client
        .decrypt(&aes(), msg.ciphertext())
        .encryption_context(reproduced)
        .run()
        .unwrap();

    // A different value for the required key fails.
    let wrong = EncryptionContext::from_iter([("tenant", "other")]);
    assert!(
        client
            .decrypt(&cmm, msg.ciphertext())
            .encryption_context(wrong)
            .run()
            .is_err()
    );
}

#[test]
fn required_keys_authenticate_the_header_even_with_rsa() {
    // RSA wrapping does not bind the context, so only header authentication protects required keys.
    let client = Client::new();
    let rsa = RawRsaKeyring::new("app", "rsa", RsaPadding::OaepSha256, PUBLIC, PRIVATE).unwrap();
    let cmm = RequiredEncryptionContextCmm::new(rsa, ["tenant", "stage"]).unwrap();
    let msg = client
        .encrypt(&cmm, b"secret")
        .encryption_context(ec())
        .run()
        .unwrap();
    assert!(
        msg.header()
            .body()
            .encryption_context()
            .contains_key("aws-crypto-public-key")
    );
    assert_eq!(msg.header().body().encryption_context().len(), 1);
    client
        .decrypt(&cmm, msg.ciphertext())
        .encryption_context(ec())
        .run()
        .unwrap();
    let wrong = EncryptionContext::from_iter([("tenant", "acme"), ("stage", "dev")]);
    let err = client
        .decrypt(&cmm, msg.ciphertext())
        .encryption_context(wrong)
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::AuthenticationFailed), "{err}");
}

#[test]
fn multi_keyring_messages_decrypt_with_any_member() {
    let client = Client::new();
    let rsa_public =
        RawRsaKeyring::encrypt_only("app", "rsa", RsaPadding::OaepSha512, PUBLIC).unwrap();
    let multi = MultiKeyring::builder()
        .generator(aes())
        .child(rsa_public)
        .build()
        .unwrap();
    let msg = client
        .encrypt(&multi, b"shared")
        .encryption_context(ec())
        .run()
        .unwrap();
    assert_eq!(msg.header().body().encrypted_data_keys().len(), 2);
    let rsa_private =
        RawRsaKeyring::decrypt_only("app", "rsa", RsaPadding::OaepSha512, PRIVATE).unwrap();
    assert_eq!(
        client
            .decrypt(&rsa_private, msg.ciphertext())
            .run()
            .unwrap()
            .plaintext(),
        b"shared"
    );
    assert_eq!(
        client
            .decrypt(&aes(), msg.ciphertext())
            .run()
            .unwrap()
            .plaintext(),
        b"shared"
    );
    let err = client.decrypt(&multi, msg.ciphertext()).run();
    assert!(err.is_ok(), "the generator can decrypt its own message");
}
