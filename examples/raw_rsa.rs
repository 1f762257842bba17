//! Encrypt with a raw RSA keyring: anyone with the public key can encrypt, only the holder of the
//! private key can decrypt.
//!
//! Run with `cargo run --example raw_rsa`. The demo key pair is in `examples/data/`.
#![allow(clippy::print_stdout)]

use envelope::blocking::Client;
use envelope::keyring::Error as KeyringError;
use envelope::{EncryptionContext, Error, RawRsaKeyring, RsaPadding};

const PUBLIC_KEY: &str = include_str!("data/demo-rsa-public.pem");
const PRIVATE_KEY: &str = include_str!("data/demo-rsa-private.pem");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::new();

    // The producer only holds the public key.
    let producer = RawRsaKeyring::encrypt_only(
        "acme-upload",
        "rsa-demo-1",
        RsaPadding::OaepSha256,
        PUBLIC_KEY,
    )?;
    let report = b"quarterly report: confidential";
    let message = client
        .encrypt(&producer, report)
        .encryption_context(EncryptionContext::from_iter([("kind", "report")]))
        .run()?;
    let edk = &message.header().body().encrypted_data_keys()[0];
    println!(
        "encrypted with {}; the data key is wrapped for {:?}/{} ({} bytes of RSA ciphertext)",
        message.suite(),
        edk.provider_id(),
        String::from_utf8_lossy(edk.provider_info()),
        edk.ciphertext().len()
    );

    // The producer cannot read what it wrote.
    match client.decrypt(&producer, message.ciphertext()).run() {
        Err(e @ Error::Materials(KeyringError::Unsupported { .. })) => {
            println!("the producer cannot decrypt: {e}")
        }
        other => return Err(format!("unexpected: {other:?}").into()),
    }

    // The consumer holds the private key.
    let consumer = RawRsaKeyring::decrypt_only(
        "acme-upload",
        "rsa-demo-1",
        RsaPadding::OaepSha256,
        PRIVATE_KEY,
    )?;
    let decrypted = client.decrypt(&consumer, message.ciphertext()).run()?;
    assert_eq!(decrypted.plaintext(), report);
    println!(
        "the consumer decrypted: {}",
        String::from_utf8_lossy(decrypted.plaintext())
    );
    Ok(())
}
