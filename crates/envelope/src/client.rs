//! The client: commitment policy, limits, and one-shot encrypt and decrypt.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::OnceLock;

use envelope_format::{
    AlgorithmSuite, CommitmentPolicy, DEFAULT_FRAME_LENGTH, DEFAULT_MAX_HEADER_LEN,
    EncryptionContext, Header, MessageId,
};
use envelope_keyring::MaterialsManager;

use crate::Error;
use crate::message::{self, EncryptParams};

/// Configuration shared by every operation of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientConfig {
    pub(crate) commitment_policy: CommitmentPolicy,
    pub(crate) max_encrypted_data_keys: Option<u16>,
    pub(crate) max_header_len: Option<usize>,
    pub(crate) max_frame_length: u32,
    pub(crate) signature_hashing: SignatureHashing,
}

/// The default [`ClientBuilder::max_frame_length`]: 64 MiB.
pub const DEFAULT_MAX_FRAME_LENGTH: u32 = 64 << 20;

/// The default [`ClientBuilder::max_encrypted_data_keys`]: 10.
pub const DEFAULT_MAX_ENCRYPTED_DATA_KEYS: u16 = 10;

/// Where the SHA-2 hash that a signed message's signature covers is computed.
///
/// Every byte of a message in a signed suite (ECDSA) goes through SHA-256 or SHA-384. Where SHA-2
/// is slow next to AES-GCM (AWS-LC runs SHA-512 in portable code on AMD CPUs, ~0.5 GB/s against
/// ~3 GB/s for AES-GCM) hashing on a second core while this one encrypts or decrypts makes large
/// signed messages up to ~17 % faster. Messages are byte-for-byte the same whichever is chosen.
///
/// Helper threads of either kind run at most one per spare CPU in the whole process
/// ([`std::thread::available_parallelism`] minus one); a message that finds none free hashes
/// inline, so a machine that is busy already is not oversubscribed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureHashing {
    /// Always on the calling thread.
    Inline,
    /// One-shot encryption and decryption of a message whose body is 1 MiB or more hash on a
    /// scoped thread that reads the message where it lies (no copies) and ends with the call;
    /// streams hash inline. Pinned to one core this measured the same as inline.
    OneShot,
    /// As [`SignatureHashing::OneShot`], and a stream, once past 256 KiB, hands its hashing to a
    /// helper thread fed with copies of the data (pinned to one core, ~3 % slower than inline).
    ///
    /// The default where the process may use more than one CPU.
    Background,
}

impl SignatureHashing {
    /// [`SignatureHashing::Background`] where the process may use more than one CPU, else
    /// [`SignatureHashing::Inline`] (looked up once per process).
    pub fn for_this_machine() -> Self {
        static MULTI_CORE: OnceLock<bool> = OnceLock::new();
        let multi_core = *MULTI_CORE
            .get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1));
        if multi_core {
            Self::Background
        } else {
            Self::Inline
        }
    }

    /// One-shot operations may hash on a scoped thread.
    pub(crate) fn one_shot_parallel(self) -> bool {
        self != Self::Inline
    }

    /// Streams may hash on a helper thread.
    pub(crate) fn stream_background(self) -> bool {
        self == Self::Background
    }
}

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
            config: ClientConfig {
                commitment_policy: CommitmentPolicy::default(),
                max_encrypted_data_keys: Some(DEFAULT_MAX_ENCRYPTED_DATA_KEYS),
                max_header_len: Some(DEFAULT_MAX_HEADER_LEN),
                max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
                signature_hashing: SignatureHashing::for_this_machine(),
            },
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

    /// Encrypt `plaintext` with materials from `cmm` (a keyring or a materials manager).
    ///
    /// Returns a request to refine (encryption context, suite, frame length) and `.await`.
    pub fn encrypt<'a>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        plaintext: &'a [u8],
    ) -> Encrypt<'a> {
        Encrypt::new(self, cmm, plaintext)
    }

    /// Decrypt a whole message with materials from `cmm` (a keyring or a materials manager).
    ///
    /// Nothing is returned until every frame, the key commitment and the signature verified.
    pub fn decrypt<'a>(&'a self, cmm: &'a dyn MaterialsManager, message: &'a [u8]) -> Decrypt<'a> {
        Decrypt::new(self, cmm, message)
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
    /// (default [`DEFAULT_MAX_ENCRYPTED_DATA_KEYS`], 10); `None` removes the limit.
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
    /// non-framed body) its streaming decryptors buffer (default [`DEFAULT_MAX_FRAME_LENGTH`],
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

    /// The client.
    pub fn build(self) -> Client {
        Client {
            config: self.config,
        }
    }
}

/// Marks requests that are `.await`ed.
#[derive(Debug)]
pub enum Async {}

/// Marks requests run to completion on the calling thread (see [`crate::blocking`]).
#[derive(Debug)]
pub enum Blocking {}

/// A boxed future, as returned by request builders.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An encryption request; set options, then `.await` it (or `.run()` it on a blocking client).
#[must_use = "a request does nothing until it is awaited or run"]
pub struct Encrypt<'a, Mode = Async> {
    client: &'a Client,
    cmm: &'a dyn MaterialsManager,
    plaintext: &'a [u8],
    encryption_context: EncryptionContext,
    suite: Option<AlgorithmSuite>,
    frame_length: u32,
    message_id: Option<MessageId>,
    buffer: Vec<u8>,
    mode: PhantomData<Mode>,
}

impl<'a, Mode> Encrypt<'a, Mode> {
    pub(crate) fn new(
        client: &'a Client,
        cmm: &'a dyn MaterialsManager,
        plaintext: &'a [u8],
    ) -> Self {
        Self {
            client,
            cmm,
            plaintext,
            encryption_context: EncryptionContext::new(),
            suite: None,
            frame_length: DEFAULT_FRAME_LENGTH,
            message_id: None,
            buffer: Vec::new(),
            mode: PhantomData,
        }
    }

