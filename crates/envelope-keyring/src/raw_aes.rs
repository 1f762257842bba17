//! The raw AES keyring: wraps data keys with a local AES-GCM key.

use std::fmt;

use async_trait::async_trait;
use envelope_crypto::SecretBytes;
use envelope_crypto::aead::{AeadKey, IV_LEN, TAG_LEN};
use envelope_format::{EncryptedDataKey, EncryptionContext};

use crate::materials::{CompleteDecryptionMaterials, DecryptionMaterials, EncryptionMaterials};
use crate::{Error, Keyring};

/// Tag length in bits and IV length in bytes, as written into the provider info.
const TAG_LEN_BITS: [u8; 4] = 128u32.to_be_bytes();
const IV_LEN_FIELD: [u8; 4] = 12u32.to_be_bytes();
const _: () = assert!(TAG_LEN == 16 && IV_LEN == 12);

/// A keyring that wraps data keys with AES-GCM under a key you hold (128, 192 or 256 bits).
///
/// The encryption context is the AES-GCM AAD of the wrapping, so an encrypted data key only unwraps
/// with the context it was made with. The namespace and name identify the key in each message:
/// the encrypted data key's provider id is the namespace, and its provider info is the name followed
/// by the tag length, IV length and IV. Compatible with the raw AES keyrings and `RawMasterKey` /
/// `JceMasterKey` of the other ESDKs.
///
/// ```
/// use envelope_crypto::SecretBytes;
/// use envelope_keyring::RawAesKeyring;
///
/// let key = SecretBytes::random(32)?;
/// let keyring = RawAesKeyring::new("my-app", "orders-key-2026", key)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RawAesKeyring {
    namespace: String,
    name: String,
    wrapping_key: AeadKey,
    key_len: usize,
    #[cfg(feature = "__test-hooks")]
    fixed_iv: Option<[u8; IV_LEN]>,
}

impl RawAesKeyring {
    /// A keyring for `wrapping_key` (16, 24 or 32 bytes) known as `namespace`/`name`.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        wrapping_key: SecretBytes,
    ) -> Result<Self, Error> {
        let namespace = namespace.into();
        let name = name.into();
        if namespace.starts_with("aws-kms") {
            return Err(Error::InvalidConfiguration(format!(
                "key namespace {namespace:?}: namespaces starting with \"aws-kms\" are reserved"
            )));
        }
        if !matches!(wrapping_key.len(), 16 | 24 | 32) {
            return Err(Error::InvalidConfiguration(format!(
                "raw AES wrapping keys must be 128, 192 or 256 bits, not {} bytes",
                wrapping_key.len()
            )));
        }
        if namespace.len() > usize::from(u16::MAX) || name.len() + 20 > usize::from(u16::MAX) {
            return Err(Error::InvalidConfiguration(
                "key namespace or name too long".into(),
            ));
        }
        Ok(Self {
            wrapping_key: AeadKey::new(wrapping_key.expose_secret())?,
            key_len: wrapping_key.len(),
            namespace,
            name,
            #[cfg(feature = "__test-hooks")]
            fixed_iv: None,
        })
    }

    /// The key namespace (the encrypted data key's provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Test hook: wrap with a fixed IV so that known-answer tests are byte-exact.
    #[cfg(feature = "__test-hooks")]
    #[doc(hidden)]
    pub fn __with_fixed_iv(mut self, iv: [u8; IV_LEN]) -> Self {
        self.fixed_iv = Some(iv);
        self
    }

    fn wrapping_iv(&self) -> Result<[u8; IV_LEN], Error> {
        #[cfg(feature = "__test-hooks")]
        if let Some(iv) = self.fixed_iv {
            return Ok(iv);
        }
        let mut iv = [0u8; IV_LEN];
        envelope_crypto::rand::fill_random(&mut iv)?;
        Ok(iv)
    }

    fn describe(&self) -> String {
        format!("raw AES keyring {:?}/{:?}", self.namespace, self.name)
    }

    /// Wrap `data_key` under this keyring's key, bound to `context`, with a fresh IV; the IV goes
    /// in the provider info after the key name and the tag and IV lengths.
    fn wrap(
        &self,
        context: &EncryptionContext,
        data_key: &SecretBytes,
    ) -> Result<EncryptedDataKey, Error> {
        let aad = context.serialize()?;
        let iv = self.wrapping_iv()?;
        let mut ciphertext = vec![0u8; data_key.len() + TAG_LEN];
        self.wrapping_key
            .seal_to(&iv, &aad, data_key.expose_secret(), &mut ciphertext)?;

        let mut info = Vec::with_capacity(self.name.len() + 8 + IV_LEN);
        info.extend_from_slice(self.name.as_bytes());
        info.extend_from_slice(&TAG_LEN_BITS);
        info.extend_from_slice(&IV_LEN_FIELD);
        info.extend_from_slice(&iv);
        Ok(EncryptedDataKey::new(
            self.namespace.clone(),
            info,
            ciphertext,
        )?)
    }

    /// The IV of an encrypted data key that belongs to this keyring, if it does.
    fn matching_iv(&self, edk: &EncryptedDataKey) -> Option<[u8; IV_LEN]> {
        if edk.provider_id() != self.namespace {
            return None;
        }
        let info = edk.provider_info();
        let name = self.name.as_bytes();
        if info.len() != name.len() + 8 + IV_LEN || !info.starts_with(name) {
            return None;
        }
        let rest = &info[name.len()..];
        if rest[..4] != TAG_LEN_BITS || rest[4..8] != IV_LEN_FIELD {
            return None;
        }
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&rest[8..]);
        Some(iv)
    }
}

impl fmt::Debug for RawAesKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAesKeyring")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field(
                "wrapping_key",
                &format_args!("[REDACTED; {}]", self.key_len),
            )
            .finish()
    }
}

#[async_trait]
impl Keyring for RawAesKeyring {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
        materials.wrap_data_key(|context, data_key| self.wrap(context, data_key))
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        let aad = materials.encryption_context().serialize()?;
        let key_len = materials.suite().key_len();
        let mut attempts = 0;
        for edk in encrypted_data_keys {
            let Some(iv) = self.matching_iv(edk) else {
                continue;
            };
            attempts += 1;
            let ciphertext = edk.ciphertext();
            if ciphertext.len() != key_len + TAG_LEN {
                continue;
            }
            let (wrapped, tag) = ciphertext.split_at(key_len);
            let mut tag_bytes = [0u8; TAG_LEN];
            tag_bytes.copy_from_slice(tag);
            let mut data_key = SecretBytes::zeroed(key_len);
            let opened = self.wrapping_key.open_to(
                &iv,
                &aad,
                wrapped,
                &tag_bytes,
                data_key.expose_secret_mut(),
            );
            if opened.is_ok() {
                return materials.with_data_key(data_key);
            }
        }
        Err(Error::nothing_unwrapped(self.describe(), attempts))
    }
}
