//! Envelope's benchmark harness as a library: the caching workload with a simulated master key,
//! parameter sweeps with CSV and SVG output, the cache-limit planner, the primitive floors and
//! large-message throughput against them.
//! The `envelope-bench` binary is its command line.

pub mod fleet;
pub mod floor;
pub mod large;
pub mod load;
pub mod parse;
pub mod plan;
pub mod sweep;
