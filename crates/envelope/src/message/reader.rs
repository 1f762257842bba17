//! Reading a message body and footer once the header is parsed and the materials are known, for
//! one-shot and streaming decryption alike.

use envelope_crypto::aead::AeadKey;
use envelope_crypto::ecdsa::VerifyingKey;
use envelope_format::{
    Footer, FormatError, FrameHeader, FrameKind, Framing, Header, MessageId, Parsed, TAG_LEN,
};
use envelope_keyring::CompleteDecryptionMaterials;
use zeroize::Zeroizing;

use super::keys::{check_commitment, derive, required_context_bytes, verify_header};
use super::sighash::{SCOPED_AFTER, SCOPED_BATCH, SignatureHasher, hash_alongside};
use crate::config::ClientConfig;
use crate::error::Error;

struct Verifier {
    hasher: SignatureHasher,
    key: VerifyingKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Body,
    Footer,
    Done,
}

/// What [`MessageReader::next`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// The input must hold at least this many bytes (from its start) to make progress.
    NeedInput(usize),
    /// The output buffer must hold at least this many bytes.
    NeedOutput(usize),
    /// A body unit decrypted and authenticated: `len` plaintext bytes at the start of the output.
    /// `last` marks the final frame (or the single block); for a signed message its plaintext must
    /// be held back until the footer verifies.
    Plaintext {
        consumed: usize,
        len: usize,
        last: bool,
    },
    /// The footer's signature verified.
    Verified { consumed: usize },
    /// The message is complete; nothing more may follow.
    Done,
}

/// Decrypts the body units of one message in order and verifies its footer.
pub(crate) struct MessageReader {
    content: AeadKey,
    message_id: MessageId,
    framing: Framing,
    next_seq: u32,
    verifier: Option<Verifier>,
    state: State,
    /// One-shot decryption may hash on a scoped thread (see [`hash_alongside`]).
    parallel_hashing: bool,
    /// Streaming decryption refuses units with more plaintext than this.
    max_unit_len: Option<u64>,
}

impl MessageReader {
    /// Check the materials, derive the keys, verify the key commitment and header authentication.
    pub(crate) fn new(
        config: &ClientConfig,
        header: &Header,
        materials: &CompleteDecryptionMaterials,
    ) -> Result<Self, Error> {
        let body = header.body();
        let suite = body.suite();
        if materials.suite() != suite {
            return Err(Error::InvalidMaterials(
                "materials are for another algorithm suite",
            ));
        }
        config.commitment_policy.check_decrypt(suite)?;
        let keys = derive(suite, materials.data_key(), body.message_id())?;
        check_commitment(body.commit_key(), keys.commit_key.as_ref())?;
        let required = required_context_bytes(
            materials.encryption_context(),
            materials.required_encryption_context_keys(),
        )?;
        verify_header(&keys.content, header.body_bytes(), &required, header.auth())?;

        let background = config.signature_hashing.stream_background();
        let verifier = match (suite.signature(), materials.verification_key()) {
            (None, _) => None,
            (Some(_), Some(key)) => Some(Verifier {
                hasher: SignatureHasher::over_header(key.curve(), background, header.as_bytes()),
                key: key.clone(),
            }),
            (Some(_), None) => {
                return Err(Error::Internal("no verification key for a signed suite"));
            }
        };
        Ok(Self {
            content: keys.content,
            message_id: *body.message_id(),
            framing: body.framing(),
            next_seq: 1,
            verifier,
            state: State::Body,
            parallel_hashing: config.signature_hashing.one_shot_parallel(),
            max_unit_len: None,
        })
    }

    /// Refuse body units (frames, a non-framed body) longer than `max` bytes as soon as their
    /// length is read, before their bytes are buffered.
    pub(crate) fn limit_unit_length(&mut self, max: u32) {
        self.max_unit_len = Some(u64::from(max));
    }

    /// Whether the message is complete.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the message is signed (its last plaintext waits for the footer).
    pub(crate) fn is_signed(&self) -> bool {
        self.verifier.is_some()
    }

