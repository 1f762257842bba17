//! Bad input: truncation at every byte, every bit flipped, wrong keys and contexts, policy
//! violations, too many encrypted data keys, Base64 text, trailing bytes. Each gives a typed error
//! and no plaintext; nothing panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use envelope::blocking::Client;
use envelope::format::{Operation, PolicyViolation};
use envelope::keyring::Error as KeyringError;
use envelope::{
    AlgorithmSuite, CommitmentPolicy, CompleteDecryptionMaterials, DecryptionMaterials,
    EncryptedDataKey, EncryptionContext, EncryptionMaterials, Error, FormatError, Keyring,
    RawAesKeyring, SecretBytes, async_trait,
};

/// A frame length (test values are never zero).
fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap()
}

fn keyring(byte: u8) -> RawAesKeyring {
    RawAesKeyring::new("test", "key", SecretBytes::from_slice(&[byte; 32])).unwrap()
}

fn permissive() -> Client {
    Client::from(
        envelope::Client::builder()
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .build(),
    )
}

/// One 40-byte message in 16-byte frames per suite, and the client and keyring that decrypt it.
fn small_messages() -> (Client, RawAesKeyring, Vec<(AlgorithmSuite, Vec<u8>)>) {
    let messages = SUITES.map(|suite| (suite, message(suite, 16, 40)));
    (permissive(), keyring(1), messages.to_vec())
}

fn message(suite: AlgorithmSuite, frame: u32, len: usize) -> Vec<u8> {
    let policy = CommitmentPolicy::strictest_for(suite);
    let client = Client::from(
        envelope::Client::builder()
            .commitment_policy(policy)
            .build(),
    );
    client
        .encrypt(&keyring(1), &vec![0x5a; len])
        .suite(suite)
        .frame_length(nz(frame))
        .encryption_context([("tenant", "acme")])
        .run()
        .unwrap()
        .into_ciphertext()
}

const SUITES: [AlgorithmSuite; 5] = [
    AlgorithmSuite::Aes128GcmIv12Tag16NoKdf,
    AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
    AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
    AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
];

#[test]
fn truncated_at_every_byte() {
    let (client, kr, messages) = small_messages();
    for (suite, msg) in messages {
        for cut in 0..msg.len() {
            match client.decrypt(&kr, &msg[..cut]).run() {
                Ok(_) => panic!("{suite}: prefix of {cut} bytes decrypted"),
                Err(Error::Format(FormatError::Truncated(_))) => {}
                // Cutting inside the header can leave a structurally different but shorter
                // header (e.g. fewer EDK bytes): parse errors and failed unwraps are acceptable.
                Err(Error::Format(_) | Error::Materials(_) | Error::AuthenticationFailed) => {}
                Err(other) => panic!("{suite}: cut {cut}: unexpected error {other}"),
            }
        }
        // Truncation after the header is always reported as truncation.
        let header_len = client.decrypt(&kr, &msg).run().unwrap().header().len();
        for cut in header_len..msg.len() {
            let err = client.decrypt(&kr, &msg[..cut]).run().unwrap_err();
            assert!(
                matches!(err, Error::Format(FormatError::Truncated(_))),
                "{suite} cut {cut}: {err}"
            );
        }
    }
}

#[test]
fn every_bit_flipped() {
    let (client, kr, messages) = small_messages();
    for (suite, msg) in messages {
        let mut flipped = msg.clone();
        for byte in 0..msg.len() {
            for bit in 0..8 {
                flipped[byte] ^= 1 << bit;
                let result = client.decrypt(&kr, &flipped).run();
                assert!(
                    result.is_err(),
                    "{suite}: flipping bit {bit} of byte {byte} went unnoticed"
                );
                flipped[byte] ^= 1 << bit;
            }
        }
        assert!(client.decrypt(&kr, &msg).run().is_ok());
    }
}

#[test]
fn body_tampering_is_an_authentication_failure() {
    let client = permissive();
    let kr = keyring(1);
    let mut msg = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 16, 40);
    let n = msg.len();
    msg[n - 20] ^= 0x80;
    assert!(matches!(
        client.decrypt(&kr, &msg).run(),
        Err(Error::AuthenticationFailed)
    ));
}

#[test]
fn wrong_key_and_wrong_context() {
    let client = permissive();
    for suite in SUITES {
        let msg = message(suite, 4096, 10);
        let err = client.decrypt(&keyring(2), &msg).run().unwrap_err();
        assert!(
            matches!(err, Error::Materials(KeyringError::UnwrapFailed { .. })),
            "{err}"
        );
        let other_name =
            RawAesKeyring::new("test", "other", SecretBytes::from_slice(&[1; 32])).unwrap();
        let err = client.decrypt(&other_name, &msg).run().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Materials(KeyringError::NoMatchingDataKey { .. })
            ),
            "{err}"
        );

        let err = client
            .decrypt(&keyring(1), &msg)
            .encryption_context([("tenant", "evil")])
            .run()
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Materials(KeyringError::ReproducedContextMismatch(_))
            ),
            "{err}"
        );
        // A pair the message never had: authenticated as required, so the header check fails.
        let err = client
            .decrypt(&keyring(1), &msg)
            .encryption_context([("tenant", "acme"), ("extra", "x")])
            .run()
            .unwrap_err();
        assert!(
            matches!(err, Error::Materials(_) | Error::AuthenticationFailed),
            "{err}"
        );
        // The right context (or a subset) works.
        client
            .decrypt(&keyring(1), &msg)
            .encryption_context([("tenant", "acme")])
            .run()
            .unwrap();
        client
            .decrypt(&keyring(1), &msg)
            .encryption_context(EncryptionContext::new())
            .run()
            .unwrap();
    }
}

