#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cache;
mod decrypt;
mod format;

use std::fmt;

pub use cache::caching_cmm_matches_the_model;
pub use decrypt::{ChunkPlan, decrypt_one_shot, streaming_matches_one_shot};
pub use format::{encryption_context_round_trip, frames_and_footer_round_trip, header_round_trip};

/// A property that did not hold, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The property.
    pub property: &'static str,
    /// What was observed.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} does not hold: {}", self.property, self.detail)
    }
}

impl std::error::Error for Violation {}

/// A property over fuzz input.
pub type Property = fn(&[u8]) -> Result<(), Violation>;

/// Every target: its name (the directory under `fuzz/regressions/` and `fuzz/corpus/`) and its
/// property.
pub const TARGETS: [(&str, Property); 6] = [
    ("header_round_trip", header_round_trip),
    ("frames_and_footer", frames_and_footer_round_trip),
    ("encryption_context", encryption_context_round_trip),
    ("decrypt_one_shot", decrypt_one_shot),
    ("streaming_decrypt", streaming_matches_one_shot),
    ("caching_cmm_model", caching_cmm_matches_the_model),
];

/// Fail `property` with `detail` unless `ok`.
pub(crate) fn check(
    ok: bool,
    property: &'static str,
    detail: impl FnOnce() -> String,
) -> Result<(), Violation> {
    if ok {
        Ok(())
    } else {
        Err(Violation {
            property,
            detail: detail(),
        })
    }
}
