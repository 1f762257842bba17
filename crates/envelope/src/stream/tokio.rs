//! Streaming over tokio's `AsyncRead` / `AsyncWrite` (feature `tokio`).

use std::future::IntoFuture;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use envelope_format::{EncryptionContext, Header};
use envelope_keyring::MaterialsManager;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use super::core::{DecryptCore, EncryptCore, HeaderCollector, Progress};
use super::{start_decrypt_core, start_encrypt_core};
use crate::client::Client;
use crate::error::Error;
use crate::exec::{Async, BoxFuture};
use crate::request::{Decryption, Encryption};

/// Encrypts everything written to it into a message written to `W` (async).
///
/// Finish with `shutdown()` (from `tokio::io::AsyncWriteExt`) or [`AsyncEncryptingWriter::finish`]:
/// that seals the final frame and the signature. A writer dropped unfinished leaves a message that
/// no decryptor accepts as complete.
pub struct AsyncEncryptingWriter<W> {
    core: EncryptCore,
    inner: W,
    encryption_context: EncryptionContext,
    poisoned: bool,
}

impl<W: AsyncWrite + Unpin> AsyncEncryptingWriter<W> {
    /// The message header.
    pub fn header(&self) -> &Header {
        self.core.header()
    }

    /// The full encryption context the message is bound to.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Seal the final frame and the footer, flush, and return the destination (not shut down).
    pub async fn finish(mut self) -> Result<W, Error> {
        std::future::poll_fn(|cx| self.poll_finish(cx)).await?;
        Ok(self.inner)
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.core.output().is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, self.core.output()))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.core.consume_output(n);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.poisoned {
            return Poll::Ready(Err(io::Error::other(
                "an earlier write failed; the message is incomplete",
            )));
        }
        ready!(self.poll_drain(cx))?;
        if !self.core.is_finished() {
            self.core.finish().map_err(io::Error::from)?;
            ready!(self.poll_drain(cx))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncEncryptingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.poisoned {
            return Poll::Ready(Err(io::Error::other(
                "an earlier write failed; the message is incomplete",
            )));
        }
        loop {
            ready!(this.poll_drain(cx))?;
            match this.core.accept(data) {
                Ok(0) if !data.is_empty() => continue,
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) => {
                    this.poisoned = true;
                    return Poll::Ready(Err(e.into()));
                }
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    /// Finishes the message (final frame and signature), then shuts the destination down.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_finish(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<W> std::fmt::Debug for AsyncEncryptingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEncryptingWriter")
            .field("suite", &self.core.header().body().suite())
            .field("finished", &self.core.is_finished())
            .finish_non_exhaustive()
    }
}

/// Decrypts a message read from `R` (async); reading it yields the plaintext. The same release
/// rules as [`crate::stream::DecryptingReader`]: end of input only after the message verified.
pub struct AsyncDecryptingReader<R> {
    core: DecryptCore,
    inner: R,
    header: Header,
    encryption_context: EncryptionContext,
    state: State,
}

enum State {
    Reading,
    CheckingEnd,
    Done,
    Failed(io::ErrorKind, String),
}

