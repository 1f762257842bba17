//! The hierarchical keyring over the DynamoDB branch-key store, against moto's DynamoDB and KMS on
//! 127.0.0.1 (started by scripts/test.sh): creating and rotating keys, KMS calls per TTL, and
//! faults (DynamoDB throttled or gone, items missing or tampered, KMS refusing). Interop with the
//! Python Material Providers Library is in `python_*` below.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kms_support;

use std::collections::BTreeMap;
use std::time::Duration;

use envelope::hierarchy::aws_sdk_dynamodb::{self, types::AttributeValue};
use envelope::hierarchy::{
    BranchKeyStore, BranchKeyVersion, HierarchicalKeyring, KeyStore, KeyStoreError,
};
use envelope::{Client, EncryptionContext, Error};
use kms_support::{Proxy, create_key, decrypts_to, endpoint, python, run_peer, sdk_config};

const REGION: &str = "us-west-2";

struct Env {
    endpoint: String,
    config: envelope::kms::aws_config::SdkConfig,
    kms_arn: String,
    table: String,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", BranchKeyVersion::random().unwrap())
}

async fn env() -> Option<Env> {
    let endpoint = endpoint()?;
    let config = sdk_config(&endpoint, REGION).await;
    let kms_arn = create_key(&envelope::kms::aws_sdk_kms::Client::new(&config)).await;
    Some(Env {
        endpoint,
        config,
        kms_arn,
        table: unique("branch-keys"),
    })
}

/// [`env`] with its key store table created, and the store.
async fn env_with_store() -> Option<(Env, KeyStore)> {
    let env = env().await?;
    let store = env.store();
    store.create_key_store().await.unwrap();
    Some((env, store))
}

/// [`env`] with its key store table created and one branch key in it.
async fn env_with_key() -> Option<(Env, String)> {
    let (env, store) = env_with_store().await?;
    let id = store.create_key(None, BTreeMap::new()).await.unwrap();
    Some((env, id))
}

impl Env {
    fn store(&self) -> KeyStore {
        KeyStore::new(&self.config, &self.table, &self.kms_arn)
    }

    /// A store whose DynamoDB and KMS traffic go through the proxies given (else to moto).
    async fn store_through(&self, dynamodb: Option<&Proxy>, kms: Option<&Proxy>) -> KeyStore {
        let dynamodb = match dynamodb {
            Some(proxy) => sdk_config(&proxy.url, REGION).await,
            None => self.config.clone(),
        };
        let kms = match kms {
            Some(proxy) => sdk_config(&proxy.url, REGION).await,
            None => self.config.clone(),
        };
        KeyStore::from_clients(
            aws_sdk_dynamodb::Client::new(&dynamodb),
            envelope::kms::aws_sdk_kms::Client::new(&kms),
            &self.table,
            &self.kms_arn,
        )
    }

    fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }
}

fn keyring(store: impl BranchKeyStore + 'static, id: &str) -> HierarchicalKeyring {
    HierarchicalKeyring::builder(store)
        .branch_key_id(id)
        .ttl(Duration::from_secs(300))
        .build()
        .unwrap()
}

fn tenant(name: &str) -> EncryptionContext {
    let mut ec = EncryptionContext::new();
    ec.insert("tenant", name);
    ec
}

/// `plaintext` encrypted with `keyring` for tenant `name`.
async fn encrypt_for(
    envelope: &Client,
    name: &str,
    keyring: &HierarchicalKeyring,
    plaintext: &[u8],
) -> envelope::Encrypted {
    envelope
        .encrypt(keyring, plaintext)
        .encryption_context(tenant(name))
        .await
        .unwrap()
}

fn store_error(error: &Error) -> KeyStoreError {
    let Error::Materials(e) = error else {
        panic!("not a materials error: {error}")
    };
    let e = match e {
        envelope::keyring::Error::DecryptAttemptsFailed { errors, .. } => &errors[0],
        other => other,
    };
    KeyStoreError::of(e)
        .unwrap_or_else(|| panic!("not a key store error: {e}"))
        .clone()
}

