//! The client, its builder, and one-shot encryption and decryption.

use std::fmt;
use std::future::IntoFuture;

use envelope_format::{AlgorithmSuite, CommitmentPolicy, EncryptionContext, Header};
use envelope_keyring::MaterialsManager;

use crate::config::{ClientConfig, SignatureHashing};
use crate::error::Error;
use crate::exec::{Async, Blocking, BoxFuture, block_on};
use crate::message;
use crate::request::{Decryption, Encryption, InMemory};

/// Encrypts and decrypts messages in the AWS Encryption SDK format.
///
/// A client carries the commitment policy (default `REQUIRE_ENCRYPT_REQUIRE_DECRYPT`) and the limits
/// applied to untrusted messages. It is cheap to clone and holds no keys: the keyring or materials
/// manager is passed to each call.
///
/// ```
/// use envelope::{Client, EncryptionContext, RawAesKeyring, SecretBytes};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let keyring = RawAesKeyring::new("my-app", "key-1", SecretBytes::random(32)?)?;
/// let client = Client::new();
/// let message = client
///     .encrypt(&keyring, b"hello")
///     .encryption_context(EncryptionContext::from_iter([("tenant", "acme")]))
///     .await?;
/// let decrypted = client.decrypt(&keyring, message.ciphertext()).await?;
/// assert_eq!(decrypted.plaintext(), b"hello");
/// assert_eq!(decrypted.encryption_context().get("tenant"), Some("acme"));
/// # Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    pub(crate) config: ClientConfig,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("commitment_policy", &self.config.commitment_policy)
            .field(
                "max_encrypted_data_keys",
                &self.config.max_encrypted_data_keys,
            )
            .field("max_header_len", &self.config.max_header_len)
            .field("max_frame_length", &self.config.max_frame_length)
            .field("require_fips", &self.config.require_fips)
            .finish()
    }
}

impl Client {
    /// A client with the default commitment policy and limits.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configure a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: ClientConfig::default(),
        }
    }

    /// The commitment policy.
    pub fn commitment_policy(&self) -> CommitmentPolicy {
        self.config.commitment_policy
    }

    /// The maximum number of encrypted data keys, if limited.
    pub fn max_encrypted_data_keys(&self) -> Option<u16> {
        self.config.max_encrypted_data_keys
    }

    /// The largest frame length this client encrypts with and streams.
    pub fn max_frame_length(&self) -> u32 {
        self.config.max_frame_length
    }

    /// Whether every operation first checks that the FIPS module is in approved mode.
    pub fn requires_fips(&self) -> bool {
        self.config.require_fips
    }

    /// Encrypt `plaintext` with materials from `cmm` (a keyring or a materials manager).
    ///
    /// Returns a request to refine (encryption context, suite, frame length) and `.await`.
    pub fn encrypt<'a>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        plaintext: &'a [u8],
    ) -> Encrypt<'a> {
        Encryption::new(&self.config, cmm, InMemory::new(plaintext))
    }

    /// Decrypt a whole message with materials from `cmm` (a keyring or a materials manager).
    ///
    /// Nothing is returned until every frame, the key commitment and the signature verified.
    pub fn decrypt<'a>(&'a self, cmm: &'a dyn MaterialsManager, message: &'a [u8]) -> Decrypt<'a> {
        Decryption::new(&self.config, cmm, InMemory::new(message))
    }
}

/// Builds a [`Client`].
#[derive(Clone, Debug)]
#[must_use]
pub struct ClientBuilder {
    config: ClientConfig,
}

impl ClientBuilder {
    /// The commitment policy (default `REQUIRE_ENCRYPT_REQUIRE_DECRYPT`).
    pub fn commitment_policy(mut self, policy: CommitmentPolicy) -> Self {
        self.config.commitment_policy = policy;
        self
    }

    /// Refuse to encrypt with, or decrypt, messages with more encrypted data keys than this
    /// (default [`DEFAULT_MAX_ENCRYPTED_DATA_KEYS`](crate::DEFAULT_MAX_ENCRYPTED_DATA_KEYS), 10); `None` removes the limit.
    ///
    /// Decryption stops as soon as the header's count is read, before any key is tried. The
    /// limit bounds the work an unauthenticated message can cause: a keyring tries every
    /// encrypted data key that names it, each an RSA private-key operation for an RSA keyring
    /// (milliseconds for RSA-4096), so a 1 MiB header of ~2,000 forged keys would otherwise cost
    /// seconds per message. Raise it for messages encrypted to more recipients than that.
    pub fn max_encrypted_data_keys(mut self, max: Option<u16>) -> Self {
        self.config.max_encrypted_data_keys = max;
        self
    }

    /// The largest frame length this client writes, and the largest body unit (a frame, or a
    /// non-framed body) its streaming decryptors buffer (default [`DEFAULT_MAX_FRAME_LENGTH`](crate::DEFAULT_MAX_FRAME_LENGTH),
    /// 64 MiB).
    ///
    /// Encrypting with a longer frame length fails with [`Error::FrameTooLarge`] before any key
    /// is requested, so everything a default client writes, a default client can stream back.
    /// Streaming decryption of a message with longer frames fails right after its header, before
    /// any key is requested (a non-framed body: when its length is read); one-shot decryption,
    /// which holds the whole message already, reads any frame length.
    pub fn max_frame_length(mut self, max: u32) -> Self {
        self.config.max_frame_length = max;
        self
    }

