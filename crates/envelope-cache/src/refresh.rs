//! Refresh-ahead: when to fetch an entry's successor in the background, how the background call is
//! driven, and the measurements the decision rests on.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::cache::{Usage, UsageLimits};

/// When a caching CMM fetches the next materials for an entry before the current ones run out.
///
/// While the background call is in flight, requests keep drawing on the current entry within its
/// limits; the new materials wait beside it and take over once it is spent, expired or evicted (it
/// is never served again, and none of its uses is thrown away). If the current
/// entry runs out first, requests wait on the call in flight, as on any miss. A failed refresh is
/// not cached, leaves the current entry alone, and is retried by a later request with backoff.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum RefreshAhead {
    /// Never: an entry is replaced only once it is exhausted or expired (what the other ESDKs do).
    Off,
    /// Adapt to what is observed (the default): start the call when, at the entry's own rate of use,
    /// it will run out of messages, bytes or age within the underlying calls' recent latency (plus a
    /// quarter, plus up to 1 ms), so that the next materials land just before it does and their
    /// own age is barely spent waiting.
    #[default]
    Auto,
    /// A fixed share: start the call once the remaining share of any limit (messages, bytes, or
    /// age) is at most this fraction, e.g. `0.1` at 90 % used. Values outside (0, 1) disable it.
    Fraction(f64),
}

impl fmt::Display for RefreshAhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Auto => f.write_str("auto"),
            Self::Fraction(x) => write!(f, "{x}"),
        }
    }
}

impl std::str::FromStr for RefreshAhead {
    type Err = String;

    /// `off`, `auto`, or a fraction between 0 and 1 (exclusive).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "off" => Ok(Self::Off),
            "auto" => Ok(Self::Auto),
            other => match other.parse::<f64>() {
                Ok(x) if x > 0.0 && x < 1.0 => Ok(Self::Fraction(x)),
                _ => Err(format!(
                    "refresh-ahead {other:?}: expected off, auto, or a fraction between 0 and 1"
                )),
            },
        }
    }
}

/// The state of an entry just after a request was served from it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryState {
    pub(crate) usage: Usage,
    pub(crate) created: Instant,
    pub(crate) expires: Instant,
}

impl RefreshAhead {
    /// Whether the entry should get a successor now. `latency` is the recent latency of the
    /// underlying CMM; `limits` is `None` for decryption entries (age only).
    pub(crate) fn due(
        self,
        entry: EntryState,
        limits: Option<UsageLimits>,
        now: Instant,
        latency: Duration,
    ) -> bool {
        let age_left = entry.expires.saturating_duration_since(now);
        let lifetime = entry.expires.saturating_duration_since(entry.created);
        match self {
            Self::Off => false,
            Self::Fraction(fraction) => {
                if !(fraction > 0.0 && fraction < 1.0) {
                    return false;
                }
                let share = |left: f64, whole: f64| whole > 0.0 && left / whole <= fraction;
                share(age_left.as_secs_f64(), lifetime.as_secs_f64())
                    || limits.is_some_and(|l| {
                        share(
                            l.max_messages.saturating_sub(entry.usage.messages) as f64,
                            l.max_messages as f64,
                        ) || share(
                            l.max_bytes.saturating_sub(entry.usage.bytes) as f64,
                            l.max_bytes as f64,
                        )
                    })
            }
            Self::Auto => {
                let latency = latency.as_secs_f64();
                let horizon = latency * 1.25 + latency.min(0.001);
                if age_left.as_secs_f64() <= horizon {
                    return true;
                }
                let Some(l) = limits else {
                    return false;
                };
                // The entry's own rate of use since it was made; an entry served once has no rate yet.
                let elapsed = now.saturating_duration_since(entry.created).as_secs_f64();
                if entry.usage.messages < 2 || elapsed <= 0.0 {
                    return false;
                }
                let runs_out_in = |left: u64, used: u64| {
                    // Time to use `left` more at the rate `used / elapsed`.
                    left as f64 * elapsed / used.max(1) as f64
                };
                let messages_left = l.max_messages.saturating_sub(entry.usage.messages);
                let bytes_left = l.max_bytes.saturating_sub(entry.usage.bytes);
                runs_out_in(messages_left, entry.usage.messages) <= horizon
                    || (entry.usage.bytes > 0
                        && runs_out_in(bytes_left, entry.usage.bytes) <= horizon)
            }
        }
    }
}

