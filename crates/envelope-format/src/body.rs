//! The message body: regular and final frames, the legacy non-framed block, and the body AAD.

use crate::error::FormatError;
use crate::header::MessageId;
use crate::parse::{Cursor, Parsed, Stop, finish};
use crate::suite::{IV_LEN, TAG_LEN};

/// The sequence-number-end marker that starts the final frame.
pub const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
/// The largest content a non-framed body may hold: 2^36 - 32 bytes.
pub const MAX_NON_FRAMED_CONTENT_LEN: u64 = (1 << 36) - 32;
/// The largest number of frames a message may have.
pub const MAX_FRAMES: u32 = u32::MAX;
/// Bytes before a regular frame's ciphertext: sequence number and IV.
pub const REGULAR_FRAME_HEADER_LEN: usize = 4 + IV_LEN;
/// Bytes before a final frame's ciphertext: marker, sequence number, IV and content length.
pub const FINAL_FRAME_HEADER_LEN: usize = 4 + 4 + IV_LEN + 4;
/// Bytes before a non-framed body's ciphertext: IV and content length.
pub const NON_FRAMED_HEADER_LEN: usize = IV_LEN + 8;

const FRAME_STRING: &[u8] = b"AWSKMSEncryptionClient Frame";
const FINAL_FRAME_STRING: &[u8] = b"AWSKMSEncryptionClient Final Frame";
const SINGLE_BLOCK_STRING: &[u8] = b"AWSKMSEncryptionClient Single Block";
// The longest content string is "... Single Block" (35 bytes), one more than "... Final Frame".
const MAX_AAD_LEN: usize = 32 + SINGLE_BLOCK_STRING.len() + 4 + 8;

/// Which kind of body unit a ciphertext belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A regular frame, holding exactly the frame length.
    Regular,
    /// The final frame, holding 0 to frame length bytes.
    Final,
    /// The single block of a non-framed body.
    SingleBlock,
}

impl FrameKind {
    /// The content string that goes into the body AAD.
    pub const fn content_string(self) -> &'static [u8] {
        match self {
            Self::Regular => FRAME_STRING,
            Self::Final => FINAL_FRAME_STRING,
            Self::SingleBlock => SINGLE_BLOCK_STRING,
        }
    }
}

/// The IV of frame `sequence_number`: eight zero bytes then the big-endian sequence number.
pub fn frame_iv(sequence_number: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[8..].copy_from_slice(&sequence_number.to_be_bytes());
    iv
}

/// The additional authenticated data of one frame, built on the stack:
/// `message id || content string || u32 sequence number || u64 content length`.
#[derive(Clone, Copy)]
pub struct BodyAad {
    buf: [u8; MAX_AAD_LEN],
    len: usize,
}