    /// Refuse to decrypt messages whose header is longer than this (default 1 MiB); `None` removes
    /// the limit.
    pub fn max_header_len(mut self, max: Option<usize>) -> Self {
        self.config.max_header_len = max;
        self
    }

    /// Where the signature's hash of signed messages is computed (default
    /// [`SignatureHashing::for_this_machine`]: large messages on a spare core where there is
    /// one).
    pub fn signature_hashing(mut self, hashing: SignatureHashing) -> Self {
        self.config.signature_hashing = hashing;
        self
    }

    /// Refuse to encrypt or decrypt unless the cryptography runs on the AWS-LC FIPS module in
    /// approved mode ([`crypto::fips_status`](crate::crypto::fips_status)); default
    /// `false`.
    ///
    /// Every operation checks first, before the materials manager is asked for keys, and fails
    /// with [`Error::FipsRequired`] otherwise. Only a build with the `fips` feature has the module:
    /// this setting turns a build that was meant to be one, but is not, into a clear error.
    pub fn require_fips(mut self, require: bool) -> Self {
        self.config.require_fips = require;
        self
    }

    /// The client.
    pub fn build(self) -> Client {
        Client {
            config: self.config,
        }
    }
}

/// A one-shot encryption request; set options, then `.await` it (or `.run()` it on a blocking
/// client).
pub type Encrypt<'a, Mode = Async> = Encryption<'a, InMemory<'a>, Mode>;

/// A one-shot decryption request; optionally give the expected encryption context, then `.await`
/// it (or `.run()` it on a blocking client). Nothing is returned until every frame, the key
/// commitment and the signature verified.
pub type Decrypt<'a, Mode = Async> = Decryption<'a, InMemory<'a>, Mode>;

impl<'a, Mode> Encrypt<'a, Mode> {
    async fn execute(self) -> Result<Encrypted, Error> {
        let plaintext = self.job.input;
        let len = plaintext.len() as u64;
        if let Some(bound) = self.options.plaintext_length_bound
            && len > bound
        {
            return Err(Error::PlaintextBoundExceeded(bound));
        }
        let (writer, materials) =
            message::start_encryption(self.config, self.cmm, self.options, Some(len)).await?;
        let (header, ciphertext) = writer.encrypt_all(plaintext, self.job.buffer)?;
        Ok(Encrypted {
            ciphertext,
            header,
            encryption_context: materials.encryption_context().clone(),
        })
    }
}

impl<'a> IntoFuture for Encrypt<'a, Async> {
    type Output = Result<Encrypted, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl Encrypt<'_, Blocking> {
    /// Run the encryption on this thread.
    pub fn run(self) -> Result<Encrypted, Error> {
        block_on(self.execute())
    }
}

impl<'a, Mode> Decrypt<'a, Mode> {
    async fn execute(self) -> Result<Decrypted, Error> {
        let message = self.job.input;
        let (header, at) = message::parse_complete_header(self.config, message)?;
        let (reader, materials) =
            message::start_decryption(self.config, self.cmm, &header, self.options, None).await?;
        let plaintext = reader.decrypt_all(message, at, self.job.buffer)?;
        Ok(Decrypted {
            plaintext,
            encryption_context: materials.encryption_context().clone(),
            header,
        })
    }
}

impl<'a> IntoFuture for Decrypt<'a, Async> {
    type Output = Result<Decrypted, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl Decrypt<'_, Blocking> {
    /// Run the decryption on this thread.
    pub fn run(self) -> Result<Decrypted, Error> {
        block_on(self.execute())
    }
}

/// An encrypted message.
#[derive(Clone, Debug)]
pub struct Encrypted {
    ciphertext: Vec<u8>,
    header: Header,
    encryption_context: EncryptionContext,
}

impl Encrypted {
    /// The message bytes.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The message bytes, by value.
    pub fn into_ciphertext(self) -> Vec<u8> {
        self.ciphertext
    }

    /// The algorithm suite used.
    pub fn suite(&self) -> AlgorithmSuite {
        self.header.body().suite()
    }

    /// The full encryption context the message is bound to (including `aws-crypto-public-key` and
    /// keys left out of the header by a required-encryption-context CMM).
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// The message header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// A decrypted, fully authenticated message.
pub struct Decrypted {
    plaintext: Vec<u8>,
    encryption_context: EncryptionContext,
    header: Header,
}

impl Decrypted {
    /// The plaintext.
    pub fn plaintext(&self) -> &[u8] {
        &self.plaintext
    }

    /// The plaintext, by value.
    pub fn into_plaintext(self) -> Vec<u8> {
        self.plaintext
    }

    /// The encryption context the message was authenticated with: the stored pairs plus any
    /// reproduced ones.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// The algorithm suite of the message.
    pub fn suite(&self) -> AlgorithmSuite {
        self.header.body().suite()
    }

    /// The parsed message header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext_len", &self.plaintext.len())
            .field("encryption_context", &self.encryption_context)
            .field("suite", &self.suite())
            .finish_non_exhaustive()
    }
}
