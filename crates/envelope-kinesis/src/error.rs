//! Errors of producers, consumers and record encryption.

use std::time::Duration;

use aws_sdk_kinesis::config::http::HttpResponse;
use aws_sdk_kinesis::error::SdkError;
use envelope_aws::{OperationError, classify};
use envelope_format::{AlgorithmSuite, FormatError};

use crate::cipher::CipherError;

/// Why a record could not be encrypted or delivered, or a stream could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Encrypting the record failed (for instance the key service was throttled or unreachable);
    /// nothing was sent. [`Error::is_retryable`] says whether a retry may help.
    #[error("encrypting the record failed: {0}")]
    Encrypt(#[source] CipherError),
    /// The encrypted record and its partition key are larger than the stream accepts; nothing was
    /// sent.
    #[error("the encrypted record is {size} bytes with its partition key, over the limit of {max}")]
    RecordTooLarge {
        /// Encrypted data plus partition key, in bytes (for a plaintext already over the limit, its
        /// size before encryption).
        size: usize,
        /// The limit ([`crate::DEFAULT_MAX_RECORD_SIZE`] unless configured).
        max: usize,
    },
    /// Partition keys are 1 to 256 Unicode characters.
    #[error("a partition key must be 1 to 256 characters, not {chars}")]
    InvalidPartitionKey {
        /// The key's length in characters.
        chars: usize,
    },
    /// The caller's encryption context sets the key that names the stream to another value.
    #[error("the encryption context sets {key:?}, the key that names the stream, to {value:?}")]
    ContextConflict {
        /// The stream context key.
        key: String,
        /// The caller's value.
        value: String,
    },
    /// Kinesis rejected the record (an entry of `PutRecords` came back with an error that a retry
    /// does not fix, or the retries ran out).
    #[error("Kinesis rejected the record after {attempts} attempt(s): {code}: {message}")]
    Rejected {
        /// Kinesis's error code, e.g. `ProvisionedThroughputExceededException`.
        code: String,
        /// Kinesis's message.
        message: String,
        /// How many times the record was sent.
        attempts: u32,
        /// Whether sending it again later may succeed (throttling, internal failure).
        retryable: bool,
    },
    /// A Kinesis call failed as a whole.
    #[error("Kinesis {operation} failed: {message}")]
    Kinesis {
        /// The operation, e.g. `PutRecords`.
        operation: &'static str,
        /// The service's error code, when the service answered.
        code: Option<String>,
        /// What went wrong.
        message: String,
        /// Whether a retry may help. For `PutRecords`, a timeout or broken connection leaves it
        /// unknown whether the records were written; they were not sent again.
        retryable: bool,
    },
    /// The configuration cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The producer was closed, or its worker stopped, before the record had an outcome.
    #[error("the producer is closed")]
    Closed,
    /// No tokio runtime to run the producer's worker on.
    #[error("a producer must be created inside a tokio runtime")]
    NoRuntime,
}

impl Error {
    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Encrypt(e) => e.is_retryable(),
            Self::Rejected { retryable, .. } | Self::Kinesis { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

/// Why a consumed record was not returned. The consumer reports it and goes on with the next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadRecordReason {
    /// The record is not an ESDK message, or its header is malformed.
    #[error("not an ESDK message: {0}")]
    Malformed(#[source] FormatError),
    /// The record ends inside its header.
    #[error("truncated: the record ends inside the message header")]
    Truncated,
    /// The record's encryption context does not name this stream.
    #[error("written for another stream: the encryption context has {key:?} = {found:?}")]
    WrongStream {
        /// The stream context key.
        key: String,
        /// Its value in the record, if any.
        found: Option<String>,
    },
    /// The record's algorithm suite is not allowed by the consumer's [`crate::SuitePolicy`].
    #[error("algorithm suite {0} is not allowed")]
    SuiteNotAllowed(AlgorithmSuite),
    /// Decryption failed: unknown key, tampered or truncated body, a key service that would not
    /// answer (then [`BadRecord::is_retryable`] is true and the record can be read again from its
    /// sequence number).
    #[error("decryption failed: {0}")]
    Decrypt(#[source] CipherError),
}

/// A record the consumer could not return, with where it is in the stream.
#[derive(Debug, thiserror::Error)]
#[error("record {sequence_number} in shard {shard_id}: {reason}")]
#[non_exhaustive]
pub struct BadRecord {
    /// The shard it was read from.
    pub shard_id: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// Its partition key.
    pub partition_key: String,
    /// What is wrong with it.
    #[source]
    pub reason: BadRecordReason,
}

impl BadRecord {
    /// Whether reading the record again may succeed (the key service was unavailable).
    pub fn is_retryable(&self) -> bool {
        matches!(&self.reason, BadRecordReason::Decrypt(e) if e.is_retryable())
    }
}

/// Kinesis error codes, per entry and per call, after which sending again may succeed, beyond
/// [`envelope_aws::COMMON_RETRYABLE_CODES`].
pub(crate) const KINESIS_RETRYABLE: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "KMSThrottlingException",
];

/// A Kinesis call's failure, with the service's code and whether a retry may help.
pub(crate) fn kinesis_error<E: OperationError>(
    operation: &'static str,
    error: SdkError<E, HttpResponse>,
) -> Error {
    let seen = classify(&error, KINESIS_RETRYABLE);
    Error::Kinesis {
        operation,
        code: seen.code,
        message: seen.message,
        retryable: seen.retryable,
    }
}

/// Exponential backoff with jitter: attempt `n` (1-based, the first retry is 1) waits between half
/// and all of `min(max, base * 2^(n-1))`.
pub(crate) fn backoff(base: Duration, max: Duration, retry: u32, unit: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << retry.saturating_sub(1).min(20));
    let ceiling = exp.min(max);
    ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

/// A number in [0, 1) for jitter: not cryptographic, only different per call and per process.
pub(crate) fn jitter() -> f64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_half_and_whole_of_its_ceiling() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(2));
        for (retry, ceiling_ms) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (5, 1600),
            (6, 2000),
            (40, 2000),
        ] {
            let ceiling = Duration::from_millis(ceiling_ms);
            assert_eq!(backoff(base, max, retry, 1.0), ceiling, "retry {retry}");
            assert_eq!(backoff(base, max, retry, 0.0), ceiling / 2, "retry {retry}");
        }
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
