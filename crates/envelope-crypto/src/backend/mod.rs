//! The active backend. Exactly one is compiled: `aws-lc` when enabled, else `rustcrypto`.

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(feature = "aws-lc")]
pub(crate) use aws_lc::*;

#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
mod rustcrypto;
#[cfg(all(feature = "rustcrypto", not(feature = "aws-lc")))]
pub(crate) use rustcrypto::*;

#[cfg(not(any(feature = "aws-lc", feature = "rustcrypto")))]
compile_error!("envelope-crypto needs a backend: enable the `aws-lc` or the `rustcrypto` feature");