    /// Write the message into this buffer (cleared first) instead of a new one. Reusing one
    /// buffer across messages saves an allocation per message, and for large messages the page
    /// faults of fresh memory, which can cost more than the encryption itself.
    pub fn reuse_buffer(mut self, buffer: Vec<u8>) -> Self {
        self.buffer = buffer;
        self
    }

    /// The encryption context (default empty). Keys must not start with `aws-crypto-`; keys and
    /// values must not be empty.
    pub fn encryption_context(mut self, encryption_context: impl Into<EncryptionContext>) -> Self {
        self.encryption_context = encryption_context.into();
        self
    }

    /// The algorithm suite (default: the commitment policy's, `0x0578` unless the policy forbids
    /// commitment).
    pub fn suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = Some(suite);
        self
    }

    /// The frame length in bytes (default 4096; 1 to 2^32 - 1).
    pub fn frame_length(mut self, frame_length: u32) -> Self {
        self.frame_length = frame_length;
        self
    }

    /// Test hook: a fixed message id, for byte-exact known-answer tests.
    #[cfg(feature = "__test-hooks")]
    #[doc(hidden)]
    pub fn __message_id(mut self, message_id: MessageId) -> Self {
        self.message_id = Some(message_id);
        self
    }

    pub(crate) fn into_blocking(self) -> Encrypt<'a, Blocking> {
        Encrypt {
            client: self.client,
            cmm: self.cmm,
            plaintext: self.plaintext,
            encryption_context: self.encryption_context,
            suite: self.suite,
            frame_length: self.frame_length,
            message_id: self.message_id,
            buffer: self.buffer,
            mode: PhantomData,
        }
    }

    async fn execute(self) -> Result<Encrypted, Error> {
        let params = EncryptParams {
            encryption_context: self.encryption_context,
            suite: self.suite,
            frame_length: self.frame_length,
            max_plaintext_length: Some(self.plaintext.len() as u64),
            message_id: self.message_id,
        };
        let (writer, materials) =
            message::start_encryption(&self.client.config, self.cmm, params).await?;
        let (header, ciphertext) = writer.encrypt_all(self.plaintext, self.buffer)?;
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
        crate::blocking::block_on(self.execute())
    }
}

impl<Mode> fmt::Debug for Encrypt<'_, Mode> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encrypt")
            .field("plaintext_len", &self.plaintext.len())
            .field("encryption_context", &self.encryption_context)
            .field("suite", &self.suite)
            .field("frame_length", &self.frame_length)
            .finish_non_exhaustive()
    }
}

/// A decryption request; optionally give the expected encryption context, then `.await` it.
#[must_use = "a request does nothing until it is awaited or run"]
pub struct Decrypt<'a, Mode = Async> {
    client: &'a Client,
    cmm: &'a dyn MaterialsManager,
    message: &'a [u8],
    reproduced_encryption_context: Option<EncryptionContext>,
    unsigned_only: bool,
    buffer: Vec<u8>,
    mode: PhantomData<Mode>,
}

impl<'a, Mode> Decrypt<'a, Mode> {
    pub(crate) fn new(
        client: &'a Client,
        cmm: &'a dyn MaterialsManager,
        message: &'a [u8],
    ) -> Self {
        Self {
            client,
            cmm,
            message,
            reproduced_encryption_context: None,
            unsigned_only: false,
            buffer: Vec::new(),
            mode: PhantomData,
        }
    }

    /// Write the plaintext into this buffer (cleared first) instead of a new one; see
    /// [`Encrypt::reuse_buffer`]. If decryption fails, the buffer is wiped and dropped.
    pub fn reuse_buffer(mut self, buffer: Vec<u8>) -> Self {
        self.buffer = buffer;
        self
    }

    /// The encryption context the message must have been written with. Every pair must match the
    /// message; pairs that were authenticated but not stored (required keys) must be given here.
    pub fn encryption_context(mut self, encryption_context: impl Into<EncryptionContext>) -> Self {
        self.reproduced_encryption_context = Some(encryption_context.into());
        self
    }

    /// Accept only unsigned suites: a signed message fails right after its header is parsed,
    /// before any key is requested.
    pub fn unsigned_only(mut self) -> Self {
        self.unsigned_only = true;
        self
    }

    pub(crate) fn into_blocking(self) -> Decrypt<'a, Blocking> {
        Decrypt {
            client: self.client,
            cmm: self.cmm,
            message: self.message,
            reproduced_encryption_context: self.reproduced_encryption_context,
            unsigned_only: self.unsigned_only,
            buffer: self.buffer,
            mode: PhantomData,
        }
    }

    async fn execute(self) -> Result<Decrypted, Error> {
        let config = &self.client.config;
        let message = self.message;
        let (header, at) = message::parse_complete_header(config, message)?;
        if self.unsigned_only && header.body().suite().is_signed() {
            return Err(Error::SignedMessageRejected(header.body().suite()));
        }
        let (reader, materials) = message::start_decryption(
            config,
            self.cmm,
            &header,
            self.reproduced_encryption_context,
        )
        .await?;
        let plaintext = reader.decrypt_all(message, at, self.buffer)?;
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
        crate::blocking::block_on(self.execute())
    }
}

impl<Mode> fmt::Debug for Decrypt<'_, Mode> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypt")
            .field("message_len", &self.message.len())
            .field(
                "reproduced_encryption_context",
                &self.reproduced_encryption_context,
            )
            .finish_non_exhaustive()
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
