//! Encrypted Kinesis records: a producer encrypting each record through a caching CMM (the ESDK
//! guidance's settings: max age 300 s, 100 records per data key, context `{"stream": NAME}`), a
//! consumer that decrypts them and checks that each names its stream, and the KMS calls that the
//! cache saves, counted on the wire.
//!
//! `cargo run -p envelope --features kinesis --example kinesis` with the usual AWS environment.
//! It uses the stream `ENVELOPE_KINESIS_STREAM` names (and leaves it in place), or creates a
//! two-shard stream and deletes it at the end. It uses the key `ENVELOPE_KMS_KEY_ARN` names; against
//! an emulator (moto, as CI does: `AWS_ENDPOINT_URL_KMS` and `AWS_ENDPOINT_URL_KINESIS` set) it
//! creates one when none is given (on real AWS a new key is a monthly charge, so it asks for one).
#![allow(clippy::print_stdout)]

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envelope::kinesis::aws_sdk_kinesis;
use envelope::kinesis::{
    ClientCipher, Consumer, ConsumerConfig, Producer, ProducerConfig, Record, RecordEncryptor,
};
use envelope::kms::aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use envelope::kms::aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use envelope::kms::aws_sdk_kms::error::BoxError;
use envelope::kms::{AwsKmsKeyring, aws_config, aws_sdk_kms};
use envelope::{CachingCmm, Client, LocalCache, MaterialsManager};

const RECORDS: usize = 10_000;
const UNCACHED_RECORDS: usize = 1_000;

/// Counts the KMS requests that go on the wire, by operation.
#[derive(Clone, Debug, Default)]
struct KmsCalls {
    generate: Arc<AtomicU64>,
    decrypt: Arc<AtomicU64>,
}

impl Intercept for KmsCalls {
    fn name(&self) -> &'static str {
        "count KMS calls"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("");
        match target.rsplit('.').next() {
            Some("GenerateDataKey") => self.generate.fetch_add(1, Ordering::Relaxed),
            Some("Decrypt") => self.decrypt.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        Ok(())
    }
}

fn record(i: usize) -> Record {
    let body = format!(
        "{{\"order\": {i}, \"items\": [\"widget\", \"gadget\"], \"note\": \"{}\"}}",
        "x".repeat(i % 900)
    );
    Record::new(format!("customer-{}", i % 97), body.into_bytes())
}

fn caching(keyring: AwsKmsKeyring) -> Result<Arc<CachingCmm>, Box<dyn std::error::Error>> {
    Ok(Arc::new(
        CachingCmm::builder(
            keyring,
            LocalCache::new(NonZeroUsize::new(256).ok_or("capacity")?),
        )
        .max_age(Duration::from_secs(300))
        .max_messages(100)
        .build()?,
    ))
}

