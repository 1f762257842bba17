//! Key descriptions (manifest `master-keys` lists and v5 `decryptKeyDescription` trees) and the
//! keyrings and CMMs they become.

use std::sync::Arc;

use envelope::crypto::rsa::RsaPrivateKey;
use envelope::{
    Keyring, MaterialsManager, MultiKeyring, RawAesKeyring, RawRsaKeyring,
    RequiredEncryptionContextCmm, RsaPadding, SecretBytes,
};
use serde_json::Value;

use crate::error::{Result, tool_error};
use crate::json::{opt_str, str_field};
use crate::keys::{KeyMaterial, Keys};

/// A raw RSA keyring as a manifest describes it.
#[derive(Clone, Debug)]
pub struct RawRsaSpec {
    /// Provider id (namespace).
    pub provider_id: String,
    /// Key name.
    pub key_name: String,
    /// Padding.
    pub padding: RsaPadding,
    /// PEM private key, if any.
    pub private_pem: Option<String>,
    /// PEM public key, if any.
    pub public_pem: Option<String>,
    /// The keys manifest marks the private key `"encrypt": true` and has no public entry for
    /// it: the tool gives the keyring the public half taken from the private key (the raw RSA
    /// keyring itself never derives one).
    pub public_from_private: bool,
}

impl RawRsaSpec {
    /// Build the keyring, or say why it cannot be built.
    pub fn build(&self) -> Result<Arc<dyn Keyring>, String> {
        let keyring = match (&self.public_pem, &self.private_pem) {
            (Some(public), Some(private)) => RawRsaKeyring::new(
                self.provider_id.clone(),
                self.key_name.clone(),
                self.padding,
                public,
                private,
            ),
            (Some(public), None) => RawRsaKeyring::encrypt_only(
                self.provider_id.clone(),
                self.key_name.clone(),
                self.padding,
                public,
            ),
            (None, Some(private)) if self.public_from_private => {
                let private = RsaPrivateKey::from_pem(private)
                    .map_err(|e| format!("RSA private key: {e}"))?;
                RawRsaKeyring::from_keys(
                    self.provider_id.clone(),
                    self.key_name.clone(),
                    self.padding,
                    Some(private.public_key()),
                    Some(private),
                )
            }
            (None, Some(private)) => RawRsaKeyring::decrypt_only(
                self.provider_id.clone(),
                self.key_name.clone(),
                self.padding,
                private,
            ),
            (None, None) => return Err("raw RSA key without material".into()),
        };
        // Vectors are conformance checks, PKCS#1 v1.5 ones included: a FIPS build runs them
        // too rather than refusing the padding as it does by default.
        keyring
            .map(|k| Arc::new(k.allow_non_approved_padding()) as Arc<dyn Keyring>)
            .map_err(|e| format!("cannot build raw RSA keyring: {e}"))
    }
}

/// A keyring or CMM as a manifest describes it.
#[derive(Clone, Debug)]
pub enum KeyDescription {
    /// A raw AES keyring.
    RawAes {
        /// Provider id (namespace).
        provider_id: String,
        /// Key name.
        key_name: String,
        /// Wrapping key.
        key: Vec<u8>,
    },
    /// A raw RSA keyring.
    RawRsa(RawRsaSpec),
    /// A multi-keyring.
    Multi {
        /// The generator, if any.
        generator: Option<Box<KeyDescription>>,
        /// Children in order.
        children: Vec<KeyDescription>,
    },
    /// A required-encryption-context CMM.
    RequiredEncryptionContext {
        /// The underlying keyring or CMM.
        underlying: Box<KeyDescription>,
        /// The required keys.
        keys: Vec<String>,
    },
    /// A keyring that knows the plaintext data key (for known-answer files).
    Static {
        /// The data key.
        data_key: Vec<u8>,
    },
    /// An AWS KMS keyring (strict) for a key ARN.
    AwsKms {
        /// The key ARN.
        key_arn: String,
    },
    /// A hierarchical keyring over one static branch key.
    Hierarchy {
        /// The branch key id.
        branch_key_id: String,
        /// Its version (a UUID).
        version: String,
        /// The branch key bytes.
        key: Vec<u8>,
    },
    /// Something this tool cannot build: why.
    Unsupported(String),
}

