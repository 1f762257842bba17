//! The sans-I/O cores of streaming encryption and decryption, shared by the `std::io` and the tokio
//! adapters. They hold at most about one frame of plaintext and one frame of ciphertext.

use envelope_format::{
    FINAL_FRAME_HEADER_LEN, FinalFrame, FormatError, Header, HeaderDecoder, HeaderLimits, Parsed,
    REGULAR_FRAME_HEADER_LEN, TAG_LEN,
};

use crate::error::Error;
use crate::message::{MAX_FOOTER_LEN, MessageReader, MessageWriter, Step};

/// Bytes a body unit carries besides its plaintext, at most: a final frame's header and the tag.
const UNIT_OVERHEAD: usize = FINAL_FRAME_HEADER_LEN + TAG_LEN;
/// How much to read at a time when more input is needed.
const READ_CHUNK: usize = 64 << 10;
/// The smallest read while collecting a header.
const MIN_READ: usize = 4 << 10;

// ----------------------------------------------------------------------------------- encryption

/// Turns plaintext written in arbitrary pieces into header, frames and footer.
pub(crate) struct EncryptCore {
    writer: MessageWriter,
    frame: usize,
    /// Plaintext of the next frame; a full frame is held until more data shows it is not the last.
    pending: Vec<u8>,
    /// Serialized output waiting to be written: the header, a frame, or the final frame and footer.
    out: Vec<u8>,
    out_start: usize,
    out_end: usize,
    bound: Option<u64>,
    accepted: u64,
    finished: bool,
}

impl EncryptCore {
    pub(crate) fn new(writer: MessageWriter, bound: Option<u64>) -> Self {
        let frame = writer.frame_length() as usize;
        let header = writer.header().as_bytes();
        // The largest unit: a full final frame and the footer, or a regular frame, an empty final
        // frame and the footer.
        let capacity =
            (frame + REGULAR_FRAME_HEADER_LEN + TAG_LEN + UNIT_OVERHEAD + MAX_FOOTER_LEN)
                .max(header.len());
        let mut out = vec![0u8; capacity];
        out[..header.len()].copy_from_slice(header);
        let out_end = header.len();
        Self {
            writer,
            frame,
            pending: Vec::with_capacity(frame),
            out,
            out_start: 0,
            out_end,
            bound,
            accepted: 0,
            finished: false,
        }
    }

    pub(crate) fn header(&self) -> &Header {
        self.writer.header()
    }

    /// Bytes ready to be written to the destination.
    pub(crate) fn output(&self) -> &[u8] {
        &self.out[self.out_start..self.out_end]
    }

