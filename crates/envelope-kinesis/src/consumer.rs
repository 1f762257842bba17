//! A consumer that reads every shard of a stream, checks each record before any key is requested
//! (an ESDK header, an allowed suite, a context naming this stream), and decrypts it.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::{Shard, ShardIteratorType};
use envelope_format::{AlgorithmSuite, EncryptionContext, Header, HeaderLimits, Parsed};

use crate::cipher::{Length, MessageCipher};
use crate::error::{BadRecord, BadRecordReason, Error, backoff, jitter, kinesis_error};
use crate::record::DEFAULT_STREAM_CONTEXT_KEY;

/// Which algorithm suites a consumer decrypts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SuitePolicy {
    /// Any suite the cipher's commitment policy allows.
    #[default]
    Any,
    /// Only suites without a signature.
    UnsignedOnly,
    /// Only these suites.
    Only(Vec<AlgorithmSuite>),
}

impl SuitePolicy {
    /// Whether `suite` may be decrypted.
    pub fn allows(&self, suite: AlgorithmSuite) -> bool {
        match self {
            Self::Any => true,
            Self::UnsignedOnly => !suite.is_signed(),
            Self::Only(suites) => suites.contains(&suite),
        }
    }
}

/// Where in a shard to start reading.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Position {
    /// The oldest record kept.
    #[default]
    TrimHorizon,
    /// Only records put after reading starts.
    Latest,
    /// This record, then the ones after it.
    AtSequenceNumber(String),
    /// The records after this one (to resume after the last record processed).
    AfterSequenceNumber(String),
}

/// How a [`Consumer`] reads and what it accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Where to start in shards not named in [`ConsumerConfig::shard_positions`] (default
    /// [`Position::TrimHorizon`]). Shards that appear later by resharding start at their first
    /// record.
    pub start: Position,
    /// Where to start in given shards, by shard id (e.g. a checkpoint from
    /// [`Consumer::positions`]).
    pub shard_positions: BTreeMap<String, Position>,
    /// Records per `GetRecords` call (1 to 10,000; default 1,000).
    pub limit: i32,
    /// Which suites are decrypted; others are reported as [`BadRecordReason::SuiteNotAllowed`].
    pub suites: SuitePolicy,
    /// The encryption-context key that must name this stream (default `"stream"`); `None`
    /// accepts records for any stream.
    pub stream_context_key: Option<String>,
    /// Limits for each record's header (default: at most 10 encrypted data keys, the format
    /// crate's header length limit).
    pub header_limits: HeaderLimits,
    /// How many times a decryption that failed with a retryable error (a throttled key service)
    /// is tried before the record is reported (default 3).
    pub decrypt_attempts: u32,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            start: Position::TrimHorizon,
            shard_positions: BTreeMap::new(),
            limit: 1000,
            suites: SuitePolicy::Any,
            stream_context_key: Some(DEFAULT_STREAM_CONTEXT_KEY.to_owned()),
            header_limits: HeaderLimits {
                max_encrypted_data_keys: Some(10),
                ..HeaderLimits::default()
            },
            decrypt_attempts: 3,
        }
    }
}

/// A decrypted record and where it came from.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumedRecord {
    /// The shard it was read from.
    pub shard_id: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// Its partition key.
    pub partition_key: String,
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The authenticated encryption context.
    pub encryption_context: EncryptionContext,
}

impl fmt::Debug for ConsumedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsumedRecord")
            .field("shard_id", &self.shard_id)
            .field("sequence_number", &self.sequence_number)
            .field("partition_key", &self.partition_key)
            .field("plaintext", &Length(&self.plaintext))
            .field("encryption_context", &self.encryption_context)
            .finish()
    }
}

#[derive(Debug)]
struct ShardState {
    id: String,
    parents: Vec<String>,
    start: Position,
    iterator: Option<String>,
    last: Option<String>,
    finished: bool,
}

/// Reads and decrypts the records of one stream, shard by shard.
///
/// Each [`Consumer::poll`] makes one `GetRecords` call per readable shard (a child shard becomes
/// readable when its parents are read to their end) and returns every record read, decrypted or
/// reported.
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    stream: String,
    cipher: Arc<dyn MessageCipher>,
    config: ConsumerConfig,
    shards: Vec<ShardState>,
    listed: bool,
}

