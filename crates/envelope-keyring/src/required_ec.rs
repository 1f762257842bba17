//! The required-encryption-context CMM.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::materials::{
    CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptRequest, EncryptionRequest,
};
use crate::{Error, MaterialsManager};

/// Requires encryption context keys, and keeps them out of the message.
///
/// On encrypt the caller's encryption context must contain every required key; those pairs are then
/// authenticated with the message (in header authentication and, for raw AES, the key wrapping) but
/// not stored in its header. On decrypt the caller must supply them again as the reproduced
/// encryption context, so a message only decrypts for someone who knows them.
///
/// ```
/// use envelope_keyring::{RawAesKeyring, RequiredEncryptionContextCmm, SecretBytes};
///
/// let keyring = RawAesKeyring::new("app", "key", SecretBytes::random(32)?)?;
/// let cmm = RequiredEncryptionContextCmm::new(keyring, ["tenant"])?;
/// # Ok::<(), envelope_keyring::Error>(())
/// ```
#[derive(Clone)]
pub struct RequiredEncryptionContextCmm {
    underlying: Arc<dyn MaterialsManager>,
    required: BTreeSet<String>,
}

impl RequiredEncryptionContextCmm {
    /// Require `keys` around `underlying` (a CMM, or a keyring, which acts as the default CMM).
    pub fn new(
        underlying: impl MaterialsManager + 'static,
        keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, Error> {
        Self::from_arc(Arc::new(underlying), keys)
    }

    /// Require `keys` around a shared CMM.
    pub fn from_arc(
        underlying: Arc<dyn MaterialsManager>,
        keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, Error> {
        let required: BTreeSet<String> = keys.into_iter().map(Into::into).collect();
        if required.is_empty() {
            return Err(Error::InvalidConfiguration(
                "a required-encryption-context CMM needs at least one required key".into(),
            ));
        }
        Ok(Self {
            underlying,
            required,
        })
    }

    /// The required keys.
    pub fn required_keys(&self) -> &BTreeSet<String> {
        &self.required
    }

    fn first_missing(&self, mut has: impl FnMut(&str) -> bool) -> Option<String> {
        self.required.iter().find(|k| !has(k)).cloned()
    }
}

impl fmt::Debug for RequiredEncryptionContextCmm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequiredEncryptionContextCmm")
            .field("required", &self.required)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl MaterialsManager for RequiredEncryptionContextCmm {
    async fn get_encryption_materials(
        &self,
        mut request: EncryptionRequest,
    ) -> Result<CompleteEncryptionMaterials, Error> {
        if let Some(missing) = self.first_missing(|k| request.encryption_context.contains_key(k)) {
            return Err(Error::MissingRequiredEncryptionContextKey(missing));
        }
        request
            .required_encryption_context_keys
            .extend(self.required.iter().cloned());
        let materials = self.underlying.get_encryption_materials(request).await?;
        if let Some(missing) =
            self.first_missing(|k| materials.required_encryption_context_keys().contains(k))
        {
            return Err(Error::MissingRequiredEncryptionContextKey(missing));
        }
        Ok(materials)
    }

    async fn decrypt_materials(
        &self,
        request: DecryptRequest,
    ) -> Result<CompleteDecryptionMaterials, Error> {
        let reproduced = request.reproduced_encryption_context.as_ref();
        if let Some(missing) =
            self.first_missing(|k| reproduced.is_some_and(|ec| ec.contains_key(k)))
        {
            return Err(Error::MissingRequiredEncryptionContextKey(missing));
        }
        let materials = self.underlying.decrypt_materials(request).await?;
        if let Some(missing) =
            self.first_missing(|k| materials.encryption_context().contains_key(k))
        {
            return Err(Error::MissingRequiredEncryptionContextKey(missing));
        }
        Ok(materials)
    }
}