/// Runs a caching CMM's background refreshes.
///
/// The CMM hands it a future that makes the underlying call and stores its result; nothing is
/// returned. The future is also shared with any request that runs out of materials meanwhile and
/// waits on it, so a spawner that drops a task (or is slow to run it) only makes refreshes lazier,
/// never lost: a waiting request drives the call itself.
pub trait Spawn: Send + Sync + fmt::Debug {
    /// Run `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>);
}

/// The default spawner: on a tokio runtime (when this crate's `tokio` feature is on and the
/// refresh starts inside one) a task on that runtime; anywhere else a short-lived thread named
/// `envelope-refresh` that runs the call to completion. With a caching CMM over AWS KMS the call
/// itself then runs on the KMS crate's own runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultSpawner;

impl Spawn for DefaultSpawner {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        #[cfg(feature = "tokio")]
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(task);
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("envelope-refresh".into())
            .spawn(move || run_here(task));
        if spawned.is_err() {
            tracing::warn!(
                "could not start a refresh thread; the next request to miss will make the call"
            );
        }
    }
}

/// A spawner that runs the task at once on the calling thread, before the request that started it
/// returns: deterministic, for tests (the request then waits for the refresh).
#[derive(Clone, Copy, Debug, Default)]
pub struct InlineSpawner;

impl Spawn for InlineSpawner {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        run_here(task);
    }
}

/// Poll `task` to completion on this thread, parking while it waits (no executor of its own, so it
/// can run inside any other).
fn run_here(task: BoxFuture<'static, ()>) {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut task = task;
    while task.as_mut().poll(&mut cx) == Poll::Pending {
        std::thread::park();
    }
}

/// Buckets of the latency histogram: bucket `i` counts calls that took less than 2^i µs (the last
/// one everything longer).
const BUCKETS: usize = 28;

/// The underlying CMM's latency: a moving average for the refresh decision, and a histogram.
#[derive(Debug)]
pub(crate) struct Latency {
    /// The moving average in nanoseconds; 0 until the first call.
    average_nanos: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            average_nanos: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Latency {
    pub(crate) fn record(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let old = self.average_nanos.load(Ordering::Relaxed);
        // A weight of a quarter for the newest call; races between callers only blur the average.
        let new = if old == 0 {
            nanos.max(1)
        } else {
            old - old / 4 + nanos / 4
        };
        self.average_nanos.store(new.max(1), Ordering::Relaxed);
        let micros = nanos / 1000;
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.buckets[bucket.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn average(&self) -> Duration {
        Duration::from_nanos(self.average_nanos.load(Ordering::Relaxed))
    }

    pub(crate) fn snapshot(&self) -> LatencyHistogram {
        LatencyHistogram {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }
}

/// How long the calls to the underlying CMM took: counts by power-of-two buckets of microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// `buckets[i]` counts calls that took less than 2^i µs (and at least 2^(i-1) µs); the last
    /// bucket counts everything longer.
    pub buckets: [u64; BUCKETS],
}

impl LatencyHistogram {
    /// Calls counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// An upper bound on the `q` quantile (0 to 1): the top of the bucket it falls in. `None`
    /// before any call.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // A rank between 1 and `total`, which is far below 2^52: exact in f64 and back.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_micros(1u64 << i));
            }
        }
        Some(Duration::from_micros(1u64 << (BUCKETS - 1)))
    }
}

/// Backoff after failed refreshes of one entry: the next attempt waits 100 ms, doubling up to 30 s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    pub(crate) failures: u32,
    pub(crate) until: Instant,
}

