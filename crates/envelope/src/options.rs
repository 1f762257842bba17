//! The options of an encryption and of a decryption: one struct per direction, shared by the
//! one-shot, streaming and async streaming requests.

use std::num::NonZeroU32;

use envelope_format::{
    AlgorithmSuite, DEFAULT_FRAME_LENGTH, EncryptionContext, FinalFrame, MessageId,
};

/// The default frame length, 4096 bytes.
pub const DEFAULT_FRAME: NonZeroU32 = match NonZeroU32::new(DEFAULT_FRAME_LENGTH) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// How to encrypt: everything besides the plaintext and the materials manager.
///
/// Every encryption request ([`Encrypt`](crate::Encrypt), [`EncryptStream`](crate::stream::EncryptStream),
/// the async stream) carries one and has a setter for each field;
/// [`Encryption::options`](crate::Encryption::options) sets them all at once, e.g. from a value kept in configuration.
///
/// ```
/// use std::num::NonZeroU32;
/// use envelope::{EncryptOptions, EncryptionContext};
///
/// let mut options = EncryptOptions::default();
/// options.encryption_context = EncryptionContext::from_iter([("tenant", "acme")]);
/// options.frame_length = NonZeroU32::new(64 * 1024).ok_or("zero")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptOptions {
    /// The encryption context (default empty). Keys must not start with `aws-crypto-`; keys and
    /// values must not be empty.
    pub encryption_context: EncryptionContext,
    /// The algorithm suite (default: the commitment policy's, `0x0578` unless the policy forbids
    /// commitment).
    pub suite: Option<AlgorithmSuite>,
    /// The frame length in bytes (default 4096), at most the client's
    /// [`max_frame_length`](crate::ClientBuilder::max_frame_length).
    pub frame_length: NonZeroU32,
    /// How a plaintext that is an exact multiple of the frame length ends (default
    /// [`FinalFrame::Full`]); [`FinalFrame::Empty`] for messages that the Python ESDK before 4.0
    /// and aws-encryption-sdk-cli must read.
    pub final_frame: FinalFrame,
    /// A promise that the plaintext is at most this many bytes. It is passed to the materials
    /// manager as the maximum plaintext length (so a caching CMM can serve streams), and more
    /// plaintext fails at once. One-shot encryption knows its length and passes that instead.
    pub plaintext_length_bound: Option<u64>,
    /// Test hook: a fixed message id.
    pub(crate) message_id: Option<MessageId>,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        Self {
            encryption_context: EncryptionContext::new(),
            suite: None,
            frame_length: DEFAULT_FRAME,
            final_frame: FinalFrame::Full,
            plaintext_length_bound: None,
            message_id: None,
        }
    }
}

/// How to decrypt: everything besides the message and the materials manager.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecryptOptions {
    /// The encryption context the message must have been written with. Every pair must match
    /// the message; pairs that were authenticated but not stored (required keys) must be given.
    pub encryption_context: Option<EncryptionContext>,
    /// Accept only unsigned suites: a signed message fails right after its header, before any
    /// key is requested, so that every byte a stream releases is final.
    pub unsigned_only: bool,
}
