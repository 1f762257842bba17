//! The KMS keyrings against moto's KMS emulator on 127.0.0.1 (`ENVELOPE_KMS_ENDPOINT`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kms_support;

use std::collections::BTreeSet;
use std::future::IntoFuture;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use envelope::keyring::Error as KeyringError;
use envelope::kms::arn::KmsArn;
use envelope::kms::{
    AwsKmsDiscoveryKeyring, AwsKmsKeyring, AwsKmsMrkDiscoveryKeyring, AwsKmsMrkKeyring,
    ClientSupplier, DefaultClientSupplier, DiscoveryFilter, discovery_multi_keyring,
    mrk_discovery_multi_keyring, mrk_multi_keyring, multi_keyring,
};
use envelope::{
    AlgorithmSuite, CachingCmm, Client, DecryptionMaterials, EncryptionContext, Error, Keyring,
    LocalCache, MultiKeyring, RawAesKeyring, SecretBytes,
};
use kms_support::{Proxy, client, create_key, create_mrk, decrypts_to, endpoint, sdk_config};

const ACCOUNT: &str = "123456789012"; // moto's default account

fn context() -> EncryptionContext {
    EncryptionContext::from([("tenant", "acme"), ("purpose", "kms test")])
}

/// The emulator's endpoint, a us-west-2 client and a new key's ARN, or `None` when the test skips.
async fn key_on_moto() -> Option<(String, envelope::kms::aws_sdk_kms::Client, String)> {
    let endpoint = endpoint()?;
    let kms = client(&endpoint, "us-west-2").await;
    let arn = create_key(&kms).await;
    Some((endpoint, kms, arn))
}

/// `plaintext` encrypted with `cmm` under [`context`].
async fn encrypted(
    client: &Client,
    cmm: &dyn envelope::MaterialsManager,
    plaintext: &[u8],
) -> envelope::Encrypted {
    client
        .encrypt(cmm, plaintext)
        .encryption_context(context())
        .await
        .unwrap()
}

/// Why decrypting `ciphertext` with `cmm` failed, as the keyring error it must be.
async fn decrypt_error(
    client: &Client,
    cmm: &dyn envelope::MaterialsManager,
    ciphertext: &[u8],
) -> KeyringError {
    keyring_error(client.decrypt(cmm, ciphertext).await.unwrap_err())
}

fn keyring_error(error: Error) -> KeyringError {
    match error {
        Error::Materials(e) => e,
        other => panic!("expected a keyring error, got {other:?}"),
    }
}

