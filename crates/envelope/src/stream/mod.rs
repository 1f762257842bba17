//! Streaming encryption and decryption in memory bounded by the frame length.
//!
//! - [`Client::encrypt_stream`] returns an [`EncryptingWriter`]: write plaintext into it, then
//!   [`EncryptingWriter::finish`] it.
//! - [`Client::decrypt_stream`] returns a [`DecryptingReader`]: read plaintext out of it until it
//!   returns end of input, which happens only once the whole message verified.
//! - With the `tokio` feature, [`Client::encrypt_async_stream`] and [`Client::decrypt_async_stream`]
//!   do the same over `AsyncWrite` / `AsyncRead`.
//!
//! Release rules: a regular frame's plaintext is released once its tag verifies; the final frame of
//! a signed message (and a non-framed body) only after the signature verifies. Until the reader
//! reports end of input, everything it released is unverified by the signature.
//! [`DecryptStream::unsigned_only`] rejects signed messages right after the header, so that every
//! released byte is final. A stream cut at any byte is an error, never a short plaintext that looks
//! complete, and bytes after a complete message are an error.
//!
//! ```
//! use envelope::blocking::Client;
//! use envelope::{AlgorithmSuite, RawAesKeyring, SecretBytes};
//! use std::io::{Read, Write};
//!
//! let keyring = RawAesKeyring::new("app", "key", SecretBytes::random(32)?)?;
//! let client = Client::new();
//!
//! let mut writer = client.encrypt_stream(&keyring, Vec::new()).frame_length(1024).run()?;
//! for chunk in [&b"first part, "[..], b"second part"] {
//!     writer.write_all(chunk)?;
//! }
//! let message = writer.finish()?;
//!
//! let mut reader = client.decrypt_stream(&keyring, &message[..]).run()?;
//! let mut plaintext = String::new();
//! reader.read_to_string(&mut plaintext)?;
//! assert_eq!(plaintext, "first part, second part");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod core;
mod io;
#[cfg(feature = "tokio")]
mod tokio;

use std::future::IntoFuture;
use std::io::{Read, Write};
use std::marker::PhantomData;

use envelope_format::{
    AlgorithmSuite, DEFAULT_FRAME_LENGTH, EncryptionContext, Framing, MessageId,
};
use envelope_keyring::MaterialsManager;

use self::core::{DecryptCore, EncryptCore, HeaderCollector};
pub use self::io::{DecryptingReader, EncryptingWriter};
#[cfg(feature = "tokio")]
pub use self::tokio::{
    AsyncDecryptStream, AsyncDecryptingReader, AsyncEncryptStream, AsyncEncryptingWriter,
};
use crate::Error;
use crate::client::{Async, Blocking, BoxFuture, Client};
use crate::message::{self, EncryptParams, header_limits};

/// Settings shared by the streaming encryption builders.
pub(crate) struct EncryptSettings {
    pub(crate) encryption_context: EncryptionContext,
    pub(crate) suite: Option<AlgorithmSuite>,
    pub(crate) frame_length: u32,
    pub(crate) bound: Option<u64>,
    pub(crate) message_id: Option<MessageId>,
}

impl Default for EncryptSettings {
    fn default() -> Self {
        Self {
            encryption_context: EncryptionContext::new(),
            suite: None,
            frame_length: DEFAULT_FRAME_LENGTH,
            bound: None,
            message_id: None,
        }
    }
}

impl EncryptSettings {
    /// Get materials and prepare the sans-I/O core.
    pub(crate) async fn start(
        self,
        client: &Client,
        cmm: &dyn MaterialsManager,
    ) -> Result<(EncryptCore, EncryptionContext), Error> {
        let params = EncryptParams {
            encryption_context: self.encryption_context,
            suite: self.suite,
            frame_length: self.frame_length,
            max_plaintext_length: self.bound,
            message_id: self.message_id,
        };
        let (writer, materials) = message::start_encryption(&client.config, cmm, params).await?;
        Ok((
            EncryptCore::new(writer, self.bound),
            materials.encryption_context().clone(),
        ))
    }
}

