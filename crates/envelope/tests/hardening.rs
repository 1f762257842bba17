//! Regression tests for the hardening defects: linear header reading under short reads, encrypt and
//! streaming decrypt agreeing on frame lengths, and bounded keyring work per message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use envelope::blocking::Client;
use envelope::{
    AlgorithmSuite, CompleteDecryptionMaterials, DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
    DEFAULT_MAX_FRAME_LENGTH, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Error,
    Keyring, MultiKeyring, RawAesKeyring, SecretBytes, async_trait,
};

/// A frame length (test values are never zero).
fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap()
}

const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

fn keyring() -> RawAesKeyring {
    RawAesKeyring::new("test", "key", SecretBytes::from_slice(&[0x42; 32])).unwrap()
}

/// Wraps a keyring: adds `junk` encrypted data keys of another provider on encrypt (to make big
/// headers), and counts decrypt calls.
struct Padded {
    inner: RawAesKeyring,
    junk: usize,
    decrypts: AtomicUsize,
}

#[async_trait]
impl Keyring for Padded {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, envelope::keyring::Error> {
        let mut materials = self.inner.on_encrypt(materials).await?;
        for i in 0..self.junk {
            materials.add_encrypted_data_key(
                EncryptedDataKey::new("junk", format!("{i}").into_bytes(), vec![0; 2]).unwrap(),
            );
        }
        Ok(materials)
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, envelope::keyring::Error> {
        self.decrypts.fetch_add(1, Ordering::Relaxed);
        self.inner.on_decrypt(materials, encrypted_data_keys).await
    }
}

fn padded(junk: usize) -> Padded {
    Padded {
        inner: keyring(),
        junk,
        decrypts: AtomicUsize::new(0),
    }
}

fn unlimited_keys() -> Client {
    Client::from(
        envelope::Client::builder()
            .max_encrypted_data_keys(None)
            .build(),
    )
}

/// A reader that returns one byte per call.
struct OneByte<'a>(&'a [u8]);

impl Read for OneByte<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some((first, rest)) = self.0.split_first() else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        buf[0] = *first;
        self.0 = rest;
        Ok(1)
    }
}

/// Defect: the streaming decryptor re-parsed its header from the first byte after every read, so
/// 1-byte reads of a 49 KB header took 9.5 s (4 KiB reads: 0.00 s). Now the reader resumes; the
/// bound cannot be met by a quadratic reader (the header here is 110 KB).
#[test]
fn streaming_header_reading_is_linear_under_one_byte_reads() {
    let keyring = padded(10_000);
    let client = unlimited_keys();
    let plaintext = vec![7u8; 10_000];
    let message = client
        .encrypt(&keyring, &plaintext)
        .suite(UNSIGNED)
        .run()
        .unwrap();
    assert!(
        message.header().len() > 100_000,
        "{}",
        message.header().len()
    );
    let started = Instant::now();
    let mut out = Vec::new();
    client
        .decrypt_stream(&keyring, OneByte(message.ciphertext()))
        .run()
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out, plaintext);
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

/// Defect: encrypt accepted any frame length up to 2^32 - 1, which the streaming decryptor then
/// refused (over its 64 MiB buffer limit) with no way to raise it. Now both sides use the client's
/// `max_frame_length` (default 64 MiB).
#[test]
fn encrypt_writes_only_frame_lengths_a_default_client_streams() {
    let keyring = keyring();
    let client = Client::new();
    assert_eq!(client.max_frame_length(), 64 << 20);
    let err = client
        .encrypt(&keyring, b"x")
        .frame_length(nz(DEFAULT_MAX_FRAME_LENGTH + 1))
        .run()
        .unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { length, max } if length == u64::from(DEFAULT_MAX_FRAME_LENGTH) + 1 && max == DEFAULT_MAX_FRAME_LENGTH),
        "{err}"
    );
    let err = client
        .encrypt_stream(&keyring, Vec::new())
        .frame_length(nz(u32::MAX))
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::FrameTooLarge { .. }), "{err}");

    // The largest default frame length: written and streamed back by default clients.
    let plaintext = vec![3u8; 100];
    let message = client
        .encrypt(&keyring, &plaintext)
        .frame_length(nz(DEFAULT_MAX_FRAME_LENGTH))
        .run()
        .unwrap();
    let mut out = Vec::new();
    client
        .decrypt_stream(&keyring, message.ciphertext())
        .run()
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plaintext);

    // A client configured for longer frames writes them; a default client streams them no more.
    let big = Client::from(
        envelope::Client::builder()
            .max_frame_length(u32::MAX)
            .build(),
    );
    let message = big
        .encrypt(&keyring, &plaintext)
        .frame_length(nz(u32::MAX))
        .run()
        .unwrap();
    let err = client
        .decrypt_stream(&keyring, message.ciphertext())
        .run()
        .unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { length, .. } if length == u64::from(u32::MAX)),
        "{err}"
    );
    out.clear();
    big.decrypt_stream(&keyring, message.ciphertext())
        .run()
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plaintext);
}

/// Defect: with no default limit on encrypted data keys, a 1 MiB header of ~2,000 keys naming
/// the decryptor's RSA key cost seconds of RSA work per message. The default now refuses more
/// than 10 keys as soon as the count is read, before any keyring runs.
#[test]
fn default_max_encrypted_data_keys_bounds_keyring_work() {
    assert_eq!(DEFAULT_MAX_ENCRYPTED_DATA_KEYS, 10);
    let client = Client::new();
    assert_eq!(client.max_encrypted_data_keys(), Some(10));
    // Eleven keys that all name the decryptor's wrapping key.
    let children: Vec<std::sync::Arc<dyn Keyring>> = (0..10)
        .map(|_| std::sync::Arc::new(keyring()) as std::sync::Arc<dyn Keyring>)
        .collect();
    let eleven = MultiKeyring::new(Some(std::sync::Arc::new(keyring())), children).unwrap();
    let err = client.encrypt(&eleven, b"x").run().unwrap_err();
    assert!(
        matches!(err, Error::TooManyEncryptedDataKeys { count: 11, max: 10 }),
        "{err}"
    );
    let message = unlimited_keys().encrypt(&eleven, b"x").run().unwrap();
    assert_eq!(message.header().body().encrypted_data_keys().len(), 11);

    let counting = padded(0);
    let whole = client.decrypt(&counting, message.ciphertext()).run();
    let streamed = client.decrypt_stream(&counting, message.ciphertext()).run();
    for err in [whole.unwrap_err(), streamed.unwrap_err()] {
        assert!(
            matches!(err, Error::TooManyEncryptedDataKeys { count: 11, max: 10 }),
            "{err}"
        );
    }
    assert_eq!(
        counting.decrypts.load(Ordering::Relaxed),
        0,
        "no key was tried"
    );

    // Ten keys pass.
    let ten = padded(9);
    let message = client.encrypt(&ten, b"x").run().unwrap();
    assert_eq!(message.header().body().encrypted_data_keys().len(), 10);
    assert_eq!(
        client
            .decrypt(&ten, message.ciphertext())
            .run()
            .unwrap()
            .plaintext(),
        b"x"
    );
}
