//! The multi-keyring: one generator and any number of child keyrings.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use envelope_format::EncryptedDataKey;

use crate::materials::{CompleteDecryptionMaterials, DecryptionMaterials, EncryptionMaterials};
use crate::{Error, Keyring};

/// Combines keyrings: the generator makes the data key and every child wraps it too, so any one of
/// them can decrypt the message.
///
/// On encrypt the generator (if any) produces the data key, then each child wraps it, in order; any
/// failure fails the whole encryption. On decrypt the generator and then each child are tried in
/// order, each with the original materials, until one unwraps a data key; if all fail, the error
/// lists every keyring's error in order.
///
/// ```
/// use std::sync::Arc;
/// use envelope_keyring::{MultiKeyring, RawAesKeyring, SecretBytes};
///
/// let primary = RawAesKeyring::new("app", "primary", SecretBytes::random(32)?)?;
/// let escrow = RawAesKeyring::new("app", "escrow", SecretBytes::random(32)?)?;
/// let keyring = MultiKeyring::builder().generator(primary).child(escrow).build()?;
/// # Ok::<(), envelope_keyring::Error>(())
/// ```
#[derive(Clone)]
pub struct MultiKeyring {
    generator: Option<Arc<dyn Keyring>>,
    children: Vec<Arc<dyn Keyring>>,
}

impl MultiKeyring {
    /// A multi-keyring. There must be a generator, a child, or both.
    pub fn new(
        generator: Option<Arc<dyn Keyring>>,
        children: Vec<Arc<dyn Keyring>>,
    ) -> Result<Self, Error> {
        if generator.is_none() && children.is_empty() {
            return Err(Error::InvalidConfiguration(
                "a multi-keyring needs a generator or at least one child keyring".into(),
            ));
        }
        Ok(Self {
            generator,
            children,
        })
    }

    /// Build a multi-keyring step by step.
    pub fn builder() -> MultiKeyringBuilder {
        MultiKeyringBuilder {
            generator: None,
            children: Vec::new(),
        }
    }

    /// The generator, if any.
    pub fn generator(&self) -> Option<&Arc<dyn Keyring>> {
        self.generator.as_ref()
    }

    /// The children, in order.
    pub fn children(&self) -> &[Arc<dyn Keyring>] {
        &self.children
    }
}

impl fmt::Debug for MultiKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiKeyring")
            .field("generator", &self.generator.is_some())
            .field("children", &self.children.len())
            .finish()
    }
}

/// Builds a [`MultiKeyring`].
#[must_use]
pub struct MultiKeyringBuilder {
    generator: Option<Arc<dyn Keyring>>,
    children: Vec<Arc<dyn Keyring>>,
}

impl MultiKeyringBuilder {
    /// The keyring that generates the data key.
    pub fn generator(mut self, keyring: impl Keyring + 'static) -> Self {
        self.generator = Some(Arc::new(keyring));
        self
    }

    /// A shared keyring that generates the data key.
    pub fn generator_arc(mut self, keyring: Arc<dyn Keyring>) -> Self {
        self.generator = Some(keyring);
        self
    }

    /// A keyring that also wraps the data key.
    pub fn child(mut self, keyring: impl Keyring + 'static) -> Self {
        self.children.push(Arc::new(keyring));
        self
    }

    /// A shared keyring that also wraps the data key.
    pub fn child_arc(mut self, keyring: Arc<dyn Keyring>) -> Self {
        self.children.push(keyring);
        self
    }

    /// The multi-keyring.
    pub fn build(self) -> Result<MultiKeyring, Error> {
        MultiKeyring::new(self.generator, self.children)
    }
}

#[async_trait]
impl Keyring for MultiKeyring {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
        let mut materials = match &self.generator {
            Some(generator) => {
                if materials.data_key().is_some() {
                    return Err(Error::DataKeyAlreadySet);
                }
                let materials = generator.on_encrypt(materials).await?;
                if materials.data_key().is_none() {
                    return Err(Error::IncompleteMaterials(
                        "the generator produced no data key",
                    ));
                }
                materials
            }
            None if materials.data_key().is_none() => {
                return Err(Error::IncompleteMaterials(
                    "a multi-keyring without a generator needs materials that hold a data key",
                ));
            }
            None => materials,
        };
        for child in &self.children {
            materials = child.on_encrypt(materials).await?;
        }
        Ok(materials)
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        let mut errors = Vec::new();
        for keyring in self.generator.iter().chain(&self.children) {
            match keyring
                .on_decrypt(materials.clone(), encrypted_data_keys)
                .await
            {
                Ok(complete) => return Ok(complete),
                Err(e) => errors.push(e),
            }
        }
        Err(Error::MultiKeyring(errors))
    }
}
