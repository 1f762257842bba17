//! Cache ids equal the Python ESDK's byte for byte: the known answers in kat-vectors.json and, when
//! given (`ENVELOPE_CACHE_ID_CASES`, written by `interop/esdk_runner.py cache-ids`), fresh cases
//! computed by the Python ESDK itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use envelope_cache::id::{decryption_id, encryption_id, partition_hash};
use envelope_format::{AlgorithmSuite, EncryptedDataKey, EncryptionContext};
use serde_json::Value;

#[allow(clippy::print_stderr)] // why the test skips
fn vectors() -> Option<PathBuf> {
    let dir = std::env::var_os("ENVELOPE_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("ENVELOPE_REQUIRE_VECTORS").is_none(),
        "vectors required but not found"
    );
    eprintln!("skipped: shared vectors not found");
    None
}

fn ec(v: &Value) -> EncryptionContext {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn edks(v: &Value) -> Vec<EncryptedDataKey> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let e = e.as_array().unwrap();
            EncryptedDataKey::new(
                e[0].as_str().unwrap(),
                hex::decode(e[1].as_str().unwrap()).unwrap(),
                hex::decode(e[2].as_str().unwrap()).unwrap(),
            )
            .unwrap()
        })
        .collect()
}

/// The answers of `case` under keys `{prefix}{suite id in hex}_sha512_hex`.
fn by_suite<'a>(
    case: &'a Value,
    prefix: &'a str,
) -> impl Iterator<Item = (AlgorithmSuite, &'a str)> + 'a {
    case.as_object()
        .unwrap()
        .iter()
        .filter_map(move |(key, value)| {
            let suite_hex = key.strip_prefix(prefix)?.strip_suffix("_sha512_hex")?;
            let suite =
                AlgorithmSuite::from_id(u16::from_str_radix(suite_hex, 16).unwrap()).unwrap();
            Some((suite, value.as_str().unwrap()))
        })
}

fn check_case(case: &Value) -> usize {
    let p = partition_hash(case["partition_id"].as_str().unwrap());
    let ec = ec(&case["encryption_context"]);
    let mut checked = 0;
    if let Some(expected) = case
        .get("encrypt_no_suite_sha512_hex")
        .and_then(Value::as_str)
    {
        assert_eq!(
            hex::encode(encryption_id(&p, None, &ec).unwrap().as_bytes()),
            expected
        );
        checked += 1;
    }
    for (suite, expected) in by_suite(case, "encrypt_suite_") {
        let id = encryption_id(&p, Some(suite), &ec).unwrap();
        assert_eq!(hex::encode(id.as_bytes()), expected);
        checked += 1;
    }
    for (suite, expected) in by_suite(case, "decrypt_suite_") {
        let id = decryption_id(&p, suite, &edks(&case["decrypt_edks"]), &ec).unwrap();
        assert_eq!(hex::encode(id.as_bytes()), expected);
        checked += 1;
    }
    checked
}

#[test]
fn known_answers() {
    let Some(dir) = vectors() else { return };
    let kat: Value =
        serde_json::from_slice(&std::fs::read(dir.join("kat/kat-vectors.json")).unwrap()).unwrap();
    let cases = kat["cache_ids"].as_array().unwrap();
    let checked: usize = cases.iter().map(check_case).sum();
    assert_eq!(
        checked, 6,
        "two contexts x (no suite, suite 0178, decrypt 0378)"
    );
}

#[test]
fn fresh_python_cases() {
    let Some(path) = std::env::var_os("ENVELOPE_CACHE_ID_CASES") else {
        eprintln!("skipped: ENVELOPE_CACHE_ID_CASES not set (scripts/interop.sh sets it)");
        return;
    };
    let cases: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let checked: usize = cases.as_array().unwrap().iter().map(check_case).sum();
    println!("{checked} cache ids equal the Python ESDK's");
    assert!(checked >= 100, "{checked}");
}