impl<R: AsyncRead + Unpin> AsyncDecryptingReader<R> {
    /// The message header (authenticated).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The encryption context the message was authenticated with.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Whether the whole message has been read and verified.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn poll_plaintext(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<Result<(), Error>> {
        loop {
            match &self.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Failed(kind, message) => {
                    return Poll::Ready(Err(io::Error::new(*kind, message.clone()).into()));
                }
                State::CheckingEnd => {
                    let mut probe = [0u8; 1];
                    let mut probe = ReadBuf::new(&mut probe);
                    ready!(Pin::new(&mut self.inner).poll_read(cx, &mut probe))?;
                    if !probe.filled().is_empty() {
                        return Poll::Ready(Err(
                            envelope_format::FormatError::TrailingBytes(1).into()
                        ));
                    }
                    self.state = State::Done;
                    return Poll::Ready(Ok(()));
                }
                State::Reading => {}
            }
            let unfilled = buf.initialize_unfilled();
            let n = self.core.take(unfilled);
            if n > 0 {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            if self.core.is_complete() {
                let trailing = self.core.buffered();
                if trailing > 0 {
                    return Poll::Ready(Err(
                        envelope_format::FormatError::TrailingBytes(trailing).into()
                    ));
                }
                self.state = State::CheckingEnd;
                continue;
            }
            match self.core.step(unfilled)? {
                Progress::Direct(0) | Progress::Ready => {}
                Progress::Direct(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Progress::NeedInput => {
                    let space = self.core.input_space();
                    let mut read = ReadBuf::new(space);
                    ready!(Pin::new(&mut self.inner).poll_read(cx, &mut read))?;
                    let n = read.filled().len();
                    self.core.filled(n)?;
                }
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncDecryptingReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match ready!(this.poll_plaintext(cx, buf)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(e) => {
                this.state = State::Failed(e.io_kind(), e.to_string());
                Poll::Ready(Err(e.into()))
            }
        }
    }
}

impl<R> std::fmt::Debug for AsyncDecryptingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDecryptingReader")
            .field("suite", &self.header.body().suite())
            .finish_non_exhaustive()
    }
}

/// The job of an async streaming encryption: the destination of the message.
#[derive(Debug)]
pub struct ToAsyncWriter<W>(W);

/// The job of an async streaming decryption: the source of the message.
#[derive(Debug)]
pub struct FromAsyncReader<R>(R);

/// An async streaming encryption request; `.await` it for an [`AsyncEncryptingWriter`].
pub type AsyncEncryptStream<'a, W> = Encryption<'a, ToAsyncWriter<W>, Async>;

/// An async streaming decryption request; `.await` it for an [`AsyncDecryptingReader`].
pub type AsyncDecryptStream<'a, R> = Decryption<'a, FromAsyncReader<R>, Async>;

impl<'a, W: AsyncWrite + Unpin + Send + 'a> IntoFuture for AsyncEncryptStream<'a, W> {
    type Output = Result<AsyncEncryptingWriter<W>, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let (core, encryption_context) =
                start_encrypt_core(self.config, self.cmm, self.options).await?;
            let mut writer = AsyncEncryptingWriter {
                core,
                inner: self.job.0,
                encryption_context,
                poisoned: false,
            };
            std::future::poll_fn(|cx| writer.poll_drain(cx)).await?;
            Ok(writer)
        })
    }
}

impl<'a, R: AsyncRead + Unpin + Send + 'a> IntoFuture for AsyncDecryptStream<'a, R> {
    type Output = Result<AsyncDecryptingReader<R>, Error>;
    type IntoFuture = BoxFuture<'a, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let mut reader = self.job.0;
            let mut collector = HeaderCollector::new(self.config.header_limits());
            let (header, leftover) = loop {
                let n = reader.read(collector.space()).await?;
                if let Some(done) = collector.filled(n)? {
                    break done;
                }
            };
            let (core, encryption_context) =
                start_decrypt_core(self.config, self.cmm, &header, leftover, self.options).await?;
            Ok(AsyncDecryptingReader {
                core,
                inner: reader,
                header,
                encryption_context,
                state: State::Reading,
            })
        })
    }
}

impl Client {
    /// Encrypt a stream into an `AsyncWrite`: `.await` the request for an [`AsyncEncryptingWriter`].
    pub fn encrypt_async_stream<'a, W: AsyncWrite + Unpin + Send + 'a>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        writer: W,
    ) -> AsyncEncryptStream<'a, W> {
        Encryption::new(&self.config, cmm, ToAsyncWriter(writer))
    }

    /// Decrypt a stream from an `AsyncRead`: `.await` the request for an [`AsyncDecryptingReader`].
    pub fn decrypt_async_stream<'a, R: AsyncRead + Unpin + Send + 'a>(
        &'a self,
        cmm: &'a dyn MaterialsManager,
        reader: R,
    ) -> AsyncDecryptStream<'a, R> {
        Decryption::new(&self.config, cmm, FromAsyncReader(reader))
    }
}
