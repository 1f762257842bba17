//! Encrypt and decrypt a message with an embedded demo key, then show that tampering is detected.
//!
//! Run with `cargo run --example quickstart`. No cloud account or network is needed.
#![allow(clippy::print_stdout)]

use envelope::blocking::Client;
use envelope::{EncryptionContext, Error, RawAesKeyring, SecretBytes};

/// A fixed demo wrapping key. Real applications load keys from a key manager (or use AWS KMS).
const DEMO_KEY: [u8; 32] = *b"envelope-quickstart-demo-key!!!!";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keyring = RawAesKeyring::new("quickstart", "demo-key", SecretBytes::from_slice(&DEMO_KEY))?;
    let client = Client::new();
    let plaintext =
        b"Hello from Envelope: this message is AES-GCM encrypted under a fresh data key.";
    let context = EncryptionContext::from_iter([("purpose", "quickstart"), ("tenant", "acme")]);

    let message = client
        .encrypt(&keyring, plaintext)
        .encryption_context(context.clone())
        .run()?;
    let header = message.header().body();
    println!(
        "encrypted {} bytes of plaintext into a {}-byte message",
        plaintext.len(),
        message.ciphertext().len()
    );
    println!("  suite:              {}", message.suite());
    println!("  message id:         {:?}", header.message_id());
    println!("  frame length:       {}", header.framing().frame_length());
    for edk in header.encrypted_data_keys() {
        println!(
            "  encrypted data key: provider {:?}, key {:?}, {} bytes",
            edk.provider_id(),
            String::from_utf8_lossy(&edk.provider_info()[..edk.provider_info().len() - 20]),
            edk.ciphertext().len()
        );
    }
    println!("  encryption context: {:?}", message.encryption_context());

    let decrypted = client
        .decrypt(&keyring, message.ciphertext())
        .encryption_context(context)
        .run()?;
    assert_eq!(decrypted.plaintext(), plaintext);
    println!(
        "decrypted and verified: {:?}",
        String::from_utf8_lossy(decrypted.plaintext())
    );

    let mut tampered = message.into_ciphertext();
    let last = tampered.len() - 40;
    tampered[last] ^= 0x01;
    match client.decrypt(&keyring, &tampered).run() {
        Err(Error::AuthenticationFailed) => {
            println!("a message with one flipped bit is rejected: authentication failed")
        }
        other => return Err(format!("tampering was not detected: {other:?}").into()),
    }
    Ok(())
}
