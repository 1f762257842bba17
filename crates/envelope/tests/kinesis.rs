//! Encrypted Kinesis records end to end, against moto's Kinesis and KMS on 127.0.0.1 (started by
//! scripts/test.sh): producer and consumer round trips, KMS calls a caching CMM saves, partial
//! `PutRecords` failures, KMS faults and bad records. Interop with the Python ESDK's guidance-shaped
//! producer and consumer is in `python_*` below.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kms_support;

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use envelope::kinesis::aws_sdk_kinesis::{self, primitives::Blob};
use envelope::kinesis::{
    BadRecordReason, ClientCipher, ConsumedRecord, Consumer, ConsumerConfig, Error, MessageCipher,
    Position, Producer, ProducerConfig, Record, RecordEncryptor, SuitePolicy,
};
use envelope::kms::AwsKmsKeyring;
use envelope::{AlgorithmSuite, CachingCmm, Client, EncryptOptions, LocalCache, MaterialsManager};
use kms_support::{Proxy, create_key, endpoint, python, run_peer, sdk_config};
use parking_lot::Mutex;

const REGION: &str = "us-west-2";

struct Env {
    endpoint: String,
    kms: envelope::kms::aws_sdk_kms::Client,
    kinesis: aws_sdk_kinesis::Client,
    arn: String,
}

async fn env() -> Option<Env> {
    let endpoint = endpoint()?;
    let config = sdk_config(&endpoint, REGION).await;
    let kms = envelope::kms::aws_sdk_kms::Client::new(&config);
    let arn = create_key(&kms).await;
    Some(Env {
        kinesis: aws_sdk_kinesis::Client::new(&config),
        endpoint,
        kms,
        arn,
    })
}

/// [`env`] and a new stream of `shards` shards named after `name`.
async fn env_with_stream(name: &str, shards: i32) -> Option<(Env, String)> {
    let env = env().await?;
    let stream = create_stream(&env.kinesis, name, shards).await;
    Some((env, stream))
}

impl Env {
    /// A KMS keyring on the test's key.
    fn keyring(&self) -> Arc<dyn MaterialsManager> {
        Arc::new(AwsKmsKeyring::new(&self.arn, self.kms.clone()).unwrap())
    }

    /// A producer for `stream` encrypting with `cmm` under the default suite.
    fn producer(
        &self,
        stream: &str,
        cmm: Arc<dyn MaterialsManager>,
        config: ProducerConfig,
    ) -> Producer {
        let encryptor = RecordEncryptor::new(stream, cipher(cmm, None));
        Producer::new(self.kinesis.clone(), encryptor, config).unwrap()
    }

    /// A consumer of `stream` decrypting with `cmm`.
    fn consumer(
        &self,
        stream: &str,
        cmm: Arc<dyn MaterialsManager>,
        config: ConsumerConfig,
    ) -> Consumer {
        Consumer::new(self.kinesis.clone(), stream, cipher(cmm, None), config).unwrap()
    }
}

/// A Kinesis client whose calls go through `url` (a proxy).
async fn kinesis_via(url: &str) -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&sdk_config(url, REGION).await)
}

/// A new stream named after `name`, unique to this test run (both backends' runs share one
/// emulator); its name.
async fn create_stream(kinesis: &aws_sdk_kinesis::Client, name: &str, shards: i32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("{name}-{}-{nanos}", std::process::id());
    kinesis
        .create_stream()
        .stream_name(&name)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    name
}

/// The guidance's caching CMM: 300 s, 100 messages per data key, over a KMS keyring; room for
/// 256 entries (a consumer reading shard after shard meets each data key once per shard).
fn caching_cmm(arn: &str, kms: envelope::kms::aws_sdk_kms::Client) -> Arc<dyn MaterialsManager> {
    let keyring = AwsKmsKeyring::new(arn, kms).unwrap();
    Arc::new(
        CachingCmm::builder(keyring, LocalCache::new(NonZeroUsize::new(256).unwrap()))
            .max_age(Duration::from_secs(300))
            .max_messages(100)
            .build()
            .unwrap(),
    )
}

