//! A keyring that knows the plaintext data key: for known-answer files that publish it.

use envelope::{
    CompleteDecryptionMaterials, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials,
    Keyring, SecretBytes, async_trait, keyring::Error,
};

/// Hands out a fixed data key on decrypt, whatever the encrypted data keys say.
pub struct StaticKeyring {
    data_key: Vec<u8>,
}

impl StaticKeyring {
    /// A keyring that always unwraps to `data_key`.
    pub fn new(data_key: Vec<u8>) -> Self {
        Self { data_key }
    }
}

#[async_trait]
impl Keyring for StaticKeyring {
    async fn on_encrypt(&self, _: EncryptionMaterials) -> Result<EncryptionMaterials, Error> {
        Err(Error::Unsupported {
            keyring: "static test keyring".into(),
            operation: "encrypt",
            reason: "it only replays published data keys",
        })
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        _: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        materials.with_data_key(SecretBytes::from_slice(&self.data_key))
    }
}
