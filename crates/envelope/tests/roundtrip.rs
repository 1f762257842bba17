//! Round trips through the one-shot API for every suite, frame length and size class.
#![allow(
    clippy::cast_possible_truncation,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::future::IntoFuture;

use envelope::blocking;
use envelope::format::{FINAL_FRAME_HEADER_LEN, REGULAR_FRAME_HEADER_LEN};
use envelope::{
    AlgorithmSuite, Client, CommitmentPolicy, EncryptionContext, Error, FormatError, RawAesKeyring,
    SecretBytes,
};

fn keyring() -> RawAesKeyring {
    RawAesKeyring::new("test", "key", SecretBytes::from_slice(&[0x42; 32])).unwrap()
}

fn client_for(suite: AlgorithmSuite) -> Client {
    let policy = if suite.is_committing() {
        CommitmentPolicy::RequireEncryptRequireDecrypt
    } else {
        CommitmentPolicy::ForbidEncryptAllowDecrypt
    };
    Client::builder().commitment_policy(policy).build()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + 3) % 256) as u8).collect()
}

#[tokio::test]
async fn every_suite_frame_length_and_size() {
    let keyring = keyring();
    let ec = EncryptionContext::from_iter([("purpose", "test"), ("é", "😀")]);
    for suite in AlgorithmSuite::ALL {
        let client = client_for(suite);
        for frame in [1u32, 7, 128, 4096] {
            let f = frame as usize;
            for len in [0, 1, f.saturating_sub(1), f, f + 1, 3 * f, 3 * f + 5] {
                let pt = plaintext(len);
                let msg = client
                    .encrypt(&keyring, &pt)
                    .suite(suite)
                    .frame_length(frame)
                    .encryption_context(ec.clone())
                    .await
                    .unwrap();
                assert_eq!(msg.suite(), suite);
                assert_eq!(msg.header().body().framing().frame_length(), frame);
                // Exact multiples end in a full final frame, not an empty one.
                let frames = if len == 0 { 1 } else { len.div_ceil(f) };
                let body = (frames - 1) * (REGULAR_FRAME_HEADER_LEN + f + 16)
                    + FINAL_FRAME_HEADER_LEN
                    + (len - (frames - 1) * f)
                    + 16;
                let footer = msg.ciphertext().len() - msg.header().len() - body;
                if suite.is_signed() {
                    assert!(
                        (2 + 64..=2 + 104).contains(&footer),
                        "{suite} footer {footer}"
                    );
                } else {
                    assert_eq!(footer, 0, "{suite}");
                }
                let out = client.decrypt(&keyring, msg.ciphertext()).await.unwrap();
                assert_eq!(out.plaintext(), pt, "{suite} frame {frame} len {len}");
                assert_eq!(out.suite(), suite);
                assert_eq!(out.encryption_context().get("purpose"), Some("test"));
                assert_eq!(
                    out.encryption_context()
                        .contains_key("aws-crypto-public-key"),
                    suite.is_signed()
                );
            }
        }
    }
}

#[tokio::test]
async fn defaults() {
    let keyring = keyring();
    let client = Client::new();
    assert_eq!(
        client.commitment_policy(),
        CommitmentPolicy::RequireEncryptRequireDecrypt
    );
    let msg = client.encrypt(&keyring, b"x").await.unwrap();
    assert_eq!(
        msg.suite(),
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
    );
    assert_eq!(msg.header().body().framing().frame_length(), 4096);
    assert_eq!(msg.header().body().message_id().len(), 32);
    let forbid = Client::builder()
        .commitment_policy(CommitmentPolicy::ForbidEncryptAllowDecrypt)
        .build();
    let msg = forbid.encrypt(&keyring, b"x").await.unwrap();
    assert_eq!(
        msg.suite(),
        AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384
    );
}

#[tokio::test]
async fn messages_differ_every_time() {
    let keyring = keyring();
    let client = Client::new();
    let a = client.encrypt(&keyring, b"same").await.unwrap();
    let b = client.encrypt(&keyring, b"same").await.unwrap();
    assert_ne!(a.ciphertext(), b.ciphertext());
    assert_ne!(
        a.header().body().message_id(),
        b.header().body().message_id()
    );
}

#[test]
fn blocking_matches_async_and_needs_no_runtime() {
    let keyring = keyring();
    let client = blocking::Client::new();
    let msg = client
        .encrypt(&keyring, b"sync")
        .encryption_context([("k", "v")])
        .run()
        .unwrap();
    let out = client
        .decrypt(&keyring, msg.ciphertext())
        .encryption_context([("k", "v")])
        .run()
        .unwrap();
    assert_eq!(out.plaintext(), b"sync");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = rt
        .block_on(IntoFuture::into_future(
            client.as_async().decrypt(&keyring, msg.ciphertext()),
        ))
        .unwrap();
    assert_eq!(out.into_plaintext(), b"sync");
}