impl KeyDescription {
    /// Parse one `master-keys` entry (manifest v1–v4) or a v5 key description.
    pub fn parse(v: &Value, keys: &Keys) -> Result<Self> {
        let kind = str_field(v, "type")?;
        match kind {
            "raw" => Self::parse_raw(v, keys),
            "aws-kms" => Ok(Self::AwsKms {
                key_arn: keys.get(str_field(v, "key")?)?.key_id.clone(),
            }),
            "aws-kms-hierarchy" => {
                let key = keys.get(str_field(v, "key")?)?;
                match &key.material {
                    KeyMaterial::StaticBranchKey {
                        version,
                        key: bytes,
                    } => Ok(Self::Hierarchy {
                        branch_key_id: key.key_id.clone(),
                        version: version.clone(),
                        key: bytes.clone(),
                    }),
                    _ => Ok(Self::Unsupported(
                        "aws-kms-hierarchy keyring over a non-static branch key".into(),
                    )),
                }
            }
            "multi-keyring" => {
                let generator = match v.get("generator") {
                    Some(g) if !g.is_null() => Some(Box::new(Self::parse(g, keys)?)),
                    _ => None,
                };
                let children = v
                    .get("childKeyrings")
                    .and_then(Value::as_array)
                    .map(|c| {
                        c.iter()
                            .map(|c| Self::parse(c, keys))
                            .collect::<Result<Vec<_>>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                Ok(Self::Multi {
                    generator,
                    children,
                })
            }
            "required-encryption-context-cmm" => {
                let underlying = v
                    .get("underlying")
                    .ok_or_else(|| tool_error!("no underlying"))?;
                let keys_list = v
                    .get("requiredEncryptionContextKeys")
                    .and_then(Value::as_array)
                    .ok_or_else(|| tool_error!("no requiredEncryptionContextKeys"))?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                Ok(Self::RequiredEncryptionContext {
                    underlying: Box::new(Self::parse(underlying, keys)?),
                    keys: keys_list,
                })
            }
            other => Ok(Self::Unsupported(format!("{other} keyring"))),
        }
    }

    /// A `master-keys` list: one entry is that keyring; several are a multi-keyring whose first
    /// entry generates.
    pub fn parse_master_keys(list: &[Value], keys: &Keys) -> Result<Self> {
        let mut parsed = list
            .iter()
            .map(|v| Self::parse(v, keys))
            .collect::<Result<Vec<_>>>()?;
        match parsed.len() {
            0 => Err(tool_error!("empty master-keys list")),
            1 => Ok(parsed.remove(0)),
            _ => {
                let generator = parsed.remove(0);
                Ok(Self::Multi {
                    generator: Some(Box::new(generator)),
                    children: parsed,
                })
            }
        }
    }

    fn parse_raw(v: &Value, keys: &Keys) -> Result<Self> {
        let key = keys.get(str_field(v, "key")?)?;
        let provider_id = str_field(v, "provider-id")?.to_string();
        let key_name = key.key_id.clone();
        match (str_field(v, "encryption-algorithm")?, &key.material) {
            ("aes", KeyMaterial::Aes(bytes)) => Ok(Self::RawAes {
                provider_id,
                key_name,
                key: bytes.clone(),
            }),
            ("rsa", material @ (KeyMaterial::RsaPrivate(_) | KeyMaterial::RsaPublic(_))) => {
                let padding = match (opt_str(v, "padding-algorithm"), opt_str(v, "padding-hash")) {
                    (Some("pkcs1"), _) => RsaPadding::Pkcs1v15,
                    (Some("oaep-mgf1"), Some("sha1")) => RsaPadding::OaepSha1,
                    (Some("oaep-mgf1"), Some("sha256")) => RsaPadding::OaepSha256,
                    (Some("oaep-mgf1"), Some("sha384")) => RsaPadding::OaepSha384,
                    (Some("oaep-mgf1"), Some("sha512")) => RsaPadding::OaepSha512,
                    other => return Err(tool_error!("unknown RSA padding {other:?}")),
                };
                // A private entry is paired with the public entry of the same key id: keyrings never
                // derive a public key, but a manifest that names the private key expects to encrypt.
                // Without a public entry, a private key marked `"encrypt": true` (as the Python
                // ESDK's test-vector handler writes them) gives the keyring its public half.
                let (private_pem, public_pem) = match material {
                    KeyMaterial::RsaPrivate(pem) => (
                        Some(pem.clone()),
                        keys.rsa_public_for(&key_name).map(str::to_string),
                    ),
                    KeyMaterial::RsaPublic(pem) => (None, Some(pem.clone())),
                    _ => (None, None),
                };
                let public_from_private = public_pem.is_none() && key.encrypt;
                Ok(Self::RawRsa(RawRsaSpec {
                    provider_id,
                    key_name,
                    padding,
                    private_pem,
                    public_pem,
                    public_from_private,
                }))
            }
            (alg, KeyMaterial::Other(kind)) => {
                Ok(Self::Unsupported(format!("raw {alg} key of type {kind}")))
            }
            (alg, _) => Err(tool_error!(
                "key material does not match encryption algorithm {alg}"
            )),
        }
    }

    /// Build the materials manager: a keyring (acting as the default CMM) or a CMM.
    pub fn build(&self) -> Result<Arc<dyn MaterialsManager>, String> {
        match self {
            Self::RequiredEncryptionContext { underlying, keys } => {
                let underlying = underlying.build()?;
                RequiredEncryptionContextCmm::from_arc(underlying, keys.clone())
                    .map(|cmm| Arc::new(cmm) as Arc<dyn MaterialsManager>)
                    .map_err(|e| format!("cannot build required-encryption-context CMM: {e}"))
            }
            _ => Ok(Arc::new(self.build_keyring()?)),
        }
    }

    /// Build the keyring, or say why this build cannot.
    pub fn build_keyring(&self) -> Result<Arc<dyn Keyring>, String> {
        match self {
            Self::RawAes {
                provider_id,
                key_name,
                key,
            } => RawAesKeyring::new(
                provider_id.clone(),
                key_name.clone(),
                SecretBytes::from_slice(key),
            )
            .map(|k| Arc::new(k) as Arc<dyn Keyring>)
            .map_err(|e| format!("cannot build raw AES keyring: {e}")),
            Self::RawRsa(spec) => spec.build(),
            Self::Multi {
                generator,
                children,
            } => {
                let generator = generator.as_ref().map(|g| g.build_keyring()).transpose()?;
                let children = children
                    .iter()
                    .map(Self::build_keyring)
                    .collect::<Result<Vec<_>, _>>()?;
                MultiKeyring::new(generator, children)
                    .map(|k| Arc::new(k) as Arc<dyn Keyring>)
                    .map_err(|e| format!("cannot build multi-keyring: {e}"))
            }
            Self::Static { data_key } => Ok(Arc::new(crate::static_keyring::StaticKeyring::new(
                data_key.clone(),
            ))),
            Self::RequiredEncryptionContext { .. } => {
                Err("a required-encryption-context CMM cannot be used as a keyring".into())
            }
            Self::AwsKms { key_arn } => crate::kms::keyring(key_arn),
            Self::Hierarchy {
                branch_key_id,
                version,
                key,
            } => hierarchy_keyring(branch_key_id, version, key),
            Self::Unsupported(what) => Err(format!("{what} not supported")),
        }
    }
}

/// A hierarchical keyring whose store holds exactly one branch key version.
fn hierarchy_keyring(
    branch_key_id: &str,
    version: &str,
    key: &[u8],
) -> Result<Arc<dyn Keyring>, String> {
    use envelope::hierarchy::{BranchKey, HierarchicalKeyring, StaticKeyStore};
    let fail = |e: &dyn std::fmt::Display| format!("cannot build hierarchical keyring: {e}");
    let version = version.parse().map_err(|e| fail(&e))?;
    let branch_key = BranchKey::new(branch_key_id, version, SecretBytes::from_slice(key))
        .map_err(|e| fail(&e))?;
    HierarchicalKeyring::builder(StaticKeyStore::new("test-vectors").with(branch_key))
        .branch_key_id(branch_key_id)
        .ttl(std::time::Duration::from_secs(600))
        .build()
        .map(|k| Arc::new(k) as Arc<dyn Keyring>)
        .map_err(|e| fail(&e))
}
