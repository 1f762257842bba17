//! Encrypted Amazon Kinesis records (feature `kinesis`): the `envelope-kinesis` crate, and
//! [`ClientCipher`], which encrypts and decrypts its records with a [`Client`] and a materials
//! manager.

use std::fmt;
use std::sync::Arc;

pub use envelope_kinesis::*;

use crate::client::Client;
use crate::options::{DecryptOptions, EncryptOptions};
use crate::{EncryptionContext, MaterialsManager};

/// A [`MessageCipher`] over a [`Client`] and a materials manager, normally a
/// [`CachingCmm`](crate::CachingCmm) over a KMS keyring (the ESDK guidance for Kinesis: max age
/// 300 s, 100 messages per data key).
///
/// Errors are [`crate::Error`]s inside the [`CipherError`]; `downcast_ref::<envelope::Error>()`
/// gets them back.
#[derive(Clone)]
pub struct ClientCipher {
    client: Client,
    cmm: Arc<dyn MaterialsManager>,
    encrypt: EncryptOptions,
    decrypt: DecryptOptions,
}

impl fmt::Debug for ClientCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCipher")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl ClientCipher {
    /// Encrypt and decrypt with `client` and `cmm`.
    pub fn new(client: Client, cmm: Arc<dyn MaterialsManager>) -> Self {
        Self {
            client,
            cmm,
            encrypt: EncryptOptions::default(),
            decrypt: DecryptOptions::default(),
        }
    }

    /// Options for every encryption (suite, frame length). Their encryption context is replaced
    /// by each record's.
    pub fn encrypt_options(mut self, options: EncryptOptions) -> Self {
        self.encrypt = options;
        self
    }

    /// Options for every decryption (e.g. unsigned only).
    pub fn decrypt_options(mut self, options: DecryptOptions) -> Self {
        self.decrypt = options;
        self
    }

    /// As the trait object producers and consumers take.
    pub fn shared(self) -> Arc<dyn MessageCipher> {
        Arc::new(self)
    }
}

fn wrap(error: crate::Error) -> CipherError {
    let retryable = error.is_retryable();
    CipherError::new(error, retryable)
}

#[crate::async_trait]
impl MessageCipher for ClientCipher {
    async fn encrypt(
        &self,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, CipherError> {
        let mut options = self.encrypt.clone();
        options.encryption_context = context.clone();
        self.client
            .encrypt(&*self.cmm, plaintext)
            .options(options)
            .await
            .map(crate::Encrypted::into_ciphertext)
            .map_err(wrap)
    }

    async fn decrypt(&self, message: &[u8]) -> Result<Opened, CipherError> {
        let decrypted = self
            .client
            .decrypt(&*self.cmm, message)
            .options(self.decrypt.clone())
            .await
            .map_err(wrap)?;
        let context = decrypted.encryption_context().clone();
        Ok(Opened::new(decrypted.into_plaintext(), context))
    }
}
