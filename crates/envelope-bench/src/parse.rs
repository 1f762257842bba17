//! Value parsers for the command line (and the values a sweep sets): every number is checked against a range that makes sense
//! before any run starts, so a bad argument is a clear error instead of a panic, a hang or an
//! allocation the machine cannot make.

/// The largest plaintext per message the load commands accept (`large` has its own `--mib`).
pub const MAX_MESSAGE_SIZE: usize = 256 << 20;
/// The most worker threads or tasks.
pub const MAX_WORKERS: usize = 4096;
/// The most simulated hosts in a fleet.
pub const MAX_HOSTS: usize = 100_000;
/// The largest `large --mib` (the command holds about three copies of the message).
pub const MAX_LARGE_MIB: usize = 1024;
/// Rates (messages or calls per second) in this range have an interval a timer can keep.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1e9;
/// Durations (seconds) and latencies beyond this are refused (about 31 years).
const MAX_SECONDS: f64 = 1e9;

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))
}

fn in_range<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    s: &str,
    min: T,
    max: T,
) -> Result<T, String> {
    let value: T = number(s)?;
    if value >= min && value <= max {
        Ok(value)
    } else {
        Err(format!("must be between {min} and {max}"))
    }
}

/// Worker threads or tasks: 1 to [`MAX_WORKERS`].
pub fn workers(s: &str) -> Result<usize, String> {
    in_range(s, 1, MAX_WORKERS)
}

/// Fleet hosts: 1 to [`MAX_HOSTS`].
pub fn hosts(s: &str) -> Result<usize, String> {
    in_range(s, 1, MAX_HOSTS)
}

/// A count that must be at least 1 (contexts, cache capacity, rounds).
pub fn count(s: &str) -> Result<usize, String> {
    in_range(s, 1, usize::MAX)
}

/// A 64-bit count that must be at least 1 (max_messages, max_bytes, messages).
pub fn count_u64(s: &str) -> Result<u64, String> {
    in_range(s, 1, u64::MAX)
}

/// Plaintext bytes per message: 0 to [`MAX_MESSAGE_SIZE`].
pub fn message_size(s: &str) -> Result<usize, String> {
    in_range(s, 0, MAX_MESSAGE_SIZE)
}

/// `large --mib`: 1 to [`MAX_LARGE_MIB`].
pub fn large_mib(s: &str) -> Result<usize, String> {
    in_range(s, 1, MAX_LARGE_MIB)
}

/// Messages or calls per second: 0.001 to 1e9.
pub fn rate(s: &str) -> Result<f64, String> {
    finite_where(
        s,
        |v| (MIN_RATE..=MAX_RATE).contains(&v),
        || format!("must be between {MIN_RATE} and {MAX_RATE} per second"),
    )
}

/// A length of time in seconds, more than 0 (durations, max_age, TTLs).
pub fn seconds(s: &str) -> Result<f64, String> {
    finite_where(
        s,
        |v| v > 0.0 && v <= MAX_SECONDS,
        || format!("must be more than 0 and at most {MAX_SECONDS} seconds"),
    )
}

/// A latency in milliseconds, 0 or more.
pub fn millis(s: &str) -> Result<f64, String> {
    finite_where(
        s,
        |v| (0.0..=MAX_SECONDS * 1e3).contains(&v),
        || "must be 0 or more milliseconds".to_owned(),
    )
}

/// A cost, size or budget: 0 or more.
pub fn non_negative(s: &str) -> Result<f64, String> {
    finite_where(s, |v| v >= 0.0, || "must be 0 or more".to_owned())
}

/// A budget or byte limit: more than 0.
pub fn positive(s: &str) -> Result<f64, String> {
    finite_where(s, |v| v > 0.0, || "must be more than 0".to_owned())
}

/// A finite number for which `ok` holds, else the error `rule` describes.
fn finite_where(
    s: &str,
    ok: impl Fn(f64) -> bool,
    rule: impl FnOnce() -> String,
) -> Result<f64, String> {
    let value = finite(s)?;
    if ok(value) { Ok(value) } else { Err(rule()) }
}

fn finite(s: &str) -> Result<f64, String> {
    let value: f64 = number(s)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("'{s}' is not a finite number"))
    }
}
