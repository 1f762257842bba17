#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod cipher;
mod consumer;
mod error;
mod producer;
mod record;

pub use cipher::{CipherError, MessageCipher, Opened};
pub use consumer::{ConsumedRecord, Consumer, ConsumerConfig, Position, SuitePolicy};
pub use error::{BadRecord, BadRecordReason, Error};
pub use producer::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, Pending, Producer, ProducerConfig, Put};
pub use record::{
    DEFAULT_MAX_RECORD_SIZE, DEFAULT_STREAM_CONTEXT_KEY, EncryptedRecord, MAX_PARTITION_KEY_CHARS,
    Record, RecordEncryptor,
};

/// The AWS SDK for Kinesis this crate is built on, so that clients match its version.
pub use aws_sdk_kinesis;
