//! Records to encrypted `PutRecords` entries, without any AWS client.

use std::fmt;
use std::sync::Arc;

use aws_sdk_kinesis::error::BuildError;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use envelope_format::EncryptionContext;

use crate::cipher::MessageCipher;
use crate::error::Error;

/// The most a Kinesis record may hold: its data plus its partition key (1 MiB).
pub const DEFAULT_MAX_RECORD_SIZE: usize = 1 << 20;

/// The encryption-context key that names the stream, as in the ESDK guidance's Kinesis example:
/// every record carries `{"stream": NAME}`, and consumers check it.
pub const DEFAULT_STREAM_CONTEXT_KEY: &str = "stream";

/// The longest partition key Kinesis accepts, in Unicode characters.
pub const MAX_PARTITION_KEY_CHARS: usize = 256;

/// A record to encrypt: its data, partition key, and encryption-context pairs of its own.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    data: Vec<u8>,
    partition_key: String,
    explicit_hash_key: Option<String>,
    context: EncryptionContext,
}

impl Record {
    /// A record with `data`, routed to a shard by `partition_key`.
    pub fn new(partition_key: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self {
            data: data.into(),
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            context: EncryptionContext::new(),
        }
    }

    /// Route by this hash key instead of the partition key's MD5.
    pub fn explicit_hash_key(mut self, hash_key: impl Into<String>) -> Self {
        self.explicit_hash_key = Some(hash_key.into());
        self
    }

    /// Add a pair to the record's encryption context (besides the stream's pair).
    pub fn context(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.insert(key, value);
        self
    }

    /// The record's data.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The partition key.
    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .field("partition_key", &self.partition_key)
            .field("explicit_hash_key", &self.explicit_hash_key)
            .field("context", &self.context)
            .finish()
    }
}

/// An encrypted record, ready to send: an ESDK message and its routing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedRecord {
    data: Vec<u8>,
    partition_key: String,
    explicit_hash_key: Option<String>,
}

impl EncryptedRecord {
    /// The ESDK message.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The partition key.
    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }

    /// The explicit hash key, if one was set.
    pub fn explicit_hash_key(&self) -> Option<&str> {
        self.explicit_hash_key.as_deref()
    }

    /// What the record counts against Kinesis's limits: data plus partition key, in bytes.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }

    /// The `PutRecords` entry for this record.
    pub fn to_entry(&self) -> Result<PutRecordsRequestEntry, BuildError> {
        self.clone().into_entry()
    }

    /// The `PutRecords` entry for this record, moving its bytes rather than copying them.
    pub fn into_entry(self) -> Result<PutRecordsRequestEntry, BuildError> {
        PutRecordsRequestEntry::builder()
            .data(Blob::new(self.data))
            .partition_key(self.partition_key)
            .set_explicit_hash_key(self.explicit_hash_key)
            .build()
    }
}

/// Encrypts records for one stream: adds the stream's encryption-context pair to the record's own,
/// encrypts through a [`MessageCipher`] (normally a caching CMM over a KMS keyring), and checks the
/// result against the stream's record size limit before anything is sent.
#[derive(Clone, Debug)]
pub struct RecordEncryptor {
    cipher: Arc<dyn MessageCipher>,
    stream: String,
    context_key: Option<String>,
    context: EncryptionContext,
    max_record_size: usize,
}

impl RecordEncryptor {
    /// Encrypt records for `stream` with `cipher`, adding `{"stream": stream}` to each record's
    /// encryption context.
    pub fn new(stream: impl Into<String>, cipher: Arc<dyn MessageCipher>) -> Self {
        Self {
            cipher,
            stream: stream.into(),
            context_key: Some(DEFAULT_STREAM_CONTEXT_KEY.to_owned()),
            context: EncryptionContext::new(),
            max_record_size: DEFAULT_MAX_RECORD_SIZE,
        }
    }

    /// The encryption-context key that names the stream (default `"stream"`); `None` adds no
    /// stream pair (then consumers cannot check where a record was meant to go).
    pub fn stream_context_key(mut self, key: Option<&str>) -> Self {
        self.context_key = key.map(str::to_owned);
        self
    }

    /// Pairs added to every record's encryption context (a record's own pairs win).
    pub fn context(mut self, context: EncryptionContext) -> Self {
        self.context = context;
        self
    }

    /// The largest record (encrypted data plus partition key) to produce, default
    /// [`DEFAULT_MAX_RECORD_SIZE`] (Kinesis's 1 MiB).
    pub fn max_record_size(mut self, max: usize) -> Self {
        self.max_record_size = max;
        self
    }

    /// The stream's name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The encryption-context key naming the stream.
    pub fn stream_context_key_name(&self) -> Option<&str> {
        self.context_key.as_deref()
    }

    /// The record size limit.
    pub fn record_size_limit(&self) -> usize {
        self.max_record_size
    }

    /// The encryption context a record is encrypted under.
    pub fn context_for(&self, record: &Record) -> Result<EncryptionContext, Error> {
        let mut context = self.context.clone();
        for (key, value) in record.context.iter() {
            context.insert(key, value);
        }
        if let Some(key) = &self.context_key {
            match context.get(key) {
                Some(value) if value != self.stream => {
                    return Err(Error::ContextConflict {
                        key: key.clone(),
                        value: value.to_owned(),
                    });
                }
                _ => {
                    context.insert(key.clone(), self.stream.clone());
                }
            }
        }
        Ok(context)
    }

