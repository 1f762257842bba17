//! The hierarchical keyring over an in-memory store: round trips, rotation, tampering, failures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // helpers outside #[test] fns

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use envelope_crypto::SecretBytes;
use envelope_format::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};
use envelope_hierarchy::{
    BranchKey, BranchKeyStore, BranchKeyVersion, HierarchicalKeyring, KeyStoreError, StaticKeyStore,
};
use envelope_keyring::{DecryptionMaterials, EncryptionMaterials, Error, Keyring, async_trait};
use futures::executor::block_on;

const SUITE: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;

fn version(n: u8) -> BranchKeyVersion {
    BranchKeyVersion::from_bytes([n; 16])
}

fn branch_key(id: &str, n: u8) -> BranchKey {
    BranchKey::new(id, version(n), SecretBytes::new(vec![n; 32])).unwrap()
}

fn context(pairs: &[(&str, &str)]) -> EncryptionContext {
    let mut ec = EncryptionContext::new();
    for (k, v) in pairs {
        ec.insert(*k, *v);
    }
    ec
}

fn keyring(store: impl BranchKeyStore + 'static, id: &str) -> HierarchicalKeyring {
    HierarchicalKeyring::builder(store)
        .branch_key_id(id)
        .ttl(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Encrypt: the data key and the one encrypted data key made for it.
fn wrap(keyring: &HierarchicalKeyring, ec: &EncryptionContext) -> (Vec<u8>, EncryptedDataKey) {
    let materials = EncryptionMaterials::new(SUITE, ec.clone(), BTreeSet::new(), None).unwrap();
    let materials = block_on(keyring.on_encrypt(materials)).unwrap();
    let data_key = materials.data_key().unwrap().expose_secret().to_vec();
    (data_key, materials.encrypted_data_keys()[0].clone())
}

fn unwrap(
    keyring: &HierarchicalKeyring,
    ec: &EncryptionContext,
    edks: &[EncryptedDataKey],
) -> Result<Vec<u8>, Error> {
    let materials = DecryptionMaterials::new(SUITE, ec.clone(), BTreeSet::new(), None).unwrap();
    block_on(keyring.on_decrypt(materials, edks)).map(|m| m.data_key().expose_secret().to_vec())
}

#[test]
fn a_data_key_round_trips_and_its_edk_has_the_wire_layout() {
    let store = StaticKeyStore::new("s").with(branch_key("bk", 1));
    let keyring = keyring(store, "bk");
    let ec = context(&[("tenant", "a")]);
    let (data_key, edk) = wrap(&keyring, &ec);
    assert_eq!(edk.provider_id(), "aws-kms-hierarchy");
    assert_eq!(edk.provider_info(), b"bk");
    // salt 16, IV 12, version 16, key 32, tag 16
    assert_eq!(edk.ciphertext().len(), 92);
    assert_eq!(&edk.ciphertext()[28..44], version(1).as_bytes());
    assert_eq!(unwrap(&keyring, &ec, &[edk]).unwrap(), data_key);
}

#[test]
fn every_message_gets_its_own_salt_and_iv() {
    let keyring = keyring(StaticKeyStore::new("s").with(branch_key("bk", 1)), "bk");
    let ec = EncryptionContext::new();
    let (_, a) = wrap(&keyring, &ec);
    let (_, b) = wrap(&keyring, &ec);
    assert_ne!(a.ciphertext()[..28], b.ciphertext()[..28]);
}

#[test]
fn the_encryption_context_is_bound_to_the_wrapped_key() {
    let keyring = keyring(StaticKeyStore::new("s").with(branch_key("bk", 1)), "bk");
    let (_, edk) = wrap(&keyring, &context(&[("tenant", "a")]));
    let err = unwrap(&keyring, &context(&[("tenant", "b")]), &[edk]).unwrap_err();
    assert!(
        matches!(&err, Error::DecryptAttemptsFailed { errors, .. } if errors.len() == 1),
        "{err}"
    );
}

#[test]
fn messages_from_before_a_rotation_still_decrypt_and_new_ones_use_the_new_version() {
    let store = Arc::new(StaticKeyStore::new("s").with(branch_key("bk", 1)));
    let before = keyring(store.clone(), "bk");
    let (old_key, old_edk) = wrap(&before, &EncryptionContext::new());
    store.insert(branch_key("bk", 2));
    // A keyring with a cold cache sees the new active version at once.
    let after = keyring(store.clone(), "bk");
    let (new_key, new_edk) = wrap(&after, &EncryptionContext::new());
    assert_eq!(&new_edk.ciphertext()[28..44], version(2).as_bytes());
    let ec = EncryptionContext::new();
    assert_eq!(
        unwrap(&after, &ec, std::slice::from_ref(&old_edk)).unwrap(),
        old_key
    );
    assert_eq!(unwrap(&before, &ec, &[new_edk]).unwrap(), new_key);
    // The warm keyring keeps encrypting under version 1 until its TTL ends.
    let (_, still_old) = wrap(&before, &ec);
    assert_eq!(&still_old.ciphertext()[28..44], version(1).as_bytes());
}

#[test]
fn edks_of_other_providers_or_branch_keys_are_not_its_own() {
    let store = StaticKeyStore::new("s")
        .with(branch_key("bk", 1))
        .with(branch_key("other", 3));
    let ours = keyring(store, "bk");
    let theirs = keyring(
        StaticKeyStore::new("s").with(branch_key("other", 3)),
        "other",
    );
    let (_, edk) = wrap(&theirs, &EncryptionContext::new());
    let err = unwrap(&ours, &EncryptionContext::new(), &[edk]).unwrap_err();
    assert!(matches!(err, Error::NoMatchingDataKey { .. }), "{err}");
    let foreign = EncryptedDataKey::new("aws-kms", b"bk".to_vec(), vec![0; 92]).unwrap();
    let err = unwrap(&ours, &EncryptionContext::new(), &[foreign]).unwrap_err();
    assert!(matches!(err, Error::NoMatchingDataKey { .. }), "{err}");
}

#[test]
fn a_tampered_or_truncated_edk_fails_and_the_next_one_is_tried() {
    let keyring = keyring(StaticKeyStore::new("s").with(branch_key("bk", 1)), "bk");
    let ec = EncryptionContext::new();
    let (data_key, edk) = wrap(&keyring, &ec);
    let mut flipped = edk.ciphertext().to_vec();
    flipped[50] ^= 1;
    let flipped = EncryptedDataKey::new("aws-kms-hierarchy", b"bk".to_vec(), flipped).unwrap();
    let short = EncryptedDataKey::new(
        "aws-kms-hierarchy",
        b"bk".to_vec(),
        edk.ciphertext()[..91].to_vec(),
    )
    .unwrap();
    let err = unwrap(&keyring, &ec, &[flipped.clone(), short.clone()]).unwrap_err();
    assert!(
        matches!(&err, Error::DecryptAttemptsFailed { errors, .. } if errors.len() == 2),
        "{err}"
    );
    assert_eq!(
        unwrap(&keyring, &ec, &[flipped, short, edk]).unwrap(),
        data_key
    );
}

#[test]
fn an_unknown_version_is_a_typed_not_found_error() {
    let keyring = keyring(StaticKeyStore::new("s").with(branch_key("bk", 1)), "bk");
    let (_, edk) = wrap(&keyring, &EncryptionContext::new());
    let mut other = edk.ciphertext().to_vec();
    other[28..44].copy_from_slice(version(9).as_bytes());
    let other = EncryptedDataKey::new("aws-kms-hierarchy", b"bk".to_vec(), other).unwrap();
    let err = unwrap(&keyring, &EncryptionContext::new(), &[other]).unwrap_err();
    let Error::DecryptAttemptsFailed { errors, .. } = &err else {
        panic!("{err}")
    };
    let store_error = KeyStoreError::of(&errors[0]).unwrap();
    assert!(matches!(
        store_error,
        KeyStoreError::NotFound { version: Some(v), .. } if *v == version(9).to_string()
    ));
}

#[test]
fn a_supplier_chooses_the_branch_key_per_tenant() {
    let store = StaticKeyStore::new("s")
        .with(branch_key("key-a", 1))
        .with(branch_key("key-b", 2));
    let keyring = HierarchicalKeyring::builder(store)
        .branch_key_id_supplier(|ec: &EncryptionContext| match ec.get("tenant") {
            Some("a") => Ok("key-a".to_owned()),
            Some("b") => Ok("key-b".to_owned()),
            _ => Err(Error::InvalidConfiguration("unknown tenant".into())),
        })
        .ttl(Duration::from_secs(60))
        .build()
        .unwrap();
    let a = context(&[("tenant", "a")]);
    let b = context(&[("tenant", "b")]);
    let (key_a, edk_a) = wrap(&keyring, &a);
    let (_, edk_b) = wrap(&keyring, &b);
    assert_eq!(edk_a.provider_info(), b"key-a");
    assert_eq!(edk_b.provider_info(), b"key-b");
    assert_eq!(unwrap(&keyring, &a, &[edk_b, edk_a]).unwrap(), key_a);
    let err = unwrap(&keyring, &context(&[("tenant", "c")]), &[]).unwrap_err();
    assert!(matches!(err, Error::InvalidConfiguration(_)));
}

/// A store that counts its calls and can be told to fail.
#[derive(Debug)]
struct Flaky {
    inner: StaticKeyStore,
    calls: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl BranchKeyStore for Flaky {
    fn logical_name(&self) -> &str {
        self.inner.logical_name()
    }

    async fn active_branch_key(&self, id: &str) -> Result<BranchKey, KeyStoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail.load(Ordering::SeqCst) {
            return Err(KeyStoreError::Service {
                service: "dynamodb",
                operation: "GetItem",
                code: Some("ProvisionedThroughputExceededException".into()),
                message: "slow down".into(),
                retryable: true,
                source: None,
            });
        }
        self.inner.active_branch_key(id).await
    }

    async fn branch_key_version(
        &self,
        id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, KeyStoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.branch_key_version(id, version).await
    }
}

#[test]
fn the_cache_calls_the_store_once_per_ttl_and_never_caches_a_failure() {
    let store = Arc::new(Flaky {
        inner: StaticKeyStore::new("s").with(branch_key("bk", 1)),
        calls: AtomicUsize::new(0),
        fail: true.into(),
    });
    let keyring = keyring(store.clone(), "bk");
    let materials =
        EncryptionMaterials::new(SUITE, EncryptionContext::new(), BTreeSet::new(), None).unwrap();
    let err = block_on(keyring.on_encrypt(materials)).unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("ProvisionedThroughputExceededException"),
        "{err}"
    );
    assert!(keyring.cache().is_empty());

    store.fail.store(false, Ordering::SeqCst);
    let ec = EncryptionContext::new();
    let edks: Vec<_> = (0..100).map(|_| wrap(&keyring, &ec).1).collect();
    for edk in &edks {
        unwrap(&keyring, &ec, std::slice::from_ref(edk)).unwrap();
    }
    // One failed call, one active fetch, one version fetch for 200 operations.
    assert_eq!(store.calls.load(Ordering::SeqCst), 3);
}

#[test]
fn keyrings_share_a_cache_only_within_one_partition() {
    let store: Arc<dyn BranchKeyStore> = Arc::new(Flaky {
        inner: StaticKeyStore::new("s").with(branch_key("bk", 1)),
        calls: AtomicUsize::new(0),
        fail: false.into(),
    });
    let cache = envelope_hierarchy::BranchKeyCache::default();
    let build = |partition: &str| {
        HierarchicalKeyring::builder_shared(store.clone())
            .branch_key_id("bk")
            .ttl(Duration::from_secs(60))
            .cache(cache.clone())
            .partition_id(partition)
            .build()
            .unwrap()
    };
    let (a1, a2, b) = (build("a"), build("a"), build("b"));
    let ec = EncryptionContext::new();
    wrap(&a1, &ec);
    wrap(&a2, &ec);
    assert_eq!(cache.stats().fetches, 1, "same partition: one fetch");
    wrap(&b, &ec);
    assert_eq!(
        cache.stats().fetches,
        2,
        "another partition fetches its own"
    );
}

#[test]
fn the_builder_refuses_incomplete_settings() {
    let store = || StaticKeyStore::new("s");
    let no_id = HierarchicalKeyring::builder(store())
        .ttl(Duration::from_secs(1))
        .build();
    assert!(matches!(no_id, Err(Error::InvalidConfiguration(_))));
    let no_ttl = HierarchicalKeyring::builder(store())
        .branch_key_id("bk")
        .build();
    assert!(matches!(no_ttl, Err(Error::InvalidConfiguration(_))));
    let tiny_ttl = HierarchicalKeyring::builder(store())
        .branch_key_id("bk")
        .ttl(Duration::from_millis(999))
        .build();
    assert!(matches!(tiny_ttl, Err(Error::InvalidConfiguration(_))));
    let empty = HierarchicalKeyring::builder(store())
        .branch_key_id("")
        .ttl(Duration::from_secs(1))
        .build();
    assert!(matches!(empty, Err(Error::InvalidConfiguration(_))));
}

/// A store that answers with another branch key than the one asked for.
#[derive(Debug)]
struct Confused(StaticKeyStore);

#[async_trait]
impl BranchKeyStore for Confused {
    fn logical_name(&self) -> &str {
        self.0.logical_name()
    }

    async fn active_branch_key(&self, _id: &str) -> Result<BranchKey, KeyStoreError> {
        self.0.active_branch_key("other").await
    }

    async fn branch_key_version(
        &self,
        _id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, KeyStoreError> {
        self.0.branch_key_version("other", version).await
    }
}

#[test]
fn a_store_answering_with_another_key_is_refused_and_nothing_is_cached() {
    let keyring = keyring(
        Confused(StaticKeyStore::new("s").with(branch_key("other", 1))),
        "bk",
    );
    let materials =
        EncryptionMaterials::new(SUITE, EncryptionContext::new(), BTreeSet::new(), None).unwrap();
    let err = block_on(keyring.on_encrypt(materials)).unwrap_err();
    assert!(
        matches!(
            KeyStoreError::of(&err),
            Some(KeyStoreError::InvalidItem { .. })
        ),
        "{err}"
    );
    assert!(keyring.cache().is_empty());
}
