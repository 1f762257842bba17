//! Streaming over `std::io`: an encrypting `Write` adapter and a decrypting `Read` adapter.

use std::io::{self, Read, Write};

use envelope_format::{EncryptionContext, Header};

use super::core::{DecryptCore, EncryptCore, Progress};
use crate::error::Error;

/// Encrypts everything written to it into a message written to `W`.
///
/// Writes are buffered up to one frame; each full frame is sealed and written as soon as more data
/// shows it is not the last. [`EncryptingWriter::finish`] seals the final frame and the signature
/// and must be called: a writer dropped unfinished leaves a message without its final frame, which
/// no decryptor accepts as complete.
pub struct EncryptingWriter<W: Write> {
    core: EncryptCore,
    inner: W,
    encryption_context: EncryptionContext,
    poisoned: bool,
}

impl<W: Write> EncryptingWriter<W> {
    pub(crate) fn new(
        core: EncryptCore,
        inner: W,
        encryption_context: EncryptionContext,
    ) -> Result<Self, Error> {
        let mut writer = Self {
            core,
            inner,
            encryption_context,
            poisoned: false,
        };
        writer.drain()?;
        Ok(writer)
    }

    /// The message header (already written).
    pub fn header(&self) -> &Header {
        self.core.header()
    }

    /// The full encryption context the message is bound to.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    fn drain(&mut self) -> Result<(), Error> {
        while !self.core.output().is_empty() {
            match self.inner.write(self.core.output()) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => self.core.consume_output(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn write_message(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.poisoned {
            return Err(
                io::Error::other("an earlier write failed; the message is incomplete").into(),
            );
        }
        let mut total = 0;
        while total < data.len() {
            self.drain()?;
            total += self.core.accept(&data[total..])?;
        }
        self.drain()?;
        Ok(total)
    }

    /// Seal the final frame and the footer, flush, and return the destination.
    pub fn finish(mut self) -> Result<W, Error> {
        if self.poisoned {
            return Err(
                io::Error::other("an earlier write failed; the message is incomplete").into(),
            );
        }
        self.drain()?;
        self.core.finish()?;
        self.drain()?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Encrypt everything `reader` produces, finish the message and return the destination.
    pub fn encrypt_from<R: Read>(mut self, mut reader: R) -> Result<W, Error> {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.write_message(&buf[..n])?;
        }
        self.finish()
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_message(data).map_err(|e| {
            self.poisoned = true;
            io::Error::from(e)
        })
    }

    /// Flushes the destination. Plaintext short of a full frame stays buffered: a frame is only
    /// written once it is known not to be the last.
    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.inner.flush()
    }
}

impl<W: Write> std::fmt::Debug for EncryptingWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("suite", &self.header().body().suite())
            .field("finished", &self.core.is_finished())
            .finish_non_exhaustive()
    }
}

/// Decrypts a message read from `R`; reading it yields the plaintext.
///
/// Regular frames are released as soon as their tag verifies. For signed messages the last frame
/// is held back until the signature verifies; until `read` returns end of input (`Ok(0)`), what was
/// released is authenticated by its frame tags but not yet by the signature. End of input before
/// the message is complete, and any byte after it, are errors: `Ok(0)` is only ever returned for a
/// complete, verified message.
pub struct DecryptingReader<R: Read> {
    core: DecryptCore,
    inner: R,
    header: Header,
    encryption_context: EncryptionContext,
    state: ReadState,
}

enum ReadState {
    Reading,
    Done,
    Failed(io::ErrorKind, String),
}

impl<R: Read> DecryptingReader<R> {
    pub(crate) fn new(
        core: DecryptCore,
        inner: R,
        header: Header,
        encryption_context: EncryptionContext,
    ) -> Self {
        Self {
            core,
            inner,
            header,
            encryption_context,
            state: ReadState::Reading,
        }
    }

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
        matches!(self.state, ReadState::Done)
    }

    /// Decrypt the rest of the message into `writer`; returns the source and the bytes written.
    pub fn decrypt_into<W: Write>(mut self, mut writer: W) -> Result<(R, u64), Error> {
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = self.read_plaintext(&mut buf)?;
            if n == 0 {
                writer.flush()?;
                return Ok((self.inner, total));
            }
            writer.write_all(&buf[..n])?;
            total += n as u64;
        }
    }

    fn read_plaintext(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        match &self.state {
            ReadState::Done => return Ok(0),
            ReadState::Failed(kind, message) => {
                return Err(io::Error::new(*kind, message.clone()).into());
            }
            ReadState::Reading => {}
        }
        match self.read_inner(buf) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.state = ReadState::Failed(e.io_kind(), e.to_string());
                Err(e)
            }
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.core.take(buf);
            if n > 0 {
                return Ok(n);
            }
            if self.core.is_complete() {
                self.check_end()?;
                self.state = ReadState::Done;
                return Ok(0);
            }
            match self.core.step(buf)? {
                Progress::Direct(0) | Progress::Ready => {}
                Progress::Direct(n) => return Ok(n),
                Progress::NeedInput => {
                    let space = self.core.input_space();
                    let n = loop {
                        match self.inner.read(space) {
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            other => break other?,
                        }
                    };
                    self.core.filled(n)?;
                }
            }
        }
    }

    /// After a complete message: nothing may follow it.
    fn check_end(&mut self) -> Result<(), Error> {
        let trailing = self.core.buffered();
        if trailing > 0 {
            return Err(envelope_format::FormatError::TrailingBytes(trailing).into());
        }
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => return Ok(()),
                Ok(n) => return Err(envelope_format::FormatError::TrailingBytes(n).into()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl<R: Read> Read for DecryptingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_plaintext(buf).map_err(io::Error::from)
    }
}

impl<R: Read> std::fmt::Debug for DecryptingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingReader")
            .field("suite", &self.header.body().suite())
            .field("complete", &self.is_complete())
            .finish_non_exhaustive()
    }
}
