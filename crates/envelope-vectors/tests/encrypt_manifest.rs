//! `encrypt` writes messages and a decrypt manifest that `decrypt` then replays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use envelope_vectors::testing::vectors_or_skip;
use envelope_vectors::{decrypt_file, encrypt_manifest};
use serde_json::json;

#[test]
fn encrypt_then_decrypt_every_kind_of_scenario() {
    let Some(vectors) = vectors_or_skip("encrypt_then_decrypt_every_kind_of_scenario") else {
        return;
    };
    let dir =
        std::env::temp_dir().join(format!("envelope-encrypt-manifest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The canonical keys, with both RSA halves under one key id (as the Dafny keys manifest names
    // them) so that the private entry can also encrypt.
    let keys_path = vectors.join("generated/python-4.0.7/keys.json");
    let mut keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys_path).unwrap()).unwrap();
    for half in ["rsa-4096-private", "rsa-4096-public"] {
        keys["keys"][half]["key-id"] = json!("rsa-4096");
    }
    std::fs::write(dir.join("keys.json"), serde_json::to_vec(&keys).unwrap()).unwrap();
    let aes = |key: &str| json!({"type": "raw", "key": key, "provider-id": "p", "encryption-algorithm": "aes"});
    let rsa = |hash: Option<&str>| match hash {
        None => {
            json!({"type": "raw", "key": "rsa-4096-private", "provider-id": "p", "encryption-algorithm": "rsa", "padding-algorithm": "pkcs1"})
        }
        Some(h) => {
            json!({"type": "raw", "key": "rsa-4096-private", "provider-id": "p", "encryption-algorithm": "rsa", "padding-algorithm": "oaep-mgf1", "padding-hash": h})
        }
    };
    let mut tests = serde_json::Map::new();
    let mut n = 0;
    for suite in ["0014", "0178", "0378", "0478", "0578"] {
        for keys in [
            vec![aes("aes-128")],
            vec![aes("aes-256")],
            vec![rsa(None)],
            vec![rsa(Some("sha1"))],
            vec![rsa(Some("sha512"))],
            vec![aes("aes-256"), rsa(Some("sha256"))],
        ] {
            n += 1;
            tests.insert(
                format!("t{n}"),
                json!({
                    "plaintext": "small", "algorithm": suite, "frame-size": 100,
                    "encryption-context": {"a": "b", "😀": "é"}, "master-keys": keys,
                }),
            );
        }
        // Only the RSA key of a multi-keyring message is handed to the decryptor.
        n += 1;
        let mut undecryptable = aes("aes-256");
        undecryptable["decryptable"] = json!(false);
        tests.insert(
            format!("t{n}"),
            json!({
                "plaintext": "small", "algorithm": suite, "frame-size": 4096,
                "encryption-context": {}, "master-keys": [undecryptable, rsa(Some("sha256"))],
            }),
        );
        n += 1;
        tests.insert(format!("t{n}"), json!({
            "plaintext": "empty", "algorithm": suite, "frame-size": 7, "cmm": "RequiredEncryptionContext",
            "required-encryption-context-keys": ["a"],
            "encryption-context": {"a": "b", "c": "d"}, "master-keys": [aes("aes-256")],
        }));
    }
    tests.insert("non-framed".into(), json!({
        "plaintext": "small", "algorithm": "0478", "frame-size": 0, "encryption-context": {}, "master-keys": [aes("aes-256")],
    }));
    let manifest = json!({
        "manifest": {"type": "awses-encrypt", "version": 1},
        "keys": "file://keys.json",
        "plaintexts": {"small": 1000, "empty": 0},
        "tests": tests,
    });
    let path = dir.join("encrypt-manifest.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();

    let out = dir.join("out");
    let summary = encrypt_manifest(&path, &out).unwrap();
    println!("{summary}");
    assert_eq!(summary.failures, Vec::<String>::new());
    assert_eq!((summary.encrypted, summary.skipped.len()), (n, 1));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        written["manifest"]["version"], 4,
        "a required-EC scenario makes it version 4"
    );
    assert_eq!(
        written["tests"]["t7"]["master-keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let decrypted = decrypt_file(&out.join("manifest.json")).unwrap();
    assert_eq!(decrypted.failures, Vec::<String>::new());
    assert_eq!(
        (decrypted.passed, decrypted.failed, decrypted.skipped),
        (n, 0, 0)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A keys manifest whose RSA private key is marked `"encrypt": true` and has no public entry (as
/// the Python ESDK's test-vector handler writes them): the tool encrypts with the public half taken
/// from it. Marked `"encrypt": false`, the same key still only decrypts.
#[test]
fn a_private_key_marked_for_encryption_encrypts_with_its_public_half() {
    let Some(vectors) = vectors_or_skip("a_private_key_marked_for_encryption_encrypts") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("envelope-rsa-private-{}", std::process::id()));
    let keys_path = vectors.join("generated/python-4.0.7/keys.json");
    let canonical: serde_json::Value =
        serde_json::from_slice(&std::fs::read(keys_path).unwrap()).unwrap();
    let rsa = |padding: &str, hash: Option<&str>| {
        let mut key = json!({"type": "raw", "key": "rsa-4096-private", "provider-id": "p",
            "encryption-algorithm": "rsa", "padding-algorithm": padding});
        if let Some(h) = hash {
            key["padding-hash"] = json!(h);
        }
        key
    };
    for may_encrypt in [true, false] {
        let case = dir.join(format!("encrypt-{may_encrypt}"));
        std::fs::create_dir_all(&case).unwrap();
        let mut keys = canonical.clone();
        let entries = keys["keys"].as_object_mut().unwrap();
        entries.remove("rsa-4096-public");
        entries.get_mut("rsa-4096-private").unwrap()["encrypt"] = json!(may_encrypt);
        std::fs::write(case.join("keys.json"), serde_json::to_vec(&keys).unwrap()).unwrap();
        let manifest = json!({
            "manifest": {"type": "awses-encrypt", "version": 1},
            "keys": "file://keys.json",
            "plaintexts": {"small": 1000},
            "tests": {
                "pkcs1": {"plaintext": "small", "algorithm": "0478", "frame-size": 512,
                    "encryption-context": {"a": "b"}, "master-keys": [rsa("pkcs1", None)]},
                "oaep-sha256": {"plaintext": "small", "algorithm": "0578", "frame-size": 512,
                    "encryption-context": {}, "master-keys": [rsa("oaep-mgf1", Some("sha256"))]},
            },
        });
        let path = case.join("encrypt-manifest.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
        let out = case.join("out");
        let summary = encrypt_manifest(&path, &out).unwrap();
        if may_encrypt {
            assert_eq!(summary.failures, Vec::<String>::new());
            assert_eq!(summary.encrypted, 2);
            let decrypted = decrypt_file(&out.join("manifest.json")).unwrap();
            assert_eq!(
                (decrypted.passed, decrypted.failed, decrypted.skipped),
                (2, 0, 0)
            );
        } else {
            assert_eq!(summary.encrypted, 0);
            assert_eq!(summary.failures.len(), 2, "{:?}", summary.failures);
            for failure in &summary.failures {
                assert!(failure.contains("it has no public key"), "{failure}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