    /// Whether the body is framed.
    pub(crate) fn is_framed(&self) -> bool {
        matches!(self.framing, Framing::Framed(_))
    }

    /// The most plaintext one unit can produce, when known before the unit is parsed.
    pub(crate) fn max_unit_plaintext(&self) -> Option<usize> {
        match self.framing {
            Framing::Framed(n) => usize::try_from(n.get()).ok(),
            Framing::NonFramed => None,
        }
    }

    /// Decrypt the body and footer of a message held in memory in full, from `at` (just after
    /// the header) to its end, into `buffer`, whose capacity is reused. Nothing is returned
    /// unless every unit and the signature verified; on failure the buffer is wiped.
    ///
    /// A reused buffer nearly as long as the rest of the message is decrypted over (zero-filling
    /// only past its old contents); otherwise it grows one unit at a time, zero-filled in cache just before
    /// decryption overwrites it. A large signed message, when the client allows it, is hashed on
    /// a scoped thread while this one decrypts.
    pub(crate) fn decrypt_all(
        mut self,
        message: &[u8],
        at: usize,
        buffer: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let room = message.len().saturating_sub(at);
        // Decrypt over a reused buffer whose old contents cover nearly all the room (a message's
        // plaintext is a little shorter than the message); fill the rest with zeros.
        let covered = buffer.len().min(room);
        let mut out = Plaintext {
            prefilled: buffer.capacity() >= room && room - covered <= room / 16,
            buf: Zeroizing::new(buffer),
            written: 0,
        };
        if out.prefilled {
            out.buf.truncate(room);
            out.buf.resize(room, 0);
        } else {
            out.buf.clear();
            out.buf.reserve(room);
        }
        let mut at = at;
        let detached = match &mut self.verifier {
            Some(verifier) if self.parallel_hashing && room >= SCOPED_AFTER => {
                verifier.hasher.detach()
            }
            _ => None,
        };
        if let Some(hasher) = detached {
            let (end, digest) = hash_alongside(hasher, |feed| {
                self.decrypt_body(message, at, &mut out, feed)
            })?;
            at = end;
            if let Some(verifier) = &mut self.verifier {
                verifier.hasher.supply(digest);
            }
        }
        // Inline: everything. After a scoped hash: the footer.
        at = self.decrypt_units(message, at, &mut out)?;
        if at != message.len() {
            return Err(FormatError::TrailingBytes(message.len() - at).into());
        }
        let Plaintext {
            mut buf, written, ..
        } = out;
        buf.truncate(written);
        Ok(std::mem::take(&mut *buf))
    }

    /// [`MessageReader::decrypt_units`] for the body only, handing the bytes of the units read
    /// to `feed` in batches.
    fn decrypt_body<'m>(
        &mut self,
        message: &'m [u8],
        mut at: usize,
        out: &mut Plaintext,
        feed: &mut dyn FnMut(&'m [u8]),
    ) -> Result<usize, Error> {
        let mut fed = at;
        while self.state == State::Body {
            at = self.decrypt_unit(message, at, out)?;
            if at - fed >= SCOPED_BATCH || self.state != State::Body {
                feed(message.get(fed..at).unwrap_or_default());
                fed = at;
            }
        }
        Ok(at)
    }

    /// Decrypt units (and verify the footer) from `at` until the message is done.
    fn decrypt_units(
        &mut self,
        message: &[u8],
        mut at: usize,
        out: &mut Plaintext,
    ) -> Result<usize, Error> {
        while self.state != State::Done {
            at = self.decrypt_unit(message, at, out)?;
        }
        Ok(at)
    }

