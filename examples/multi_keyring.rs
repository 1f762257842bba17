//! Wrap each data key under several master keys: a primary AES key for day-to-day use and an RSA
//! escrow key whose private half is kept offline for recovery.
//!
//! Run with `cargo run --example multi_keyring`.
#![allow(clippy::print_stdout)]

use envelope::blocking::Client;
use envelope::{MultiKeyring, RawAesKeyring, RawRsaKeyring, RsaPadding, SecretBytes};

const ESCROW_PUBLIC: &str = include_str!("data/demo-rsa-public.pem");
const ESCROW_PRIVATE: &str = include_str!("data/demo-rsa-private.pem");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let primary_key = SecretBytes::random(32)?;
    let primary = || RawAesKeyring::new("acme", "primary", primary_key.clone());
    let escrow =
        RawRsaKeyring::encrypt_only("acme", "escrow", RsaPadding::OaepSha256, ESCROW_PUBLIC)?;

    // The generator makes the data key; every child wraps it too.
    let keyring = MultiKeyring::builder()
        .generator(primary()?)
        .child(escrow)
        .build()?;
    let client = Client::new();
    let message = client.encrypt(&keyring, b"payroll 2026-11").run()?;
    for edk in message.header().body().encrypted_data_keys() {
        let info = edk.provider_info();
        let name = if edk.provider_id() == "acme" && info.starts_with(b"primary") {
            "primary (AES)"
        } else {
            "escrow (RSA)"
        };
        println!(
            "data key wrapped for {name}: {} bytes",
            edk.ciphertext().len()
        );
    }

    // Day to day: the primary key decrypts.
    let everyday = client.decrypt(&primary()?, message.ciphertext()).run()?;
    println!(
        "primary key decrypts: {}",
        String::from_utf8_lossy(everyday.plaintext())
    );

    // Recovery: the primary key is lost, the escrow private key still opens the message.
    let recovery =
        RawRsaKeyring::decrypt_only("acme", "escrow", RsaPadding::OaepSha256, ESCROW_PRIVATE)?;
    let recovered = client.decrypt(&recovery, message.ciphertext()).run()?;
    assert_eq!(recovered.plaintext(), everyday.plaintext());
    println!(
        "escrow key recovers: {}",
        String::from_utf8_lossy(recovered.plaintext())
    );
    Ok(())
}
