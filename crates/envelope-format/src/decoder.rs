//! Decoding a header that arrives in pieces, resuming where the last piece ended.

use std::fmt;

use crate::context::EncryptionContext;
use crate::edk::EncryptedDataKey;
use crate::error::FormatError;
use crate::header::{
    COMMIT_KEY_LEN, Framing, Header, HeaderAuth, HeaderBody, HeaderLimits, Prefix, parse_context,
    parse_key_count, parse_prefix, parse_trailer,
};
use crate::parse::{Cursor, Parsed, Stop};

type Context = (EncryptionContext, Option<Vec<u8>>);

/// Where decoding stands: the next field group to read, and what was read before it.
enum Stage {
    Prefix,
    Context(Prefix),
    KeyCount(Prefix, Context),
    Keys {
        prefix: Prefix,
        context: Context,
        remaining: u16,
        keys: Vec<EncryptedDataKey>,
    },
    Trailer {
        prefix: Prefix,
        context: Context,
        keys: Vec<EncryptedDataKey>,
    },
    Auth {
        body: HeaderBody,
        body_len: usize,
    },
    Done,
    Failed(FormatError),
}

impl Stage {
    fn name(&self) -> &'static str {
        match self {
            Self::Prefix => "prefix",
            Self::Context(_) => "encryption context",
            Self::KeyCount(..) => "encrypted data key count",
            Self::Keys { .. } => "encrypted data keys",
            Self::Trailer { .. } => "content type and frame length",
            Self::Auth { .. } => "header authentication",
            Self::Done => "done",
            Self::Failed(_) => "failed",
        }
    }
}

/// Decodes a message header from input that arrives in pieces of any size, for readers of sockets,
/// pipes and files.
///
/// The decoder keeps the header bytes received so far and what it has parsed of them; each call to
/// [`HeaderDecoder::feed`] continues from the first field not yet complete, so decoding a header
/// costs time linear in its length whatever the sizes of the pieces (one byte at a time included).
/// It buffers only header bytes, never more than [`HeaderLimits::max_header_len`], and checks every
/// limit as soon as the field it concerns is read.
///
/// ```
/// use envelope_format::{HeaderDecoder, HeaderLimits, Parsed};
///
/// # fn demo(message: &[u8]) -> Result<(), envelope_format::FormatError> {
/// let mut decoder = HeaderDecoder::new(HeaderLimits::default());
/// for piece in message.chunks(7) {
///     if let Parsed::Complete(header, used) = decoder.feed(piece)? {
///         // `piece[used..]` is the start of the body.
///         println!("suite {}, {} bytes", header.body().suite(), header.len());
///         break;
///     }
/// }
/// # Ok(()) }
/// ```
pub struct HeaderDecoder {
    limits: HeaderLimits,
    /// The header bytes received so far; never more than the header.
    buf: Vec<u8>,
    /// Where the next field group starts in `buf`.
    pos: usize,
    /// `buf` must hold this many bytes before the next field group can be parsed.
    need: usize,
    stage: Stage,
}

impl HeaderDecoder {
    /// A decoder applying `limits`.
    pub fn new(limits: HeaderLimits) -> Self {
        Self {
            limits,
            buf: Vec::new(),
            pos: 0,
            need: 1,
            stage: Stage::Prefix,
        }
    }

    /// The header bytes received so far.
    pub fn received(&self) -> usize {
        self.buf.len()
    }