#[test]
fn commitment_policy_on_both_sides() {
    let strict = Client::new();
    let err = strict
        .encrypt(&keyring(1), b"x")
        .suite(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256)
        .run()
        .unwrap_err();
    assert!(matches!(
        err,
        Error::CommitmentPolicy(PolicyViolation {
            operation: Operation::Encrypt,
            ..
        })
    ));
    let legacy = message(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256, 4096, 3);
    let err = strict.decrypt(&keyring(1), &legacy).run().unwrap_err();
    assert!(
        matches!(
            err,
            Error::CommitmentPolicy(PolicyViolation {
                operation: Operation::Decrypt,
                suite: AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
                ..
            })
        ),
        "{err}"
    );
    let forbid = Client::from(
        envelope::Client::builder()
            .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
            .build(),
    );
    let err = forbid
        .encrypt(&keyring(1), b"x")
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::CommitmentPolicy(_)));
}

/// Wraps the data key under two raw AES keys.
struct TwoKeys(RawAesKeyring, RawAesKeyring);

#[async_trait]
impl Keyring for TwoKeys {
    async fn on_encrypt(
        &self,
        m: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let m = self.0.on_encrypt(m).await?;
        self.1.on_encrypt(m).await
    }
    async fn on_decrypt(
        &self,
        m: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, KeyringError> {
        self.0.on_decrypt(m, edks).await
    }
}

#[test]
fn too_many_encrypted_data_keys() {
    let two = TwoKeys(
        keyring(1),
        RawAesKeyring::new("test", "key2", SecretBytes::from_slice(&[2; 32])).unwrap(),
    );
    let unlimited = Client::new();
    let msg = unlimited.encrypt(&two, b"x").run().unwrap();
    assert_eq!(msg.header().body().encrypted_data_keys().len(), 2);
    let limited = Client::from(
        envelope::Client::builder()
            .max_encrypted_data_keys(Some(1))
            .build(),
    );
    let err = limited.encrypt(&two, b"x").run().unwrap_err();
    assert!(
        matches!(err, Error::TooManyEncryptedDataKeys { count: 2, max: 1 }),
        "{err}"
    );
    let err = limited.decrypt(&two, msg.ciphertext()).run().unwrap_err();
    assert!(
        matches!(err, Error::TooManyEncryptedDataKeys { count: 2, max: 1 }),
        "{err}"
    );
    // The limit is checked right after the count: a truncated message says the same.
    let bytes = msg.ciphertext();
    let aad_len = usize::from(u16::from_be_bytes([bytes[35], bytes[36]]));
    let cut = &bytes[..1 + 2 + 32 + 2 + aad_len + 2];
    assert!(matches!(
        limited.decrypt(&two, cut).run(),
        Err(Error::TooManyEncryptedDataKeys { .. })
    ));
    let two_allowed = Client::from(
        envelope::Client::builder()
            .max_encrypted_data_keys(Some(2))
            .build(),
    );
    two_allowed.decrypt(&two, msg.ciphertext()).run().unwrap();
}

#[test]
fn header_size_limit() {
    let msg = message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 4096, 3);
    let small = Client::from(envelope::Client::builder().max_header_len(Some(64)).build());
    let err = small.decrypt(&keyring(1), &msg).run().unwrap_err();
    assert!(
        matches!(err, Error::Format(FormatError::HeaderTooLarge { max: 64 })),
        "{err}"
    );
}

#[test]
fn base64_text_has_its_own_error() {
    let client = permissive();
    let v1 = message(AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256, 4096, 3);
    let text = base64::engine::general_purpose::STANDARD.encode(&v1);
    assert!(text.starts_with("AY"));
    let err = client
        .decrypt(&keyring(1), text.as_bytes())
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::Base64Encoded("AY")), "{err}");
    assert!(err.to_string().contains("Base64"));
    for (suite, prefix) in [
        (AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, "AgR4"),
        (
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
            "AgV4",
        ),
    ] {
        let text = base64::engine::general_purpose::STANDARD.encode(message(suite, 4096, 3));
        let err = client
            .decrypt(&keyring(1), text.as_bytes())
            .run()
            .unwrap_err();
        assert!(
            matches!(err, Error::Base64Encoded(p) if p == prefix),
            "{err}"
        );
    }
}

#[test]
fn trailing_and_empty_input() {
    let client = permissive();
    for suite in SUITES {
        let mut msg = message(suite, 4096, 3);
        msg.push(0);
        let err = client.decrypt(&keyring(1), &msg).run().unwrap_err();
        assert!(
            matches!(err, Error::Format(FormatError::TrailingBytes(1))),
            "{suite}: {err}"
        );
    }
    let err = client.decrypt(&keyring(1), b"").run().unwrap_err();
    assert!(matches!(err, Error::Format(FormatError::Truncated(_))));
    let err = client
        .decrypt(&keyring(1), &[0x03, 0x80])
        .run()
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Format(FormatError::UnsupportedVersion(3))
    ));
}

#[test]
fn errors_print_something_useful() {
    let client = permissive();
    let err = client
        .decrypt(
            &keyring(2),
            &message(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey, 4096, 3),
        )
        .run()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not get materials: raw AES keyring \"test\"/\"key\" could not unwrap any of its 1 matching encrypted data key(s)"
    );
    assert!(!err.is_retryable());
}
