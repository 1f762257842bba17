//! A batching producer: records are encrypted by the caller's task, queued within a memory budget,
//! and sent by one worker task in `PutRecords` calls within Kinesis's limits. Entries a partial
//! failure rejected are retried, alone, with backoff and jitter; each record gets its own outcome.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::SdkError;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, KINESIS_RETRYABLE, backoff, jitter, kinesis_error};
use crate::record::{EncryptedRecord, Record, RecordEncryptor};

/// The most records one `PutRecords` call takes.
pub const MAX_BATCH_RECORDS: usize = 500;
/// The most bytes (data plus partition keys) one `PutRecords` call takes: 5 MiB.
pub const MAX_BATCH_BYTES: usize = 5 << 20;

/// How a [`Producer`] batches, buffers and retries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// Records per `PutRecords` call, at most [`MAX_BATCH_RECORDS`] (the default).
    pub max_batch_records: usize,
    /// Bytes per `PutRecords` call, at most [`MAX_BATCH_BYTES`] (the default).
    pub max_batch_bytes: usize,
    /// How long the first record of a batch waits for others before the batch is sent (default
    /// 50 ms). [`Producer::flush`] sends at once.
    pub linger: Duration,
    /// The most encrypted bytes queued or in flight (default 32 MiB); [`Producer::send`] waits
    /// for room beyond that.
    pub max_buffered_bytes: usize,
    /// How many times a record is sent before its last error is its outcome (default 8).
    pub max_attempts: u32,
    /// The first retry's backoff ceiling (default 100 ms); it doubles with each retry.
    pub base_backoff: Duration,
    /// The largest backoff (default 5 s).
    pub max_backoff: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            max_batch_records: MAX_BATCH_RECORDS,
            max_batch_bytes: MAX_BATCH_BYTES,
            linger: Duration::from_millis(50),
            max_buffered_bytes: 32 << 20,
            max_attempts: 8,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl ProducerConfig {
    fn check(&self, max_record_size: usize) -> Result<(), Error> {
        if !(1..=MAX_BATCH_RECORDS).contains(&self.max_batch_records) {
            return Err(Error::Config(format!(
                "max_batch_records must be 1 to {MAX_BATCH_RECORDS}, not {}",
                self.max_batch_records
            )));
        }
        if !(1..=MAX_BATCH_BYTES).contains(&self.max_batch_bytes) {
            return Err(Error::Config(format!(
                "max_batch_bytes must be 1 to {MAX_BATCH_BYTES}, not {}",
                self.max_batch_bytes
            )));
        }
        if self.max_buffered_bytes < max_record_size {
            return Err(Error::Config(format!(
                "max_buffered_bytes ({}) must hold the largest record ({max_record_size})",
                self.max_buffered_bytes
            )));
        }
        if self.max_buffered_bytes > Semaphore::MAX_PERMITS {
            return Err(Error::Config("max_buffered_bytes is too large".to_owned()));
        }
        if self.max_attempts == 0 {
            return Err(Error::Config("max_attempts must be at least 1".to_owned()));
        }
        Ok(())
    }
}

/// Where Kinesis put a record.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Put {
    /// The shard that holds it.
    pub shard_id: String,
    /// Its sequence number in that shard.
    pub sequence_number: String,
    /// How many times it was sent (more than 1 after a partial failure).
    pub attempts: u32,
}

/// A record's outcome, to `.await`: where it was put, or why it was not.
#[derive(Debug)]
#[must_use = "a pending record's outcome tells whether it was delivered"]
pub struct Pending(oneshot::Receiver<Result<Put, Error>>);

impl Future for Pending {
    type Output = Result<Put, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|outcome| outcome.unwrap_or(Err(Error::Closed)))
    }
}

struct Queued {
    entry: PutRecordsRequestEntry,
    size: usize,
    attempts: u32,
    reply: oneshot::Sender<Result<Put, Error>>,
    _budget: OwnedSemaphorePermit,
}

impl Queued {
    fn resolve(self, outcome: Result<Put, Error>) {
        // The caller may have dropped its `Pending`; the outcome is then nobody's business.
        let _ = self.reply.send(outcome);
    }
}