/// The service call behind `error`: (service, operation, error code, retryable).
fn service_call(error: &Error) -> (&'static str, &'static str, Option<String>, bool) {
    match store_error(error) {
        KeyStoreError::Service {
            service,
            operation,
            code,
            retryable,
            ..
        } => (service, operation, code, retryable),
        other => panic!("not a service error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_used_and_rotated_and_old_messages_still_decrypt() {
    let Some(env) = env().await else {
        return;
    };
    let store = env.store();
    let arn = store.create_key_store().await.unwrap();
    assert!(arn.contains(&env.table), "{arn}");
    // Creating it again accepts the existing table.
    store.create_key_store().await.unwrap();

    let id = store.create_key(None, BTreeMap::new()).await.unwrap();
    let first = store.get_active_branch_key(&id).await.unwrap();
    assert_eq!(first.id(), id);
    assert_eq!(first.expose_secret().len(), 32);
    let again = store
        .get_branch_key_version(&id, first.version())
        .await
        .unwrap();
    assert_eq!(again.expose_secret(), first.expose_secret());

    const BEFORE: &[u8] = b"written before the rotation";
    const AFTER: &[u8] = b"written after the rotation";
    let envelope = Client::new();
    let before_keyring = keyring(store.clone(), &id);
    let before = encrypt_for(&envelope, "a", &before_keyring, BEFORE).await;

    let second = store.version_key(&id).await.unwrap();
    assert_ne!(second, first.version());
    assert_eq!(
        store.get_active_branch_key(&id).await.unwrap().version(),
        second
    );
    // The old version is still in the store.
    store
        .get_branch_key_version(&id, first.version())
        .await
        .unwrap();

    let after_keyring = keyring(store.clone(), &id);
    let after = encrypt_for(&envelope, "a", &after_keyring, AFTER).await;
    for (keyring, message, plaintext) in [
        (&after_keyring, &before, BEFORE),
        (&before_keyring, &after, AFTER),
    ] {
        decrypts_to(&envelope, keyring, message.ciphertext(), plaintext).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chosen_ids_need_a_context_and_cannot_be_created_twice() {
    let Some((_, store)) = env_with_store().await else {
        return;
    };
    let no_context = store.create_key(Some("tenant-a"), BTreeMap::new()).await;
    assert!(matches!(
        no_context,
        Err(KeyStoreError::InvalidConfiguration(_))
    ));
    let context = BTreeMap::from([("department".to_owned(), "billing".to_owned())]);
    let id = store
        .create_key(Some("tenant-a"), context.clone())
        .await
        .unwrap();
    assert_eq!(id, "tenant-a");
    let key = store.get_active_branch_key("tenant-a").await.unwrap();
    assert_eq!(key.encryption_context(), &context);
    let twice = store.create_key(Some("tenant-a"), context).await;
    assert!(
        matches!(&twice, Err(KeyStoreError::AlreadyExists(id)) if id == "tenant-a"),
        "{twice:?}"
    );
    // The first key is untouched.
    let same = store.get_active_branch_key("tenant-a").await.unwrap();
    assert_eq!(same.version(), key.version());
    assert_eq!(same.expose_secret(), key.expose_secret());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_kms_decrypt_per_branch_key_per_ttl_for_thousands_of_messages() {
    let Some((env, id)) = env_with_key().await else {
        return;
    };
    let kms = Proxy::start(&env.endpoint).await;
    let dynamodb = Proxy::start(&env.endpoint).await;
    let keyring = keyring(env.store_through(Some(&dynamodb), Some(&kms)).await, &id);
    let envelope = Client::new();
    let mut messages = Vec::new();
    for i in 0..2_000u32 {
        let message = encrypt_for(&envelope, "a", &keyring, &i.to_be_bytes()).await;
        messages.push(message);
    }
    for (i, message) in (0..2_000u32).zip(&messages) {
        decrypts_to(&envelope, &keyring, message.ciphertext(), i.to_be_bytes()).await;
    }
    // One active fetch, one version fetch: a KMS Decrypt and a DynamoDB GetItem each.
    assert_eq!(kms.count("Decrypt"), 2);
    assert_eq!(dynamodb.count("GetItem"), 2);
    let stats = keyring.cache().stats();
    assert_eq!((stats.fetches, stats.hits), (2, 3_998));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_throttled_or_gone_is_a_retryable_error_and_nothing_is_cached() {
    let Some((env, id)) = env_with_key().await else {
        return;
    };
    let proxy = Proxy::start(&env.endpoint).await;
    let keyring = keyring(env.store_through(Some(&proxy), None).await, &id);
    let envelope = Client::new();

    proxy.throttle(true);
    let err = envelope.encrypt(&keyring, b"x").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let (service, operation, code, _) = service_call(&err);
    assert_eq!((service, operation), ("dynamodb", "GetItem"));
    assert_eq!(code.as_deref(), Some("ThrottlingException"));
    assert!(keyring.cache().is_empty());

    proxy.throttle(false);
    let message = envelope.encrypt(&keyring, b"x").await.unwrap();
    // Decrypting caches the version entry (the active entry is another one).
    envelope
        .decrypt(&keyring, message.ciphertext())
        .await
        .unwrap();

    proxy.stop().await;
    let cold = self::keyring(env.store_through(Some(&proxy), None).await, &id);
    let err = envelope
        .decrypt(&cold, message.ciphertext())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(service_call(&err).0, "dynamodb");
    assert!(cold.cache().is_empty());
    // The warm keyring needs no DynamoDB at all.
    decrypts_to(&envelope, &keyring, message.ciphertext(), b"x").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_tampered_and_foreign_items_are_typed_errors() {
    let Some((env, store)) = env_with_store().await else {
        return;
    };
    let missing = store.get_active_branch_key("no-such-key").await;
    assert!(
        matches!(&missing, Err(KeyStoreError::NotFound { branch_key_id, version: None }) if branch_key_id == "no-such-key"),
        "{missing:?}"
    );
    let version = BranchKeyVersion::random().unwrap();
    let missing = store.get_branch_key_version("no-such-key", version).await;
    assert!(
        matches!(&missing, Err(KeyStoreError::NotFound { version: Some(v), .. }) if *v == version.to_string()),
        "{missing:?}"
    );

    let id = store.create_key(None, BTreeMap::new()).await.unwrap();
    let active = store.get_active_branch_key(&id).await.unwrap();
    let update = |attribute: &'static str, value: AttributeValue| {
        let dynamodb = env.dynamodb();
        let (table, id) = (env.table.clone(), id.clone());
        async move {
            dynamodb
                .update_item()
                .table_name(table)
                .key("branch-key-id", AttributeValue::S(id))
                .key("type", AttributeValue::S("branch:ACTIVE".into()))
                .update_expression("SET #a = :v")
                .expression_attribute_names("#a", attribute)
                .expression_attribute_values(":v", value)
                .send()
                .await
                .unwrap();
        }
    };

    // Each change to the active item is refused as an invalid item, saying why.
    for (attribute, value, why) in [
        // An attribute changed: KMS refuses the key under the changed context.
        (
            "create-time",
            "2020-01-01T00:00:00.000000Z",
            "InvalidCiphertextException",
        ),
        // Pointing the active item at another KMS key is refused before any KMS call.
        (
            "kms-arn",
            "arn:aws:kms:us-west-2:111122223333:key/other",
            "not this store's",
        ),
        // A malformed attribute type.
        ("hierarchy-version", "1", "hierarchy-version"),
    ] {
        update(attribute, AttributeValue::S(value.into())).await;
        let refused = store.get_active_branch_key(&id).await;
        assert!(
            matches!(&refused, Err(KeyStoreError::InvalidItem { reason, .. }) if reason.contains(why)),
            "{attribute}: {refused:?}"
        );
    }

    // Another logical name is another store: its context differs, KMS refuses.
    let renamed = env.store().with_logical_name("another-name");
    let id2 = env.store().create_key(None, BTreeMap::new()).await.unwrap();
    let refused = renamed.get_active_branch_key(&id2).await;
    assert!(
        matches!(&refused, Err(KeyStoreError::InvalidItem { .. })),
        "{refused:?}"
    );
    let _ = active;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_refusing_or_throttling_is_typed_nothing_is_cached_and_nothing_half_written() {
    let Some((env, id)) = env_with_key().await else {
        return;
    };
    let before = env.store().get_active_branch_key(&id).await.unwrap();
    let proxy = Proxy::start(&env.endpoint).await;
    let store = env.store_through(None, Some(&proxy)).await;

    // Rotation with KMS throttled writes nothing: the active version is unchanged.
    proxy.throttle(true);
    let rotate = store.version_key(&id).await;
    assert!(
        matches!(&rotate, Err(e @ KeyStoreError::Service { service: "kms", .. }) if e.is_retryable()),
        "{rotate:?}"
    );
    let create = store.create_key(None, BTreeMap::new()).await;
    assert!(matches!(&create, Err(e) if e.is_retryable()), "{create:?}");
    proxy.throttle(false);
    let still = env.store().get_active_branch_key(&id).await.unwrap();
    assert_eq!(still.version(), before.version());

    // KMS refusing the decrypt (moto ignores key policies, so the proxy answers as KMS would).
    let refusing = Proxy::start(&env.endpoint).await;
    refusing.deny_decrypt(true);
    let keyring = keyring(env.store_through(None, Some(&refusing)).await, &id);
    let err = Client::new().encrypt(&keyring, b"x").await.unwrap_err();
    let (service, operation, code, retryable) = service_call(&err);
    assert_eq!((service, operation), ("kms", "Decrypt"));
    assert!(code.is_some() && !retryable, "{err}");
    assert!(keyring.cache().is_empty());
    refusing.deny_decrypt(false);
    Client::new().encrypt(&keyring, b"x").await.unwrap();
    assert_eq!(keyring.cache().len(), 1);
}

/// Run interop/hierarchy_peer.py against the emulator; what it printed.
async fn peer(python: &std::path::Path, env: &Env, args: &[&str]) -> String {
    let mut args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    args.extend([
        "--table".into(),
        env.table.clone(),
        "--key-arn".into(),
        env.kms_arn.clone(),
    ]);
    let output = run_peer(python, "hierarchy_peer.py", &env.endpoint, args).await;
    String::from_utf8(output).unwrap().trim().to_owned()
}

/// The peer decrypts every message in `dir` (checking each against its name); how many.
async fn peer_decrypt(
    python: &std::path::Path,
    env: &Env,
    id: &str,
    dir: &std::path::Path,
) -> String {
    peer(
        python,
        env,
        &["decrypt", "--id", id, "--dir", dir.to_str().unwrap()],
    )
    .await
}

/// The peer encrypts 25 messages named `<tag>-<i>` into `dir`.
async fn peer_encrypt(
    python: &std::path::Path,
    env: &Env,
    id: &str,
    dir: &std::path::Path,
    tag: &str,
) {
    let dir = dir.to_str().unwrap();
    peer(
        python,
        env,
        &[
            "encrypt", "--id", id, "--dir", dir, "--count", "25", "--tag", tag,
        ],
    )
    .await;
}

/// Encrypt `count` messages named `<tag>-<i>` into `dir`, as the peer does.
async fn encrypt_into(
    keyring: &HierarchicalKeyring,
    dir: &std::path::Path,
    tag: &str,
    count: usize,
) {
    std::fs::create_dir_all(dir).unwrap();
    let envelope = Client::new();
    for i in 0..count {
        let name = format!("{tag}-{i}");
        let message = encrypt_for(&envelope, tag, keyring, name.as_bytes()).await;
        std::fs::write(dir.join(format!("{name}.ct")), message.ciphertext()).unwrap();
    }
}

/// Decrypt every `*.ct` in `dir` and check it as the peer does; how many.
async fn decrypt_all(keyring: &HierarchicalKeyring, dir: &std::path::Path) -> usize {
    let envelope = Client::new();
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "ct") {
            continue;
        }
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let decrypted = envelope
            .decrypt(keyring, &std::fs::read(&path).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(decrypted.plaintext(), stem.as_bytes());
        let tag = stem.rsplit_once('-').unwrap().0;
        assert_eq!(decrypted.encryption_context().get("tenant"), Some(tag));
        count += 1;
    }
    count
}

fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(unique(&format!("envelope-{test}")));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_creates_the_store_and_key_and_both_sides_read_each_other() {
    let (Some(env), Some(python)) = (env().await, python()) else {
        return;
    };
    let dir = scratch("py-store");
    let id = peer(&python, &env, &["create"]).await;
    peer_encrypt(&python, &env, &id, &dir, "python").await;
    let keyring = keyring(env.store(), &id);
    encrypt_into(&keyring, &dir, "envelope", 25).await;
    assert_eq!(decrypt_all(&keyring, &dir).await, 50);
    assert_eq!(peer_decrypt(&python, &env, &id, &dir).await, "50");

    // Python rotates; messages from before still decrypt on both sides, new ones too.
    peer(&python, &env, &["version", "--id", &id]).await;
    peer_encrypt(&python, &env, &id, &dir, "python2").await;
    encrypt_into(&self::keyring(env.store(), &id), &dir, "envelope2", 25).await;
    assert_eq!(
        decrypt_all(&self::keyring(env.store(), &id), &dir).await,
        100
    );
    assert_eq!(peer_decrypt(&python, &env, &id, &dir).await, "100");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_creates_and_rotates_the_key_and_python_reads_and_writes_with_it() {
    let (Some(env), Some(python)) = (env().await, python()) else {
        return;
    };
    let dir = scratch("rs-store");
    let store = env.store();
    store.create_key_store().await.unwrap();
    let context = BTreeMap::from([("team".to_owned(), "payments".to_owned())]);
    let id = store
        .create_key(Some("payments-key"), context)
        .await
        .unwrap();
    encrypt_into(&keyring(env.store(), &id), &dir, "before", 25).await;
    peer_encrypt(&python, &env, &id, &dir, "pybefore").await;
    store.version_key(&id).await.unwrap();
    encrypt_into(&keyring(env.store(), &id), &dir, "after", 25).await;
    peer_encrypt(&python, &env, &id, &dir, "pyafter").await;
    assert_eq!(peer_decrypt(&python, &env, &id, &dir).await, "100");
    assert_eq!(decrypt_all(&keyring(env.store(), &id), &dir).await, 100);
    std::fs::remove_dir_all(dir).unwrap();
}
