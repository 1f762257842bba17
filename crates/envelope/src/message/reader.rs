//! Reading a message body and footer once the header is parsed and the materials are known, for
//! one-shot and streaming decryption alike.

use envelope_crypto::aead::AeadKey;
use envelope_crypto::digest::Hasher;
use envelope_crypto::ecdsa::VerifyingKey;
use envelope_format::{
    Footer, FormatError, FrameHeader, FrameKind, Framing, Header, MessageId, Parsed, TAG_LEN,
};
use envelope_keyring::DecryptionMaterials;

use super::keys::{check_commitment, derive, required_context_bytes, verify_header};
use super::sighash::SignatureHasher;
use crate::Error;
use crate::client::ClientConfig;

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
}

impl MessageReader {
    /// Check the materials, derive the keys, verify the key commitment and header authentication.
    pub(crate) fn new(
        config: &ClientConfig,
        header: &Header,
        materials: &DecryptionMaterials,
    ) -> Result<Self, Error> {
        let body = header.body();
        let suite = body.suite();
        if materials.suite() != suite {
            return Err(Error::InvalidMaterials(
                "materials are for another algorithm suite",
            ));
        }
        if !config.commitment_policy.allows_decrypt(suite) {
            return Err(Error::CommitmentPolicy {
                suite,
                policy: config.commitment_policy,
                operation: "decrypt",
            });
        }
        let data_key = materials
            .data_key()
            .ok_or(Error::InvalidMaterials("no plaintext data key"))?;
        let keys = derive(suite, data_key, body.message_id())?;
        check_commitment(body.commit_key(), keys.commit_key.as_ref())?;
        let required = required_context_bytes(
            materials.encryption_context(),
            materials.required_encryption_context_keys(),
        )?;
        verify_header(&keys.content, header.body_bytes(), &required, header.auth())?;

        let verifier = match (suite.signature(), materials.verification_key()) {
            (None, _) => None,
            (Some(_), Some(key)) => {
                let mut hasher = SignatureHasher::new(
                    Hasher::new(key.curve().hash()),
                    config.background_signature_hashing,
                );
                hasher.update(header.as_bytes());
                Some(Verifier {
                    hasher,
                    key: key.clone(),
                })
            }
            (Some(_), None) => {
                return Err(Error::InvalidMaterials(
                    "no verification key for a signed suite",
                ));
            }
        };
        Ok(Self {
            content: keys.content,
            message_id: *body.message_id(),
            framing: body.framing(),
            next_seq: 1,
            verifier,
            state: State::Body,
        })
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
