//! Encrypt with a raw AES keyring: a 256-bit wrapping key you manage yourself.
//!
//! Shows the encryption context (authenticated, stored in the message, checked on decrypt) and what
//! happens with the wrong key or the wrong context. Run with `cargo run --example raw_aes`.
#![allow(clippy::print_stdout)]

use envelope::blocking::Client;
use envelope::keyring::Error as KeyringError;
use envelope::{AlgorithmSuite, EncryptionContext, Error, RawAesKeyring, SecretBytes};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In production the wrapping key comes from your key store; here it is random.
    let wrapping_key = SecretBytes::random(32)?;
    let keyring = RawAesKeyring::new("acme-billing", "invoice-key-2026-11", wrapping_key)?;
    let client = Client::new();

    let context = EncryptionContext::from_iter([("tenant", "acme"), ("document", "invoice-1234")]);
    let invoice = b"Invoice 1234: 3 x widget, EUR 99.00";
    let message = client
        .encrypt(&keyring, invoice)
        .encryption_context(context.clone())
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey) // unsigned: smaller, faster
        .frame_length(envelope::DEFAULT_FRAME) // 4096 bytes
        .run()?;
    println!(
        "encrypted {} bytes into {} with {}",
        invoice.len(),
        message.ciphertext().len(),
        message.suite()
    );

    // Decrypt, checking that the message carries the context we expect.
    let decrypted = client
        .decrypt(&keyring, message.ciphertext())
        .encryption_context(context)
        .run()?;
    assert_eq!(decrypted.plaintext(), invoice);
    println!(
        "decrypted: {}",
        String::from_utf8_lossy(decrypted.plaintext())
    );

    // Another tenant's context is refused before any key is used.
    let other = EncryptionContext::from_iter([("tenant", "globex")]);
    match client
        .decrypt(&keyring, message.ciphertext())
        .encryption_context(other)
        .run()
    {
        Err(Error::Materials(KeyringError::ReproducedContextMismatch(key))) => {
            println!("wrong context rejected (key {key:?} differs)")
        }
        other => return Err(format!("unexpected: {other:?}").into()),
    }

    // A different key with the same name cannot unwrap the data key.
    let impostor = RawAesKeyring::new(
        "acme-billing",
        "invoice-key-2026-11",
        SecretBytes::random(32)?,
    )?;
    match client.decrypt(&impostor, message.ciphertext()).run() {
        Err(e @ Error::Materials(KeyringError::UnwrapFailed { .. })) => {
            println!("wrong key rejected: {e}")
        }
        other => return Err(format!("unexpected: {other:?}").into()),
    }
    Ok(())
}
