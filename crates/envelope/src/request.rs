//! Request builders: one encryption and one decryption type, generic over what they read and
//! write (a [`Job`](Encryption): in memory, a `std::io` stream, a tokio stream) and over how they
//! run ([`Async`] or [`Blocking`]). The option setters are written once, here.

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU32;

use envelope_format::{AlgorithmSuite, EncryptionContext};
use envelope_keyring::MaterialsManager;

use crate::config::ClientConfig;
use crate::exec::Async;
use crate::options::{DecryptOptions, EncryptOptions};

/// A request: what to read and write (the `Job`: in memory, a `std::io` stream, a tokio stream),
/// its options, and how it runs (`Mode`: [`Async`] or [`Blocking`](crate::Blocking)). Named by
/// direction: [`Encryption`] and [`Decryption`].
#[must_use = "a request does nothing until it is awaited or run"]
pub struct Request<'a, Options, Job, Mode = Async> {
    pub(crate) config: &'a ClientConfig,
    pub(crate) cmm: &'a dyn MaterialsManager,
    pub(crate) options: Options,
    pub(crate) job: Job,
    mode: PhantomData<Mode>,
}

/// An encryption to perform: set options, then `.await` it (or `.run()` it on a blocking client).
///
/// Obtained from [`Client::encrypt`](crate::Client::encrypt) ([`Encrypt`](crate::Encrypt)),
/// [`Client::encrypt_stream`](crate::Client::encrypt_stream) and, with the `tokio` feature,
/// `Client::encrypt_async_stream`.
pub type Encryption<'a, Job, Mode = Async> = Request<'a, EncryptOptions, Job, Mode>;

/// A decryption to perform: optionally give the expected encryption context, then `.await` it
/// (or `.run()` it on a blocking client).
///
/// Obtained from [`Client::decrypt`](crate::Client::decrypt) ([`Decrypt`](crate::Decrypt)),
/// [`Client::decrypt_stream`](crate::Client::decrypt_stream) and, with the `tokio` feature,
/// `Client::decrypt_async_stream`.
pub type Decryption<'a, Job, Mode = Async> = Request<'a, DecryptOptions, Job, Mode>;

impl<'a, Options: Default, Job, Mode> Request<'a, Options, Job, Mode> {
    pub(crate) fn new(config: &'a ClientConfig, cmm: &'a dyn MaterialsManager, job: Job) -> Self {
        Self {
            config,
            cmm,
            options: Options::default(),
            job,
            mode: PhantomData,
        }
    }
}

impl<'a, Options, Job, Mode> Request<'a, Options, Job, Mode> {
    /// The same request, run another way.
    pub(crate) fn into_mode<M>(self) -> Request<'a, Options, Job, M> {
        Request {
            config: self.config,
            cmm: self.cmm,
            options: self.options,
            job: self.job,
            mode: PhantomData,
        }
    }

    /// All options at once ([`EncryptOptions`] or [`DecryptOptions`]).
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }
}

impl<Job, Mode> Encryption<'_, Job, Mode> {
    /// The encryption context (default empty). Keys must not start with `aws-crypto-`; keys and
    /// values must not be empty.
    pub fn encryption_context(mut self, encryption_context: impl Into<EncryptionContext>) -> Self {
        self.options.encryption_context = encryption_context.into();
        self
    }

    /// The algorithm suite (default: the commitment policy's, `0x0578` unless the policy forbids
    /// commitment).
    pub fn suite(mut self, suite: AlgorithmSuite) -> Self {
        self.options.suite = Some(suite);
        self
    }

    /// The frame length in bytes (default 4096), at most the client's maximum frame length.
    /// A stream holds about twice the frame length in memory.
    pub fn frame_length(mut self, frame_length: NonZeroU32) -> Self {
        self.options.frame_length = frame_length;
        self
    }

    /// How a plaintext that is an exact multiple of the frame length ends (default
    /// [`FinalFrame::Full`](envelope_format::FinalFrame::Full), the specification's
    /// recommendation). Choose [`FinalFrame::Empty`](envelope_format::FinalFrame::Empty) when the
    /// Python ESDK before 4.0 or aws-encryption-sdk-cli must decrypt the message: they refuse a
    /// full final frame.
    pub fn final_frame(mut self, final_frame: envelope_format::FinalFrame) -> Self {
        self.options.final_frame = final_frame;
        self
    }

    /// Promise that the plaintext is at most `bound` bytes: the bound is passed to the materials
    /// manager as the maximum plaintext length (so a caching CMM can serve streams), and more
    /// plaintext fails at once.
    pub fn plaintext_length_bound(mut self, bound: u64) -> Self {
        self.options.plaintext_length_bound = Some(bound);
        self
    }

    /// Test hook: a fixed message id, for byte-exact known-answer tests.
    #[cfg(feature = "__test-hooks")]
    #[doc(hidden)]
    pub fn __message_id(mut self, message_id: envelope_format::MessageId) -> Self {
        self.options.message_id = Some(message_id);
        self
    }
}

impl<Job, Mode> Decryption<'_, Job, Mode> {
    /// The encryption context the message must have been written with. Every pair must match the
    /// message; pairs that were authenticated but not stored (required keys) must be given here.
    pub fn encryption_context(mut self, encryption_context: impl Into<EncryptionContext>) -> Self {
        self.options.encryption_context = Some(encryption_context.into());
        self
    }

    /// Accept only unsigned suites: a signed message fails right after its header is parsed,
    /// before any key is requested, so that every byte a stream releases is final.
    pub fn unsigned_only(mut self) -> Self {
        self.options.unsigned_only = true;
        self
    }
}

impl<Options: fmt::Debug, Job, Mode> fmt::Debug for Request<'_, Options, Job, Mode> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The job of a one-shot request: the whole input in memory, and the buffer the output goes to.
#[derive(Debug)]
pub struct InMemory<'a> {
    pub(crate) input: &'a [u8],
    pub(crate) buffer: Vec<u8>,
}

impl<'a> InMemory<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            buffer: Vec::new(),
        }
    }
}

impl<'a, Options, Mode> Request<'a, Options, InMemory<'a>, Mode> {
    /// Write the output (the message, or the plaintext) into this buffer, cleared first, instead
    /// of a new one. Reusing one buffer across messages saves an allocation per message, and for
    /// large messages the page faults of fresh memory, which can cost more than the crypto itself.
    /// If decryption fails, the buffer is wiped and dropped.
    pub fn reuse_buffer(mut self, buffer: Vec<u8>) -> Self {
        self.job.buffer = buffer;
        self
    }
}
