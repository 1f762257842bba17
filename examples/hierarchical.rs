//! The hierarchical keyring over a DynamoDB branch-key store: create the table and a branch key,
//! encrypt and decrypt many messages with one KMS call per branch key per TTL, rotate the key, and
//! read messages from before the rotation.
//!
//! Against real AWS: set the usual AWS environment (credentials, `AWS_REGION`),
//! `ENVELOPE_KMS_KEY_ARN` to a symmetric key you may use and `ENVELOPE_KEY_STORE_TABLE` to a table
//! name (created if missing), then
//! `cargo run -p envelope --features kms,hierarchy --example hierarchical`.
//!
//! Against an emulator (moto, as CI does): start it, set `AWS_ENDPOINT_URL_KMS` and
//! `AWS_ENDPOINT_URL_DYNAMODB`, a region and any static credentials; without the two variables
//! above the example creates a key and a table there.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use envelope::hierarchy::{HierarchicalKeyring, KeyStore};
use envelope::kms::aws_config::{self, BehaviorVersion};
use envelope::kms::aws_sdk_kms;
use envelope::{Client, EncryptionContext};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let key_arn = match std::env::var("ENVELOPE_KMS_KEY_ARN") {
        Ok(arn) => arn,
        Err(_) if std::env::var_os("AWS_ENDPOINT_URL_KMS").is_some() => {
            let key = aws_sdk_kms::Client::new(&config)
                .create_key()
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
    let table = std::env::var("ENVELOPE_KEY_STORE_TABLE")
        .unwrap_or_else(|_| format!("envelope-example-{}", std::process::id()));

    // Once per table: the table, then one branch key per tenant (or per application).
    let store = KeyStore::new(&config, &table, &key_arn);
    store.create_key_store().await?;
    let tenant = BTreeMap::from([("tenant".to_owned(), "acme".to_owned())]);
    let branch_key_id = match store.create_key(Some("acme"), tenant).await {
        Ok(id) => id,
        Err(envelope::hierarchy::KeyStoreError::AlreadyExists(id)) => id,
        Err(e) => return Err(e.into()),
    };
    println!("branch key {branch_key_id:?} in table {table:?} under {key_arn}");

    // On every host: a keyring that fetches the branch key once per TTL.
    let keyring = HierarchicalKeyring::builder(store.clone())
        .branch_key_id(&branch_key_id)
        .ttl(Duration::from_secs(300))
        .build()?;
    let client = Client::new();
    let mut context = EncryptionContext::new();
    context.insert("tenant", "acme");

    let started = Instant::now();
    let mut messages = Vec::new();
    for i in 0..1_000u32 {
        let record = format!("order {i}");
        let message = client
            .encrypt(&keyring, record.as_bytes())
            .encryption_context(context.clone())
            .await?;
        messages.push(message);
    }
    for message in &messages {
        client.decrypt(&keyring, message.ciphertext()).await?;
    }
    let stats = keyring.cache().stats();
    println!(
        "1,000 messages encrypted and decrypted in {:?} with {} key-store fetches (one KMS Decrypt each)",
        started.elapsed(),
        stats.fetches
    );

    // Rotate: new messages use the new version once a keyring's TTL ends (a new keyring at once);
    // every earlier message still decrypts.
    let version = store.version_key(&branch_key_id).await?;
    let rotated = HierarchicalKeyring::builder(store)
        .branch_key_id(&branch_key_id)
        .ttl(Duration::from_secs(300))
        .build()?;
    let after = client
        .encrypt(&rotated, b"after the rotation")
        .encryption_context(context)
        .await?;
    let before = client.decrypt(&rotated, messages[0].ciphertext()).await?;
    client.decrypt(&keyring, after.ciphertext()).await?;
    assert_eq!(before.plaintext(), b"order 0");
    println!("rotated to version {version}; messages from both versions decrypt: ok");
    Ok(())
}