/// Settings shared by the streaming decryption builders.
#[derive(Default)]
pub(crate) struct DecryptSettings {
    pub(crate) reproduced_encryption_context: Option<EncryptionContext>,
    pub(crate) unsigned_only: bool,
}

impl DecryptSettings {
    /// Once the header is read: check it, get materials and prepare the sans-I/O core.
    pub(crate) async fn start(
        self,
        client: &Client,
        cmm: &dyn MaterialsManager,
        header: &envelope_format::Header,
        leftover: Vec<u8>,
    ) -> Result<(DecryptCore, EncryptionContext), Error> {
        let suite = header.body().suite();
        if self.unsigned_only && suite.is_signed() {
            return Err(Error::SignedMessageRejected(suite));
        }
        let max = client.config.max_frame_length;
        if let Framing::Framed(length) = header.body().framing()
            && length.get() > max
        {
            return Err(Error::FrameTooLarge {
                length: u64::from(length.get()),
                max,
            });
        }
        let (mut reader, materials) = message::start_decryption(
            &client.config,
            cmm,
            header,
            self.reproduced_encryption_context,
        )
        .await?;
        reader.limit_unit_length(max);
        Ok((
            DecryptCore::new(reader, leftover, max),
            materials.encryption_context().clone(),
        ))
    }
}

macro_rules! encrypt_setters {
    () => {
        /// The encryption context (default empty).
        pub fn encryption_context(
            mut self,
            encryption_context: impl Into<EncryptionContext>,
        ) -> Self {
            self.settings.encryption_context = encryption_context.into();
            self
        }

        /// The algorithm suite (default: the commitment policy's).
        pub fn suite(mut self, suite: AlgorithmSuite) -> Self {
            self.settings.suite = Some(suite);
            self
        }

        /// The frame length (default 4096). Memory use is about twice the frame length.
        pub fn frame_length(mut self, frame_length: u32) -> Self {
            self.settings.frame_length = frame_length;
            self
        }

        /// Promise that the plaintext is at most `bound` bytes. The bound is passed to the
        /// materials manager as the maximum plaintext length (so a caching CMM can serve streams),
        /// and writing past it fails at once.
        pub fn plaintext_length_bound(mut self, bound: u64) -> Self {
            self.settings.bound = Some(bound);
            self
        }

        /// Test hook: a fixed message id.
        #[cfg(feature = "__test-hooks")]
        #[doc(hidden)]
        pub fn __message_id(mut self, message_id: MessageId) -> Self {
            self.settings.message_id = Some(message_id);
            self
        }
    };
}
#[cfg(feature = "tokio")]
pub(crate) use encrypt_setters;

macro_rules! decrypt_setters {
    () => {
        /// The encryption context the message must have been written with (see
        /// [`crate::Decrypt::encryption_context`]).
        pub fn encryption_context(
            mut self,
            encryption_context: impl Into<EncryptionContext>,
        ) -> Self {
            self.settings.reproduced_encryption_context = Some(encryption_context.into());
            self
        }

        /// Accept only unsigned suites: a signed message fails right after its header, so that
        /// every released byte is final.
        pub fn unsigned_only(mut self) -> Self {
            self.settings.unsigned_only = true;
            self
        }
    };
}
#[cfg(feature = "tokio")]
pub(crate) use decrypt_setters;

/// A streaming encryption request: set options, then `.await` it (or `.run()` it on a blocking
/// client) to get an [`EncryptingWriter`].
#[must_use = "a request does nothing until it is awaited or run"]
pub struct EncryptStream<'a, W, Mode = Async> {
    client: &'a Client,
    cmm: &'a dyn MaterialsManager,
    writer: W,
    settings: EncryptSettings,
    mode: PhantomData<Mode>,
}

