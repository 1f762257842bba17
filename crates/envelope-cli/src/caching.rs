//! `--caching capacity=N max_age=S [max_messages_encrypted=N] [max_bytes_encrypted=N]`: data keys
//! reused across the files of one command through a `CachingCmm` over one `LocalCache`, as
//! aws-encryption-sdk-cli's option of the same name does.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use envelope::cache::{MAX_BYTES_LIMIT, MAX_MESSAGES_LIMIT, RefreshAhead};
use envelope::keyring::{Error, Keyring};
use envelope::{CachingCmm, LocalCache, MaterialsManager};

/// One partition for every caching CMM of the command, so that a data key cached while one file
/// was decrypted serves the next (each file's keyring may differ in the discovery Regions it asks,
/// never in the keys the command may use).
const PARTITION: &str = "envelope-cli";

/// The parsed `--caching` settings and the cache they share.
pub(crate) struct Caching {
    cache: Arc<LocalCache>,
    max_age: Duration,
    max_messages: Option<u64>,
    max_bytes: Option<u64>,
    /// The CMMs made so far, for the counters `-v` reports.
    made: Mutex<Vec<CachingCmm>>,
}

/// The counters summed over the command's caching CMMs.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) bypasses: u64,
}

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("--caching {key}={value}: not a whole number"))
}

impl Caching {
    /// Parse `--caching`'s words; `None` when the flag was not given.
    pub(crate) fn parse(words: &[String]) -> Result<Option<Self>, String> {
        if words.is_empty() {
            return Ok(None);
        }
        let (mut capacity, mut max_age, mut max_messages, mut max_bytes) = (None, None, None, None);
        for word in words {
            let Some((key, value)) = word.split_once('=') else {
                return Err(format!(
                    "--caching {word:?}: expected KEY=VALUE (capacity, max_age, \
                     max_messages_encrypted, max_bytes_encrypted)"
                ));
            };
            let seen = match key {
                "capacity" => capacity.replace(number::<usize>(key, value)?).is_some(),
                "max_age" => {
                    let seconds: f64 = value.parse().map_err(|_| {
                        format!("--caching max_age={value}: not a number of seconds")
                    })?;
                    let age = Duration::try_from_secs_f64(seconds)
                        .ok()
                        .filter(|age| !age.is_zero())
                        .ok_or_else(|| {
                            format!(
                                "--caching max_age={value}: must be a positive number of seconds"
                            )
                        })?;
                    max_age.replace(age).is_some()
                }
                "max_messages_encrypted" => {
                    let n = number::<u64>(key, value)?;
                    if !(1..=MAX_MESSAGES_LIMIT).contains(&n) {
                        return Err(format!(
                            "--caching max_messages_encrypted={value}: must be 1 to 2^32"
                        ));
                    }
                    max_messages.replace(n).is_some()
                }
                "max_bytes_encrypted" => {
                    let n = number::<u64>(key, value)?;
                    if n > MAX_BYTES_LIMIT {
                        return Err(format!(
                            "--caching max_bytes_encrypted={value}: must be at most 2^63 - 1"
                        ));
                    }
                    max_bytes.replace(n).is_some()
                }
                _ => {
                    return Err(format!(
                        "--caching {key}: unknown setting (capacity, max_age, \
                         max_messages_encrypted, max_bytes_encrypted)"
                    ));
                }
            };
            if seen {
                return Err(format!("--caching {key} is given more than once"));
            }
        }
        let capacity: NonZeroUsize = capacity
            .ok_or("--caching needs capacity=N")?
            .try_into()
            .map_err(|_| "--caching capacity must be at least 1")?;
        let max_age = max_age.ok_or("--caching needs max_age=SECONDS")?;
        Ok(Some(Self {
            cache: Arc::new(LocalCache::new(capacity)),
            max_age,
            max_messages,
            max_bytes,
            made: Mutex::new(Vec::new()),
        }))
    }

