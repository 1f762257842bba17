#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod default_cmm;
mod error;
mod materials;
mod multi;
mod raw_aes;
mod raw_rsa;
mod required_ec;
mod traits;

pub use async_trait::async_trait;
pub use default_cmm::DefaultCmm;
pub use envelope_crypto::SecretBytes;
pub use envelope_crypto::rsa::RsaPadding;
pub use error::{Error, ProviderError};
pub use materials::{
    Complete, CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptRequest,
    DecryptionMaterials, EncryptionMaterials, EncryptionRequest, MaterialsState, Pending,
    signature_curve,
};
pub use multi::{MultiKeyring, MultiKeyringBuilder};
pub use raw_aes::RawAesKeyring;
pub use raw_rsa::RawRsaKeyring;
pub use required_ec::RequiredEncryptionContextCmm;
pub use traits::{Keyring, MaterialsManager};