impl Consumer {
    /// A consumer of `stream` that decrypts with `cipher`.
    pub fn new(
        client: Client,
        stream: impl Into<String>,
        cipher: Arc<dyn MessageCipher>,
        config: ConsumerConfig,
    ) -> Result<Self, Error> {
        if !(1..=10_000).contains(&config.limit) {
            return Err(Error::Config(format!(
                "limit must be 1 to 10000, not {}",
                config.limit
            )));
        }
        if config.decrypt_attempts == 0 {
            return Err(Error::Config(
                "decrypt_attempts must be at least 1".to_owned(),
            ));
        }
        Ok(Self {
            client,
            stream: stream.into(),
            cipher,
            config,
            shards: Vec::new(),
            listed: false,
        })
    }

    /// The last sequence number returned or reported per shard: resume with
    /// [`Position::AfterSequenceNumber`] in [`ConsumerConfig::shard_positions`].
    pub fn positions(&self) -> BTreeMap<String, String> {
        self.shards
            .iter()
            .filter_map(|s| s.last.clone().map(|last| (s.id.clone(), last)))
            .collect()
    }

    /// Whether every shard was read to its end (only after resharding closed them all).
    pub fn is_finished(&self) -> bool {
        self.listed && self.shards.iter().all(|s| s.finished)
    }

