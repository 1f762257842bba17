//! Round trips through the one-shot API for every suite, frame length and size class.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::future::IntoFuture;

use envelope::blocking;
use envelope::format::{FINAL_FRAME_HEADER_LEN, REGULAR_FRAME_HEADER_LEN};
use envelope::{
    AlgorithmSuite, Client, CommitmentPolicy, Encrypted, EncryptionContext, Error, FormatError,
    RawAesKeyring, SecretBytes, SignatureHashing,
};

/// A frame length (test values are never zero).
fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap()
}

fn keyring() -> RawAesKeyring {
    RawAesKeyring::new("test", "key", SecretBytes::from_slice(&[0x42; 32])).unwrap()
}

fn client_for(suite: AlgorithmSuite) -> Client {
    let policy = CommitmentPolicy::strictest_for(suite);
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
                    .frame_length(nz(frame))
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

/// Signed messages large enough to hash on another thread verify whichever way each side hashed,
/// and tampering is caught whichever way the reader hashes.
#[tokio::test]
async fn signature_hashing_modes_interoperate() {
    let keyring = keyring();
    let modes = [
        SignatureHashing::Inline,
        SignatureHashing::OneShot,
        SignatureHashing::Background,
    ];
    let pt = plaintext((3 << 20) + 17);
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        AlgorithmSuite::Aes128GcmIv12Tag16HkdfSha256EcdsaP256,
    ] {
        let policy = CommitmentPolicy::strictest_for(suite);
        let clients = modes.map(|mode| {
            Client::builder()
                .commitment_policy(policy)
                .signature_hashing(mode)
                .build()
        });
        for (w, writer) in clients.iter().enumerate() {
            for (r, reader) in clients.iter().enumerate() {
                let msg = writer
                    .encrypt(&keyring, &pt)
                    .suite(suite)
                    .frame_length(nz(1000))
                    .await
                    .unwrap();
                let decrypted = reader.decrypt(&keyring, msg.ciphertext()).await.unwrap();
                assert_eq!(
                    decrypted.plaintext(),
                    pt,
                    "{:?} -> {:?}",
                    modes[w],
                    modes[r]
                );
                if w == r {
                    assert_tampering_caught(reader, &keyring, msg).await;
                }
            }
        }
    }
}

async fn assert_tampering_caught(reader: &Client, keyring: &RawAesKeyring, msg: Encrypted) {
    let body = msg.header().len();
    let message = msg.into_ciphertext();
    let n = message.len();
    // Frames of 1000 bytes: a regular one is 1032 bytes with its 16-byte header and tag;
    // there are 3145 before the final one (24-byte header).
    let unit = REGULAR_FRAME_HEADER_LEN + 1000 + 16;
    let in_frame = |k: usize| body + k * unit + REGULAR_FRAME_HEADER_LEN + 500;
    let in_final = body + 3145 * unit + FINAL_FRAME_HEADER_LEN + 100;
    // A flipped bit in the first frame, the middle, the final frame and the signature.
    for at in [
        in_frame(0),
        in_frame(1500),
        in_frame(3144),
        in_final,
        n - 10,
    ] {
        let mut tampered = message.clone();
        tampered[at] ^= 1;
        assert!(
            matches!(
                reader.decrypt(keyring, &tampered).await,
                Err(Error::AuthenticationFailed)
            ),
            "bit flipped at {at} of {n}"
        );
    }
    // Cut short, or followed by more bytes.
    for cut in [n - 1, n - 110, n / 2] {
        assert!(matches!(
            reader.decrypt(keyring, &message[..cut]).await,
            Err(Error::Format(_))
        ));
    }
    let mut longer = message.clone();
    longer.push(0);
    assert!(matches!(
        reader.decrypt(keyring, &longer).await,
        Err(Error::Format(_))
    ));
}