/// Encrypt and put `count` records; records per second.
async fn produce(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    cmm: Arc<dyn MaterialsManager>,
    count: usize,
) -> Result<f64, Box<dyn std::error::Error>> {
    let cipher = ClientCipher::new(Client::new(), cmm).shared();
    let producer = Producer::new(
        kinesis.clone(),
        RecordEncryptor::new(stream, cipher),
        ProducerConfig::default(),
    )?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        pending.push(producer.send(record(i)).await?);
    }
    producer.close().await?;
    for p in pending {
        p.await?;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let calls = KmsCalls::default();
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&sdk)
            .interceptor(calls.clone())
            .build(),
    );
    let kinesis = aws_sdk_kinesis::Client::new(&sdk);

    let key_arn = match std::env::var("ENVELOPE_KMS_KEY_ARN") {
        Ok(arn) => arn,
        Err(_) if std::env::var_os("AWS_ENDPOINT_URL_KMS").is_some() => {
            let key = kms
                .create_key()
                .description("envelope kinesis example")
                .send()
                .await?;
            key.key_metadata
                .and_then(|m| m.arn)
                .ok_or("CreateKey gave no ARN")?
        }
        Err(_) => {
            return Err(
                "set ENVELOPE_KMS_KEY_ARN (real AWS) or AWS_ENDPOINT_URL_KMS (an emulator)".into(),
            );
        }
    };
    let (stream, created) = match std::env::var("ENVELOPE_KINESIS_STREAM") {
        Ok(stream) => (stream, false),
        Err(_) => {
            let stream = format!("envelope-example-{}", std::process::id());
            kinesis
                .create_stream()
                .stream_name(&stream)
                .shard_count(2)
                .send()
                .await?;
            (stream, true)
        }
    };
    // A new stream takes a moment to become ACTIVE on real Kinesis (moto makes it so at once).
    if created {
        loop {
            let summary = kinesis
                .describe_stream_summary()
                .stream_name(&stream)
                .send()
                .await?;
            if summary
                .stream_description_summary
                .is_some_and(|s| s.stream_status.as_str() == "ACTIVE")
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!("stream {stream}, key {key_arn}");

    // Without a cache: one GenerateDataKey per record.
    let before = calls.generate.load(Ordering::Relaxed);
    let keyring = AwsKmsKeyring::new(&key_arn, kms.clone())?;
    let uncached_rate = produce(&kinesis, &stream, Arc::new(keyring), UNCACHED_RECORDS).await?;
    let uncached = calls.generate.load(Ordering::Relaxed) - before;

    // Through the caching CMM: one GenerateDataKey per 100 records.
    let before = calls.generate.load(Ordering::Relaxed);
    let cmm = caching(AwsKmsKeyring::new(&key_arn, kms.clone())?)?;
    let cached_rate = produce(&kinesis, &stream, cmm.clone(), RECORDS).await?;
    let cached = calls.generate.load(Ordering::Relaxed) - before;
    println!(
        "produced {UNCACHED_RECORDS} records without a cache: {uncached} GenerateDataKey calls, {uncached_rate:.0} records/s"
    );
    println!(
        "produced {RECORDS} records through the caching CMM: {cached} GenerateDataKey calls, {cached_rate:.0} records/s"
    );
    println!(
        "KMS calls per 1,000 records: {:.0} without the cache, {:.1} with it ({:.0} to 1)",
        uncached as f64 * 1000.0 / UNCACHED_RECORDS as f64,
        cached as f64 * 1000.0 / RECORDS as f64,
        (uncached as f64 / UNCACHED_RECORDS as f64) / (cached.max(1) as f64 / RECORDS as f64)
    );
    println!("producer cache: {:?}", cmm.stats());

    // Consume everything from the oldest record; each must name this stream.
    let decrypt_cmm = caching(AwsKmsKeyring::new(&key_arn, kms.clone())?)?;
    let cipher = ClientCipher::new(Client::new(), decrypt_cmm.clone()).shared();
    let mut consumer = Consumer::new(kinesis.clone(), &stream, cipher, ConsumerConfig::default())?;
    let want = RECORDS + UNCACHED_RECORDS;
    let (mut good, mut bad, mut idle) = (0, 0, 0);
    let started = Instant::now();
    let before = calls.decrypt.load(Ordering::Relaxed);
    while good + bad < want && idle < 100 {
        let batch = consumer.poll().await?;
        idle = if batch.is_empty() { idle + 1 } else { 0 };
        for outcome in batch {
            match outcome {
                Ok(_) => good += 1,
                Err(e) => {
                    bad += 1;
                    println!("bad record: {e}");
                }
            }
        }
        if idle > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!(
        "consumed {good} records ({bad} bad) at {:.0} records/s with {} Decrypt calls",
        (good + bad) as f64 / started.elapsed().as_secs_f64(),
        calls.decrypt.load(Ordering::Relaxed) - before
    );
    println!("consumer cache: {:?}", decrypt_cmm.stats());
    if created {
        kinesis.delete_stream().stream_name(&stream).send().await?;
    }
    if good != want {
        return Err(format!("{good} of {want} records decrypted").into());
    }
    println!("kinesis example: ok");
    Ok(())
}
