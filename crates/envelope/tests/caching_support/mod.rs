//! Test keyrings that count, delay and fail on demand.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use envelope::keyring::Error;
use envelope::{
    DecryptionMaterials, EncryptedDataKey, EncryptionMaterials, Keyring, RawAesKeyring,
    SecretBytes, async_trait,
};

/// A raw AES keyring that counts its calls, can take a while (asynchronously) and can fail.
#[derive(Clone)]
pub struct CountingKeyring {
    inner: Arc<RawAesKeyring>,
    pub encrypt_calls: Arc<AtomicUsize>,
    pub decrypt_calls: Arc<AtomicUsize>,
    pub delay: Option<Duration>,
    pub fail: Arc<AtomicBool>,
}

impl CountingKeyring {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(
                RawAesKeyring::new("test", "counting", SecretBytes::from_slice(&[5; 32])).unwrap(),
            ),
            encrypt_calls: Arc::default(),
            decrypt_calls: Arc::default(),
            delay: None,
            fail: Arc::default(),
        }
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn encrypts(&self) -> usize {
        self.encrypt_calls.load(Ordering::SeqCst)
    }

    pub fn decrypts(&self) -> usize {
        self.decrypt_calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Keyring for CountingKeyring {
    async fn on_encrypt(&self, m: EncryptionMaterials) -> Result<EncryptionMaterials, Error> {
        self.encrypt_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Provider(
                envelope::ProviderError::new("test", "master key unavailable").retryable(true),
            ));
        }
        self.inner.on_encrypt(m).await
    }

    async fn on_decrypt(
        &self,
        m: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<DecryptionMaterials, Error> {
        self.decrypt_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        self.inner.on_decrypt(m, edks).await
    }
}
