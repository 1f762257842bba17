//! One workload on one Rust implementation, for `run.sh`: prints one JSON line with the work done
//! and the CPU time it took (user + system, from /proc/self/stat).
//!
//! usage: envelope-compare envelope|aws-esdk WORKLOAD [SECONDS]
//! workloads: enc-1k-0478 dec-1k-0478 enc-1k-0578 dec-1k-0578 enc-16m-0478 dec-16m-0478
//!            enc-16m-0578 dec-16m-0578 cache-1k-0478 mem-16m-0578 idle
//!            burst-64 (Envelope: 64 concurrent encrypts on an empty caching CMM whose master key
//!            takes 50 ms a call; the line adds master_key_calls)
//!            hier-1k-0478 hierdec-1k-0478 (the hierarchical keyring over the key store that
//!            `python_peer.py setup` made on the emulator, named by ENVELOPE_COMPARE_KEY_ARN /
//!            _TABLE / _BRANCH_KEY, with a warm branch-key cache)

use std::collections::HashMap;
use std::future::IntoFuture;
use std::time::Instant;

use aws_esdk::client as esdk_client;
use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{AesWrappingAlg, EsdkAlgorithmSuiteId};
use aws_esdk::types::aws_encryption_sdk_config::AwsEncryptionSdkConfig;

type Error = Box<dyn std::error::Error>;

const KEY: [u8; 32] = [0x42; 32];

/// CPU seconds (user + system) used by this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

struct Work {
    size: usize,
    encrypt: bool,
    signed: bool,
}

fn parse(workload: &str) -> Option<Work> {
    let parts: Vec<&str> = workload.split('-').collect();
    let (op, size, suite) = match parts.as_slice() {
        [op, size, suite] => (*op, *size, *suite),
        _ => return None,
    };
    Some(Work {
        size: match size {
            "1k" => 1024,
            "16m" => 16 << 20,
            _ => return None,
        },
        encrypt: op != "dec",
        signed: suite == "0578",
    })
}

/// Run `op` until `seconds` have passed (at least 3 times); returns operations done and the CPU
/// seconds they took.
async fn repeat<F, Fut>(seconds: f64, mut op: F) -> Result<(u64, f64), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let mut n = 0;
    while n < 3 || started.elapsed().as_secs_f64() < seconds {
        op().await?;
        n += 1;
    }
    Ok((n, cpu_seconds() - cpu0))
}

/// Time `encrypt` (when `encrypting`) or `decrypt` with [`repeat`]; returns operations done, the
/// plaintext bytes each handles and the CPU seconds.
async fn time_one_direction<E, EF, D, DF>(
    encrypting: bool,
    size: usize,
    seconds: f64,
    encrypt: E,
    decrypt: D,
) -> Result<(u64, usize, f64), Error>
where
    E: FnMut() -> EF,
    EF: std::future::Future<Output = Result<(), Error>>,
    D: FnMut() -> DF,
    DF: std::future::Future<Output = Result<(), Error>>,
{
    let (n, cpu) = if encrypting {
        repeat(seconds, encrypt).await?
    } else {
        repeat(seconds, decrypt).await?
    };
    Ok((n, size, cpu))
}

