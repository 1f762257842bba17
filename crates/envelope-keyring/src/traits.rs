//! The `Keyring` and `MaterialsManager` traits.

use std::ops::Deref;

use async_trait::async_trait;
use envelope_format::EncryptedDataKey;

use crate::materials::{
    CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptRequest, DecryptionMaterials,
    EncryptionMaterials, EncryptionRequest,
};
use crate::{Error, default_cmm};

/// Generates, wraps and unwraps data keys.
///
/// Implement it to plug in your own key management. The trait is object safe (`Arc<dyn Keyring>`
/// works) and async; a keyring that does no I/O simply returns a ready future, and then the blocking
/// API needs no runtime.
///
/// - `on_encrypt` receives materials that may already hold a plaintext data key. If there is none,
///   generate one of `materials.suite().key_len()` bytes (or fail); then wrap it and append the
///   encrypted data key. Fail rather than return the materials unchanged.
/// - `on_decrypt` receives materials without a data key (pending decryption materials cannot hold
///   one) and the message's encrypted data keys; complete the materials with the first one you can
///   unwrap ([`DecryptionMaterials::with_data_key`]), or fail.
///
/// Every keyring is also a [`MaterialsManager`]: used directly, it behaves as the default CMM
/// wrapped around it.
#[async_trait]
pub trait Keyring: Send + Sync {
    /// Generate and/or wrap the data key.
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error>;

    /// Unwrap a data key, completing the materials.
    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error>;
}

/// Produces the materials a message is encrypted or decrypted with (a "CMM").
///
/// The default CMM asks a keyring for data keys and adds signing keys; the caching CMM puts a cache
/// in front of another CMM; the required-encryption-context CMM enforces context keys. Implement it
/// to change how materials are made. Object safe and async like [`Keyring`].
#[async_trait]
pub trait MaterialsManager: Send + Sync {
    /// Materials to encrypt one message.
    async fn get_encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<CompleteEncryptionMaterials, Error>;

    /// Materials to decrypt one message.
    async fn decrypt_materials(
        &self,
        request: DecryptRequest,
    ) -> Result<CompleteDecryptionMaterials, Error>;
}

/// Anything that points to a keyring is one: `Arc<dyn Keyring>`, `Box<K>`, `&K`.
#[async_trait]
impl<P> Keyring for P
where
    P: Deref + Send + Sync,
    P::Target: Keyring,
{
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
        (**self).on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        (**self).on_decrypt(materials, encrypted_data_keys).await
    }
}

/// A keyring used where a CMM is expected behaves as the default CMM around it.
#[async_trait]
impl<K: Keyring + ?Sized> MaterialsManager for K {
    async fn get_encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<CompleteEncryptionMaterials, Error> {
        default_cmm::get_encryption_materials(self, request).await
    }

    async fn decrypt_materials(
        &self,
        request: DecryptRequest,
    ) -> Result<CompleteDecryptionMaterials, Error> {
        default_cmm::decrypt_materials(self, request).await
    }
}
