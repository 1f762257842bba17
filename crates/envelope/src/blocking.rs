//! The blocking API: the same operations for synchronous code.
//!
//! Requests run to completion on the calling thread. Keyrings that do no I/O (raw AES, raw RSA and
//! the caching CMM on a hit) need no async runtime at all. Do not call the blocking API from inside
//! an async task: it blocks the executor thread.
//!
//! ```
//! use envelope::blocking::Client;
//! use envelope::{RawAesKeyring, SecretBytes};
//!
//! let keyring = RawAesKeyring::new("my-app", "key-1", SecretBytes::random(32)?)?;
//! let client = Client::new();
//! let message = client.encrypt(&keyring, b"hello").run()?;
//! assert_eq!(client.decrypt(&keyring, message.ciphertext()).run()?.plaintext(), b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use envelope_format::CommitmentPolicy;
use envelope_keyring::MaterialsManager;

use crate::client;
use crate::exec::Blocking;
use crate::stream::{DecryptStream, EncryptStream};

/// A client whose requests run on the calling thread with `.run()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    inner: client::Client,
}

impl Client {
    /// A client with the default commitment policy and limits.
    pub fn new() -> Self {
        Self {
            inner: client::Client::new(),
        }
    }

    /// The commitment policy.
    pub fn commitment_policy(&self) -> CommitmentPolicy {
        self.inner.commitment_policy()
    }

    /// The maximum number of encrypted data keys, if limited.
    pub fn max_encrypted_data_keys(&self) -> Option<u16> {
        self.inner.max_encrypted_data_keys()
    }

    /// Whether every operation first checks that the FIPS module is in approved mode.
    pub fn requires_fips(&self) -> bool {
        self.inner.requires_fips()
    }

    /// The largest frame length this client encrypts with and streams.
    pub fn max_frame_length(&self) -> u32 {
        self.inner.max_frame_length()
    }

    /// The async client with the same configuration.
    pub fn as_async(&self) -> &client::Client {
        &self.inner
    }

    /// Encrypt `plaintext`; set options on the request, then `.run()` it.
    pub fn encrypt<'a>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        plaintext: &'a [u8],
    ) -> client::Encrypt<'a, Blocking> {
        self.inner.encrypt(cmm, plaintext).into_mode()
    }

    /// Decrypt a whole message; `.run()` the request.
    pub fn decrypt<'a>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        message: &'a [u8],
    ) -> client::Decrypt<'a, Blocking> {
        self.inner.decrypt(cmm, message).into_mode()
    }
}

impl Client {
    /// Encrypt a stream into `writer`; `.run()` the request for an
    /// [`EncryptingWriter`](crate::stream::EncryptingWriter).
    pub fn encrypt_stream<'a, W: std::io::Write>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        writer: W,
    ) -> EncryptStream<'a, W, Blocking> {
        self.inner.encrypt_stream(cmm, writer).into_mode()
    }

    /// Decrypt a stream from `reader`; `.run()` the request for a
    /// [`DecryptingReader`](crate::stream::DecryptingReader).
    pub fn decrypt_stream<'a, R: std::io::Read>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        reader: R,
    ) -> DecryptStream<'a, R, Blocking> {
        self.inner.decrypt_stream(cmm, reader).into_mode()
    }
}

impl From<client::Client> for Client {
    fn from(inner: client::Client) -> Self {
        Self { inner }
    }
}
