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
//! [`Decryption::unsigned_only`](crate::Decryption::unsigned_only) rejects signed messages right after the header, so that every
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
//! let frame = std::num::NonZeroU32::new(1024).ok_or("zero")?;
//! let mut writer = client.encrypt_stream(&keyring, Vec::new()).frame_length(frame).run()?;
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

use envelope_format::{EncryptionContext, Header};
use envelope_keyring::MaterialsManager;

use self::core::{DecryptCore, EncryptCore, HeaderCollector};
pub use self::io::{DecryptingReader, EncryptingWriter};
#[cfg(feature = "tokio")]
pub use self::tokio::{
    AsyncDecryptStream, AsyncDecryptingReader, AsyncEncryptStream, AsyncEncryptingWriter,
    FromAsyncReader, ToAsyncWriter,
};
use crate::client::Client;
use crate::config::ClientConfig;
use crate::error::Error;
use crate::exec::{Async, Blocking, BoxFuture, block_on};
use crate::message;
use crate::options::{DecryptOptions, EncryptOptions};
use crate::request::{Decryption, Encryption};

/// Get materials and prepare the sans-I/O encryption core (shared by the `std::io` and tokio
/// streams).
pub(crate) async fn start_encrypt_core(
    config: &ClientConfig,
    cmm: &dyn MaterialsManager,
    options: EncryptOptions,
) -> Result<(EncryptCore, EncryptionContext), Error> {
    let bound = options.plaintext_length_bound;
    let (writer, materials) = message::start_encryption(config, cmm, options, bound).await?;
    Ok((
        EncryptCore::new(writer, bound),
        materials.encryption_context().clone(),
    ))
}

/// Once the header is read: check it, get materials and prepare the sans-I/O decryption core.
pub(crate) async fn start_decrypt_core(
    config: &ClientConfig,
    cmm: &dyn MaterialsManager,
    header: &Header,
    leftover: Vec<u8>,
    options: DecryptOptions,
) -> Result<(DecryptCore, EncryptionContext), Error> {
    let max = config.max_frame_length;
    let (reader, materials) =
        message::start_decryption(config, cmm, header, options, Some(max)).await?;
    Ok((
        DecryptCore::new(reader, leftover, max),
        materials.encryption_context().clone(),
    ))
}

/// The job of a streaming encryption: the destination of the message.
#[derive(Debug)]
pub struct ToWriter<W>(W);

/// The job of a streaming decryption: the source of the message.
#[derive(Debug)]
pub struct FromReader<R>(R);

/// A streaming encryption request: set options, then `.await` it (or `.run()` it on a blocking
/// client) to get an [`EncryptingWriter`].
pub type EncryptStream<'a, W, Mode = Async> = Encryption<'a, ToWriter<W>, Mode>;

/// A streaming decryption request: set options, then `.await` it (or `.run()` it on a blocking
/// client) to get a [`DecryptingReader`]. The header is read from the source (with blocking reads)
/// and authenticated first.
pub type DecryptStream<'a, R, Mode = Async> = Decryption<'a, FromReader<R>, Mode>;

impl<W: Write, Mode> EncryptStream<'_, W, Mode> {
    async fn execute(self) -> Result<EncryptingWriter<W>, Error> {
        let (core, ec) = start_encrypt_core(self.config, self.cmm, self.options).await?;
        EncryptingWriter::new(core, self.job.0, ec)
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
        block_on(self.execute())
    }
}

impl<R: Read, Mode> DecryptStream<'_, R, Mode> {
    async fn execute(self) -> Result<DecryptingReader<R>, Error> {
        let mut reader = self.job.0;
        let mut collector = HeaderCollector::new(self.config.header_limits());
        let (header, leftover) = loop {
            let space = collector.space();
            let n = loop {
                match reader.read(space) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if let Some(done) = collector.filled(n)? {
                break done;
            }
        };
        let (core, ec) =
            start_decrypt_core(self.config, self.cmm, &header, leftover, self.options).await?;
        Ok(DecryptingReader::new(core, reader, header, ec))
    }
}

impl<'a, R: Read + Send + 'a> IntoFuture for DecryptStream<'a, R, Async> {
    type Output = Result<DecryptingReader<R>, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.execute())
    }
}

impl<R: Read> DecryptStream<'_, R, Blocking> {
    /// Read and authenticate the header, get materials and return the reader.
    pub fn run(self) -> Result<DecryptingReader<R>, Error> {
        block_on(self.execute())
    }
}

impl Client {
    /// Encrypt a stream into `writer`: returns a request that yields an [`EncryptingWriter`].
    pub fn encrypt_stream<'a, W: Write>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        writer: W,
    ) -> EncryptStream<'a, W> {
        Encryption::new(&self.config, cmm, ToWriter(writer))
    }

    /// Decrypt a stream from `reader`: returns a request that yields a [`DecryptingReader`].
    pub fn decrypt_stream<'a, R: Read>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        reader: R,
    ) -> DecryptStream<'a, R> {
        Decryption::new(&self.config, cmm, FromReader(reader))
    }
}
