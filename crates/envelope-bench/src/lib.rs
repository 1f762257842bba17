//! Envelope's benchmark harness as a library: the caching workload with a simulated master key,
//! parameter sweeps with CSV and SVG output, the cache-limit planner and the primitive floors.
//! The `envelope-bench` binary is its command line.

pub mod floor;
pub mod load;
pub mod plan;
pub mod sweep;
