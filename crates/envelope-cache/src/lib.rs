#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cache;
mod clock;
mod cmm;
pub mod id;
mod local;
mod refresh;

pub use cache::{
    CacheStats, DecryptionEntry, DecryptionHit, EncryptionEntry, EncryptionHit, MaterialsCache,
    Usage, UsageLimits,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cmm::{
    CachingCmm, CachingCmmBuilder, CachingStats, DEFAULT_MAX_WAIT, MAX_BYTES_LIMIT,
    MAX_MESSAGES_LIMIT, NoMaxAge,
};
pub use id::CacheId;
pub use local::LocalCache;
pub use refresh::{DefaultSpawner, InlineSpawner, LatencyHistogram, RefreshAhead, Spawn};
