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

/// True when this build's backend is the AWS-LC FIPS module (the `fips` feature of this crate).
///
/// Crates above use this, not their own `fips` feature, to decide what a FIPS build refuses, so a
/// dependency graph that enables `fips` only here still gets the refusals.
pub const FIPS_BUILD: bool = cfg!(feature = "fips");

/// Whether this build's cryptography runs on the AWS-LC FIPS module in FIPS mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FipsStatus {
    /// A `fips` build: the AWS-LC FIPS module reports FIPS mode (`FIPS_mode()`), which it does
    /// once its power-on self-tests have passed. A failing self-test aborts the process instead.
    /// This says the build runs on the module; whether a given operation is an approved service
    /// of it is a separate question (see `docs/fips.md`).
    Approved,
    /// A `fips` build whose module does not report FIPS mode. The module in use aborts rather than
    /// run without it, so this is not expected; it is kept for modules that behave otherwise.
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
            Self::NotApproved => "the FIPS module is not in approved mode",
            Self::NotFipsBuild => "this build has no FIPS module (build with the `fips` feature)",
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