    /// `n` bytes of [`EncryptCore::output`] were written.
    pub(crate) fn consume_output(&mut self, n: usize) {
        self.out_start = (self.out_start + n).min(self.out_end);
        if self.out_start == self.out_end {
            self.out_start = 0;
            self.out_end = 0;
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Take plaintext. Call only with the output drained. Returns how much of `data` was taken;
    /// zero means a frame was sealed into the output instead, which must be written first.
    pub(crate) fn accept(&mut self, data: &[u8]) -> Result<usize, Error> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.finished {
            return Err(Error::Io(std::io::Error::other(
                "write after the message was finished",
            )));
        }
        if !self.output().is_empty() {
            return Err(Error::Internal("encryption output not drained"));
        }
        if let Some(bound) = self.bound
            && self.accepted.saturating_add(data.len() as u64) > bound
        {
            return Err(Error::PlaintextBoundExceeded(bound));
        }
        if self.pending.len() == self.frame {
            // More data follows, so the held frame is a regular one.
            self.out_end = self.writer.seal_regular(&self.pending, &mut self.out)?;
            self.pending.clear();
            return Ok(0);
        }
        if self.pending.is_empty() && data.len() > self.frame {
            // A whole frame with more after it: seal it straight from the caller's buffer.
            self.out_end = self
                .writer
                .seal_regular(&data[..self.frame], &mut self.out)?;
            self.accepted += self.frame as u64;
            return Ok(self.frame);
        }
        let take = (self.frame - self.pending.len()).min(data.len());
        self.pending.extend_from_slice(&data[..take]);
        self.accepted += take as u64;
        Ok(take)
    }

    /// Seal the final frame and the footer into the output. Call with the output drained.
    pub(crate) fn finish(&mut self) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        if !self.output().is_empty() {
            return Err(Error::Internal("encryption output not drained"));
        }
        let mut end = 0;
        if self.pending.len() == self.frame && self.writer.final_frame() == FinalFrame::Empty {
            end = self.writer.seal_regular(&self.pending, &mut self.out)?;
            self.pending.clear();
        }
        end += self
            .writer
            .seal_final(&self.pending, &mut self.out[end..])?;
        self.pending.clear();
        if let Some(footer) = self.writer.footer()? {
            let bytes = footer.serialized_len();
            let mut serialized = Vec::with_capacity(bytes);
            footer.append_to(&mut serialized);
            self.out[end..end + bytes].copy_from_slice(&serialized);
            end += bytes;
        }
        self.out_end = end;
        self.finished = true;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------- headers

/// Reads a header in pieces through a [`HeaderDecoder`], which resumes where each piece ended.
pub(crate) struct HeaderCollector {
    decoder: HeaderDecoder,
    chunk: Vec<u8>,
    want: usize,
}

impl HeaderCollector {
    pub(crate) fn new(limits: HeaderLimits) -> Self {
        Self {
            decoder: HeaderDecoder::new(limits),
            chunk: Vec::new(),
            want: MIN_READ,
        }
    }

    /// Space to read into: the header bytes still needed, at least 4 KiB (the bytes after the
    /// header are the body anyway), at most a chunk.
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.chunk.len() < self.want {
            self.chunk.resize(self.want, 0);
        }
        &mut self.chunk[..self.want]
    }

    /// `n` bytes were read into [`HeaderCollector::space`] (zero at end of input). Returns the
    /// header and the bytes read past it once it is complete.
    pub(crate) fn filled(&mut self, n: usize) -> Result<Option<(Header, Vec<u8>)>, Error> {
        if n == 0 {
            return Err(FormatError::Truncated("header").into());
        }
        let piece = &self.chunk[..n];
        match self.decoder.feed(piece)? {
            Parsed::Complete(header, used) => Ok(Some((header, piece[used..].to_vec()))),
            Parsed::Incomplete(needed) => {
                self.want = needed
                    .saturating_sub(self.decoder.received())
                    .clamp(MIN_READ, READ_CHUNK);
                Ok(None)
            }
        }
    }
}

// ----------------------------------------------------------------------------------- decryption

/// What [`DecryptCore::step`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Plaintext was decrypted straight into the caller's buffer (it may be zero bytes).
    Direct(usize),
    /// Something changed: take plaintext or check completion.
    Ready,
    /// More input is needed.
    NeedInput,
}

/// Decrypts buffered input unit by unit and releases plaintext by the release rules.
pub(crate) struct DecryptCore {
    reader: MessageReader,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    plain: Vec<u8>,
    plain_start: usize,
    plain_end: usize,
    /// `plain` holds the last plaintext of a signed message, waiting for the signature.
    held: bool,
    needed: usize,
    max_buffer: usize,
}

impl DecryptCore {
    /// A core over `reader` (which refuses units longer than `max_unit`), starting with the
    /// input read past the header.
    pub(crate) fn new(reader: MessageReader, leftover: Vec<u8>, max_unit: u32) -> Self {
        let in_end = leftover.len();
        // One unit and its framing, or the longest footer the format can express.
        let max_buffer = (max_unit as usize)
            .saturating_add(UNIT_OVERHEAD)
            .max(MAX_FOOTER_LEN.max(2 + usize::from(u16::MAX)));
        Self {
            reader,
            input: leftover,
            in_start: 0,
            in_end,
            plain: Vec::new(),
            plain_start: 0,
            plain_end: 0,
            held: false,
            needed: 0,
            max_buffer,
        }
    }

    /// Copy released plaintext into `buf`.
    pub(crate) fn take(&mut self, buf: &mut [u8]) -> usize {
        if self.held {
            return 0;
        }
        let n = (self.plain_end - self.plain_start).min(buf.len());
        buf[..n].copy_from_slice(&self.plain[self.plain_start..self.plain_start + n]);
        self.plain_start += n;
        n
    }

