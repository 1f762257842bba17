//! The built `envelope` binary reads `--aes-key` files as the user meant or refuses them, and
//! refuses an encryption context that names a key twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use base64::Engine;

mod support;
use support::{envelope, fails_with, stderr};

/// 16 bytes that are not text, so a file of them is only ever a raw key.
const KEY16: [u8; 16] = [
    0x80, 0x91, 0xa2, 0xb3, 0xc4, 0xd5, 0xe6, 0xf7, 0x08, 0x19, 0x2a, 0x3b, 0x4c, 0x5d, 0x6e, 0xff,
];

/// Encrypt `b"secret"` under the key file `key` read as `format`; decrypt with the raw key
/// file `raw.key` (KEY16 or the given bytes): whether that decrypt worked.
fn same_key_as_raw(dir: &Path, key: &str, format: &str) -> bool {
    let enc = envelope(
        dir,
        &format!("encrypt --aes-key {key} --aes-key-format {format} --key-name k"),
        b"secret",
    );
    assert!(enc.status.success(), "{key} as {format}: {}", stderr(&enc));
    let dec = envelope(dir, "decrypt --aes-key raw.key --key-name k", &enc.stdout);
    if dec.status.success() {
        assert_eq!(dec.stdout, b"secret");
    }
    dec.status.success()
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("raw.key"), KEY16).unwrap();
    dir
}

#[test]
fn key_text_of_a_key_length_is_refused_as_ambiguous_until_the_format_is_named() {
    let dir = setup();
    let hex = hex::encode(KEY16); // 32 characters, no newline: also a 32-byte raw key
    let b64 = base64::engine::general_purpose::STANDARD.encode(KEY16); // 24 characters
    fs::write(dir.path().join("hex.key"), &hex).unwrap();
    fs::write(dir.path().join("b64.key"), &b64).unwrap();
    for (file, len) in [("hex.key", 32), ("b64.key", 24)] {
        let out = envelope(dir.path(), &format!("encrypt --aes-key {file}"), b"secret");
        assert_eq!(out.status.code(), Some(1), "{file}");
        assert!(out.stdout.is_empty(), "{file}: wrote a message");
        assert_eq!(
            stderr(&out),
            format!(
                "envelope: {file}: {len} bytes that are also the hex or Base64 text of a key; \
                 say which with --aes-key-format raw, hex or base64\n"
            )
        );
    }
    // Named, each file is what it says: the text is KEY16, the raw bytes are another key.
    assert!(same_key_as_raw(dir.path(), "hex.key", "hex"));
    assert!(same_key_as_raw(dir.path(), "b64.key", "base64"));
    assert!(!same_key_as_raw(dir.path(), "hex.key", "raw"));
    assert!(!same_key_as_raw(dir.path(), "b64.key", "raw"));
}

#[test]
fn auto_reads_unambiguous_files_by_content() {
    let dir = setup();
    let hex = hex::encode(KEY16) + "\n";
    let b64 = base64::engine::general_purpose::STANDARD.encode(KEY16) + "\n";
    fs::write(dir.path().join("hex.key"), hex).unwrap();
    fs::write(dir.path().join("b64.key"), b64).unwrap();
    assert!(same_key_as_raw(dir.path(), "hex.key", "auto"));
    assert!(same_key_as_raw(dir.path(), "b64.key", "auto"));
    assert!(same_key_as_raw(dir.path(), "raw.key", "auto"));
}

#[test]
fn a_named_format_the_file_does_not_match_is_an_error() {
    let dir = setup();
    fs::write(dir.path().join("hex.key"), hex::encode(KEY16) + "\n").unwrap();
    for (file, format, expected) in [
        (
            "hex.key",
            "raw",
            "a raw key is 16, 24 or 32 bytes; this file has 33",
        ),
        (
            "raw.key",
            "hex",
            "not the hex text of a 16, 24 or 32-byte key",
        ),
        (
            "raw.key",
            "base64",
            "not the Base64 text of a 16, 24 or 32-byte key",
        ),
    ] {
        let out = envelope(
            dir.path(),
            &format!("encrypt --aes-key {file} --aes-key-format {format}"),
            b"secret",
        );
        fails_with(&out, &format!("envelope: {file}: {expected}\n"));
        assert!(out.stdout.is_empty(), "{file} as {format}: wrote a message");
    }
}

#[test]
fn a_context_key_given_twice_is_refused_on_both_sides() {
    let dir = setup();
    for command in ["encrypt", "decrypt"] {
        let out = envelope(
            dir.path(),
            &format!("{command} --aes-key raw.key -c a=1 -c a=2 -o out"),
            b"secret",
        );
        assert_eq!(out.status.code(), Some(1), "{command}");
        assert_eq!(
            stderr(&out),
            "envelope: context key \"a\" is given more than once\n",
            "{command}"
        );
        assert!(!dir.path().join("out").exists(), "{command} wrote out");
    }
}

#[test]
fn an_rsa_key_under_2048_bits_is_refused_as_too_small_naming_the_file() {
    let dir = setup();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../envelope-crypto/tests/data");
    for (flag, pem, kind) in [
        ("--rsa-public-key", "rsa-1024-public.pem", "public"),
        ("--rsa-private-key", "rsa-1024-private.pem", "private"),
    ] {
        fs::copy(data.join(pem), dir.path().join("small.pem")).unwrap();
        let out = envelope(dir.path(), &format!("encrypt {flag} small.pem"), b"secret");
        assert_eq!(out.status.code(), Some(1), "{flag}");
        assert_eq!(
            stderr(&out),
            format!(
                "envelope: small.pem: invalid configuration: RSA {kind} key: invalid key: \
                 an RSA key under 2048 bits: too small to use\n"
            ),
        );
        assert!(out.stdout.is_empty(), "{flag}: wrote a message");
    }
}
