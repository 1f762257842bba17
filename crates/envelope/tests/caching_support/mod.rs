//! Test keyrings that count, delay and fail on demand.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use envelope::keyring::Error;
use envelope::{
    CompleteDecryptionMaterials, DecryptionMaterials, EncryptedDataKey, EncryptionMaterials,
    Keyring, RawAesKeyring, SecretBytes, async_trait,
};

/// A raw AES keyring that counts its calls, can take a while (asynchronously) and can fail.
#[derive(Clone)]
pub struct CountingKeyring {
    inner: Arc<RawAesKeyring>,
    pub encrypt_calls: Arc<AtomicUsize>,
    pub decrypt_calls: Arc<AtomicUsize>,
    pub delay: Option<Duration>,
    pub fail: Arc<AtomicBool>,
    /// While set, encrypt calls wait (polling every millisecond) until it is cleared.
    pub hold: Arc<AtomicBool>,
    /// Encrypt calls in progress, and the most there ever were at once.
    pub in_progress: Arc<AtomicUsize>,
    pub most_at_once: Arc<AtomicUsize>,
    /// The name of the thread the last encrypt call ran on.
    pub last_thread: Arc<parking_lot::Mutex<Option<String>>>,
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
            hold: Arc::default(),
            in_progress: Arc::default(),
            most_at_once: Arc::default(),
            last_thread: Arc::default(),
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
        let now = self.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        *self.last_thread.lock() = std::thread::current().name().map(str::to_owned);
        let result = self.encrypt(m).await;
        self.in_progress.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn on_decrypt(
        &self,
        m: DecryptionMaterials,
        edks: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        self.decrypt_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        self.inner.on_decrypt(m, edks).await
    }
}

impl CountingKeyring {
    async fn encrypt(&self, m: EncryptionMaterials) -> Result<EncryptionMaterials, Error> {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        while self.hold.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Provider(
                envelope::ProviderError::new("test", "master key unavailable").retryable(true),
            ));
        }
        self.inner.on_encrypt(m).await
    }
}