    /// The message verified and every plaintext byte was taken.
    pub(crate) fn is_complete(&self) -> bool {
        self.reader.is_done() && self.plain_start == self.plain_end
    }

    /// Input bytes buffered but not part of the message (after completion: trailing bytes).
    pub(crate) fn buffered(&self) -> usize {
        self.in_end - self.in_start
    }

    /// Try to decrypt the next unit. `direct` is the caller's buffer: regular frames (and the last
    /// unit of an unsigned message) that fit are decrypted straight into it.
    pub(crate) fn step(&mut self, direct: &mut [u8]) -> Result<Progress, Error> {
        if self.reader.is_done() || (self.plain_start < self.plain_end && !self.held) {
            return Ok(Progress::Ready);
        }
        if self.held {
            // The final plaintext waits for the signature: read the footer.
            let input = &self.input[self.in_start..self.in_end];
            let step = self.reader.next(input, &mut [])?;
            return self.apply(step, false);
        }
        let input = &self.input[self.in_start..self.in_end];
        // Only what can be released at once may land in the caller's buffer: with a signed
        // message, only a unit known to be a regular frame.
        let releasable = !self.reader.is_signed()
            || (self.reader.is_framed() && input.len() >= 4 && input[..4] != [0xff; 4]);
        let fits = self
            .reader
            .max_unit_plaintext()
            .is_some_and(|max| direct.len() >= max);
        if releasable && fits {
            let step = self.reader.next(input, direct)?;
            return self.apply(step, true);
        }
        loop {
            let input = &self.input[self.in_start..self.in_end];
            let step = self.reader.next(input, &mut self.plain)?;
            if let Step::NeedOutput(n) = step {
                self.check_size(n)?;
                self.plain.resize(n, 0);
                continue;
            }
            return self.apply(step, false);
        }
    }

    fn apply(&mut self, step: Step, direct: bool) -> Result<Progress, Error> {
        match step {
            Step::Plaintext {
                consumed,
                len,
                last,
            } => {
                self.in_start += consumed;
                if direct {
                    return Ok(Progress::Direct(len));
                }
                self.plain_start = 0;
                self.plain_end = len;
                self.held = last && self.reader.is_signed();
                Ok(Progress::Ready)
            }
            Step::Verified { consumed } => {
                self.in_start += consumed;
                self.held = false;
                Ok(Progress::Ready)
            }
            Step::NeedInput(n) => {
                self.check_size(n)?;
                self.needed = n;
                Ok(Progress::NeedInput)
            }
            Step::NeedOutput(n) => {
                // Only the direct path can be short of output: use the internal buffer.
                self.check_size(n)?;
                self.plain.resize(n, 0);
                Ok(Progress::Ready)
            }
            Step::Done => Ok(Progress::Ready),
        }
    }

    /// A unit's length was checked against the limit when it was read; this bounds what any
    /// request for input or output can make the core buffer.
    fn check_size(&self, n: usize) -> Result<(), Error> {
        if n > self.max_buffer {
            return Err(Error::Internal(
                "a body unit outgrew the streaming buffer limit",
            ));
        }
        Ok(())
    }
    /// Space to read more input into (at least one byte). Called only when the buffered input
    /// does not hold a whole unit, so moving it to the front copies less than one frame.
    /// The buffer never grows past twice the bytes buffered or one read chunk, whichever is more.
    pub(crate) fn input_space(&mut self) -> &mut [u8] {
        if self.in_start > 0 {
            self.input.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        }
        // Grow with the input actually received: to at most twice what is buffered (or one
        // chunk), so a length field announcing a huge unit costs memory only as its bytes arrive.
        let grown = self.in_end.saturating_mul(2).max(READ_CHUNK);
        let want = self
            .needed
            .min(grown)
            .max(READ_CHUNK.min(self.max_buffer))
            .max(self.in_end + 1);
        if self.input.len() < want {
            self.input.resize(want, 0);
        }
        &mut self.input[self.in_end..]
    }

    /// `n` bytes were read into [`DecryptCore::input_space`].
    pub(crate) fn filled(&mut self, n: usize) -> Result<(), Error> {
        if n == 0 {
            return Err(FormatError::Truncated("message body or footer").into());
        }
        self.in_end += n;
        Ok(())
    }
}