enum Command {
    Put(Queued),
    Flush(oneshot::Sender<()>),
}

/// Encrypts records and puts them into one stream in batches.
///
/// Create it inside a tokio runtime: it spawns one worker task. Dropping it lets the worker send
/// what is queued and stop; [`Producer::close`] does the same and waits for it.
pub struct Producer {
    encryptor: RecordEncryptor,
    queue: mpsc::UnboundedSender<Command>,
    budget: Arc<Semaphore>,
    max_buffered: usize,
    worker: JoinHandle<()>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("stream", &self.encryptor.stream())
            .field("buffered_bytes", &self.buffered_bytes())
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A producer that encrypts with `encryptor` and puts into its stream through `client`.
    pub fn new(
        client: Client,
        encryptor: RecordEncryptor,
        config: ProducerConfig,
    ) -> Result<Self, Error> {
        config.check(encryptor.record_size_limit())?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (queue, commands) = mpsc::unbounded_channel();
        let worker = Worker {
            client,
            stream: encryptor.stream().to_owned(),
            config: config.clone(),
        };
        Ok(Self {
            encryptor,
            queue,
            budget: Arc::new(Semaphore::new(config.max_buffered_bytes)),
            max_buffered: config.max_buffered_bytes,
            worker: runtime.spawn(worker.run(commands)),
        })
    }

    /// The record encryptor.
    pub fn encryptor(&self) -> &RecordEncryptor {
        &self.encryptor
    }

    /// Encrypted bytes queued or in flight.
    pub fn buffered_bytes(&self) -> usize {
        self.max_buffered - self.budget.available_permits()
    }

    /// Encrypt `record` and queue it. Returns once it is queued (waiting for room while
    /// [`ProducerConfig::max_buffered_bytes`] are buffered); the [`Pending`] resolves when Kinesis
    /// took it or it failed for good. An encryption failure is returned here, and nothing is sent.
    pub async fn send(&self, record: Record) -> Result<Pending, Error> {
        let encrypted = self.encryptor.encrypt(record).await?;
        self.send_encrypted(encrypted).await
    }

    /// Queue a record encrypted earlier with [`RecordEncryptor::encrypt`].
    pub async fn send_encrypted(&self, record: EncryptedRecord) -> Result<Pending, Error> {
        let size = record.size();
        let permits =
            u32::try_from(size.clamp(1, self.max_buffered)).map_err(|_| Error::RecordTooLarge {
                size,
                max: self.encryptor.record_size_limit(),
            })?;
        let entry = record
            .into_entry()
            .map_err(|e| Error::Config(format!("cannot build the PutRecords entry: {e}")))?;
        let budget = self
            .budget
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| Error::Closed)?;
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Command::Put(Queued {
                entry,
                size,
                attempts: 0,
                reply,
                _budget: budget,
            }))
            .map_err(|_| Error::Closed)?;
        Ok(Pending(outcome))
    }

    /// Send everything queued so far now, and return when each of those records has its outcome.
    pub async fn flush(&self) -> Result<(), Error> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send(Command::Flush(ack))
            .map_err(|_| Error::Closed)?;
        done.await.map_err(|_| Error::Closed)
    }

    /// Send everything queued, then stop the worker.
    pub async fn close(self) -> Result<(), Error> {
        let Self { queue, worker, .. } = self;
        drop(queue);
        worker.await.map_err(|_| Error::Closed)
    }
}

struct Worker {
    client: Client,
    stream: String,
    config: ProducerConfig,
}

#[derive(Default)]
struct Batch {
    entries: Vec<Queued>,
    bytes: usize,
}

impl Batch {
    fn fits(&self, queued: &Queued, config: &ProducerConfig) -> bool {
        self.entries.is_empty()
            || (self.entries.len() < config.max_batch_records
                && self.bytes + queued.size <= config.max_batch_bytes)
    }

    fn full(&self, config: &ProducerConfig) -> bool {
        self.entries.len() >= config.max_batch_records || self.bytes >= config.max_batch_bytes
    }