/// The message's encrypted data keys: (provider id, provider info).
fn edks(message: &envelope::Encrypted) -> Vec<(String, String)> {
    message
        .header()
        .body()
        .encrypted_data_keys()
        .iter()
        .map(|k| {
            (
                k.provider_id().to_owned(),
                String::from_utf8(k.provider_info().to_vec()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_keyring_round_trips_and_binds_the_context() {
    let Some((_, kms, arn)) = key_on_moto().await else {
        return;
    };
    let keyring = AwsKmsKeyring::new(&arn, kms.clone())
        .unwrap()
        .with_grant_tokens(["grant-token-1"]);
    let envelope = Client::new();
    for suite in [
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
    ] {
        let message = envelope
            .encrypt(&keyring, b"kms plaintext")
            .encryption_context(context())
            .suite(suite)
            .await
            .unwrap();
        assert_eq!(edks(&message), [("aws-kms".to_owned(), arn.clone())]);
        let decrypted =
            decrypts_to(&envelope, &keyring, message.ciphertext(), b"kms plaintext").await;
        assert_eq!(decrypted.encryption_context().get("tenant"), Some("acme"));
    }

    // KMS binds the data key to the encryption context: the same data key under another context
    // does not unwrap.
    let message = envelope
        .encrypt(&keyring, b"x")
        .encryption_context(context())
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .await
        .unwrap();
    let mut other = context();
    other.insert("tenant", "mallory");
    let materials = DecryptionMaterials::new(
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        other,
        BTreeSet::new(),
        None,
    )
    .unwrap();
    match keyring
        .on_decrypt(materials, message.header().body().encrypted_data_keys())
        .await
        .unwrap_err()
    {
        KeyringError::DecryptAttemptsFailed { errors, .. } => {
            assert_eq!(errors.len(), 1);
            let KeyringError::Provider(p) = &errors[0] else {
                panic!("{errors:?}")
            };
            assert_eq!(p.provider, "aws-kms");
            assert_eq!(p.key_id.as_deref(), Some(arn.as_str()));
            assert!(p.code.is_some(), "the KMS error code is kept: {p:?}");
            assert!(!p.retryable);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn alias_keyrings_encrypt_but_do_not_decrypt() {
    let Some((_, kms, arn)) = key_on_moto().await else {
        return;
    };
    let alias = format!(
        "alias/envelope-{}",
        KmsArn::parse(&arn).unwrap().resource_id()
    );
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(&arn)
        .send()
        .await
        .unwrap();
    let by_alias = AwsKmsKeyring::new(&alias, kms.clone()).unwrap();
    let envelope = Client::new();
    let message = envelope.encrypt(&by_alias, b"aliased").await.unwrap();
    // The data key is recorded under the key ARN KMS reports, not the alias.
    assert_eq!(edks(&message), [("aws-kms".to_owned(), arn.clone())]);
    let err = decrypt_error(&envelope, &by_alias, message.ciphertext()).await;
    assert!(
        matches!(&err, KeyringError::DecryptAttemptsFailed { errors, .. } if errors.is_empty()),
        "{err:?}"
    );
    let by_arn = AwsKmsKeyring::new(&arn, kms).unwrap();
    decrypts_to(&envelope, &by_arn, message.ciphertext(), b"aliased").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_filters_by_account_and_partition() {
    let Some((_, kms, arn)) = key_on_moto().await else {
        return;
    };
    let envelope = Client::new();
    let strict = AwsKmsKeyring::new(&arn, kms.clone()).unwrap();
    let message = encrypted(&envelope, &strict, b"discover me").await;

    let open = AwsKmsDiscoveryKeyring::new(kms.clone());
    let admitted = AwsKmsDiscoveryKeyring::new(kms.clone())
        .with_filter(DiscoveryFilter::new("aws", ["111111111111", ACCOUNT]).unwrap());
    for keyring in [&open, &admitted] {
        decrypts_to(&envelope, keyring, message.ciphertext(), b"discover me").await;
    }
    for filter in [
        DiscoveryFilter::new("aws", ["111111111111"]).unwrap(),
        DiscoveryFilter::new("aws-cn", [ACCOUNT]).unwrap(),
    ] {
        let excluded = AwsKmsDiscoveryKeyring::new(kms.clone()).with_filter(filter);
        let err = decrypt_error(&envelope, &excluded, message.ciphertext()).await;
        assert!(
            matches!(&err, KeyringError::DecryptAttemptsFailed { errors, .. } if errors.is_empty()),
            "{err:?}"
        );
    }
    assert!(DiscoveryFilter::new("aws", Vec::<String>::new()).is_err());
    assert!(DiscoveryFilter::new("", [ACCOUNT]).is_err());

    // Discovery keyrings name no key, so they cannot encrypt.
    let err = keyring_error(envelope.encrypt(&open, b"x").await.unwrap_err());
    assert!(
        matches!(
            err,
            KeyringError::Unsupported {
                operation: "encrypt",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mrk_keyrings_decrypt_with_a_replica_in_another_region() {
    let Some(endpoint) = endpoint() else {
        return;
    };
    let west = client(&endpoint, "us-west-2").await;
    let east = client(&endpoint, "us-east-1").await;
    let (primary, replica) = create_mrk(&west, "us-east-1").await;
    assert!(primary.contains(":us-west-2:") && replica.contains(":us-east-1:"));
    assert_eq!(
        KmsArn::parse(&primary).unwrap().resource_id(),
        KmsArn::parse(&replica).unwrap().resource_id()
    );
    let envelope = Client::new();
    let on_primary = AwsKmsMrkKeyring::new(&primary, west.clone()).unwrap();
    let message = encrypted(&envelope, &on_primary, b"replicated").await;
    assert_eq!(edks(&message), [("aws-kms".to_owned(), primary.clone())]);

    // The MRK-aware keyring on the replica decrypts; the strict keyring on the replica does not.
    let mrk = AwsKmsMrkKeyring::new(&replica, east.clone()).unwrap();
    decrypts_to(&envelope, &mrk, message.ciphertext(), b"replicated").await;
    let strict = AwsKmsKeyring::new(&replica, east.clone()).unwrap();
    assert!(
        envelope
            .decrypt(&strict, message.ciphertext())
            .await
            .is_err()
    );

    // The MRK discovery keyring in us-east-1 rewrites the ARN to its region.
    let discovery = AwsKmsMrkDiscoveryKeyring::new(east.clone(), "us-east-1")
        .unwrap()
        .with_filter(DiscoveryFilter::new("aws", [ACCOUNT]).unwrap());
    decrypts_to(&envelope, &discovery, message.ciphertext(), b"replicated").await;

    // A single-region key of another region is out of bounds for an MRK discovery keyring.
    let single = create_key(&west).await;
    let message = envelope
        .encrypt(
            &AwsKmsKeyring::new(&single, west.clone()).unwrap(),
            b"west only",
        )
        .await
        .unwrap();
    let err = decrypt_error(&envelope, &discovery, message.ciphertext()).await;
    assert!(
        matches!(&err, KeyringError::DecryptAttemptsFailed { errors, .. } if errors.is_empty()),
        "{err:?}"
    );
    let west_discovery = AwsKmsMrkDiscoveryKeyring::new(west.clone(), "us-west-2").unwrap();
    decrypts_to(
        &envelope,
        &west_discovery,
        message.ciphertext(),
        b"west only",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_keyring_helpers() {
    let Some(endpoint) = endpoint() else {
        return;
    };
    let supplier = DefaultClientSupplier::new(&sdk_config(&endpoint, "us-west-2").await);
    let west = supplier.client(None).unwrap();
    let east = supplier.client(Some("us-east-1")).unwrap();
    let generator = create_key(&west).await;
    let child = create_key(&east).await;
    let (mrk_west, mrk_east) = create_mrk(&west, "us-east-1").await;
    let envelope = Client::new();

    let multi = multi_keyring(&supplier, Some(&generator), [child.as_str()], &[]).unwrap();
    let message = envelope
        .encrypt(&multi, b"two keys")
        .encryption_context(context())
        .await
        .unwrap();
    assert_eq!(
        edks(&message),
        [
            ("aws-kms".to_owned(), generator.clone()),
            ("aws-kms".to_owned(), child.clone())
        ]
    );
    // Each key alone decrypts.
    for arn in [&generator, &child] {
        let single = multi_keyring(&supplier, None, [arn.as_str()], &[]).unwrap();
        decrypts_to(&envelope, &single, message.ciphertext(), b"two keys").await;
    }
    // Discovery over regions, filtered to moto's account.
    let filter = DiscoveryFilter::new("aws", [ACCOUNT]).unwrap();
    let discovery = discovery_multi_keyring(
        &supplier,
        ["us-east-1", "us-west-2"],
        Some(filter.clone()),
        &[],
    )
    .unwrap();
    decrypts_to(&envelope, &discovery, message.ciphertext(), b"two keys").await;

    // MRK helpers: one MRK and a child; decrypt in the replica region by MRK discovery.
    let mrk_multi = mrk_multi_keyring(&supplier, Some(&mrk_west), [child.as_str()], &[]).unwrap();
    let message = envelope.encrypt(&mrk_multi, b"mrk multi").await.unwrap();
    let mrk_discovery =
        mrk_discovery_multi_keyring(&supplier, ["us-east-1"], Some(filter), &[]).unwrap();
    decrypts_to(
        &envelope,
        &mrk_discovery,
        message.ciphertext(),
        b"mrk multi",
    )
    .await;

    // Two replicas of one MRK, or nothing at all, are configuration errors.
    for result in [
        mrk_multi_keyring(&supplier, Some(&mrk_west), [mrk_east.as_str()], &[]),
        multi_keyring(&supplier, Some(&mrk_west), [mrk_east.as_str()], &[]),
        multi_keyring(&supplier, None, [], &[]),
        discovery_multi_keyring(&supplier, [], None, &[]),
        discovery_multi_keyring(&supplier, [""], None, &[]),
        multi_keyring(&supplier, Some("arn:aws:kms:nope"), [], &[]),
    ] {
        assert!(
            matches!(result, Err(KeyringError::InvalidConfiguration(_))),
            "{:?}",
            result.err()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_stopped_kms_and_throttling() {
    let Some((endpoint, _, arn)) = key_on_moto().await else {
        return;
    };
    let proxy = Proxy::start(&endpoint).await;
    let through_proxy = client(&proxy.url, "us-west-2").await;
    let kms_keyring: Arc<dyn Keyring> = Arc::new(AwsKmsKeyring::new(&arn, through_proxy).unwrap());
    let raw: Arc<dyn Keyring> = Arc::new(
        RawAesKeyring::new("test", "fallback", SecretBytes::from_slice(&[7; 32])).unwrap(),
    );
    let multi = MultiKeyring::builder()
        .generator_arc(kms_keyring.clone())
        .child_arc(raw.clone())
        .build()
        .unwrap();
    let envelope = Client::new();
    let message = envelope
        .encrypt(&multi, b"before the outage")
        .await
        .unwrap();
    assert_eq!(proxy.count("GenerateDataKey"), 1);

    // Throttling is reported with its code, as retryable.
    proxy.throttle(true);
    let err = keyring_error(envelope.encrypt(&kms_keyring, b"x").await.unwrap_err());
    let KeyringError::Provider(p) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(p.code.as_deref(), Some("ThrottlingException"));
    assert!(p.retryable && err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("Rate exceeded"), "{err}");
    let err = decrypt_error(&envelope, &kms_keyring, message.ciphertext()).await;
    assert!(err.is_retryable(), "{err:?}");
    proxy.throttle(false);

    // KMS goes away: encryption fails with a clear, retryable error and produces nothing ...
    proxy.stop().await;
    let err = envelope
        .encrypt(&multi, b"during the outage")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("aws-kms") && text.contains("GenerateDataKey failed"),
        "{text}"
    );
    assert!(keyring_error(err).is_retryable());
    // ... a KMS-only decryption fails, listing the attempt ...
    let err = decrypt_error(&envelope, &kms_keyring, message.ciphertext()).await;
    assert!(
        matches!(&err, KeyringError::DecryptAttemptsFailed { errors, .. } if errors.len() == 1 && errors[0].is_retryable()),
        "{err:?}"
    );
    // ... and the multi-keyring still decrypts with its raw AES child.
    decrypts_to(
        &envelope,
        &multi,
        message.ciphertext(),
        b"before the outage",
    )
    .await;
    decrypts_to(&envelope, &raw, message.ciphertext(), b"before the outage").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_cmm_saves_generate_data_key_calls() {
    let Some((endpoint, kms, arn)) = key_on_moto().await else {
        return;
    };
    let proxy = Proxy::start(&endpoint).await;
    let keyring = AwsKmsKeyring::new(&arn, client(&proxy.url, "us-west-2").await).unwrap();
    let cmm = Arc::new(
        CachingCmm::builder(keyring, LocalCache::new(NonZeroUsize::new(16).unwrap()))
            .max_age(Duration::from_secs(600))
            .max_messages(1_000)
            .build()
            .unwrap(),
    );
    let envelope = Client::new();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let (cmm, envelope) = (cmm.clone(), envelope.clone());
        tasks.spawn(async move {
            let mut last = None;
            for i in 0..1_250 {
                let message = envelope
                    .encrypt(&*cmm, format!("record {task}/{i}").as_bytes())
                    .encryption_context(EncryptionContext::from([("stream", "orders")]))
                    .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
                    .await
                    .unwrap();
                last = Some(message);
            }
            last.unwrap()
        });
    }
    let mut last = Vec::new();
    while let Some(message) = tasks.join_next().await {
        last.push(message.unwrap());
    }
    // 10,000 messages / 1,000 per data key; refresh-ahead (on by default) may have fetched the
    // 11th key ahead of the traffic that never came.
    let generated = proxy.count("GenerateDataKey");
    assert!(
        (10..=11).contains(&generated),
        "{generated} GenerateDataKey calls for 10,000 messages at 1,000 per data key"
    );
    assert_eq!(proxy.count("Encrypt"), 0);
    // The messages decrypt with a plain KMS keyring.
    let plain = AwsKmsKeyring::new(&arn, kms).unwrap();
    for message in &last {
        envelope
            .decrypt(&plain, message.ciphertext())
            .await
            .unwrap();
    }
}

/// The blocking API needs no runtime from the caller: KMS calls run on the crate's own.
#[test]
fn blocking_api_without_a_runtime() {
    let Some(endpoint) = endpoint() else {
        return;
    };
    let (kms, arn) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let kms = client(&endpoint, "us-west-2").await;
        let arn = create_key(&kms).await;
        (kms, arn)
    });
    // The runtime that built the client is gone; the keyring still works from plain threads.
    let keyring = Arc::new(AwsKmsKeyring::new(&arn, kms).unwrap());
    let envelope = envelope::blocking::Client::new();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (keyring, envelope) = (keyring.clone(), envelope.clone());
            std::thread::spawn(move || {
                let pt = format!("thread {i}");
                let message = envelope.encrypt(&*keyring, pt.as_bytes()).run().unwrap();
                let decrypted = envelope
                    .decrypt(&*keyring, message.ciphertext())
                    .run()
                    .unwrap();
                assert_eq!(decrypted.plaintext(), pt.as_bytes());
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Another executor entirely.
    let message =
        futures::executor::block_on(Client::new().encrypt(&*keyring, b"futures").into_future())
            .unwrap();
    assert_eq!(edks_len(&message), 1);
}

fn edks_len(message: &envelope::Encrypted) -> usize {
    message.header().body().encrypted_data_keys().len()
}
