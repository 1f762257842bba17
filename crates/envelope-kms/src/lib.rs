#![doc = include_str!("../README.md")]

pub mod arn;
mod client;
mod common;
mod discovery;
#[cfg(feature = "hierarchy")]
pub mod hierarchy;
mod multi;
mod strict;

pub use aws_config;
pub use aws_sdk_kms;
pub use client::{ClientSupplier, DefaultClientSupplier, PROVIDER_ID};
pub use discovery::{
    AnyRegion, AwsKmsDiscoveryKeyring, AwsKmsMrkDiscoveryKeyring, DiscoveryFilter, DiscoveryScope,
    InRegion, KmsDiscoveryKeyring,
};
pub use multi::{
    discovery_multi_keyring, mrk_discovery_multi_keyring, mrk_multi_keyring, multi_keyring,
};
pub use strict::{AwsKmsKeyring, AwsKmsMrkKeyring, Exact, KeyMatch, KmsKeyring, MultiRegion};
