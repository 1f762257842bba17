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

/// The name of the backend this build uses: `"aws-lc-rs"`, `"aws-lc-rs (FIPS module)"` or
/// `"RustCrypto"`.
pub const BACKEND: &str = backend::NAME;

/// Whether this build's cryptography runs on a FIPS 140-3 validated module in approved mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FipsStatus {
    /// A `fips` build whose AWS-LC FIPS module is in approved mode (its power-on self-tests
    /// passed).
    Approved,
    /// A `fips` build whose module reports that it is not in approved mode.
    NotApproved,
    /// This build has no FIPS module: the `aws-lc` or `rustcrypto` backend.
    NotFipsBuild,
}

impl FipsStatus {
    /// True only for [`FipsStatus::Approved`].
    pub const fn is_approved(self) -> bool {
        matches!(self, Self::Approved)
    }
}

impl std::fmt::Display for FipsStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Approved => "FIPS module in approved mode",
            Self::NotApproved => "FIPS module not in approved mode",
            Self::NotFipsBuild => "not a FIPS build",
        })
    }
}

/// Ask the backend whether it is a FIPS module in approved mode (aws-lc-rs's `try_fips_mode`).
///
/// Cheap after the first call; the first call initialises the module and, in a `fips` build, runs
/// its power-on self-tests.
pub fn fips_status() -> FipsStatus {
    backend::fips_status()
}
