//! Writing a message: header, frames and footer, for one-shot and streaming encryption alike.

use std::num::NonZeroU32;
use std::sync::Arc;

use envelope_crypto::aead::AeadKey;
use envelope_crypto::ecdsa::SigningKey;
use envelope_format::{
    FinalFrame, Footer, FormatError, FrameHeader, Framing, Header, HeaderBody, MessageId, TAG_LEN,
    frame_split, framed_body_len,
};
use envelope_keyring::CompleteEncryptionMaterials;

use super::keys::{authenticate_header, derive, required_context_bytes};
use super::sighash::{SCOPED_AFTER, SCOPED_BATCH, SignatureHasher, hash_alongside};
use crate::config::ClientConfig;
use crate::error::Error;

/// The largest DER ECDSA P-384 signature plus the footer's length field.
pub(crate) const MAX_FOOTER_LEN: usize = 2 + 2 + 2 * (2 + 49);

/// The most scratch space a fresh signed one-shot output seals its first frames into.
const SCRATCH_MAX: usize = 2 << 20;

struct Signer {
    hasher: SignatureHasher,
    key: Arc<SigningKey>,
}

/// Seals frames of one message. Holds the derived content key and, for signed suites, the running
/// hash of everything written so far.
pub(crate) struct MessageWriter {
    header: Header,
    content: AeadKey,
    frame_length: u32,
    final_frame: FinalFrame,
    next_seq: u32,
    signer: Option<Signer>,
    sealed_final: bool,
    /// One-shot encryption may hash on a scoped thread (see [`hash_alongside`]).
    parallel_hashing: bool,
}