    /// Decrypt the unit (or verify the footer) at `at`; returns where the next one starts.
    fn decrypt_unit(
        &mut self,
        message: &[u8],
        at: usize,
        out: &mut Plaintext,
    ) -> Result<usize, Error> {
        let input = message.get(at..).unwrap_or_default();
        if !out.prefilled {
            let room = self.max_unit_plaintext().unwrap_or(input.len());
            out.buf.resize(out.written + room.min(input.len()), 0);
        }
        let space = out.buf.get_mut(out.written..).unwrap_or_default();
        match self.next(input, space)? {
            Step::Plaintext { consumed, len, .. } => {
                out.written += len;
                if !out.prefilled {
                    out.buf.truncate(out.written);
                }
                Ok(at + consumed)
            }
            Step::Verified { consumed } => Ok(at + consumed),
            Step::NeedInput(_) => Err(FormatError::Truncated(
                if self.is_signed() && at < message.len() {
                    "message body or footer"
                } else {
                    "message body"
                },
            )
            .into()),
            Step::NeedOutput(_) | Step::Done => Err(Error::Internal("decryption made no progress")),
        }
    }

    /// Process the next unit found at the start of `input`, decrypting into the start of `out`.
    pub(crate) fn next(&mut self, input: &[u8], out: &mut [u8]) -> Result<Step, Error> {
        match self.state {
            State::Body => self.next_unit(input, out),
            State::Footer => self.footer(input),
            State::Done => Ok(Step::Done),
        }
    }

    fn next_unit(&mut self, input: &[u8], out: &mut [u8]) -> Result<Step, Error> {
        let parsed = match self.framing {
            Framing::Framed(n) => FrameHeader::parse_framed(input, n.get(), self.next_seq)?,
            Framing::NonFramed => FrameHeader::parse_non_framed(input)?,
        };
        let (frame, header_len) = match parsed {
            Parsed::Complete(frame, len) => (frame, len),
            Parsed::Incomplete(needed) => return Ok(Step::NeedInput(needed)),
        };
        if let Some(max) = self.max_unit_len
            && frame.content_len() > max
        {
            return Err(Error::FrameTooLarge {
                length: frame.content_len(),
                max: u32::try_from(max).unwrap_or(u32::MAX),
            });
        }
        let len = usize::try_from(frame.content_len())
            .map_err(|_| FormatError::NonFramedContentTooLong(frame.content_len()))?;
        let total = header_len + len + TAG_LEN;
        let Some(unit) = input.get(..total) else {
            return Ok(Step::NeedInput(total));
        };
        let Some(out) = out.get_mut(..len) else {
            return Ok(Step::NeedOutput(len));
        };
        let (ciphertext, tag) = unit[header_len..].split_at(len);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        let aad = frame.aad(&self.message_id);
        // The IV carried in the frame, as the Python ESDK does; identical to the computed one for
        // every conforming writer.
        self.content
            .open_to(frame.iv(), aad.as_bytes(), ciphertext, &tag_bytes, out)
            .map_err(|_| Error::AuthenticationFailed)?;
        if let Some(verifier) = &mut self.verifier {
            verifier.hasher.update(unit);
        }
        let last = frame.kind() != FrameKind::Regular;
        if last {
            self.state = if self.verifier.is_some() {
                State::Footer
            } else {
                State::Done
            };
        } else {
            self.next_seq = self
                .next_seq
                .checked_add(1)
                .ok_or(FormatError::TooManyFrames)?;
        }
        Ok(Step::Plaintext {
            consumed: total,
            len,
            last,
        })
    }

    fn footer(&mut self, input: &[u8]) -> Result<Step, Error> {
        let (footer, consumed) = match Footer::parse(input)? {
            Parsed::Complete(footer, len) => (footer, len),
            Parsed::Incomplete(needed) => return Ok(Step::NeedInput(needed)),
        };
        let Some(Verifier { hasher, key }) = self.verifier.take() else {
            return Err(FormatError::MalformedFooter("footer on an unsigned message").into());
        };
        key.verify_digest(&hasher.finish()?, footer.signature())
            .map_err(|_| Error::AuthenticationFailed)?;
        self.state = State::Done;
        Ok(Step::Verified { consumed })
    }
}

/// The plaintext of a one-shot decryption as it is written.
struct Plaintext {
    buf: Zeroizing<Vec<u8>>,
    written: usize,
    /// `buf` was sized for the whole plaintext up front: decrypt over its old bytes.
    prefilled: bool,
}