impl Backoff {
    pub(crate) fn after_failure(previous: Option<Self>, now: Instant) -> Self {
        let failures = previous.map_or(1, |b| b.failures.saturating_add(1));
        let delay = Duration::from_millis(100)
            .saturating_mul(1u32 << failures.saturating_sub(1).min(9))
            .min(Duration::from_secs(30));
        Self {
            failures,
            until: now + delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (rule, messages used, bytes used, entry age ms, lifetime ms, count limits?, latency ms, due?)
    type Case = (RefreshAhead, u64, u64, u64, u64, bool, u64, bool);

    #[test]
    fn refresh_rules() {
        let auto = RefreshAhead::Auto;
        let tenth = RefreshAhead::Fraction(0.1);
        let cases: [Case; 12] = [
            // Auto, 1,000 msg/s, 20 ms latency (horizon 26 ms), 100 messages a key:
            (auto, 80, 80, 80, 300_000, true, 20, true), // 20 left = 20 ms
            (auto, 70, 70, 70, 300_000, true, 20, false), // 30 left = 30 ms
            (auto, 2, 2, 300_000 - 20, 300_000, true, 20, true), // 20 ms of age left
            (auto, 99, 0, 1, 300_000, false, 20, false), // decryption entries: age only
            (auto, 1, 1, 1, 300_000, true, 20, false),   // one use: no rate yet
            (RefreshAhead::Off, 99, 99, 99, 300_000, true, 20, false),
            // A tenth left of any limit (100 messages, 1,000 bytes, 100 s):
            (tenth, 89, 0, 1_000, 100_000, true, 0, false),
            (tenth, 90, 0, 1_000, 100_000, true, 0, true),
            (tenth, 1, 900, 1_000, 100_000, true, 0, true),
            (tenth, 1, 1, 90_000, 100_000, true, 0, true),
            (tenth, 95, 950, 1_000, 100_000, false, 0, false), // decryption: counts ignored
            (
                RefreshAhead::Fraction(1.5),
                99,
                999,
                99_000,
                100_000,
                true,
                0,
                false,
            ),
        ];
        // Ahead of the real clock, so that `now - age` cannot underflow on a freshly booted
        // machine (`due` only uses differences).
        let now = Instant::now() + Duration::from_secs(3600);
        for (i, (rule, messages, bytes, age, lifetime, counted, latency, due)) in
            cases.into_iter().enumerate()
        {
            let created = now - Duration::from_millis(age);
            let entry = EntryState {
                usage: Usage { messages, bytes },
                created,
                expires: created + Duration::from_millis(lifetime),
            };
            let limits = counted.then_some(UsageLimits {
                max_messages: 100,
                max_bytes: if rule == auto { u64::MAX >> 1 } else { 1000 },
            });
            let got = rule.due(entry, limits, now, Duration::from_millis(latency));
            assert_eq!(got, due, "case {i}: {rule} {messages}/{bytes} at {age} ms");
        }
    }

    #[test]
    fn parse_and_display() {
        for text in ["off", "auto", "0.25"] {
            assert_eq!(
                text.parse::<RefreshAhead>().map(|r| r.to_string()),
                Ok(text.to_owned())
            );
        }
        assert!("1.0".parse::<RefreshAhead>().is_err());
        assert!("nan".parse::<RefreshAhead>().is_err());
    }

    #[test]
    fn histogram_quantiles() {
        let latency = Latency::default();
        for ms in [1u64, 1, 1, 1, 1, 1, 1, 1, 1, 50] {
            latency.record(Duration::from_millis(ms));
        }
        let h = latency.snapshot();
        assert_eq!(h.count(), 10);
        assert_eq!(h.quantile(0.5), Some(Duration::from_micros(1024)));
        assert_eq!(h.quantile(0.99), Some(Duration::from_micros(65_536)));
        assert!(latency.average() > Duration::from_millis(1));
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        let now = Instant::now();
        let first = Backoff::after_failure(None, now);
        assert_eq!(first.until - now, Duration::from_millis(100));
        let second = Backoff::after_failure(Some(first), now);
        assert_eq!(second.until - now, Duration::from_millis(200));
        let mut b = second;
        for _ in 0..20 {
            b = Backoff::after_failure(Some(b), now);
        }
        assert_eq!(b.until - now, Duration::from_secs(30));
    }
}