    fn push(&mut self, queued: Queued) {
        self.bytes += queued.size;
        self.entries.push(queued);
    }
}

impl Worker {
    async fn run(self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut carried: Option<Command> = None;
        let mut open = true;
        while open || carried.is_some() {
            let first = match carried.take() {
                Some(command) => command,
                None => match commands.recv().await {
                    Some(command) => command,
                    None => break,
                },
            };
            let deadline = Instant::now() + self.config.linger;
            let mut batch = Batch::default();
            let mut acks = Vec::new();
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Put(queued) if batch.fits(&queued, &self.config) => {
                        batch.push(queued);
                        if batch.full(&self.config) {
                            break;
                        }
                    }
                    Command::Put(queued) => {
                        carried = Some(Command::Put(queued));
                        break;
                    }
                    Command::Flush(ack) => {
                        acks.push(ack);
                        break;
                    }
                }
                tokio::select! {
                    biased;
                    command = commands.recv() => match command {
                        Some(command) => next = Some(command),
                        None => open = false,
                    },
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
            if !batch.entries.is_empty() {
                self.send(batch.entries).await;
            }
            for ack in acks {
                let _ = ack.send(());
            }
        }
    }

    /// Put `batch`, retrying the entries a partial failure rejected until each has an outcome.
    async fn send(&self, mut batch: Vec<Queued>) {
        let mut retry = 0;
        while !batch.is_empty() {
            if retry > 0 {
                let wait = backoff(
                    self.config.base_backoff,
                    self.config.max_backoff,
                    retry,
                    jitter(),
                );
                tokio::time::sleep(wait).await;
            }
            retry += 1;
            for queued in &mut batch {
                queued.attempts += 1;
            }
            let entries: Vec<_> = batch.iter().map(|q| q.entry.clone()).collect();
            tracing::debug!(stream = %self.stream, records = entries.len(), "PutRecords");
            let response = self
                .client
                .put_records()
                .stream_name(&self.stream)
                .set_records(Some(entries))
                .send()
                .await;
            let results = match response {
                Ok(output) => output.records,
                Err(error) => {
                    let error = call_error(error);
                    let again = matches!(
                        &error,
                        Error::Kinesis {
                            retryable: true,
                            code: Some(_),
                            ..
                        }
                    );
                    if again && batch.iter().all(|q| q.attempts < self.config.max_attempts) {
                        tracing::warn!(stream = %self.stream, %error, "PutRecords failed; retrying the batch");
                        continue;
                    }
                    for queued in batch.drain(..) {
                        queued.resolve(Err(copy_call_error(&error)));
                    }
                    return;
                }
            };
            if results.len() != batch.len() {
                let message = format!(
                    "{} results for {} records; their outcomes are unknown",
                    results.len(),
                    batch.len()
                );
                for queued in batch.drain(..) {
                    queued.resolve(Err(Error::Kinesis {
                        operation: "PutRecords",
                        code: None,
                        message: message.clone(),
                        retryable: false,
                    }));
                }
                return;
            }
            let mut failed = Vec::new();
            for (queued, result) in batch.drain(..).zip(results) {
                match (result.error_code, result.shard_id, result.sequence_number) {
                    (None, Some(shard_id), Some(sequence_number)) => {
                        let attempts = queued.attempts;
                        queued.resolve(Ok(Put {
                            shard_id,
                            sequence_number,
                            attempts,
                        }));
                    }
                    (code, _, _) => {
                        let code = code.unwrap_or_else(|| "MissingSequenceNumber".to_owned());
                        let retryable = envelope_aws::is_retryable_code(&code, KINESIS_RETRYABLE);
                        if retryable && queued.attempts < self.config.max_attempts {
                            failed.push(queued);
                        } else {
                            let attempts = queued.attempts;
                            queued.resolve(Err(Error::Rejected {
                                code,
                                message: result.error_message.unwrap_or_default(),
                                attempts,
                                retryable,
                            }));
                        }
                    }
                }
            }
            if !failed.is_empty() {
                tracing::warn!(stream = %self.stream, failed = failed.len(), "PutRecords partial failure; retrying the failed entries");
            }
            batch = failed;
        }
    }
}