impl BodyAad {
    /// The AAD for a frame.
    pub fn new(
        message_id: &MessageId,
        kind: FrameKind,
        sequence_number: u32,
        content_len: u64,
    ) -> Self {
        let mut buf = [0u8; MAX_AAD_LEN];
        let id = message_id.as_bytes();
        let s = kind.content_string();
        let mut at = 0;
        for part in [
            id,
            s,
            &sequence_number.to_be_bytes(),
            &content_len.to_be_bytes(),
        ] {
            buf[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        Self { buf, len: at }
    }

    /// The AAD bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The fields that precede a frame's (or the single block's) ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    kind: FrameKind,
    sequence_number: u32,
    iv: [u8; IV_LEN],
    // At most u32::MAX for framed units (both constructors and the parser take a u32), at most
    // MAX_NON_FRAMED_CONTENT_LEN for the single block.
    content_len: u64,
}

impl FrameHeader {
    /// Regular, final or single block.
    pub fn kind(&self) -> FrameKind {
        self.kind
    }

    /// The sequence number (1 for the single block).
    pub fn sequence_number(&self) -> u32 {
        self.sequence_number
    }

    /// The IV stored with the unit.
    pub fn iv(&self) -> &[u8; IV_LEN] {
        &self.iv
    }

    /// The length of the ciphertext (= plaintext) that follows.
    pub fn content_len(&self) -> u64 {
        self.content_len
    }

    /// A regular frame of `frame_length` bytes.
    pub fn regular(sequence_number: u32, frame_length: u32) -> Self {
        Self {
            kind: FrameKind::Regular,
            sequence_number,
            iv: frame_iv(sequence_number),
            content_len: u64::from(frame_length),
        }
    }

    /// The final frame with `content_len` bytes.
    pub fn final_frame(sequence_number: u32, content_len: u32) -> Self {
        Self {
            kind: FrameKind::Final,
            sequence_number,
            iv: frame_iv(sequence_number),
            content_len: u64::from(content_len),
        }
    }

    /// Length of these fields on the wire.
    pub fn len(&self) -> usize {
        match self.kind {
            FrameKind::Regular => REGULAR_FRAME_HEADER_LEN,
            FrameKind::Final => FINAL_FRAME_HEADER_LEN,
            FrameKind::SingleBlock => NON_FRAMED_HEADER_LEN,
        }
    }

    /// Always false: the fields are never empty. (Present for API symmetry with `len`.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Length of the whole unit: these fields, the ciphertext and the tag.
    pub fn unit_len(&self) -> u64 {
        self.len() as u64 + self.content_len + TAG_LEN as u64
    }

    /// The body AAD for this unit.
    pub fn aad(&self, message_id: &MessageId) -> BodyAad {
        BodyAad::new(
            message_id,
            self.kind,
            self.sequence_number,
            self.content_len,
        )
    }

    /// Write these fields to the start of `out`, which must hold [`FrameHeader::len`] bytes.
    /// Returns the number of bytes written.
    pub fn write_to(&self, out: &mut [u8]) -> usize {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        match self.kind {
            FrameKind::Regular => {
                put(&self.sequence_number.to_be_bytes());
                put(&self.iv);
            }
            FrameKind::Final => {
                put(&FINAL_FRAME_MARKER.to_be_bytes());
                put(&self.sequence_number.to_be_bytes());
                put(&self.iv);
                // A final frame's length came in as a u32 (see the field's invariant).
                #[allow(clippy::cast_possible_truncation)]
                put(&(self.content_len as u32).to_be_bytes());
            }
            FrameKind::SingleBlock => {
                put(&self.iv);
                put(&self.content_len.to_be_bytes());
            }
        }
        at
    }

    /// Append these fields to `out`.
    pub fn append_to(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.len(), 0);
        self.write_to(&mut out[start..]);
    }

    /// Parse the fields of the next frame of a framed body.
    ///
    /// `expected_sequence_number` is the number the frame must carry; a regular frame holds exactly
    /// `frame_length` bytes and the final frame at most that many.
    pub fn parse_framed(
        input: &[u8],
        frame_length: u32,
        expected_sequence_number: u32,
    ) -> Result<Parsed<Self>, FormatError> {
        let mut cursor = Cursor::new(input);
        let result = (|| {
            let first = cursor.u32()?;
            let header = if first == FINAL_FRAME_MARKER {
                let sequence_number = cursor.u32()?;
                check_sequence(expected_sequence_number, sequence_number)?;
                let iv = cursor.array::<IV_LEN>()?;
                let len = cursor.u32()?;
                if len > frame_length {
                    return Err(Stop::Invalid(FormatError::FinalFrameTooLong {
                        len,
                        frame_length,
                    }));
                }
                Self {
                    kind: FrameKind::Final,
                    sequence_number,
                    iv,
                    content_len: u64::from(len),
                }
            } else {
                check_sequence(expected_sequence_number, first)?;
                let iv = cursor.array::<IV_LEN>()?;
                Self {
                    kind: FrameKind::Regular,
                    sequence_number: first,
                    iv,
                    content_len: u64::from(frame_length),
                }
            };
            Ok((header, cursor.position()))
        })();
        finish(result)
    }

    /// Parse the fields of a non-framed body.
    pub fn parse_non_framed(input: &[u8]) -> Result<Parsed<Self>, FormatError> {
        let mut cursor = Cursor::new(input);
        let result = (|| {
            let iv = cursor.array::<IV_LEN>()?;
            let content_len = cursor.u64()?;
            if content_len > MAX_NON_FRAMED_CONTENT_LEN {
                return Err(Stop::Invalid(FormatError::NonFramedContentTooLong(
                    content_len,
                )));
            }
            let header = Self {
                kind: FrameKind::SingleBlock,
                sequence_number: 1,
                iv,
                content_len,
            };
            Ok((header, cursor.position()))
        })();
        finish(result)
    }
}

fn check_sequence(expected: u32, found: u32) -> Result<(), Stop> {
    if expected == found {
        Ok(())
    } else {
        Err(Stop::Invalid(FormatError::InvalidSequenceNumber {
            expected,
            found,
        }))
    }
}

/// How a plaintext that is an exact non-zero multiple of the frame length ends.
///
/// Both forms are valid messages and every decoder must read both. They differ in one respect
/// users meet in practice: the Python ESDK before 4.0 (and so aws-encryption-sdk-cli 4.3.0, which
/// pins it) refuses a final frame as long as the frame length, so only [`FinalFrame::Empty`]
/// messages of such lengths decrypt there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FinalFrame {
    /// The last frame-length chunk is the final frame (what the specification recommends).
    #[default]
    Full,
    /// Every chunk goes into a regular frame and an empty final frame follows (what the Python
    /// ESDK writes); 32 bytes longer than [`FinalFrame::Full`] at those lengths.
    Empty,
}