#[tokio::test]
async fn reused_buffers() {
    let keyring = keyring();
    // Inline, and with large signed messages hashed on a scoped thread; lengths that make the
    // reused buffers too short (grown), long enough (decrypted over) and much longer.
    for mode in [SignatureHashing::Inline, SignatureHashing::OneShot] {
        let client = Client::builder().signature_hashing(mode).build();
        let mut buffer = Vec::with_capacity(1 << 20);
        let mut plain_buffer = vec![0xEEu8; 100];
        for len in [
            10_000,
            5,
            300_000,
            3 << 20,
            2 << 20,
            (1 << 20) + 5,
            0,
            1 << 20,
        ] {
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
            assert_eq!(decrypted.plaintext(), pt, "{len} bytes");
            // And the other way of hashing reads it too.
            assert_eq!(
                Client::new()
                    .decrypt(&keyring, msg.ciphertext())
                    .await
                    .unwrap()
                    .plaintext(),
                pt
            );
            plain_buffer = decrypted.into_plaintext();
            buffer = msg.into_ciphertext();
        }
        assert!(buffer.capacity() >= 3 << 20, "the capacity was reused");
    }
}

/// Large signed one-shot messages into fresh outputs (their first frames are sealed and hashed
/// in scratch space while the output is allocated, then copied in): around the size where the
/// scoped hasher starts, and past the largest scratch space. Every one verifies, and a flipped
/// byte in the copied frames or just after them is caught.
#[tokio::test]
async fn fresh_signed_one_shot_outputs() {
    let keyring = keyring();
    let writer = Client::builder()
        .signature_hashing(SignatureHashing::OneShot)
        .build();
    let reader = Client::builder()
        .signature_hashing(SignatureHashing::Inline)
        .build();
    let unit = REGULAR_FRAME_HEADER_LEN + 4096 + 16;
    for len in [(1 << 20) - 100, (1 << 20) + 1, (5 << 20) + 3, 36 << 20] {
        let pt = plaintext(len);
        let msg = writer
            .encrypt(&keyring, &pt)
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384)
            .await
            .unwrap();
        let header = msg.header().len();
        // An exact multiple of the frame length ends in a full final frame.
        let (regular, last) = ((len - 1) / 4096, (len - 1) % 4096 + 1);
        let body = regular * unit + FINAL_FRAME_HEADER_LEN + last + 16;
        // The footer is the signature's 2-byte length and a DER ECDSA P-384 signature: at most
        // 104 bytes, usually 102 to 104, shorter when r or s has leading zero bytes (about 1 in
        // 128 signatures), so the exact check reads its length.
        let footer = &msg.ciphertext()[header + body..];
        let signature_len = usize::from(u16::from_be_bytes([footer[0], footer[1]]));
        assert_eq!(footer.len(), 2 + signature_len, "{len} bytes");
        assert!((8..=104).contains(&signature_len), "{len} bytes");
        let decrypted = reader.decrypt(&keyring, msg.ciphertext()).await.unwrap();
        assert_eq!(decrypted.plaintext(), pt, "{len} bytes");
        let message = msg.into_ciphertext();
        // Where the scratch frames end: a sixteenth of the body, 256 KiB to 2 MiB, whole frames.
        let head = (body / 16).clamp(256 << 10, 2 << 20) / unit * unit;
        for at in [header + 20, header + head - 1, header + head + 20] {
            let mut bad = message.clone();
            bad[at] ^= 1;
            assert!(
                reader.decrypt(&keyring, &bad).await.is_err(),
                "{len} bytes, flipped at {at}"
            );
        }
    }
}

/// `require_fips`: a build with the FIPS module in approved mode encrypts and decrypts; any other
/// build refuses both, saying why.
#[tokio::test]
async fn require_fips_runs_only_on_an_approved_fips_module() {
    use envelope::crypto::{FipsStatus, fips_status};
    let keyring = keyring();
    let message = Client::new().encrypt(&keyring, b"x").await.unwrap();
    let fips = Client::builder().require_fips(true).build();
    assert!(fips.requires_fips());
    let encrypted = fips.encrypt(&keyring, b"x").await;
    let decrypted = fips.decrypt(&keyring, message.ciphertext()).await;
    if cfg!(feature = "fips") {
        assert_eq!(fips_status(), FipsStatus::Approved);
        assert_eq!(decrypted.unwrap().plaintext(), b"x");
        assert!(encrypted.is_ok());
    } else {
        for err in [encrypted.unwrap_err(), decrypted.unwrap_err()] {
            assert!(
                matches!(err, Error::FipsRequired(FipsStatus::NotFipsBuild)),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                "this client requires a FIPS module in approved mode, but this build has no \
                 FIPS module (build with the `fips` feature)"
            );
        }
    }
}