/// A whole-call failure. Only a service answer with a throttling or internal-failure code is
/// retried by the worker: after a timeout or a broken connection the records may have been written.
pub(crate) fn call_error<E: envelope_aws::OperationError>(
    error: SdkError<E, aws_sdk_kinesis::config::http::HttpResponse>,
) -> Error {
    kinesis_error("PutRecords", error)
}

fn copy_call_error(error: &Error) -> Error {
    match error {
        Error::Kinesis {
            operation,
            code,
            message,
            retryable,
        } => Error::Kinesis {
            operation,
            code: code.clone(),
            message: message.clone(),
            retryable: *retryable,
        },
        other => Error::Kinesis {
            operation: "PutRecords",
            code: None,
            message: other.to_string(),
            retryable: other.is_retryable(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn queued(size: usize, budget: &Arc<Semaphore>) -> Queued {
        let (reply, _) = oneshot::channel();
        Queued {
            entry: PutRecordsRequestEntry::builder()
                .partition_key("k")
                .data(aws_sdk_kinesis::primitives::Blob::new(vec![0; size]))
                .build()
                .unwrap(),
            size,
            attempts: 0,
            reply,
            _budget: budget.clone().try_acquire_owned().unwrap(),
        }
    }

    #[test]
    fn batches_stop_at_500_records_or_5_mib() {
        let budget = Arc::new(Semaphore::new(10_000));
        let config = ProducerConfig::default();
        let mut batch = Batch::default();
        for _ in 0..MAX_BATCH_RECORDS {
            let q = queued(10, &budget);
            assert!(batch.fits(&q, &config));
            batch.push(q);
        }
        assert!(batch.full(&config));
        assert!(!batch.fits(&queued(1, &budget), &config));

        let mut batch = Batch::default();
        for _ in 0..5 {
            batch.push(queued(1 << 20, &budget));
        }
        assert!(batch.full(&config), "5 MiB is full");
        let mut batch = Batch::default();
        for _ in 0..4 {
            batch.push(queued(1 << 20, &budget));
        }
        assert!(batch.fits(&queued(1 << 20, &budget), &config));
        assert!(!batch.fits(&queued((1 << 20) + 1, &budget), &config));
        // An empty batch takes any record, so nothing is stuck.
        assert!(Batch::default().fits(&queued(MAX_BATCH_BYTES + 1, &budget), &config));
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let ok = ProducerConfig::default();
        assert!(ok.check(1 << 20).is_ok());
        type Change = fn(&mut ProducerConfig);
        let cases: [(&str, Change); 5] = [
            ("records", |c| c.max_batch_records = 501),
            ("zero records", |c| c.max_batch_records = 0),
            ("bytes", |c| c.max_batch_bytes = MAX_BATCH_BYTES + 1),
            ("buffer", |c| c.max_buffered_bytes = 1000),
            ("attempts", |c| c.max_attempts = 0),
        ];
        for (what, change) in cases {
            let mut config = ProducerConfig::default();
            change(&mut config);
            assert!(
                matches!(config.check(1 << 20), Err(Error::Config(_))),
                "{what}"
            );
        }
    }

    #[test]
    fn a_producer_needs_a_runtime() {
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(aws_sdk_kinesis::config::BehaviorVersion::latest())
            .build();
        let client = Client::from_conf(config);
        #[derive(Debug)]
        struct Never;
        #[async_trait::async_trait]
        impl crate::MessageCipher for Never {
            async fn encrypt(
                &self,
                _: &[u8],
                _: &envelope_format::EncryptionContext,
            ) -> Result<Vec<u8>, crate::CipherError> {
                Err(crate::CipherError::new("unused", false))
            }
            async fn decrypt(&self, _: &[u8]) -> Result<crate::Opened, crate::CipherError> {
                Err(crate::CipherError::new("unused", false))
            }
        }
        let encryptor = RecordEncryptor::new("s", Arc::new(Never));
        let outside = Producer::new(client, encryptor, ProducerConfig::default());
        assert!(matches!(outside, Err(Error::NoRuntime)));
    }
}