/// The number of regular frames and the final frame's length for `plaintext_len` bytes.
///
/// A plaintext that is an exact non-zero multiple of the frame length ends as `final_frame` says:
/// in a full final frame, or in an empty one after the regular frames.
pub fn frame_split(
    plaintext_len: u64,
    frame_length: u32,
    final_frame: FinalFrame,
) -> Result<(u64, u32), FormatError> {
    let frame = u64::from(frame_length.max(1));
    let (regular, last) = if final_frame == FinalFrame::Full
        && plaintext_len > 0
        && plaintext_len.is_multiple_of(frame)
    {
        (plaintext_len / frame - 1, frame)
    } else {
        (plaintext_len / frame, plaintext_len % frame)
    };
    if regular >= u64::from(MAX_FRAMES) {
        return Err(FormatError::TooManyFrames);
    }
    // `last` is at most the frame length, a u32.
    let last = u32::try_from(last).map_err(|_| FormatError::TooManyFrames)?;
    Ok((regular, last))
}

/// The length of a framed body carrying `plaintext_len` bytes.
pub fn framed_body_len(
    plaintext_len: u64,
    frame_length: u32,
    final_frame: FinalFrame,
) -> Result<u64, FormatError> {
    let (regular, last) = frame_split(plaintext_len, frame_length, final_frame)?;
    let regular_unit = (REGULAR_FRAME_HEADER_LEN + TAG_LEN) as u64 + u64::from(frame_length);
    Ok(regular * regular_unit + (FINAL_FRAME_HEADER_LEN + TAG_LEN) as u64 + u64::from(last))
}

/// The signature footer of a signed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footer {
    signature: Vec<u8>,
}

impl Footer {
    /// A footer holding a DER-encoded signature.
    pub fn new(signature: Vec<u8>) -> Result<Self, FormatError> {
        if signature.len() > usize::from(u16::MAX) {
            return Err(FormatError::FieldTooLong {
                field: "signature",
                len: signature.len(),
                max: usize::from(u16::MAX),
            });
        }
        Ok(Self { signature })
    }

    /// The DER-encoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Parse a footer from the start of `input`.
    pub fn parse(input: &[u8]) -> Result<Parsed<Self>, FormatError> {
        let mut cursor = Cursor::new(input);
        let result = (|| {
            let signature = cursor.short_bytes()?;
            Ok((
                Self {
                    signature: signature.to_vec(),
                },
                cursor.position(),
            ))
        })();
        finish(result)
    }