impl MessageWriter {
    /// Check the materials against the client's rules, derive the keys and build the header.
    pub(crate) fn new(
        config: &ClientConfig,
        materials: &CompleteEncryptionMaterials,
        frame_length: NonZeroU32,
        final_frame: FinalFrame,
        message_id: MessageId,
    ) -> Result<Self, Error> {
        let suite = materials.suite();
        config.commitment_policy.check_encrypt(suite)?;
        let edks = materials.encrypted_data_keys();
        if let Some(max) = config.max_encrypted_data_keys
            && edks.len() > usize::from(max)
        {
            return Err(Error::TooManyEncryptedDataKeys {
                count: edks.len(),
                max: usize::from(max),
            });
        }
        let keys = derive(suite, materials.data_key(), &message_id)?;

        let required = materials.required_encryption_context_keys();
        let stored_context = materials.encryption_context().without(required);
        let required_bytes = required_context_bytes(materials.encryption_context(), required)?;
        let body = HeaderBody::new(
            suite,
            message_id,
            stored_context,
            edks.to_vec(),
            Framing::Framed(frame_length),
            keys.commit_key,
        )?;
        let header = Header::seal(body, |bytes| {
            authenticate_header(&keys.content, bytes, &required_bytes)
        })?;

        let background = config.signature_hashing.stream_background();
        let signer = match (suite.signature(), materials.signing_key()) {
            (None, None) => None,
            (Some(_), Some(key)) => Some(Signer {
                hasher: SignatureHasher::over_header(key.curve(), background, header.as_bytes()),
                key: Arc::clone(key),
            }),
            _ => {
                return Err(Error::Internal("signing key does not match the suite"));
            }
        };
        Ok(Self {
            header,
            content: keys.content,
            frame_length: frame_length.get(),
            final_frame,
            next_seq: 1,
            signer,
            sealed_final: false,
            parallel_hashing: config.signature_hashing.one_shot_parallel(),
        })
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    pub(crate) fn frame_length(&self) -> u32 {
        self.frame_length
    }

    pub(crate) fn final_frame(&self) -> FinalFrame {
        self.final_frame
    }

    fn seal(
        &mut self,
        frame: FrameHeader,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        let header_len = frame.len();
        let total = header_len + plaintext.len() + TAG_LEN;
        let out = out
            .get_mut(..total)
            .ok_or(Error::Internal("frame output buffer too small"))?;
        frame.write_to(out);
        let aad = frame.aad(self.header.body().message_id());
        self.content.seal_to(
            frame.iv(),
            aad.as_bytes(),
            plaintext,
            &mut out[header_len..],
        )?;
        if let Some(signer) = &mut self.signer {
            signer.hasher.update(out);
        }
        Ok(total)
    }

    /// Seal a regular frame (exactly the frame length) into `out`; returns the bytes written.
    pub(crate) fn seal_regular(
        &mut self,
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if self.sealed_final || plaintext.len() != self.frame_length as usize {
            return Err(Error::Internal("regular frame of the wrong size"));
        }
        let seq = self.next_seq;
        if seq == u32::MAX {
            return Err(FormatError::TooManyFrames.into());
        }
        let written = self.seal(FrameHeader::regular(seq, self.frame_length), plaintext, out)?;
        self.next_seq = seq + 1;
        Ok(written)
    }

    /// Seal the final frame (0 to frame length bytes) into `out`; returns the bytes written.
    pub(crate) fn seal_final(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, Error> {
        let len = u32::try_from(plaintext.len())
            .ok()
            .filter(|&l| l <= self.frame_length);
        let (Some(len), false) = (len, self.sealed_final) else {
            return Err(Error::Internal("final frame of the wrong size"));
        };
        let written = self.seal(FrameHeader::final_frame(self.next_seq, len), plaintext, out)?;
        self.sealed_final = true;
        Ok(written)
    }

    /// The footer of a signed message, after the final frame.
    pub(crate) fn footer(&mut self) -> Result<Option<Footer>, Error> {
        if !self.sealed_final {
            return Err(Error::Internal("footer before the final frame"));
        }
        match self.signer.take() {
            None => Ok(None),
            Some(Signer { hasher, key }) => {
                let signature = key.sign_digest(&hasher.finish()?)?;
                Ok(Some(Footer::new(signature)?))
            }
        }
    }

    /// Encrypt a whole plaintext into a message, in `out` (its capacity is reused).
    ///
    /// A reused buffer already about as long as the message is sealed over. Otherwise the output
    /// grows one frame at a time: each frame's bytes are zero-filled while still in the CPU cache
    /// and overwritten by AES-GCM right away, instead of a separate pass over the whole message
    /// first. A large signed message, when the client allows it, is sealed into an output sized
    /// up front while a scoped thread hashes the finished batches; when that output is new, its
    /// first frames are sealed into scratch space so the hashing starts before the allocation.
    pub(crate) fn encrypt_all(
        mut self,
        plaintext: &[u8],
        mut out: Vec<u8>,
    ) -> Result<(Header, Vec<u8>), Error> {
        let (regular, _) =
            frame_split(plaintext.len() as u64, self.frame_length, self.final_frame)?;
        let body_len =
            framed_body_len(plaintext.len() as u64, self.frame_length, self.final_frame)?;
        let body_len = usize::try_from(body_len).map_err(|_| FormatError::TooManyFrames)?;
        let header_len = self.header.len();
        let footer = if self.signer.is_some() {
            MAX_FOOTER_LEN
        } else {
            0
        };
        let detached = match &mut self.signer {
            Some(signer) if self.parallel_hashing && body_len >= SCOPED_AFTER => {
                signer.hasher.detach()
            }
            _ => None,
        };
        // A reused buffer that (nearly) covers the message already is sealed over in place.
        let total = header_len + body_len;
        let covered = out.len().min(total);
        let presized = detached.is_some()
            || (out.capacity() >= total.saturating_add(footer) && total - covered <= total / 16);
        if presized {
            // Regular frames to seal into scratch space first, when the output must be allocated.
            let head = if out.capacity() < total.saturating_add(footer) {
                self.head_frames(regular, body_len)
            } else {
                0
            };
            let digest = match detached {
                Some(hasher) if head > 0 => {
                    // A fresh output is zero-filled before anything can be sealed into it, which
                    // would hold the hashing thread back: the first frames are sealed into a
                    // small buffer and hashed from there meanwhile, then copied over.
                    let unit = Self::regular_unit_len(self.frame_length as usize);
                    let mut scratch = vec![0u8; head * unit];
                    let scratch_ref = scratch.as_mut_slice();
                    let out_ref = &mut out;
                    let me = &mut self;
                    let ((), digest) = hash_alongside(hasher, move |feed| {
                        me.seal_fresh(
                            plaintext,
                            regular,
                            scratch_ref,
                            out_ref,
                            (total, footer),
                            feed,
                        )
                    })?;
                    Some(digest)
                }
                detached => {
                    out = sized_output(out, total, footer);
                    let (head, body) = out.split_at_mut(header_len);
                    head.copy_from_slice(self.header.as_bytes());
                    match detached {
                        Some(hasher) => {
                            let ((), digest) = hash_alongside(hasher, |feed| {
                                self.seal_body(plaintext, regular, body, feed)
                            })?;
                            Some(digest)
                        }
                        None => {
                            self.seal_body(plaintext, regular, body, &mut |_| {})?;
                            None
                        }
                    }
                }
            };
            if let (Some(digest), Some(signer)) = (digest, &mut self.signer) {
                signer.hasher.supply(digest);
            }
        } else {
            out.clear();
            out.reserve(header_len + body_len + footer);
            out.extend_from_slice(self.header.as_bytes());
            let frame = self.frame_length as usize;
            let mut rest = plaintext;
            for _ in 0..regular {
                let (chunk, tail) = rest.split_at(frame);
                let at = out.len();
                out.resize(at + Self::regular_unit_len(frame), 0);
                self.seal_regular(chunk, &mut out[at..])?;
                rest = tail;
            }
            let at = out.len();
            out.resize(at + Self::final_unit_len(rest.len()), 0);
            self.seal_final(rest, &mut out[at..])?;
        }
        if let Some(footer) = self.footer()? {
            footer.append_to(&mut out);
        }
        Ok((self.header, out))
    }

    /// How many regular frames a fresh one-shot output's head seals into scratch space while the
    /// output is allocated: about a sixteenth of the body (zero-filling memory runs over ten
    /// times faster than SHA-384, so the hashing thread stays busy), between one batch and
    /// [`SCRATCH_MAX`] bytes. 0 when no regular frame fits.
    fn head_frames(&self, regular: u64, body_len: usize) -> usize {
        let unit = Self::regular_unit_len(self.frame_length as usize);
        let bytes = (body_len / 16).clamp(SCOPED_BATCH, SCRATCH_MAX);
        let frames = bytes / unit;
        usize::try_from(regular).map_or(frames, |regular| frames.min(regular))
    }

    /// Seal the whole message into a freshly allocated output: the first frames into `scratch`
    /// (fed to the hasher at once), then the output is sized, and the header, the scratch frames
    /// and the remaining frames go into it.
    fn seal_fresh<'m>(
        &mut self,
        plaintext: &[u8],
        regular: u64,
        scratch: &'m mut [u8],
        out: &'m mut Vec<u8>,
        (total, footer): (usize, usize),
        feed: &mut dyn FnMut(&'m [u8]),
    ) -> Result<(), Error> {
        let unit = Self::regular_unit_len(self.frame_length as usize);
        let head = (scratch.len() / unit) as u64;
        let mut pieces: Vec<&'m [u8]> = Vec::new();
        let (rest, _) = self.seal_batches(plaintext, head, scratch, &mut |piece| {
            pieces.push(piece);
            feed(piece);
        })?;
        *out = sized_output(std::mem::take(out), total, footer);
        let header_len = self.header.len();
        let (header, body) = out.as_mut_slice().split_at_mut(header_len);
        header.copy_from_slice(self.header.as_bytes());
        let mut body: &'m mut [u8] = body;
        for piece in pieces {
            let (done, tail) = std::mem::take(&mut body)
                .split_at_mut_checked(piece.len())
                .ok_or_else(output_too_small)?;
            done.copy_from_slice(piece);
            body = tail;
        }
        self.seal_body(rest, regular - head, body, feed)
    }

    /// Seal every frame of `plaintext` into `body` (exactly the body's length), handing each
    /// finished batch of frames to `feed` (when the signature's hash was detached for it).
    fn seal_body<'m>(
        &mut self,
        plaintext: &[u8],
        regular: u64,
        body: &'m mut [u8],
        feed: &mut dyn FnMut(&'m [u8]),
    ) -> Result<(), Error> {
        let (rest, body) = self.seal_batches(plaintext, regular, body, feed)?;
        let written = self.seal_final(rest, body)?;
        let last: &'m [u8] = body;
        feed(last.get(..written).ok_or_else(output_too_small)?);
        Ok(())
    }

    /// Seal `frames` regular frames from the start of `plaintext` into the start of `body`,
    /// handing each finished batch to `feed`. Returns the plaintext and the output left over.
    fn seal_batches<'p, 'm>(
        &mut self,
        plaintext: &'p [u8],
        frames: u64,
        mut body: &'m mut [u8],
        feed: &mut dyn FnMut(&'m [u8]),
    ) -> Result<(&'p [u8], &'m mut [u8]), Error> {
        let frame = self.frame_length as usize;
        let unit = Self::regular_unit_len(frame);
        let per_batch = (SCOPED_BATCH / unit).max(1) as u64;
        let mut rest = plaintext;
        let mut left = frames;
        while left > 0 {
            let count = per_batch.min(left);
            let bytes = usize::try_from(count)
                .ok()
                .and_then(|n| n.checked_mul(unit))
                .ok_or_else(output_too_small)?;
            let (batch, tail) = std::mem::take(&mut body)
                .split_at_mut_checked(bytes)
                .ok_or_else(output_too_small)?;
            let mut at = 0;
            for _ in 0..count {
                let (chunk, more) = rest.split_at_checked(frame).ok_or_else(output_too_small)?;
                at += self.seal_regular(chunk, &mut batch[at..])?;
                rest = more;
            }
            feed(batch);
            body = tail;
            left -= count;
        }
        Ok((rest, body))
    }

    fn regular_unit_len(frame: usize) -> usize {
        envelope_format::REGULAR_FRAME_HEADER_LEN + frame + TAG_LEN
    }

    fn final_unit_len(len: usize) -> usize {
        envelope_format::FINAL_FRAME_HEADER_LEN + len + TAG_LEN
    }
}

/// An output slice shorter than the frames sealed into it (a bug, never bad input).
fn output_too_small() -> Error {
    Error::Internal("message output buffer too small")
}

/// `out` resized to `len` bytes with room for `extra` more, without a pass over memory it does
/// not need: a buffer too small is replaced by a zeroed allocation (fresh pages from the kernel
/// for large sizes), a large enough one keeps its old bytes, which sealing overwrites.
fn sized_output(mut out: Vec<u8>, len: usize, extra: usize) -> Vec<u8> {
    let capacity = len.saturating_add(extra);
    if out.capacity() < capacity {
        let mut fresh = vec![0u8; capacity];
        fresh.truncate(len);
        return fresh;
    }
    out.truncate(len);
    out.resize(len, 0);
    out
}