    /// A caching CMM over `keyring` and the shared cache.
    pub(crate) fn wrap(
        &self,
        keyring: Arc<dyn Keyring>,
    ) -> Result<Arc<dyn MaterialsManager>, Error> {
        let mut builder = CachingCmm::builder_from_arcs(Arc::new(keyring), self.cache.clone())
            .max_age(self.max_age)
            .partition(PARTITION)
            // A command is short-lived: nothing to refresh in the background.
            .refresh_ahead(RefreshAhead::Off);
        if let Some(n) = self.max_messages {
            builder = builder.max_messages(n);
        }
        if let Some(n) = self.max_bytes {
            builder = builder.max_bytes(n);
        }
        let cmm = builder.build()?;
        self.made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(cmm.clone());
        Ok(Arc::new(cmm))
    }

    /// The counters of every CMM made so far, summed.
    pub(crate) fn counts(&self) -> Counts {
        let made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        made.iter().fold(Counts::default(), |mut sum, cmm| {
            let stats = cmm.stats();
            sum.hits += stats.hits;
            sum.misses += stats.misses;
            sum.bypasses += stats.bypasses;
            sum
        })
    }
}

/// The materials manager a command uses over `keyring`: a caching CMM with `--caching`, else the
/// keyring itself.
pub(crate) fn materials_manager(
    caching: Option<&Caching>,
    keyring: Arc<dyn Keyring>,
) -> Result<Arc<dyn MaterialsManager>, Error> {
    match caching {
        Some(caching) => caching.wrap(keyring),
        None => Ok(Arc::new(keyring)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Option<Caching>, String> {
        Caching::parse(&words.iter().map(|w| (*w).to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn settings_parse_and_bad_ones_say_why() {
        assert!(parse(&[]).unwrap().is_none());
        let c = parse(&["capacity=10", "max_age=2.5", "max_messages_encrypted=7"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.cache.capacity(), c.max_age, c.max_messages, c.max_bytes),
            (10, Duration::from_millis(2500), Some(7), None)
        );
        for (words, error) in [
            (&["max_age=1"][..], "--caching needs capacity=N"),
            (&["capacity=1"][..], "--caching needs max_age=SECONDS"),
            (
                &["capacity=0", "max_age=1"][..],
                "--caching capacity must be at least 1",
            ),
            (
                &["capacity=1", "max_age=0"][..],
                "--caching max_age=0: must be a positive number of seconds",
            ),
            (
                &["capacity=1", "max_age=-1"][..],
                "--caching max_age=-1: must be a positive number of seconds",
            ),
            (
                &["capacity=1", "max_age=nan"][..],
                "--caching max_age=nan: must be a positive number of seconds",
            ),
            (
                &["capacity=x", "max_age=1"][..],
                "--caching capacity=x: not a whole number",
            ),
            (
                &["capacity=1", "capacity=2", "max_age=1"][..],
                "--caching capacity is given more than once",
            ),
            (
                &["capacity=1", "max_age=1", "max_messages_encrypted=0"][..],
                "--caching max_messages_encrypted=0: must be 1 to 2^32",
            ),
            (
                &[
                    "capacity=1",
                    "max_age=1",
                    "max_bytes_encrypted=9223372036854775808",
                ][..],
                "--caching max_bytes_encrypted=9223372036854775808: must be at most 2^63 - 1",
            ),
            (
                &["capacity=1", "max_age=1", "size=3"][..],
                "--caching size: unknown setting (capacity, max_age, max_messages_encrypted, max_bytes_encrypted)",
            ),
            (
                &["capacity"][..],
                "--caching \"capacity\": expected KEY=VALUE (capacity, max_age, max_messages_encrypted, max_bytes_encrypted)",
            ),
        ] {
            assert_eq!(parse(words).err().as_deref(), Some(error), "{words:?}");
        }
    }
}
