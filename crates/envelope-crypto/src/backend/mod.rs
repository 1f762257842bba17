//! The active backend. Exactly one is compiled: `fips` (aws-lc-rs on the FIPS module) or `aws-lc`
//! when enabled, else `rustcrypto`.

#[cfg(all(feature = "fips", any(feature = "aws-lc", feature = "rustcrypto")))]
compile_error!(
    "the `fips` feature selects the FIPS module and excludes the other backends: build with \
     `--no-default-features --features fips` (and no `aws-lc` or `rustcrypto` feature)"
);

#[cfg(any(feature = "aws-lc", feature = "fips"))]
mod aws_lc;
#[cfg(any(feature = "aws-lc", feature = "fips"))]
pub(crate) use aws_lc::*;

#[cfg(all(feature = "rustcrypto", not(any(feature = "aws-lc", feature = "fips"))))]
mod rustcrypto;
#[cfg(all(feature = "rustcrypto", not(any(feature = "aws-lc", feature = "fips"))))]
pub(crate) use rustcrypto::*;

#[cfg(not(any(feature = "aws-lc", feature = "rustcrypto", feature = "fips")))]
compile_error!(
    "envelope-crypto needs a backend: enable the `aws-lc`, the `rustcrypto` or the `fips` feature"
);