    /// Encrypt one record. Fails before any key is requested if the partition key is invalid or
    /// the plaintext alone is over the size limit, and after encryption if the message is.
    pub async fn encrypt(&self, record: Record) -> Result<EncryptedRecord, Error> {
        let chars = record.partition_key.chars().count();
        if !(1..=MAX_PARTITION_KEY_CHARS).contains(&chars) {
            return Err(Error::InvalidPartitionKey { chars });
        }
        let floor = record.data.len() + record.partition_key.len();
        if floor > self.max_record_size {
            return Err(Error::RecordTooLarge {
                size: floor,
                max: self.max_record_size,
            });
        }
        let context = self.context_for(&record)?;
        let data = self
            .cipher
            .encrypt(&record.data, &context)
            .await
            .map_err(Error::Encrypt)?;
        let encrypted = EncryptedRecord {
            data,
            partition_key: record.partition_key,
            explicit_hash_key: record.explicit_hash_key,
        };
        if encrypted.size() > self.max_record_size {
            return Err(Error::RecordTooLarge {
                size: encrypted.size(),
                max: self.max_record_size,
            });
        }
        Ok(encrypted)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::future::Future;

    use crate::cipher::{CipherError, Opened};

    /// Writes the context and the plaintext's length in place of a message, so the tests can see
    /// what the encryptor asked for.
    #[derive(Debug)]
    struct Echo;

    #[async_trait::async_trait]
    impl MessageCipher for Echo {
        async fn encrypt(
            &self,
            plaintext: &[u8],
            context: &EncryptionContext,
        ) -> Result<Vec<u8>, CipherError> {
            let mut out = context
                .serialize()
                .map_err(|e| CipherError::new(e, false))?;
            out.extend_from_slice(plaintext);
            out.extend_from_slice(&[0; 64]);
            Ok(out)
        }

        async fn decrypt(&self, _: &[u8]) -> Result<Opened, CipherError> {
            Err(CipherError::new("not used", false))
        }
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_stream_pair_joins_the_shared_and_the_records_pairs() {
        let encryptor =
            RecordEncryptor::new("orders", Arc::new(Echo)).context(EncryptionContext::from_iter([
                ("app", "shop"),
                ("tier", "1"),
            ]));
        let record = Record::new("k", b"x".to_vec()).context("tier", "2");
        let context = encryptor.context_for(&record).ok();
        let expected =
            EncryptionContext::from_iter([("app", "shop"), ("stream", "orders"), ("tier", "2")]);
        assert_eq!(context, Some(expected));

        let custom = encryptor
            .clone()
            .stream_context_key(Some("aws-kinesis-stream"));
        let context = custom.context_for(&Record::new("k", Vec::new())).ok();
        assert_eq!(
            context.as_ref().and_then(|c| c.get("aws-kinesis-stream")),
            Some("orders")
        );
        assert!(context.is_some_and(|c| !c.contains_key("stream")));

        let none = encryptor.clone().stream_context_key(None);
        let context = none.context_for(&Record::new("k", Vec::new())).ok();
        assert!(context.is_some_and(|c| !c.contains_key("stream")));

        let same = encryptor.context_for(&Record::new("k", Vec::new()).context("stream", "orders"));
        assert!(same.is_ok(), "naming the same stream is no conflict");
        let other = encryptor.context_for(&Record::new("k", Vec::new()).context("stream", "audit"));
        assert!(
            matches!(other, Err(Error::ContextConflict { key, value }) if key == "stream" && value == "audit")
        );
    }

    #[test]
    fn size_limits_count_data_and_partition_key() {
        let encryptor = RecordEncryptor::new("s", Arc::new(Echo)).max_record_size(200);
        let context_len = EncryptionContext::from_iter([("stream", "s")]).serialized_len();
        // Fits exactly: context + 64 + data + partition key = 200.
        let data_len = 200 - context_len - 64 - 2;
        let fits = block_on(encryptor.encrypt(Record::new("pk", vec![1; data_len])));
        assert_eq!(fits.as_ref().map(EncryptedRecord::size).ok(), Some(200));
        let over = block_on(encryptor.encrypt(Record::new("pk", vec![1; data_len + 1])));
        assert!(
            matches!(
                over,
                Err(Error::RecordTooLarge {
                    size: 201,
                    max: 200
                })
            ),
            "{over:?}"
        );
        let entry = fits.unwrap().to_entry().unwrap();
        assert_eq!(entry.partition_key(), Some("pk"));
        assert_eq!(entry.data().as_ref().len(), 200 - 2);
    }

    #[test]
    fn partition_keys_are_one_to_256_characters() {
        let encryptor = RecordEncryptor::new("s", Arc::new(Echo));
        for (key, ok) in [
            (String::new(), false),
            ("a".to_owned(), true),
            ("é".repeat(256), true),
            ("é".repeat(257), false),
        ] {
            let result = block_on(encryptor.encrypt(Record::new(key.clone(), Vec::new())));
            assert_eq!(
                result.is_ok(),
                ok,
                "{} characters: {result:?}",
                key.chars().count()
            );
        }
    }
}
