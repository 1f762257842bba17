//! Encrypted data keys as carried in the header.

use std::fmt;

use crate::error::FormatError;
use crate::parse::{Cursor, Stop, put_short_bytes};

/// A data key wrapped by one master key, with the identifiers a keyring uses to find it.
///
/// The provider id names the key namespace (`aws-kms` for AWS KMS, the key namespace for raw
/// keyrings); the provider info identifies the wrapping key within it; the ciphertext is whatever the
/// keyring produced. The format treats all three as opaque.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EncryptedDataKey {
    provider_id: String,
    provider_info: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl EncryptedDataKey {
    /// A new encrypted data key. Each field must fit a `u16` length prefix.
    pub fn new(
        provider_id: impl Into<String>,
        provider_info: impl Into<Vec<u8>>,
        ciphertext: impl Into<Vec<u8>>,
    ) -> Result<Self, FormatError> {
        let edk = Self {
            provider_id: provider_id.into(),
            provider_info: provider_info.into(),
            ciphertext: ciphertext.into(),
        };
        for (field, len) in [
            ("key provider id", edk.provider_id.len()),
            ("key provider info", edk.provider_info.len()),
            ("encrypted data key", edk.ciphertext.len()),
        ] {
            if len > usize::from(u16::MAX) {
                return Err(FormatError::FieldTooLong {
                    field,
                    len,
                    max: usize::from(u16::MAX),
                });
            }
        }
        Ok(edk)
    }

    /// The key provider id (namespace), e.g. `aws-kms`.
    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    /// The key provider info, e.g. a KMS key ARN or a raw keyring's key name and IV.
    pub fn provider_info(&self) -> &[u8] {
        &self.provider_info
    }

    /// The wrapped data key.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// Length of the serialization.
    pub fn serialized_len(&self) -> usize {
        6 + self.provider_id.len() + self.provider_info.len() + self.ciphertext.len()
    }

    /// Append `u16 len || provider id || u16 len || provider info || u16 len || ciphertext`.
    pub fn serialize_into(&self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        put_short_bytes(out, self.provider_id.as_bytes(), "key provider id")?;
        put_short_bytes(out, &self.provider_info, "key provider info")?;
        put_short_bytes(out, &self.ciphertext, "encrypted data key")
    }

    pub(crate) fn parse_from(cursor: &mut Cursor<'_>) -> Result<Self, Stop> {
        let provider_id = cursor.short_bytes()?;
        let provider_info = cursor.short_bytes()?;
        let ciphertext = cursor.short_bytes()?;
        let provider_id = std::str::from_utf8(provider_id)
            .map_err(|_| FormatError::InvalidUtf8("key provider id"))?;
        Ok(Self {
            provider_id: provider_id.to_owned(),
            provider_info: provider_info.to_vec(),
            ciphertext: ciphertext.to_vec(),
        })
    }
}

impl fmt::Debug for EncryptedDataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = String::from_utf8_lossy(&self.provider_info);
        f.debug_struct("EncryptedDataKey")
            .field("provider_id", &self.provider_id)
            .field("provider_info", &info)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}
