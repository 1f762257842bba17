//! Branch keys and their versions.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use envelope_crypto::SecretBytes;
use envelope_crypto::digest::HashAlgorithm;
use envelope_crypto::kdf::HmacKey;

use crate::error::KeyStoreError;

/// Length of a branch key: 256 bits.
pub const BRANCH_KEY_LEN: usize = 32;

/// A branch key version: a UUID, written into each encrypted data key as its 16 bytes and into
/// the key store as its 36-character lowercase text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BranchKeyVersion([u8; 16]);

impl BranchKeyVersion {
    /// The version with these UUID bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// A new random (version 4) UUID, as the key store uses for each new version.
    pub fn random() -> Result<Self, envelope_crypto::CryptoError> {
        let mut bytes = [0u8; 16];
        envelope_crypto::rand::fill_random(&mut bytes)?;
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Ok(Self(bytes))
    }

    /// The UUID's 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for BranchKeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BranchKeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BranchKeyVersion({self})")
    }
}

/// The error of parsing a [`BranchKeyVersion`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a branch key version (a UUID such as 5fd4e7ac-0f6a-4bde-9b1c-1d2e3f405162)")]
pub struct InvalidVersion(pub String);

impl FromStr for BranchKeyVersion {
    type Err = InvalidVersion;

    /// Parse the 36-character hyphenated form (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidVersion(s.to_owned());
        let text = s.as_bytes();
        if text.len() != 36 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 16];
        let mut digits = Vec::with_capacity(32);
        for (i, &c) in text.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(invalid());
                }
                continue;
            }
            let value = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(invalid()),
            };
            digits.push(value);
        }
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (pair[0] << 4) | pair[1];
        }
        Ok(Self(bytes))
    }
}

/// One version of a branch key, decrypted: what the keyring derives wrapping keys from.
///
/// The key bytes never print; `Debug` shows the id, version and context only.
#[derive(Clone)]
pub struct BranchKey {
    id: String,
    version: BranchKeyVersion,
    key: SecretBytes,
    hmac: HmacKey,
    encryption_context: BTreeMap<String, String>,
}

impl BranchKey {
    /// Version `version` of branch key `id`, with its 32 key bytes.
    pub fn new(
        id: impl Into<String>,
        version: BranchKeyVersion,
        key: SecretBytes,
    ) -> Result<Self, KeyStoreError> {
        let id = id.into();
        if id.is_empty() {
            return Err(KeyStoreError::InvalidConfiguration(
                "a branch key id must not be empty".into(),
            ));
        }
        if key.len() != BRANCH_KEY_LEN {
            return Err(KeyStoreError::InvalidItem {
                branch_key_id: id,
                reason: format!("a branch key has 32 bytes, not {}", key.len()),
            });
        }
        let hmac = HmacKey::new(HashAlgorithm::Sha256, key.expose_secret());
        Ok(Self {
            id,
            version,
            key,
            hmac,
            encryption_context: BTreeMap::new(),
        })
    }

    /// Attach the custom encryption context the key store keeps with this key (the
    /// `aws-crypto-ec:` attributes, without the prefix).
    pub fn with_encryption_context(mut self, context: BTreeMap<String, String>) -> Self {
        self.encryption_context = context;
        self
    }

    /// The branch key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version.
    pub fn version(&self) -> BranchKeyVersion {
        self.version
    }

    /// The custom encryption context stored with the key.
    pub fn encryption_context(&self) -> &BTreeMap<String, String> {
        &self.encryption_context
    }

    /// The key bytes.
    pub fn expose_secret(&self) -> &[u8] {
        self.key.expose_secret()
    }

    pub(crate) fn hmac_key(&self) -> &HmacKey {
        &self.hmac
    }
}

impl fmt::Debug for BranchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BranchKey")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("key", &format_args!("[REDACTED; {}]", self.key.len()))
            .field("encryption_context", &self.encryption_context)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_through_their_text() {
        let text = "e9ce18a3-edb5-4272-9f86-1cacb7997ff6";
        let version: BranchKeyVersion = text.parse().unwrap();
        assert_eq!(version.as_bytes()[0], 0xe9);
        assert_eq!(version.as_bytes()[15], 0xf6);
        assert_eq!(version.to_string(), text);
        let upper: BranchKeyVersion = text.to_uppercase().parse().unwrap();
        assert_eq!(upper, version);
    }

    #[test]
    fn malformed_versions_are_rejected() {
        for bad in [
            "",
            "e9ce18a3edb542729f861cacb7997ff6",
            "e9ce18a3-edb5-4272-9f86-1cacb7997ff",
            "e9ce18a3-edb5-4272-9f86_1cacb7997ff6",
            "g9ce18a3-edb5-4272-9f86-1cacb7997ff6",
            "e9ce18a3-edb5-4272-9f86-1cacb7997ff6 ",
        ] {
            assert_eq!(
                bad.parse::<BranchKeyVersion>(),
                Err(InvalidVersion(bad.into()))
            );
        }
    }

    #[test]
    fn random_versions_are_version_4_uuids() {
        let v = BranchKeyVersion::random().unwrap().to_string();
        assert_eq!(&v[14..15], "4");
        assert!(matches!(&v[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn branch_keys_never_print_their_bytes() {
        let key = BranchKey::new(
            "id",
            BranchKeyVersion::from_bytes([1; 16]),
            SecretBytes::new(vec![0xab; 32]),
        )
        .unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("REDACTED"));
        assert!(!shown.contains("171") && !shown.contains("ab, ab"));
    }
}