async fn envelope_run(workload: &str, seconds: f64) -> Result<(u64, usize, f64), Error> {
    use envelope::{
        AlgorithmSuite, CachingCmm, Client, EncryptionContext, LocalCache, RawAesKeyring,
        SecretBytes,
    };
    let keyring = RawAesKeyring::new("compare", "key", SecretBytes::from_slice(&KEY))?;
    let client = Client::new();
    let context = EncryptionContext::from([("purpose", "compare")]);
    if workload == "idle" {
        return Ok((0, 0, 0.0));
    }
    if workload.starts_with("hier") {
        return hierarchy_run(workload, seconds, &client, &context).await;
    }
    if workload == "cache-1k-0478" {
        let cmm = CachingCmm::builder(
            keyring,
            LocalCache::new(std::num::NonZeroUsize::MIN.saturating_add(99)),
        )
        .max_age(std::time::Duration::from_secs(600))
        .max_messages(1 << 32)
        .build()?;
        let pt = vec![7u8; 1024];
        let (n, cpu) = repeat(seconds, || async {
            client
                .encrypt(&cmm, &pt)
                .encryption_context(context.clone())
                .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
                .await?;
            Ok(())
        })
        .await?;
        return Ok((n, 1024, cpu));
    }
    let work = if let Some(rest) = workload.strip_prefix("mem-") {
        parse(&format!("enc-{rest}")).ok_or("bad workload")?
    } else {
        parse(workload).ok_or("bad workload")?
    };
    let suite = if work.signed {
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
    } else {
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
    };
    let pt = vec![7u8; work.size];
    if workload.starts_with("mem-") {
        let message = client
            .encrypt(&keyring, &pt)
            .encryption_context(context)
            .suite(suite)
            .await?;
        std::hint::black_box(message.ciphertext().len());
        return Ok((1, work.size, 0.0));
    }
    let message = client
        .encrypt(&keyring, &pt)
        .encryption_context(context.clone())
        .suite(suite)
        .await?;
    let encrypt = || async {
        client
            .encrypt(&keyring, &pt)
            .encryption_context(context.clone())
            .suite(suite)
            .await?;
        Ok(())
    };
    let decrypt = || async {
        let d = client.decrypt(&keyring, message.ciphertext()).await?;
        std::hint::black_box(d.plaintext().len());
        Ok(())
    };
    time_one_direction(work.encrypt, work.size, seconds, encrypt, decrypt).await
}

/// The hierarchical keyring on the setup's branch key (TTL 600 s), warmed by one message before
/// the clock starts, as the Python peer does.
async fn hierarchy_run(
    workload: &str,
    seconds: f64,
    client: &envelope::Client,
    context: &envelope::EncryptionContext,
) -> Result<(u64, usize, f64), Error> {
    use envelope::AlgorithmSuite;
    use envelope::hierarchy::{HierarchicalKeyring, KeyStore};
    use envelope::kms::aws_config::{self, BehaviorVersion};
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let store = KeyStore::new(
        &config,
        &var("ENVELOPE_COMPARE_TABLE")?,
        &var("ENVELOPE_COMPARE_KEY_ARN")?,
    );
    let keyring = HierarchicalKeyring::builder(store)
        .branch_key_id(var("ENVELOPE_COMPARE_BRANCH_KEY")?)
        .ttl(std::time::Duration::from_secs(600))
        .build()?;
    let pt = vec![7u8; 1024];
    let encrypt = || {
        client
            .encrypt(&keyring, &pt)
            .encryption_context(context.clone())
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
            .into_future()
    };
    let message = encrypt().await?;
    let encrypting = !workload.starts_with("hierdec");
    if !encrypting {
        client.decrypt(&keyring, message.ciphertext()).await?;
    }
    let decrypt = || async {
        let d = client.decrypt(&keyring, message.ciphertext()).await?;
        std::hint::black_box(d.plaintext().len());
        Ok(())
    };
    let encrypt = || async {
        encrypt().await?;
        Ok(())
    };
    time_one_direction(encrypting, 1024, seconds, encrypt, decrypt).await
}

