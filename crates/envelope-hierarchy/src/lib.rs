#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod branch_key;
pub mod cache;
mod error;
mod keyring;
mod store;
pub mod wire;

pub use branch_key::{BRANCH_KEY_LEN, BranchKey, BranchKeyVersion, InvalidVersion};
pub use cache::{BranchKeyCache, BranchKeyCacheStats};
pub use error::KeyStoreError;
pub use keyring::{BranchKeyIdSupplier, HierarchicalKeyring, HierarchicalKeyringBuilder};
pub use store::{BranchKeyStore, StaticKeyStore};
pub use wire::PROVIDER_ID;