    /// One `GetRecords` call per readable shard; every record read, decrypted or reported.
    ///
    /// A shard whose Kinesis call fails is read from the same place next time; the error is
    /// returned when no other shard returned records.
    pub async fn poll(&mut self) -> Result<Vec<Result<ConsumedRecord, BadRecord>>, Error> {
        if !self.listed {
            self.list_shards().await?;
            self.listed = true;
        }
        let mut out = Vec::new();
        let mut closed_any = false;
        let mut failure = None;
        for index in 0..self.shards.len() {
            if !self.readable(index) {
                continue;
            }
            match self.read_shard(index, &mut out).await {
                Ok(closed) => closed_any |= closed,
                // That shard is read from the same place next time; the others go on.
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if closed_any {
            self.list_shards().await?;
        }
        match failure {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    fn readable(&self, index: usize) -> bool {
        let shard = &self.shards[index];
        !shard.finished
            && shard.parents.iter().all(|parent| {
                self.shards
                    .iter()
                    .find(|s| &s.id == parent)
                    .is_none_or(|s| s.finished)
            })
    }

    /// Read once from a shard; whether it reached its end.
    async fn read_shard(
        &mut self,
        index: usize,
        out: &mut Vec<Result<ConsumedRecord, BadRecord>>,
    ) -> Result<bool, Error> {
        let iterator = match self.shards[index].iterator.clone() {
            Some(iterator) => iterator,
            None => self.shard_iterator(index).await?,
        };
        let response = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(self.config.limit)
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(error) if error.code() == Some("ExpiredIteratorException") => {
                self.shards[index].iterator = None;
                return Ok(false);
            }
            Err(error) => return Err(kinesis_error("GetRecords", error)),
        };
        let shard_id = self.shards[index].id.clone();
        for record in output.records {
            let sequence_number = record.sequence_number;
            let outcome = self
                .open(
                    &shard_id,
                    &sequence_number,
                    record.partition_key.unwrap_or_default(),
                    record.data.into_inner(),
                )
                .await;
            self.shards[index].last = Some(sequence_number);
            out.push(outcome);
        }
        let shard = &mut self.shards[index];
        shard.iterator = output.next_shard_iterator;
        shard.finished = shard.iterator.is_none();
        Ok(shard.finished)
    }

    async fn shard_iterator(&mut self, index: usize) -> Result<String, Error> {
        let shard = &self.shards[index];
        let position = match &shard.last {
            Some(last) => Position::AfterSequenceNumber(last.clone()),
            None => shard.start.clone(),
        };
        let mut request = self
            .client
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(&shard.id);
        request = match position {
            Position::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Position::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            Position::AtSequenceNumber(n) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(n),
            Position::AfterSequenceNumber(n) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(n),
        };
        let output = request
            .send()
            .await
            .map_err(|e| kinesis_error("GetShardIterator", e))?;
        let iterator = output.shard_iterator.ok_or_else(|| Error::Kinesis {
            operation: "GetShardIterator",
            code: None,
            message: "no shard iterator in the response".to_owned(),
            retryable: false,
        })?;
        self.shards[index].iterator = Some(iterator.clone());
        Ok(iterator)
    }

    async fn list_shards(&mut self) -> Result<(), Error> {
        let mut shards: Vec<Shard> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = match &token {
                Some(token) => self.client.list_shards().next_token(token),
                None => self.client.list_shards().stream_name(&self.stream),
            };
            let output = request
                .send()
                .await
                .map_err(|e| kinesis_error("ListShards", e))?;
            shards.extend(output.shards.unwrap_or_default());
            token = output.next_token;
            if token.is_none() {
                break;
            }
        }
        let known: HashSet<String> = self.shards.iter().map(|s| s.id.clone()).collect();
        let first_listing = !self.listed;
        for shard in shards {
            if known.contains(&shard.shard_id) {
                continue;
            }
            let start = match self.config.shard_positions.get(&shard.shard_id) {
                Some(position) => position.clone(),
                None if first_listing => self.config.start.clone(),
                // A shard made by resharding after we started: all of it is new.
                None => Position::TrimHorizon,
            };
            let parents = [shard.parent_shard_id, shard.adjacent_parent_shard_id]
                .into_iter()
                .flatten()
                .collect();
            self.shards.push(ShardState {
                id: shard.shard_id,
                parents,
                start,
                iterator: None,
                last: None,
                finished: false,
            });
        }
        Ok(())
    }

    /// Check a record before any key is requested, then decrypt it.
    async fn open(
        &self,
        shard_id: &str,
        sequence_number: &str,
        partition_key: String,
        data: Vec<u8>,
    ) -> Result<ConsumedRecord, BadRecord> {
        let bad = |reason| BadRecord {
            shard_id: shard_id.to_owned(),
            sequence_number: sequence_number.to_owned(),
            partition_key: partition_key.clone(),
            reason,
        };
        let header = match Header::parse(&data, &self.config.header_limits) {
            Ok(Parsed::Complete(header, _)) => header,
            Ok(Parsed::Incomplete(_)) => return Err(bad(BadRecordReason::Truncated)),
            Err(e) => return Err(bad(BadRecordReason::Malformed(e))),
        };
        let suite = header.body().suite();
        if !self.config.suites.allows(suite) {
            return Err(bad(BadRecordReason::SuiteNotAllowed(suite)));
        }
        self.check_stream(header.body().encryption_context())
            .map_err(&bad)?;
        let mut attempt = 0;
        let opened = loop {
            attempt += 1;
            match self.cipher.decrypt(&data).await {
                Ok(opened) => break opened,
                Err(e) if e.is_retryable() && attempt < self.config.decrypt_attempts => {
                    let wait = backoff(
                        Duration::from_millis(50),
                        Duration::from_secs(2),
                        attempt,
                        jitter(),
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(bad(BadRecordReason::Decrypt(e))),
            }
        };
        // The header's context was checked before decryption; this is the authenticated one.
        self.check_stream(&opened.encryption_context)
            .map_err(&bad)?;
        Ok(ConsumedRecord {
            shard_id: shard_id.to_owned(),
            sequence_number: sequence_number.to_owned(),
            partition_key: partition_key.clone(),
            plaintext: opened.plaintext,
            encryption_context: opened.encryption_context,
        })
    }

    fn check_stream(&self, context: &EncryptionContext) -> Result<(), BadRecordReason> {
        match &self.config.stream_context_key {
            Some(key) if context.get(key) != Some(self.stream.as_str()) => {
                Err(BadRecordReason::WrongStream {
                    key: key.clone(),
                    found: context.get(key).map(str::to_owned),
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn suite_policies() {
        let unsigned = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
        let signed = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;
        assert!(SuitePolicy::Any.allows(signed));
        assert!(SuitePolicy::UnsignedOnly.allows(unsigned));
        assert!(!SuitePolicy::UnsignedOnly.allows(signed));
        let only = SuitePolicy::Only(vec![signed]);
        assert!(only.allows(signed) && !only.allows(unsigned));
    }
}
