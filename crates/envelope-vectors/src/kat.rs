//! The three JSON known-answer formats: `kat-vectors.json`, the commitment KAT and the decrypt-oracle
//! vectors.

use envelope::{AlgorithmSuite, CommitmentPolicy};
use serde_json::Value;

use crate::describe::KeyDescription;
use crate::error::{Result, tool_error};
use crate::json::{b64, encryption_context, opt_str, str_field};
use crate::test_case::{Bytes, DecryptTest, Expected, inline_b64};

fn hex_field(v: &Value, key: &str) -> Result<Vec<u8>> {
    hex::decode(str_field(v, key)?).map_err(|e| tool_error!("{key}: {e}"))
}

/// `kat/kat-vectors.json`: the deterministic and official-Python messages, raw AES keyring.
pub(crate) fn load_kat_vectors(doc: &Value) -> Result<Vec<DecryptTest>> {
    let keyring = doc
        .get("raw_aes_keyring")
        .ok_or_else(|| tool_error!("no raw_aes_keyring"))?;
    let keys = KeyDescription::RawAes {
        provider_id: str_field(keyring, "key_namespace")?.to_string(),
        key_name: str_field(keyring, "key_name")?.to_string(),
        key: hex_field(keyring, "wrapping_key_hex")?,
    };
    let mut out = Vec::new();
    for set in ["deterministic", "official_python_esdk"] {
        let tests = doc
            .get(set)
            .and_then(Value::as_array)
            .ok_or_else(|| tool_error!("no {set}"))?;
        for (i, t) in tests.iter().enumerate() {
            out.push(DecryptTest {
                id: format!("{set}[{i}] suite {}", str_field(t, "suite_id")?),
                ciphertext: Bytes::Inline(hex_field(t, "message_hex")?),
                keys: keys.clone(),
                expected: Expected::Plaintext(Bytes::Inline(hex_field(t, "plaintext_hex")?)),
                encryption_context: encryption_context(t.get("encryption_context"))?,
                unsigned_only: false,
                policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
            });
        }
    }
    Ok(out)
}

/// The key-commitment known-answer tests: replayed by injecting the published data key, except the
/// two raw-AES ones, which use the raw AES keyring with the all-zero key.
pub(crate) fn load_commitment_kat(doc: &Value) -> Result<Vec<DecryptTest>> {
    let tests = doc
        .get("tests")
        .and_then(Value::as_array)
        .ok_or_else(|| tool_error!("no tests"))?;
    let mut out = Vec::new();
    for (i, t) in tests.iter().enumerate() {
        let keys = if opt_str(t, "keyring-type") == Some("static") {
            KeyDescription::RawAes {
                provider_id: "ProviderName".into(),
                key_name: "KeyId".into(),
                key: vec![0; 32],
            }
        } else {
            KeyDescription::Static {
                data_key: b64(str_field(t, "decrypted-dek")?)?,
            }
        };
        let expected = if t.get("status").and_then(Value::as_bool) == Some(true) {
            let frames = t
                .get("plaintext-frames")
                .and_then(Value::as_array)
                .ok_or_else(|| tool_error!("no plaintext-frames"))?;
            let text: String = frames.iter().filter_map(Value::as_str).collect();
            Expected::Plaintext(Bytes::Inline(text.into_bytes()))
        } else {
            Expected::Error(opt_str(t, "exception").unwrap_or("").to_string())
        };
        out.push(DecryptTest {
            id: format!("commitment[{i}] {}", opt_str(t, "comment").unwrap_or("")),
            ciphertext: inline_b64(str_field(t, "ciphertext")?)?,
            keys,
            expected,
            encryption_context: None,
            unsigned_only: false,
            policy: CommitmentPolicy::RequireEncryptRequireDecrypt,
        });
    }
    Ok(out)
}

/// The Python decrypt-oracle vectors: `null` (all-zero data key) and `test_counting` (data key
/// 1, 2, ... n). The `aws-kms` ones wrap their data keys under a real AWS KMS key and cannot be run.
pub(crate) fn load_decrypt_oracle(doc: &Value) -> Result<Vec<DecryptTest>> {
    let tests = doc.as_array().ok_or_else(|| tool_error!("not a list"))?;
    let mut out = Vec::new();
    for (i, t) in tests.iter().enumerate() {
        let suite_hex = str_field(t, "algorithm-suite")?;
        let suite: AlgorithmSuite = suite_hex.parse().map_err(|e| tool_error!("{e}"))?;
        let key_type = str_field(t, "key-type")?;
        let keys = match key_type {
            "null" => KeyDescription::Static {
                data_key: vec![0; suite.key_len()],
            },
            "test_counting" => KeyDescription::Static {
                data_key: (1..=u8::MAX).take(suite.key_len()).collect(),
            },
            other => KeyDescription::Unsupported(format!(
                "{other} data key (wrapped by a real AWS KMS key; no KMS-free replay exists)"
            )),
        };
        out.push(DecryptTest {
            id: format!("decrypt-oracle[{i}] {key_type} {suite_hex}"),
            ciphertext: inline_b64(str_field(t, "ciphertext")?)?,
            keys,
            expected: Expected::Plaintext(inline_b64(str_field(t, "plaintext")?)?),
            encryption_context: None,
            unsigned_only: false,
            policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
        });
    }
    Ok(out)
}
