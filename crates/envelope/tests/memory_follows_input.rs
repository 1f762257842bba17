//! Defect: a short message whose first frame claimed 60 MiB made the streaming decryptor allocate
//! (and zero) 60 MiB before any body byte arrived. Buffers now grow as bytes arrive.
//!
//! Measured with the process's peak resident set (Linux `VmHWM`), so this file holds one test: the
//! test harness runs no other test in this process while it runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;

use envelope::blocking::Client;
use envelope::{AlgorithmSuite, Error, FormatError, RawAesKeyring, SecretBytes};

/// A frame length (test values are never zero).
fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap()
}

/// Peak resident set of this process in KiB, where the kernel reports it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn memory_follows_the_input_actually_received() {
    let keyring = RawAesKeyring::new("test", "key", SecretBytes::from_slice(&[1; 32])).unwrap();
    let client = Client::new();
    // A first frame of 60 MiB: a message of 400 bytes announces it right after its header.
    let frame = 60 << 20;
    let plaintext = vec![0u8; frame as usize + 1];
    let message = client
        .encrypt(&keyring, &plaintext)
        .suite(AlgorithmSuite::Aes256GcmHkdfSha512CommitKey)
        .frame_length(nz(frame))
        .run()
        .unwrap()
        .into_ciphertext();
    drop(plaintext);
    let short = message[..400].to_vec();
    drop(message);

    let Some(before) = peak_rss_kib() else {
        eprintln!("skipped: /proc/self/status has no VmHWM here");
        return;
    };
    // The peak so far (encrypting 60 MiB) is far above what follows: reset it where the kernel
    // allows (writing 5 to clear_refs resets VmHWM), else compare with the current RSS.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let baseline = if reset {
        peak_rss_kib().unwrap_or(before)
    } else {
        before
    };
    let mut reader = client.decrypt_stream(&keyring, &short[..]).run().unwrap();
    let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
    let err: Error = *err
        .into_inner()
        .and_then(|e| e.downcast::<Error>().ok())
        .expect("an envelope error");
    assert!(
        matches!(err, Error::Format(FormatError::Truncated(_))),
        "{err}"
    );
    let after = peak_rss_kib().unwrap();
    if reset {
        let grown = after.saturating_sub(baseline);
        assert!(
            grown < 8 << 10,
            "reading 400 bytes grew the peak resident set by {grown} KiB"
        );
    } else {
        eprintln!("VmHWM cannot be reset here; checked only that the read failed cleanly");
    }
}
