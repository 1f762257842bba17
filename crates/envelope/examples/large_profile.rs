//! Profiling driver for large messages: `large_profile (encrypt|decrypt|stream-decrypt) MIB ROUNDS`.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]
use envelope::blocking::Client;
use envelope::{AlgorithmSuite, RawAesKeyring, SecretBytes};
use std::io::Read;
use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let kr = RawAesKeyring::new("p", "k", SecretBytes::from_slice(&[1; 32])).unwrap();
    let background = std::env::var_os("NO_BG").is_none();
    let client = Client::from(
        envelope::Client::builder()
            .signature_hashing(if background {
                envelope::SignatureHashing::Background
            } else {
                envelope::SignatureHashing::Inline
            })
            .build(),
    );
    let pt = vec![0x5au8; mib << 20];
    let suite = if std::env::var_os("SIGNED").is_some() {
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
    } else {
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
    };
    let msg = client
        .encrypt(&kr, &pt)
        .suite(suite)
        .run()
        .unwrap()
        .into_ciphertext();
    let t = Instant::now();
    for _ in 0..rounds {
        match args[1].as_str() {
            "encrypt" => {
                std::hint::black_box(client.encrypt(&kr, &pt).suite(suite).run().unwrap());
            }
            "decrypt" => {
                std::hint::black_box(client.decrypt(&kr, &msg).run().unwrap());
            }
            _ => {
                let mut r = client.decrypt_stream(&kr, &msg[..]).run().unwrap();
                let mut buf = vec![0u8; 64 << 10];
                while r.read(&mut buf).unwrap() > 0 {}
            }
        }
    }
    println!(
        "{:.2} GB/s",
        (rounds * pt.len()) as f64 / t.elapsed().as_secs_f64() / 1e9
    );
}