async fn esdk_run(workload: &str, seconds: f64) -> Result<(u64, usize, f64), Error> {
    let esdk = esdk_client::Client::from_conf(AwsEncryptionSdkConfig::builder().build()?)?;
    let mpl = mpl_client::Client::from_conf(MaterialProvidersConfig::builder().build()?)?;
    let keyring = mpl
        .create_raw_aes_keyring()
        .key_name("key")
        .key_namespace("compare")
        .wrapping_key(KEY.to_vec())
        .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
        .send()
        .await?;
    let context = HashMap::from([("purpose".to_string(), "compare".to_string())]);
    if workload == "idle" {
        return Ok((0, 0, 0.0));
    }
    if workload == "cache-1k-0478" {
        return Err("aws-esdk has no caching CMM".into());
    }
    if workload.starts_with("hier") {
        return esdk_hierarchy_run(workload, seconds, &esdk, &mpl, &context).await;
    }
    let work = if let Some(rest) = workload.strip_prefix("mem-") {
        parse(&format!("enc-{rest}")).ok_or("bad workload")?
    } else {
        parse(workload).ok_or("bad workload")?
    };
    let suite = if work.signed {
        EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKeyEcdsaP384
    } else {
        EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKey
    };
    let pt = vec![7u8; work.size];
    let encrypt = || {
        esdk.encrypt()
            .plaintext(pt.clone())
            .keyring(keyring.clone())
            .encryption_context(context.clone())
            .algorithm_suite_id(suite.clone())
            .frame_length(i64::from(envelope::DEFAULT_FRAME.get()))
            .send()
    };
    if workload.starts_with("mem-") {
        let out = encrypt().await?;
        std::hint::black_box(out.ciphertext.map(|c| c.as_ref().len()));
        return Ok((1, work.size, 0.0));
    }
    let ciphertext = encrypt().await?.ciphertext.ok_or("no ciphertext")?;
    let encrypt = || async {
        encrypt().await?;
        Ok(())
    };
    let decrypt = || async {
        let d = esdk
            .decrypt()
            .ciphertext(ciphertext.clone())
            .keyring(keyring.clone())
            .encryption_context(context.clone())
            .send()
            .await?;
        std::hint::black_box(d.plaintext.map(|p| p.as_ref().len()));
        Ok(())
    };
    time_one_direction(work.encrypt, work.size, seconds, encrypt, decrypt).await
}

/// aws-esdk's hierarchical keyring on the setup's branch key (TTL 600 s), warmed the same way.
async fn esdk_hierarchy_run(
    workload: &str,
    seconds: f64,
    esdk: &esdk_client::Client,
    mpl: &mpl_client::Client,
    context: &HashMap<String, String>,
) -> Result<(u64, usize, f64), Error> {
    use aws_esdk::key_store::client as keystore_client;
    use aws_esdk::key_store::types::KmsConfiguration;
    use aws_esdk::key_store::types::key_store_config::KeyStoreConfig;
    use envelope::hierarchy::aws_sdk_dynamodb;
    use envelope::kms::aws_config::{self, BehaviorVersion};
    use envelope::kms::aws_sdk_kms;
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    let table = var("ENVELOPE_COMPARE_TABLE")?;
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let store = keystore_client::Client::from_conf(
        KeyStoreConfig::builder()
            .kms_client(aws_sdk_kms::Client::new(&config))
            .ddb_client(aws_sdk_dynamodb::Client::new(&config))
            .ddb_table_name(table.clone())
            .logical_key_store_name(table)
            .kms_configuration(KmsConfiguration::KmsKeyArn(var(
                "ENVELOPE_COMPARE_KEY_ARN",
            )?))
            .build()?,
    )?;
    let keyring = mpl
        .create_aws_kms_hierarchical_keyring()
        .key_store(store)
        .branch_key_id(var("ENVELOPE_COMPARE_BRANCH_KEY")?)
        .ttl_seconds(600)
        .send()
        .await?;
    let pt = vec![7u8; 1024];
    let encrypt = || {
        esdk.encrypt()
            .plaintext(pt.clone())
            .keyring(keyring.clone())
            .encryption_context(context.clone())
            .algorithm_suite_id(EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKey)
            .frame_length(i64::from(envelope::DEFAULT_FRAME.get()))
            .send()
    };
    let ciphertext = encrypt().await?.ciphertext.ok_or("no ciphertext")?;
    let decrypt = || {
        esdk.decrypt()
            .ciphertext(ciphertext.clone())
            .keyring(keyring.clone())
            .encryption_context(context.clone())
            .send()
    };
    let encrypting = !workload.starts_with("hierdec");
    if !encrypting {
        decrypt().await?;
    }
    let decrypt = || async {
        let d = decrypt().await?;
        std::hint::black_box(d.plaintext.map(|p| p.as_ref().len()));
        Ok(())
    };
    let encrypt = || async {
        encrypt().await?;
        Ok(())
    };
    time_one_direction(encrypting, 1024, seconds, encrypt, decrypt).await
}