impl<'a, W: Write, Mode> EncryptStream<'a, W, Mode> {
    pub(crate) fn new(client: &'a Client, cmm: &'a dyn MaterialsManager, writer: W) -> Self {
        Self {
            client,
            cmm,
            writer,
            settings: EncryptSettings::default(),
            mode: PhantomData,
        }
    }

    encrypt_setters!();

    pub(crate) fn into_blocking(self) -> EncryptStream<'a, W, Blocking> {
        EncryptStream {
            client: self.client,
            cmm: self.cmm,
            writer: self.writer,
            settings: self.settings,
            mode: PhantomData,
        }
    }

    async fn execute(self) -> Result<EncryptingWriter<W>, Error> {
        let (core, ec) = self.settings.start(self.client, self.cmm).await?;
        EncryptingWriter::new(core, self.writer, ec)
    }
}

impl<'a, W: Write + Send + 'a> IntoFuture for EncryptStream<'a, W, Async> {
    type Output = Result<EncryptingWriter<W>, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl<W: Write> EncryptStream<'_, W, Blocking> {
    /// Get materials, write the header and return the writer.
    pub fn run(self) -> Result<EncryptingWriter<W>, Error> {
        crate::blocking::block_on(self.execute())
    }
}

/// A streaming decryption request: set options, then `.await` it (or `.run()` it on a blocking
/// client) to get a [`DecryptingReader`]. The header is read from the source (with blocking reads)
/// and authenticated first.
#[must_use = "a request does nothing until it is awaited or run"]
pub struct DecryptStream<'a, R, Mode = Async> {
    client: &'a Client,
    cmm: &'a dyn MaterialsManager,
    reader: R,
    settings: DecryptSettings,
    mode: PhantomData<Mode>,
}

impl<'a, R: Read, Mode> DecryptStream<'a, R, Mode> {
    pub(crate) fn new(client: &'a Client, cmm: &'a dyn MaterialsManager, reader: R) -> Self {
        Self {
            client,
            cmm,
            reader,
            settings: DecryptSettings::default(),
            mode: PhantomData,
        }
    }

    decrypt_setters!();

    pub(crate) fn into_blocking(self) -> DecryptStream<'a, R, Blocking> {
        DecryptStream {
            client: self.client,
            cmm: self.cmm,
            reader: self.reader,
            settings: self.settings,
            mode: PhantomData,
        }
    }

    async fn execute(mut self) -> Result<DecryptingReader<R>, Error> {
        let mut collector = HeaderCollector::new(header_limits(&self.client.config));
        let (header, leftover) = loop {
            let space = collector.space();
            let n = loop {
                match self.reader.read(space) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if let Some(done) = collector.filled(n)? {
                break done;
            }
        };
        let (core, ec) = self
            .settings
            .start(self.client, self.cmm, &header, leftover)
            .await?;
        Ok(DecryptingReader::new(core, self.reader, header, ec))
    }
}

impl<'a, R: Read + Send + 'a> IntoFuture for DecryptStream<'a, R, Async> {
    type Output = Result<DecryptingReader<R>, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl<'a, R: Read + 'a> DecryptStream<'a, R, Blocking> {
    /// Read and authenticate the header, get materials and return the reader.
    pub fn run(self) -> Result<DecryptingReader<R>, Error> {
        crate::blocking::block_on(self.execute())
    }
}

impl Client {
    /// Encrypt a stream into `writer`: returns a request that yields an [`EncryptingWriter`].
    pub fn encrypt_stream<'a, W: Write>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        writer: W,
    ) -> EncryptStream<'a, W> {
        EncryptStream::new(self, cmm, writer)
    }

    /// Decrypt a stream from `reader`: returns a request that yields a [`DecryptingReader`].
    pub fn decrypt_stream<'a, R: Read>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        reader: R,
    ) -> DecryptStream<'a, R> {
        DecryptStream::new(self, cmm, reader)
    }
}
