#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod blocking;
mod client;
mod config;
mod error;
mod exec;
#[cfg(feature = "kinesis")]
pub mod kinesis;
mod message;
mod options;
mod request;
pub mod stream;

pub use client::{Client, ClientBuilder, Decrypt, Decrypted, Encrypt, Encrypted};
pub use config::{DEFAULT_MAX_ENCRYPTED_DATA_KEYS, DEFAULT_MAX_FRAME_LENGTH, SignatureHashing};
pub use error::Error;
pub use exec::{Async, Blocking, BoxFuture};
pub use options::{DEFAULT_FRAME, DecryptOptions, EncryptOptions};
pub use request::{Decryption, Encryption, InMemory, Request};
#[cfg(feature = "tokio")]
pub use stream::{AsyncDecryptingReader, AsyncEncryptingWriter};
pub use stream::{DecryptingReader, EncryptingWriter};

pub use envelope_format::{
    AlgorithmSuite, CommitmentPolicy, EncryptedDataKey, EncryptionContext, FormatError, Header,
};
pub use envelope_keyring::{
    CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptRequest, DecryptionMaterials,
    DefaultCmm, EncryptionMaterials, EncryptionRequest, Keyring, MaterialsManager, MultiKeyring,
    ProviderError, RawAesKeyring, RawRsaKeyring, RequiredEncryptionContextCmm, RsaPadding,
    SecretBytes, async_trait,
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

/// The AWS KMS hierarchical keyring (feature `hierarchy`): the `envelope-hierarchy` crate and, with
/// feature `kms`, the DynamoDB branch-key store of `envelope-kms`.
#[cfg(feature = "hierarchy")]
pub mod hierarchy {
    pub use envelope_hierarchy::*;
    #[cfg(feature = "kms")]
    pub use envelope_kms::hierarchy::{KeyStore, aws_sdk_dynamodb};
}

/// The examples in the repository's README.md compile.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
