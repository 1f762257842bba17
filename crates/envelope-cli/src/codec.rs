//! Byte-stream adapters for the command line: Base64 out (`--encode`) and in (`--decode`), and
//! output held back until the command succeeded (`--buffer`).

use std::io::{self, Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Where a command's output goes, Base64-encoded with `--encode` and held in memory until
/// [`Sink::finish`] with `--buffer`.
pub(crate) struct Sink {
    inner: Box<dyn Write>,
    encode: bool,
    /// Bytes not yet encoded: fewer than three, so that the Base64 stays one unbroken text.
    carry: Vec<u8>,
    /// Everything written so far, with `--buffer`.
    held: Option<Vec<u8>>,
}

impl Sink {
    pub(crate) fn new(inner: Box<dyn Write>, encode: bool, buffer: bool) -> Self {
        Self {
            inner,
            encode,
            carry: Vec::new(),
            held: buffer.then(Vec::new),
        }
    }

    fn pass_on(&mut self, buf: &[u8]) -> io::Result<()> {
        if !self.encode {
            return self.inner.write_all(buf);
        }
        self.carry.extend_from_slice(buf);
        let whole = self.carry.len() / 3 * 3;
        if whole > 0 {
            let text = STANDARD.encode(&self.carry[..whole]);
            self.carry.drain(..whole);
            self.inner.write_all(text.as_bytes())?;
        }
        Ok(())
    }

    /// Release what is held, end the Base64 text, and flush: call once the command succeeded.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        if let Some(held) = self.held.take() {
            self.pass_on(&held)?;
        }
        if !self.carry.is_empty() {
            let text = STANDARD.encode(&self.carry);
            self.carry.clear();
            self.inner.write_all(text.as_bytes())?;
        }
        self.inner.flush()
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.held {
            Some(held) => held.extend_from_slice(buf),
            None => self.pass_on(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Held output stays held; a partial Base64 group waits for its bytes.
        if self.held.is_some() {
            return Ok(());
        }
        self.inner.flush()
    }
}

/// Reads Base64 text (`--decode`) as the bytes it encodes; white space anywhere is skipped.
pub(crate) struct Base64Reader<R> {
    inner: R,
    /// Base64 characters read but not yet decoded (fewer than four after each fill).
    text: Vec<u8>,
    /// Decoded bytes not yet returned.
    decoded: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: Read> Base64Reader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            text: Vec::new(),
            decoded: Vec::new(),
            at: 0,
            done: false,
        }
    }

    fn not_base64() -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "the input is not Base64 (--decode)",
        )
    }

    /// Decode the next piece of input into `decoded`; false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 << 10];
        while !self.done {
            let n = match self.inner.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.done = true;
                // What is left must be a whole, padded group.
                if self.text.is_empty() {
                    return Ok(false);
                }
                self.decoded = STANDARD
                    .decode(&self.text)
                    .map_err(|_| Self::not_base64())?;
                self.text.clear();
                self.at = 0;
                return Ok(true);
            }
            self.text.extend(
                chunk[..n]
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace()),
            );
            // Decode whole groups, but keep the last one back: only the final group may be
            // padded, and it is not known to be final until the input ends.
            let whole = self.text.len().saturating_sub(1) / 4 * 4;
            if whole > 0 {
                if self.text[..whole].contains(&b'=') {
                    return Err(Self::not_base64());
                }
                self.decoded = STANDARD
                    .decode(&self.text[..whole])
                    .map_err(|_| Self::not_base64())?;
                self.text.drain(..whole);
                self.at = 0;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl<R: Read> Read for Base64Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.decoded.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.decoded.len() - self.at);
        buf[..n].copy_from_slice(&self.decoded[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::RefCell;
    use std::io::{Read, Write};
    use std::rc::Rc;

    use super::{Base64Reader, Sink};

    /// A writer whose bytes can be read after the sink that owns it is gone.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Reads one byte at a time, to cut Base64 groups everywhere.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn encoding_in_pieces_gives_the_base64_of_the_whole() {
        for len in 0..10 {
            let data: Vec<u8> = (0..len).collect();
            let out = Shared::default();
            let mut sink = Sink::new(Box::new(out.clone()), true, false);
            for byte in &data {
                sink.write_all(std::slice::from_ref(byte)).unwrap();
            }
            sink.finish().unwrap();
            use base64::Engine;
            let expected = base64::engine::general_purpose::STANDARD.encode(&data);
            assert_eq!(*out.0.borrow(), expected.as_bytes());
        }
    }

    #[test]
    fn buffered_output_is_released_only_by_finish() {
        let out = Shared::default();
        let mut sink = Sink::new(Box::new(out.clone()), false, true);
        sink.write_all(b"held").unwrap();
        sink.flush().unwrap();
        assert!(out.0.borrow().is_empty());
        sink.finish().unwrap();
        assert_eq!(*out.0.borrow(), b"held");
    }

    #[test]
    fn decoding_skips_white_space_and_accepts_any_read_sizes() {
        let mut plain = Vec::new();
        Base64Reader::new(Trickle(b"aGVs\nbG8g\r\nd29y bGQ=\n"))
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, b"hello world");
    }

    #[test]
    fn text_that_is_not_base64_is_an_invalid_data_error() {
        for bad in [&b"aGVsbG8=aGVs"[..], b"aGV", b"a!==", b"\x80\x81\x82\x83"] {
            let error = Base64Reader::new(bad)
                .read_to_end(&mut Vec::new())
                .unwrap_err();
            assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{bad:?}");
            assert_eq!(error.to_string(), "the input is not Base64 (--decode)");
        }
    }
}
