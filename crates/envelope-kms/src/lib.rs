#![doc = include_str!("../README.md")]

pub mod arn;
mod client;
mod keyring;
mod multi;

pub use aws_sdk_kms;
pub use client::{ClientSupplier, DefaultClientSupplier, PROVIDER_ID};
pub use keyring::{
    AwsKmsDiscoveryKeyring, AwsKmsKeyring, AwsKmsMrkDiscoveryKeyring, AwsKmsMrkKeyring,
    DiscoveryFilter,
};
pub use multi::{
    discovery_multi_keyring, mrk_discovery_multi_keyring, mrk_multi_keyring, multi_keyring,
};