    /// Append `u16 length || signature` to `out`.
    pub fn append_to(&self, out: &mut Vec<u8>) {
        // `new` and `parse` bound the length to u16.
        #[allow(clippy::cast_possible_truncation)]
        out.extend_from_slice(&(self.signature.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.signature);
    }

    /// Serialized length.
    pub fn serialized_len(&self) -> usize {
        2 + self.signature.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (plaintext length, frame length) -> (regular frames, final frame length), for a full final
    /// frame (the spec's recommendation) and for an empty one (what the Python CLI needs).
    #[test]
    fn frame_split_for_either_final_frame() {
        let max = u64::from(u32::MAX);
        let full = [
            (0, 4096, (0, 0)),
            (1, 4096, (0, 1)),
            (4095, 4096, (0, 4095)),
            (4096, 4096, (0, 4096)),
            (4097, 4096, (1, 1)),
            (3 * 4096, 4096, (2, 4096)),
            (max, 1, (max - 1, 1)),
        ];
        // The empty form needs one more frame, so one plaintext length fewer fits.
        let empty = [
            (0, 4096, (0, 0)),
            (4095, 4096, (0, 4095)),
            (4096, 4096, (1, 0)),
            (4097, 4096, (1, 1)),
            (3 * 4096, 4096, (3, 0)),
            (max - 1, 1, (max - 1, 0)),
        ];
        for (final_frame, cases, too_long) in [
            (FinalFrame::Full, &full[..], max + 1),
            (FinalFrame::Empty, &empty[..], max),
        ] {
            for &(len, frame, split) in cases {
                assert_eq!(
                    frame_split(len, frame, final_frame),
                    Ok(split),
                    "{len}/{frame}"
                );
            }
            assert_eq!(
                frame_split(too_long, 1, final_frame),
                Err(FormatError::TooManyFrames)
            );
        }
        assert_eq!(
            framed_body_len(4096, 4096, FinalFrame::Empty).unwrap(),
            framed_body_len(4096, 4096, FinalFrame::Full).unwrap() + 32
        );
    }

    #[test]
    fn body_aad_matches_kat() {
        // kat-vectors.json derivations[0]: message id 0x22 x 16, frame 1, length 128.
        let id = MessageId::from_slice(&[0x22; 16]).unwrap();
        let aad = BodyAad::new(&id, FrameKind::Regular, 1, 128);
        assert_eq!(
            hex::encode(aad.as_bytes()),
            "222222222222222222222222222222224157534b4d53456e6372797074696f6e436c69656e74204672616d65000000010000000000000080"
        );
        assert_eq!(hex::encode(frame_iv(1)), "000000000000000000000001");
    }

    /// Regression: a v2 (32-byte id) single-block AAD is the longest AAD and once overflowed the
    /// buffer (found by the commitment known-answer vectors, which include non-framed v2 messages).
    #[test]
    fn every_aad_fits() {
        let id = MessageId::from_slice(&[7; 32]).unwrap();
        for kind in [FrameKind::Regular, FrameKind::Final, FrameKind::SingleBlock] {
            let aad = BodyAad::new(&id, kind, u32::MAX, u64::MAX);
            assert_eq!(aad.as_bytes().len(), 32 + kind.content_string().len() + 12);
            assert!(aad.as_bytes().ends_with(&[0xff; 12]));
        }
        assert_eq!(FrameKind::SingleBlock.content_string().len(), 35);
    }

    #[test]
    fn frame_headers_round_trip() {
        for header in [
            FrameHeader::regular(7, 4096),
            FrameHeader::final_frame(8, 17),
        ] {
            let mut out = Vec::new();
            header.append_to(&mut out);
            assert_eq!(out.len(), header.len());
            let Parsed::Complete(parsed, used) =
                FrameHeader::parse_framed(&out, 4096, header.sequence_number()).unwrap()
            else {
                panic!("incomplete")
            };
            assert_eq!((parsed, used), (header, out.len()));
            for cut in 0..out.len() {
                assert_eq!(
                    FrameHeader::parse_framed(&out[..cut], 4096, header.sequence_number()).unwrap(),
                    Parsed::Incomplete(if cut < 4 {
                        4
                    } else if header.kind() == FrameKind::Regular {
                        16
                    } else if cut < 8 {
                        8
                    } else if cut < 20 {
                        20
                    } else {
                        24
                    })
                );
            }
        }
    }

    #[test]
    fn frame_parse_rejects() {
        // Frame length 16, expecting sequence number 1.
        let cases = [
            (
                FrameHeader::regular(2, 16),
                FormatError::InvalidSequenceNumber {
                    expected: 1,
                    found: 2,
                },
            ),
            (
                FrameHeader::final_frame(1, 17),
                FormatError::FinalFrameTooLong {
                    len: 17,
                    frame_length: 16,
                },
            ),
        ];
        for (frame, expected) in cases {
            let mut out = Vec::new();
            frame.append_to(&mut out);
            assert_eq!(FrameHeader::parse_framed(&out, 16, 1), Err(expected));
        }
        let mut nf = vec![0u8; 12];
        nf.extend_from_slice(&(MAX_NON_FRAMED_CONTENT_LEN + 1).to_be_bytes());
        assert_eq!(
            FrameHeader::parse_non_framed(&nf),
            Err(FormatError::NonFramedContentTooLong(
                MAX_NON_FRAMED_CONTENT_LEN + 1
            ))
        );
    }

    #[test]
    fn body_len() {
        // one final frame of 5 bytes: 4+4+12+4 + 5 + 16
        assert_eq!(framed_body_len(5, 4096, FinalFrame::Full).unwrap(), 45);
        // "hello" at frame length 4: regular (4+12+4+16) + final (24+1+16)
        assert_eq!(framed_body_len(5, 4, FinalFrame::Full).unwrap(), 36 + 41);
        assert_eq!(framed_body_len(0, 4, FinalFrame::Full).unwrap(), 40);
    }
}
