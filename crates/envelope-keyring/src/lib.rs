#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod default_cmm;
mod error;
mod materials;
mod raw_aes;
mod traits;

pub use async_trait::async_trait;
pub use default_cmm::DefaultCmm;
pub use envelope_crypto::SecretBytes;
pub use error::{Error, ProviderError};
pub use materials::{
    DecryptRequest, DecryptionMaterials, EncryptionMaterials, EncryptionRequest, signature_curve,
};
pub use raw_aes::RawAesKeyring;
pub use traits::{Keyring, MaterialsManager};
