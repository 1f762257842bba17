//! Incremental parsing support: a bounds-checked cursor and the [`Parsed`] outcome.

use crate::error::FormatError;

/// The outcome of parsing a structure from a buffer that may not yet hold all of it.
///
/// Parsers in this crate never read past the buffer and never allocate by a length field before the
/// bytes that field announces are present. When the buffer is too short they return
/// [`Parsed::Incomplete`] with the total number of bytes (counted from the start of the buffer) that
/// must be present before parsing can make progress; the caller appends input and calls again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Parsed<T> {
    /// The structure is complete: the value and how many bytes of the buffer it used.
    Complete(T, usize),
    /// The buffer is too short: at least this many bytes in total are needed.
    Incomplete(usize),
}

impl<T> Parsed<T> {
    /// The value and its length, treating a short buffer as truncation of `what`.
    pub fn complete(self, what: &'static str) -> Result<(T, usize), FormatError> {
        match self {
            Self::Complete(value, used) => Ok((value, used)),
            Self::Incomplete(_) => Err(FormatError::Truncated(what)),
        }
    }
}

/// Why parsing stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Not enough input: the total length needed.
    Need(usize),
    /// The input is malformed.
    Invalid(FormatError),
}

impl From<FormatError> for Stop {
    fn from(e: FormatError) -> Self {
        Self::Invalid(e)
    }
}

pub(crate) fn finish<T>(result: Result<(T, usize), Stop>) -> Result<Parsed<T>, FormatError> {
    match result {
        Ok((value, used)) => Ok(Parsed::Complete(value, used)),
        Err(Stop::Need(n)) => Ok(Parsed::Incomplete(n)),
        Err(Stop::Invalid(e)) => Err(e),
    }
}

/// A cursor over a buffer that may be a prefix of the structure being parsed.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Reading past this offset is an error rather than a request for more input.
    limit: Option<(usize, FormatError)>,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            limit: None,
        }
    }

    /// A cursor over `buf` positioned at `pos`.
    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        Self {
            buf,
            pos,
            limit: None,
        }
    }

    /// Fail with `error` instead of asking for more input once a read would end past `max`.
    pub(crate) fn with_limit(mut self, max: usize, error: FormatError) -> Self {
        self.limit = Some((max, error));
        self
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.pos.checked_add(n).ok_or(Stop::Need(usize::MAX))?;
        if let Some((max, error)) = &self.limit
            && end > *max
        {
            return Err(Stop::Invalid(error.clone()));
        }
        match self.buf.get(self.pos..end) {
            Some(bytes) => {
                self.pos = end;
                Ok(bytes)
            }
            None => Err(Stop::Need(end)),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Stop> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Stop> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Stop> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A `u16`-length-prefixed byte string.
    pub(crate) fn short_bytes(&mut self) -> Result<&'a [u8], Stop> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
}

/// Append `bytes` with a `u16` length prefix.
pub(crate) fn put_short_bytes(
    out: &mut Vec<u8>,
    bytes: &[u8],
    field: &'static str,
) -> Result<(), FormatError> {
    let len = u16::try_from(bytes.len()).map_err(|_| FormatError::FieldTooLong {
        field,
        len: bytes.len(),
        max: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}