/// A master key that takes 50 ms a call and counts its calls.
struct SlowKey {
    inner: envelope::RawAesKeyring,
    calls: std::sync::atomic::AtomicU64,
}

impl SlowKey {
    async fn call(&self) {
        self.calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[envelope::async_trait]
impl envelope::Keyring for SlowKey {
    async fn on_encrypt(
        &self,
        materials: envelope::EncryptionMaterials,
    ) -> Result<envelope::EncryptionMaterials, envelope::keyring::Error> {
        self.call().await;
        self.inner.on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: envelope::DecryptionMaterials,
        encrypted_data_keys: &[envelope::EncryptedDataKey],
    ) -> Result<envelope::CompleteDecryptionMaterials, envelope::keyring::Error> {
        self.call().await;
        self.inner.on_decrypt(materials, encrypted_data_keys).await
    }
}

/// burst-64: 64 concurrent encrypts on an empty cache, the master key taking 50 ms a call; returns
/// the work done, its CPU seconds and the master-key calls made (the caching CMM coalesces
/// concurrent misses). Refresh-ahead is off, as the other SDKs have none: at the burst's rate of
/// use the default (`Auto`) may start one more call in the background, which no request waits on.
async fn burst() -> Result<(u64, usize, f64, u64), Error> {
    use envelope::{
        AlgorithmSuite, CachingCmm, Client, EncryptionContext, LocalCache, RawAesKeyring,
        SecretBytes,
    };
    let client = Client::new();
    let context = EncryptionContext::from([("purpose", "compare")]);
    let key = std::sync::Arc::new(SlowKey {
        inner: RawAesKeyring::new("compare", "key", SecretBytes::from_slice(&KEY))?,
        calls: std::sync::atomic::AtomicU64::new(0),
    });
    let cmm = CachingCmm::builder(
        key.clone(),
        LocalCache::new(std::num::NonZeroUsize::MIN.saturating_add(99)),
    )
    .max_age(std::time::Duration::from_secs(600))
    .max_messages(1000)
    .refresh_ahead(envelope::cache::RefreshAhead::Off)
    .build()?;
    let pt = vec![7u8; 1024];
    let cpu0 = cpu_seconds();
    let encrypts = (0..64).map(|_| async {
        client
            .encrypt(&cmm, &pt)
            .encryption_context(context.clone())
            .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
            .await
    });
    for result in futures::future::join_all(encrypts).await {
        result?;
    }
    let cpu = cpu_seconds() - cpu0;
    let calls = key.calls.load(std::sync::atomic::Ordering::Relaxed);
    Ok((64, 1024, cpu, calls))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (peer, workload) = match args.as_slice() {
        [p, w, ..] => (p.as_str(), w.as_str()),
        _ => return Err("usage: envelope-compare envelope|aws-esdk WORKLOAD [SECONDS]".into()),
    };
    let seconds: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let wall = Instant::now();
    let mut master_key_calls = None;
    let (ops, size, cpu) = match (peer, workload) {
        ("envelope", "burst-64") => {
            let (ops, size, cpu, calls) = burst().await?;
            master_key_calls = Some(calls);
            (ops, size, cpu)
        }
        ("envelope", _) => envelope_run(workload, seconds).await?,
        ("aws-esdk", _) => esdk_run(workload, seconds).await?,
        (other, _) => return Err(format!("unknown peer {other}").into()),
    };
    let mut line = serde_json::json!({
        "peer": peer, "workload": workload, "ops": ops, "bytes_per_op": size,
        "cpu_s": cpu, "wall_s": wall.elapsed().as_secs_f64(),
    });
    if let Some(calls) = master_key_calls {
        line["master_key_calls"] = calls.into();
    }
    println!("{line}");
    Ok(())
}
