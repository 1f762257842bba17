#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod blocking;
mod client;
mod error;
mod message;
pub mod stream;

pub use client::{
    Async, Blocking, BoxFuture, Client, ClientBuilder, DEFAULT_MAX_ENCRYPTED_DATA_KEYS,
    DEFAULT_MAX_FRAME_LENGTH, Decrypt, Decrypted, Encrypt, Encrypted, SignatureHashing,
};
pub use error::Error;
#[cfg(feature = "tokio")]
pub use stream::{AsyncDecryptingReader, AsyncEncryptingWriter};
pub use stream::{DecryptingReader, EncryptingWriter};

pub use envelope_format::{
    AlgorithmSuite, CommitmentPolicy, EncryptedDataKey, EncryptionContext, FormatError, Header,
};
pub use envelope_keyring::{
    DecryptRequest, DecryptionMaterials, DefaultCmm, EncryptionMaterials, EncryptionRequest,
    Keyring, MaterialsManager, MultiKeyring, ProviderError, RawAesKeyring, RawRsaKeyring,
    RequiredEncryptionContextCmm, RsaPadding, SecretBytes, async_trait,
};

/// Data-key caching: the caching CMM and the local cache.
pub use envelope_cache as cache;
pub use envelope_cache::{CachingCmm, LocalCache};
/// The crypto crate.
pub use envelope_crypto as crypto;

/// The message-format crate.
pub use envelope_format as format;
/// The keyring crate.
pub use envelope_keyring as keyring;
/// AWS KMS keyrings (feature `kms`).
#[cfg(feature = "kms")]
pub use envelope_kms as kms;

/// The examples in the repository's README.md compile.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