#[tokio::test]
async fn encryption_context_rules() {
    let keyring = keyring();
    let client = Client::new();
    let err = client
        .encrypt(&keyring, b"x")
        .encryption_context([("aws-crypto-x", "v")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidEncryptionContext(FormatError::ReservedEncryptionContextKey(ref k)) if k == "aws-crypto-x")
    );
    let err = client
        .encrypt(&keyring, b"x")
        .encryption_context([("", "v")])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidEncryptionContext(FormatError::EmptyEncryptionContextEntry)
    ));
    let err = client
        .encrypt(&keyring, b"x")
        .encryption_context([("k", "")])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidEncryptionContext(FormatError::EmptyEncryptionContextEntry)
    ));
    let huge = EncryptionContext::from_iter([("k", "v".repeat(70_000))]);
    let err = client
        .encrypt(&keyring, b"x")
        .encryption_context(huge)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidEncryptionContext(FormatError::FieldTooLong { .. })
        ),
        "{err}"
    );
    let err = client
        .encrypt(&keyring, b"x")
        .frame_length(0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidFrameLength(0)));
}

#[tokio::test]
async fn unsigned_only() {
    let keyring = keyring();
    let client = Client::new();
    let signed = client.encrypt(&keyring, b"x").await.unwrap();
    let err = client
        .decrypt(&keyring, signed.ciphertext())
        .unsigned_only()
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::SignedMessageRejected(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
    ));
    let unsigned = client
        .encrypt(&keyring, b"x")
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .await
        .unwrap();
    let out = client
        .decrypt(&keyring, unsigned.ciphertext())
        .unsigned_only()
        .await
        .unwrap();
    assert_eq!(out.plaintext(), b"x");
}

#[tokio::test]
async fn large_message() {
    let keyring = keyring();
    let client = Client::new();
    let pt = plaintext(3 << 20);
    let msg = client
        .encrypt(&keyring, &pt)
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .await
        .unwrap();
    assert_eq!(
        client
            .decrypt(&keyring, msg.ciphertext())
            .await
            .unwrap()
            .plaintext(),
        pt
    );
}

/// Signed messages large enough to hash on a helper thread verify whichever way each side hashed.
#[tokio::test]
async fn background_signature_hashing_interoperates_with_inline() {
    let keyring = keyring();
    let inline = Client::new();
    let background = Client::builder().background_signature_hashing(true).build();
    let pt = plaintext((3 << 20) + 17);
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
    ] {
        let (inline, background) = if suite.is_committing() {
            (inline.clone(), background.clone())
        } else {
            let policy = CommitmentPolicy::ForbidEncryptAllowDecrypt;
            (
                Client::builder().commitment_policy(policy).build(),
                Client::builder()
                    .commitment_policy(policy)
                    .background_signature_hashing(true)
                    .build(),
            )
        };
        for (writer, reader) in [
            (&inline, &background),
            (&background, &inline),
            (&background, &background),
        ] {
            let msg = writer
                .encrypt(&keyring, &pt)
                .suite(suite)
                .frame_length(1000)
                .await
                .unwrap();
            assert_eq!(
                reader
                    .decrypt(&keyring, msg.ciphertext())
                    .await
                    .unwrap()
                    .plaintext(),
                pt
            );
            let mut tampered = msg.into_ciphertext();
            let n = tampered.len();
            tampered[n - 10] ^= 1;
            assert!(matches!(
                reader.decrypt(&keyring, &tampered).await,
                Err(Error::AuthenticationFailed)
            ));
        }
    }
}

#[tokio::test]
async fn reused_buffers() {
    let keyring = keyring();
    let client = Client::new();
    let mut buffer = Vec::with_capacity(1 << 20);
    let mut plain_buffer = vec![0xEEu8; 100];
    for len in [10_000, 5, 300_000] {
        let pt = plaintext(len);
        let msg = client
            .encrypt(&keyring, &pt)
            .reuse_buffer(std::mem::take(&mut buffer))
            .await
            .unwrap();
        let decrypted = client
            .decrypt(&keyring, msg.ciphertext())
            .reuse_buffer(std::mem::take(&mut plain_buffer))
            .await
            .unwrap();
        assert_eq!(decrypted.plaintext(), pt);
        plain_buffer = decrypted.into_plaintext();
        buffer = msg.into_ciphertext();
    }
    assert!(buffer.capacity() >= 1 << 20, "the capacity was reused");
}