fn cipher(cmm: Arc<dyn MaterialsManager>, suite: Option<AlgorithmSuite>) -> Arc<dyn MessageCipher> {
    let mut options = EncryptOptions::default();
    options.suite = suite;
    ClientCipher::new(Client::new(), cmm)
        .encrypt_options(options)
        .shared()
}

/// Deterministic bytes for record `i`.
fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut state = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Record sizes from 0 B to 900 KiB: mostly small, some tens of KiB, a few 900 KiB.
fn size_of_record(i: usize) -> usize {
    match i {
        0 => 0,
        _ if i % 2000 == 7 => 900 * 1024,
        _ if i % 500 == 3 => 64 * 1024 + i,
        _ => (i * 7919) % 1500,
    }
}

/// Poll until `want` outcomes arrived (or 50 polls in a row bring nothing).
async fn consume(
    consumer: &mut Consumer,
    want: usize,
) -> Vec<Result<ConsumedRecord, envelope::kinesis::BadRecord>> {
    let mut all = Vec::new();
    let mut idle = 0;
    while all.len() < want && idle < 50 {
        let batch = consumer.poll().await.unwrap();
        if batch.is_empty() {
            idle += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else {
            idle = 0;
        }
        all.extend(batch);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_round_trip_with_one_data_key_per_hundred() {
    let Some(env) = env().await else {
        return;
    };
    const RECORDS: usize = 10_000;
    const SHARDS: usize = 4;
    let stream = create_stream(&env.kinesis, "orders-10k", i32::try_from(SHARDS).unwrap()).await;
    let stream = stream.as_str();
    let kms_proxy = Proxy::start(&env.endpoint).await;
    let counted_kms = kms_support::client(&kms_proxy.url, REGION).await;

    // Producer side: its own caching CMM, as a producer host would have.
    let producer_cipher = cipher(
        caching_cmm(&env.arn, counted_kms.clone()),
        Some(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey),
    );
    let producer = Producer::new(
        env.kinesis.clone(),
        RecordEncryptor::new(stream, producer_cipher),
        ProducerConfig::default(),
    )
    .unwrap();
    let mut pending = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let record = Record::new(format!("r{i}"), payload(i, size_of_record(i)));
        pending.push(producer.send(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    let mut put = HashMap::new();
    for (i, pending) in pending.into_iter().enumerate() {
        let outcome = pending.await.unwrap();
        assert_eq!(outcome.attempts, 1);
        put.insert(format!("r{i}"), (outcome.shard_id, outcome.sequence_number));
    }
    producer.close().await.unwrap();
    let generated = kms_proxy.count("GenerateDataKey");
    let bound = RECORDS.div_ceil(100) + SHARDS;
    assert!(
        (RECORDS / 100..=bound).contains(&generated),
        "{generated} GenerateDataKey calls for {RECORDS} records (bound {bound})"
    );

    // Consumer side: another caching CMM, from the oldest record.
    let consumer_cipher = cipher(caching_cmm(&env.arn, counted_kms), None);
    let mut consumer = Consumer::new(
        env.kinesis.clone(),
        stream,
        consumer_cipher,
        ConsumerConfig::default(),
    )
    .unwrap();
    let outcomes = consume(&mut consumer, RECORDS).await;
    assert_eq!(outcomes.len(), RECORDS);
    let mut seen = vec![false; RECORDS];
    for outcome in outcomes {
        let record = outcome.unwrap();
        let i: usize = record.partition_key[1..].parse().unwrap();
        assert!(!seen[i], "record {i} twice");
        seen[i] = true;
        assert_eq!(
            record.plaintext,
            payload(i, size_of_record(i)),
            "record {i}"
        );
        assert_eq!(record.encryption_context.get("stream"), Some(stream));
        assert_eq!(
            put[&record.partition_key],
            (record.shard_id.clone(), record.sequence_number.clone()),
            "record {i} is where the producer said"
        );
    }
    let decrypts = kms_proxy.count("Decrypt");
    assert!(
        decrypts <= generated,
        "{decrypts} Decrypt calls for {generated} data keys: each is decrypted once"
    );
    let shards_used: std::collections::BTreeSet<_> = put.values().map(|(s, _)| s).collect();
    assert_eq!(shards_used.len(), SHARDS);
}

/// Records of each `PutRecords` call by partition key, and which entries of the first call the
/// proxy fails (dropping them before they reach moto, as a partial failure would).
#[derive(Default)]
struct PartialFailure {
    calls: Mutex<Vec<Vec<String>>>,
}

fn fail_entries_of_first_call(
    log: Arc<PartialFailure>,
    fail: &'static [(usize, &'static str)],
) -> kms_support::Rewrite {
    Arc::new(move |operation: &str, body: &mut Vec<u8>| {
        if operation != "PutRecords" {
            return None;
        }
        let mut request: serde_json::Value = serde_json::from_slice(body).unwrap();
        let records = request["Records"].as_array_mut().unwrap();
        let keys = records
            .iter()
            .map(|r| r["PartitionKey"].as_str().unwrap().to_owned())
            .collect();
        let first = {
            let mut calls = log.calls.lock();
            calls.push(keys);
            calls.len() == 1
        };
        if !first {
            return None;
        }
        for (index, _) in fail.iter().rev() {
            records.remove(*index);
        }
        *body = serde_json::to_vec(&request).unwrap();
        Some(Box::new(move |response: &mut Vec<u8>| {
            let mut answer: serde_json::Value = serde_json::from_slice(response).unwrap();
            let results = answer["Records"].as_array_mut().unwrap();
            for (index, code) in fail {
                results.insert(
                    *index,
                    serde_json::json!({"ErrorCode": code, "ErrorMessage": "injected by the test proxy"}),
                );
            }
            answer["FailedRecordCount"] = serde_json::json!(fail.len());
            *response = serde_json::to_vec(&answer).unwrap();
        }))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_failure_retries_only_the_rejected_entries() {
    let Some((env, stream)) = env_with_stream("partial-failure", 2).await else {
        return;
    };
    let stream = stream.as_str();
    const FAIL: &[(usize, &str)] = &[
        (1, "ProvisionedThroughputExceededException"),
        (3, "InternalFailure"),
        (4, "KMSAccessDeniedException"),
    ];
    let log = Arc::new(PartialFailure::default());
    let proxy =
        Proxy::start_rewriting(&env.endpoint, fail_entries_of_first_call(log.clone(), FAIL)).await;
    let keyring = env.keyring();
    let mut config = ProducerConfig::default();
    config.linger = Duration::from_secs(60); // one batch, sent by flush
    config.base_backoff = Duration::from_millis(10);
    let producer = Producer::new(
        kinesis_via(&proxy.url).await,
        RecordEncryptor::new(stream, cipher(keyring.clone(), None)),
        config,
    )
    .unwrap();
    let mut pending = Vec::new();
    for i in 0..6 {
        pending.push(
            producer
                .send(Record::new(format!("p{i}"), payload(i, 100 + i)))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    let mut outcomes = Vec::new();
    for p in pending {
        outcomes.push(p.await);
    }
    let calls = log.calls.lock().clone();
    assert_eq!(
        calls,
        vec![
            (0..6).map(|i| format!("p{i}")).collect::<Vec<_>>(),
            vec!["p1".to_owned(), "p3".to_owned()],
        ],
        "the retry carries exactly the entries rejected with a retryable code"
    );
    for (i, outcome) in outcomes.iter().enumerate() {
        match (i, outcome) {
            (
                4,
                Err(Error::Rejected {
                    code,
                    attempts: 1,
                    retryable: false,
                    ..
                }),
            ) => {
                assert_eq!(code, "KMSAccessDeniedException");
            }
            (1 | 3, Ok(put)) => assert_eq!(put.attempts, 2, "record {i}"),
            (0 | 2 | 5, Ok(put)) => assert_eq!(put.attempts, 1, "record {i}"),
            _ => panic!("record {i}: {outcome:?}"),
        }
    }

    // The stream holds each delivered record once, and not the rejected one.
    let mut consumer = env.consumer(stream, keyring, ConsumerConfig::default());
    let mut got: Vec<String> = consume(&mut consumer, 5)
        .await
        .into_iter()
        .map(|r| r.unwrap().partition_key)
        .collect();
    got.sort();
    assert_eq!(got, ["p0", "p1", "p2", "p3", "p5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_or_unreachable_kms_is_a_retryable_error_and_nothing_is_sent() {
    let Some((env, stream)) = env_with_stream("kms-faults", 1).await else {
        return;
    };
    let stream = stream.as_str();
    let kms_proxy = Proxy::start(&env.endpoint).await;
    let kinesis_proxy = Proxy::start(&env.endpoint).await;
    let cmm = caching_cmm(&env.arn, kms_support::client(&kms_proxy.url, REGION).await);
    let producer = Producer::new(
        kinesis_via(&kinesis_proxy.url).await,
        RecordEncryptor::new(stream, cipher(cmm, None)),
        ProducerConfig::default(),
    )
    .unwrap();

    kms_proxy.throttle(true);
    let throttled = producer
        .send(Record::new("k", b"x".to_vec()))
        .await
        .unwrap_err();
    assert!(matches!(throttled, Error::Encrypt(_)), "{throttled:?}");
    assert!(throttled.is_retryable(), "{throttled}");
    let envelope_error = match &throttled {
        Error::Encrypt(e) => e.downcast_ref::<envelope::Error>().unwrap(),
        _ => unreachable!(),
    };
    assert!(
        envelope_error.to_string().contains("ThrottlingException"),
        "{envelope_error}"
    );

    kms_proxy.stop().await;
    let down = producer
        .send(Record::new("k", b"x".to_vec()))
        .await
        .unwrap_err();
    assert!(
        matches!(down, Error::Encrypt(_)) && down.is_retryable(),
        "{down:?}"
    );

    producer.flush().await.unwrap();
    producer.close().await.unwrap();
    assert_eq!(kinesis_proxy.count("PutRecords"), 0);
    assert!(kms_proxy.count("GenerateDataKey") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_reported_with_their_sequence_numbers_and_do_not_stop_the_others() {
    let Some((env, stream)) = env_with_stream("mixed", 1).await else {
        return;
    };
    let stream = stream.as_str();
    let other_arn = create_key(&env.kms).await;
    let keyring = env.keyring();
    let other_key: Arc<dyn MaterialsManager> =
        Arc::new(AwsKmsKeyring::new(&other_arn, env.kms.clone()).unwrap());
    let unsigned = Some(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey);
    let ours = RecordEncryptor::new(stream, cipher(keyring.clone(), unsigned));
    let seal = |encryptor: &RecordEncryptor, i: usize| {
        let encryptor = encryptor.clone();
        async move {
            encryptor
                .encrypt(Record::new(format!("b{i}"), payload(i, 300)))
                .await
                .unwrap()
                .data()
                .to_vec()
        }
    };
    let good = seal(&ours, 0).await;
    let mut tampered = seal(&ours, 1).await;
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let truncated = seal(&ours, 2).await[..30].to_vec();
    let elsewhere = seal(
        &RecordEncryptor::new("another-stream", cipher(keyring.clone(), unsigned)),
        3,
    )
    .await;
    let signed = seal(
        &RecordEncryptor::new(stream, cipher(keyring.clone(), None)),
        4,
    )
    .await;
    let unknown_key = seal(
        &RecordEncryptor::new(stream, cipher(other_key, unsigned)),
        5,
    )
    .await;
    let also_good = seal(&ours, 6).await;
    let records: Vec<(&str, Vec<u8>)> = vec![
        ("good", good),
        ("not-esdk", b"{\"order\": 1}".to_vec()),
        ("tampered", tampered),
        ("truncated", truncated),
        ("elsewhere", elsewhere),
        ("signed", signed),
        ("unknown-key", unknown_key),
        ("also-good", also_good),
    ];
    let mut sequence = BTreeMap::new();
    for (key, data) in &records {
        let out = env
            .kinesis
            .put_record()
            .stream_name(stream)
            .partition_key(*key)
            .data(Blob::new(data.clone()))
            .send()
            .await
            .unwrap();
        sequence.insert(key.to_string(), out.sequence_number);
    }

    let mut config = ConsumerConfig::default();
    config.suites = SuitePolicy::UnsignedOnly;
    let mut consumer = env.consumer(stream, keyring, config);
    let outcomes = consume(&mut consumer, records.len()).await;
    assert_eq!(outcomes.len(), records.len());
    let mut by_key = HashMap::new();
    for outcome in outcomes {
        let (key, seq) = match &outcome {
            Ok(r) => (r.partition_key.clone(), r.sequence_number.clone()),
            Err(bad) => (bad.partition_key.clone(), bad.sequence_number.clone()),
        };
        assert_eq!(sequence[&key], seq, "{key}");
        by_key.insert(key, outcome);
    }
    assert_eq!(by_key["good"].as_ref().unwrap().plaintext, payload(0, 300));
    assert_eq!(
        by_key["also-good"].as_ref().unwrap().plaintext,
        payload(6, 300)
    );
    let reason = |key: &str| &by_key[key].as_ref().unwrap_err().reason;
    assert!(
        matches!(reason("not-esdk"), BadRecordReason::Malformed(_)),
        "{:?}",
        reason("not-esdk")
    );
    assert!(
        matches!(reason("truncated"), BadRecordReason::Truncated),
        "{:?}",
        reason("truncated")
    );
    assert!(
        matches!(reason("elsewhere"), BadRecordReason::WrongStream { key, found: Some(found) }
            if key == "stream" && found == "another-stream"),
        "{:?}",
        reason("elsewhere")
    );
    assert!(
        matches!(reason("signed"), BadRecordReason::SuiteNotAllowed(s) if s.is_signed()),
        "{:?}",
        reason("signed")
    );
    for key in ["tampered", "unknown-key"] {
        let bad = by_key[key].as_ref().unwrap_err();
        assert!(
            matches!(bad.reason, BadRecordReason::Decrypt(_)),
            "{key}: {bad:?}"
        );
        assert!(!bad.is_retryable(), "{key}: {bad}");
    }
    assert_eq!(
        consumer.positions().values().next(),
        Some(&sequence["also-good"])
    );
}

#[tokio::test]
async fn records_over_the_size_limit_or_with_bad_keys_fail_before_any_key_is_requested() {
    let Some(env) = env().await else {
        return;
    };
    let kms_proxy = Proxy::start(&env.endpoint).await;
    let keyring: Arc<dyn MaterialsManager> = Arc::new(
        AwsKmsKeyring::new(&env.arn, kms_support::client(&kms_proxy.url, REGION).await).unwrap(),
    );
    let encryptor = RecordEncryptor::new("limits", cipher(keyring, None));
    let encrypt = |record| encryptor.encrypt(record);

    let huge = encrypt(Record::new("k", vec![0; 1 << 20]))
        .await
        .unwrap_err();
    assert!(
        matches!(huge, Error::RecordTooLarge { size, max } if size == (1 << 20) + 1 && max == 1 << 20),
        "{huge:?}"
    );
    let empty_key = encrypt(Record::new("", b"x".to_vec())).await.unwrap_err();
    assert!(
        matches!(empty_key, Error::InvalidPartitionKey { chars: 0 }),
        "{empty_key:?}"
    );
    let long_key = encrypt(Record::new("é".repeat(257), b"x".to_vec()))
        .await
        .unwrap_err();
    assert!(
        matches!(long_key, Error::InvalidPartitionKey { chars: 257 }),
        "{long_key:?}"
    );
    let conflict = encrypt(Record::new("k", b"x".to_vec()).context("stream", "elsewhere"))
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, Error::ContextConflict { .. }),
        "{conflict:?}"
    );
    assert_eq!(kms_proxy.count("GenerateDataKey"), 0);

    // Fits as plaintext, not once encrypted: refused after encryption, never sent.
    let small = encryptor.clone().max_record_size(2_000);
    let over = small
        .encrypt(Record::new("k", vec![7; 1_900]))
        .await
        .unwrap_err();
    assert!(
        matches!(over, Error::RecordTooLarge { size, max: 2_000 } if size > 2_000),
        "{over:?}"
    );
    let fits = small
        .encrypt(Record::new("k", vec![7; 1_000]))
        .await
        .unwrap();
    assert!(fits.size() <= 2_000);
    assert_eq!(kms_proxy.count("GenerateDataKey"), 2);
}

/// Run interop/kinesis_peer.py against the emulator; the {partition key: plaintext} it wrote.
/// The environment, a new two-shard stream named after `name`, and the Python peer.
async fn env_with_python(name: &str) -> Option<(Env, String, std::path::PathBuf)> {
    let python = python()?;
    let (env, stream) = env_with_stream(name, 2).await?;
    Some((env, stream, python))
}

async fn peer(
    python: std::path::PathBuf,
    env: &Env,
    command: &str,
    stream: &str,
    count: usize,
) -> HashMap<String, Vec<u8>> {
    use base64::Engine as _;
    let out = std::env::temp_dir().join(format!(
        "envelope-kinesis-{}-{command}-{stream}.json",
        std::process::id()
    ));
    let args = vec![
        command.to_owned(),
        "--stream".into(),
        stream.into(),
        "--key-arn".into(),
        env.arn.clone(),
        "--count".into(),
        count.to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    run_peer(&python, "kinesis_peer.py", &env.endpoint, args).await;
    let written: HashMap<String, String> =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    written
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                base64::engine::general_purpose::STANDARD.decode(v).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_consumer_decrypts_what_an_envelope_producer_wrote() {
    let Some((env, stream, python)) = env_with_python("envelope-to-python").await else {
        return;
    };
    let stream = stream.as_str();
    // The default suite (0x0578, signed) through the guidance's caching CMM.
    let cmm = caching_cmm(&env.arn, env.kms.clone());
    let producer = env.producer(stream, cmm, ProducerConfig::default());
    let mut sent = HashMap::new();
    let mut pending = Vec::new();
    for i in 0..300 {
        let data = payload(i, (i * 613) % 30_000);
        pending.push(
            producer
                .send(Record::new(format!("e{i}"), data.clone()))
                .await
                .unwrap(),
        );
        sent.insert(format!("e{i}"), data);
    }
    producer.close().await.unwrap();
    for p in pending {
        p.await.unwrap();
    }
    let read = peer(python, &env, "consume", stream, sent.len()).await;
    assert_eq!(read.len(), sent.len());
    assert!(read == sent, "Python decrypted different plaintexts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_consumer_decrypts_what_a_python_producer_wrote() {
    let Some((env, stream, python)) = env_with_python("python-to-envelope").await else {
        return;
    };
    let stream = stream.as_str();
    let written = peer(python, &env, "produce", stream, 300).await;
    let cmm = caching_cmm(&env.arn, env.kms.clone());
    let mut consumer = env.consumer(stream, cmm, ConsumerConfig::default());
    let mut read = HashMap::new();
    for outcome in consume(&mut consumer, written.len()).await {
        let record = outcome.unwrap();
        assert_eq!(record.encryption_context.get("stream"), Some(stream));
        read.insert(record.partition_key, record.plaintext);
    }
    assert_eq!(read.len(), written.len());
    assert!(read == written, "Envelope decrypted different plaintexts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_waits_while_the_buffer_is_full_and_resumes_after_a_flush() {
    let Some((env, stream)) = env_with_stream("back-pressure", 1).await else {
        return;
    };
    let stream = stream.as_str();
    let keyring = env.keyring();
    let encryptor = RecordEncryptor::new(stream, cipher(keyring, None)).max_record_size(4096);
    let mut config = ProducerConfig::default();
    config.linger = Duration::from_secs(600); // nothing leaves before a flush
    config.max_buffered_bytes = 8192;
    let producer = Arc::new(Producer::new(env.kinesis.clone(), encryptor, config).unwrap());
    let first = producer
        .send(Record::new("a", vec![1; 3000]))
        .await
        .unwrap();
    let second = producer
        .send(Record::new("b", vec![2; 3000]))
        .await
        .unwrap();
    let buffered = producer.buffered_bytes();
    assert!(buffered > 6000 && buffered <= 8192, "{buffered}");
    // A third record does not fit: send waits rather than buffering past the limit.
    let third = {
        let producer = Arc::clone(&producer);
        tokio::spawn(async move { producer.send(Record::new("c", vec![3; 3000])).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "send returned with the buffer full");
    assert!(producer.buffered_bytes() <= 8192);
    producer.flush().await.unwrap();
    first.await.unwrap();
    second.await.unwrap();
    let third = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("send resumed once the flush made room")
        .unwrap()
        .unwrap();
    producer.flush().await.unwrap();
    assert_eq!(third.await.unwrap().attempts, 1);
    assert_eq!(producer.buffered_bytes(), 0);
}

/// Send records named `names` (their data is their name), flush, and check each was put.
async fn put_all(producer: &Producer, names: &[&str]) {
    let mut pending = Vec::new();
    for name in names {
        pending.push(
            producer
                .send(Record::new(*name, name.as_bytes().to_vec()))
                .await
                .unwrap(),
        );
    }
    producer.flush().await.unwrap();
    for p in pending {
        p.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_start_at_latest_or_resume_after_a_sequence_number() {
    let Some((env, stream)) = env_with_stream("positions", 1).await else {
        return;
    };
    let stream = stream.as_str();
    let keyring = env.keyring();
    let producer = env.producer(stream, keyring.clone(), ProducerConfig::default());
    let keys = |outcomes: Vec<Result<ConsumedRecord, envelope::kinesis::BadRecord>>| {
        outcomes
            .into_iter()
            .map(|r| r.unwrap().partition_key)
            .collect::<Vec<_>>()
    };
    put_all(&producer, &["r0", "r1", "r2"]).await;

    // From the start, read two; a checkpoint; a new consumer resumes after it.
    let mut first = env.consumer(stream, keyring.clone(), ConsumerConfig::default());
    assert_eq!(keys(consume(&mut first, 3).await), ["r0", "r1", "r2"]);
    let mut at_latest = ConsumerConfig::default();
    at_latest.start = Position::Latest;
    let mut latest = env.consumer(stream, keyring.clone(), at_latest);
    assert!(
        latest.poll().await.unwrap().is_empty(),
        "nothing after LATEST yet"
    );

    let checkpoint = first.positions();
    put_all(&producer, &["r3", "r4"]).await;
    assert_eq!(keys(consume(&mut latest, 2).await), ["r3", "r4"]);
    let mut resume = ConsumerConfig::default();
    resume.shard_positions = checkpoint
        .into_iter()
        .map(|(shard, seq)| (shard, Position::AfterSequenceNumber(seq)))
        .collect();
    let mut resumed = env.consumer(stream, keyring, resume);
    assert_eq!(keys(consume(&mut resumed, 2).await), ["r3", "r4"]);
}