    /// Give the decoder the next piece of input.
    ///
    /// Returns [`Parsed::Complete`] with the header and how many bytes of *this* piece belong to
    /// it (the rest is the start of the body), or [`Parsed::Incomplete`] with the number of header
    /// bytes, counted from the header's first byte, that must have arrived before the decoder can
    /// make progress (a hint for sizing reads; any piece size works). After an error every later
    /// call returns the same error; after completion, [`FormatError::HeaderAlreadyDecoded`].
    pub fn feed(&mut self, mut input: &[u8]) -> Result<Parsed<Header>, FormatError> {
        let mut used = 0;
        loop {
            match &self.stage {
                Stage::Failed(e) => return Err(e.clone()),
                Stage::Done => return Err(FormatError::HeaderAlreadyDecoded),
                _ => {}
            }
            if self.buf.len() < self.need {
                let take = (self.need - self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..take]);
                input = &input[take..];
                used += take;
                if self.buf.len() < self.need {
                    return Ok(Parsed::Incomplete(self.need));
                }
            }
            let buffered = self.buf.len();
            match self.advance() {
                Ok(None) => {}
                Ok(Some(header)) => {
                    // Bytes buffered past the header's end (none: see `advance`) were not its own.
                    let past_end = buffered.saturating_sub(header.len());
                    return Ok(Parsed::Complete(header, used.saturating_sub(past_end)));
                }
                Err(Stop::Need(n)) => self.need = n,
                Err(Stop::Invalid(e)) => {
                    self.stage = Stage::Failed(e.clone());
                    self.buf = Vec::new();
                    return Err(e);
                }
            }
        }
    }

    /// Parse the next field group from `buf[pos..]`: on success move to the next stage (or return
    /// the header); when `buf` is too short, ask for the end of the field that did not fit. A
    /// group is re-read from its start at most once per length field it holds (an encrypted data
    /// key: four times), so the work stays linear in the header length.
    fn advance(&mut self) -> Result<Option<Header>, Stop> {
        let mut cursor = Cursor::at(&self.buf, self.pos);
        if let Some(max) = self.limits.max_header_len {
            cursor = cursor.with_limit(max, FormatError::HeaderTooLarge { max });
        }
        let next = match &mut self.stage {
            Stage::Prefix => Stage::Context(parse_prefix(&mut cursor)?),
            Stage::Context(prefix) => Stage::KeyCount(*prefix, parse_context(&mut cursor)?),
            Stage::KeyCount(prefix, context) => {
                let remaining = parse_key_count(&mut cursor, &self.limits)?;
                Stage::Keys {
                    prefix: *prefix,
                    context: std::mem::take(context),
                    remaining,
                    // Grows as keys arrive: the count alone never sizes an allocation.
                    keys: Vec::new(),
                }
            }
            Stage::Keys {
                prefix,
                context,
                remaining,
                keys,
            } => {
                keys.push(EncryptedDataKey::parse_from(&mut cursor)?);
                self.pos = cursor.position();
                *remaining -= 1;
                if *remaining > 0 {
                    return Ok(None);
                }
                Stage::Trailer {
                    prefix: *prefix,
                    context: std::mem::take(context),
                    keys: std::mem::take(keys),
                }
            }
            Stage::Trailer {
                prefix,
                context,
                keys,
            } => {
                let trailer: (Framing, Option<[u8; COMMIT_KEY_LEN]>) =
                    parse_trailer(&mut cursor, prefix.suite.message_format_version())?;
                Stage::Auth {
                    body: HeaderBody::from_parsed(
                        *prefix,
                        std::mem::take(context),
                        std::mem::take(keys),
                        trailer,
                    ),
                    body_len: cursor.position(),
                }
            }
            Stage::Auth { body, .. } => {
                let auth = HeaderAuth::parse_from(&mut cursor, body.version())?;
                let len = cursor.position();
                let Stage::Auth { body, body_len } =
                    std::mem::replace(&mut self.stage, Stage::Done)
                else {
                    return Err(Stop::Invalid(FormatError::HeaderAlreadyDecoded));
                };
                let mut bytes = std::mem::take(&mut self.buf);
                // `buf` only ever grows to the end of a field that was asked for, so it holds the
                // header and nothing after it; stay exact even so.
                bytes.truncate(len);
                return Ok(Some(Header::from_parsed(body, auth, bytes, body_len)));
            }
            Stage::Done => return Err(Stop::Invalid(FormatError::HeaderAlreadyDecoded)),
            Stage::Failed(e) => return Err(Stop::Invalid(e.clone())),
        };
        self.pos = cursor.position();
        self.stage = next;
        Ok(None)
    }
}

impl Header {
    /// Parse a header from the start of `input`, which may hold only part of it.
    ///
    /// On success returns the header and its length; the body follows. Limits are checked as soon as
    /// the field they concern is read, so an oversized header fails before its bytes are buffered.
    ///
    /// Each call parses from the first byte. To parse a header that arrives in pieces, feed them
    /// to a [`HeaderDecoder`], which resumes where it stopped.
    pub fn parse(input: &[u8], limits: &HeaderLimits) -> Result<Parsed<Self>, FormatError> {
        HeaderDecoder::new(*limits).feed(input)
    }
}

impl fmt::Debug for HeaderDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderDecoder")
            .field("stage", &self.stage.name())
            .field("received", &self.buf.len())
            .field("limits", &self.limits)
            .finish()
    }
}
