#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod aead;
mod backend;
pub mod digest;
pub mod ecdsa;
mod error;
pub mod hkdf;
pub mod kdf;
mod pem;
pub mod rand;
pub mod rsa;
mod secret;

pub use error::CryptoError;
pub use secret::{SecretBytes, ct};

/// The name of the backend this build uses: `"aws-lc-rs"` or `"RustCrypto"`.
pub const BACKEND: &str = backend::NAME;
