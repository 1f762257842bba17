//! Keys manifests (versions 1 to 3).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Result, tool_error};
use crate::json::{b64, opt_str, read_json};

/// Key material from a keys manifest.
#[derive(Clone, Debug)]
pub enum KeyMaterial {
    /// A symmetric AES key.
    Aes(Vec<u8>),
    /// An RSA private key, PEM PKCS#8.
    RsaPrivate(String),
    /// An RSA public key, PEM SPKI.
    RsaPublic(String),
    /// A static branch key of the hierarchical keyring (its key bytes shipped in the manifest).
    StaticBranchKey {
        /// The branch key version (a UUID).
        version: String,
        /// The 32 branch key bytes.
        key: Vec<u8>,
    },
    /// A key this tool cannot use (AWS KMS, ECDH, static branch keys...): its type.
    Other(String),
}

/// One entry of a keys manifest.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key name written into encrypted data keys (`key-id`, or the map name in v1).
    pub key_id: String,
    /// The material.
    pub material: KeyMaterial,
    /// The manifest's `"encrypt"` flag: the key may be used to encrypt.
    pub encrypt: bool,
}

/// All keys of a manifest, by map name.
#[derive(Clone, Debug, Default)]
pub struct Keys(pub BTreeMap<String, Key>);

impl Keys {
    /// Read a keys manifest.
    pub fn load(path: &Path) -> Result<Self> {
        let doc = read_json(path)?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_object)
            .ok_or_else(|| tool_error!("{}: no \"keys\" object", path.display()))?;
        let mut out = BTreeMap::new();
        for (name, entry) in keys {
            let key_id = opt_str(entry, "key-id").unwrap_or(name).to_string();
            let kind = opt_str(entry, "type").unwrap_or("");
            let material_text = match entry.get("material") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(lines)) => {
                    let sep = opt_str(entry, "line-separator").unwrap_or("");
                    let parts: Vec<&str> = lines.iter().filter_map(Value::as_str).collect();
                    Some(parts.join(sep))
                }
                _ => None,
            };
            let algorithm = opt_str(entry, "algorithm").unwrap_or("");
            let material = match (algorithm, kind, material_text) {
                ("aes", "symmetric", Some(m)) => KeyMaterial::Aes(b64(&m)?),
                ("rsa", "private", Some(m)) => KeyMaterial::RsaPrivate(m),
                ("rsa", "public", Some(m)) => KeyMaterial::RsaPublic(m),
                (_, "static-branch-key", _) => KeyMaterial::StaticBranchKey {
                    version: opt_str(entry, "branchKeyVersion")
                        .ok_or_else(|| tool_error!("{name}: no branchKeyVersion"))?
                        .to_string(),
                    key: b64(opt_str(entry, "branchKey")
                        .ok_or_else(|| tool_error!("{name}: no branchKey"))?)?,
                },
                _ => KeyMaterial::Other(kind.to_string()),
            };
            let encrypt = entry.get("encrypt").and_then(Value::as_bool) == Some(true);
            out.insert(
                name.clone(),
                Key {
                    key_id,
                    material,
                    encrypt,
                },
            );
        }
        Ok(Self(out))
    }

    /// The public half of an RSA key pair: the public entry that shares `key_id` with a private
    /// one (as in the Dafny keys manifest, where both halves are `rsa-4096`).
    pub fn rsa_public_for(&self, key_id: &str) -> Option<&str> {
        self.0.values().find_map(|k| match &k.material {
            KeyMaterial::RsaPublic(pem) if k.key_id == key_id => Some(pem.as_str()),
            _ => None,
        })
    }

    /// The key under a map name.
    pub fn get(&self, name: &str) -> Result<&Key> {
        self.0
            .get(name)
            .ok_or_else(|| tool_error!("key {name:?} is not in the keys manifest"))
    }
}
