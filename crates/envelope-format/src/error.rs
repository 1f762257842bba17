//! Errors raised while parsing or serializing the message format.

use crate::suite::AlgorithmSuite;

/// Why a message, or a part of one, is not well formed.
///
/// Every variant names the rule that was broken so that a user can tell a corrupted message from a
/// message written by a newer or non-conforming implementation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The input ended before the structure was complete.
    #[error("the message is truncated: it ended before the {0} was complete")]
    Truncated(&'static str),
    /// Bytes follow a complete message.
    #[error("{0} unexpected bytes follow the end of the message")]
    TrailingBytes(usize),
    /// The input looks like Base64 text rather than a binary message.
    #[error(
        "the input looks Base64-encoded (it starts with \"{0}\"); decode it to bytes before decrypting"
    )]
    Base64Encoded(&'static str),
    /// The message format version byte is not 1 or 2.
    #[error("unsupported message format version 0x{0:02x}")]
    UnsupportedVersion(u8),
    /// A version 1 header has a type other than 0x80.
    #[error("unsupported message type 0x{0:02x} (expected 0x80)")]
    UnsupportedType(u8),
    /// The algorithm suite id is not one of the 11 ESDK suites.
    #[error("unknown algorithm suite id 0x{0:04x}")]
    UnknownSuite(u16),
    /// The suite belongs to the other message format version.
    #[error("algorithm suite {suite} requires message format version {expected}, found {found}")]
    SuiteVersionMismatch {
        /// The suite named in the header.
        suite: AlgorithmSuite,
        /// The version the suite requires.
        expected: u8,
        /// The version byte in the header.
        found: u8,
    },
    /// The message id has the wrong length for its format version.
    #[error("message id must be {expected} bytes, got {found}")]
    InvalidMessageIdLength {
        /// Required length.
        expected: usize,
        /// Supplied length.
        found: usize,
    },
    /// The encryption context section is malformed.
    #[error("malformed encryption context: {0}")]
    MalformedEncryptionContext(&'static str),
    /// The same encryption context key appears twice.
    #[error("encryption context key {0:?} appears more than once")]
    DuplicateEncryptionContextKey(String),
    /// A caller-supplied encryption context key uses the reserved `aws-crypto-` prefix.
    #[error("encryption context key {0:?} uses the reserved prefix \"aws-crypto-\"")]
    ReservedEncryptionContextKey(String),
    /// An encryption context key or value is empty; other ESDKs (Java) cannot read such messages.
    #[error("encryption context keys and values must not be empty")]
    EmptyEncryptionContextEntry,
    /// A field holds bytes that are not valid UTF-8.
    #[error("the {0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A length-prefixed field or a count does not fit its wire field.
    #[error("the {field} is too long for the message format ({len} > {max})")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The largest length the format allows.
        max: usize,
    },
    /// The header carries no encrypted data key.
    #[error("the message has no encrypted data keys")]
    NoEncryptedDataKeys,
    /// The header carries more encrypted data keys than the configured maximum.
    #[error(
        "the message has {count} encrypted data keys, more than the configured maximum of {max}"
    )]
    TooManyEncryptedDataKeys {
        /// How many the header declares.
        count: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The header is longer than the configured maximum.
    #[error("the message header is longer than the configured maximum of {max} bytes")]
    HeaderTooLarge {
        /// The configured maximum.
        max: usize,
    },
    /// The content type byte is neither 0x01 (non-framed) nor 0x02 (framed).
    #[error("unknown content type 0x{0:02x}")]
    UnknownContentType(u8),
    /// The version 1 reserved field is not zero.
    #[error("the reserved header field is not zero")]
    NonZeroReserved,
    /// The version 1 IV length byte is not 12.
    #[error("header IV length is {0}, expected 12")]
    InvalidIvLength(u8),
    /// Frame length and content type disagree (framed with 0, non-framed with non-zero).
    #[error("frame length {frame_length} is not valid for a {content} body")]
    InvalidFrameLength {
        /// `"framed"` or `"non-framed"`.
        content: &'static str,
        /// The frame length in the header.
        frame_length: u32,
    },
    /// A frame's sequence number is not the next one.
    #[error("frame sequence number {found} where {expected} was expected")]
    InvalidSequenceNumber {
        /// The expected number.
        expected: u32,
        /// The number found.
        found: u32,
    },
    /// The final frame claims more content than the frame length.
    #[error("final frame content length {len} exceeds the frame length {frame_length}")]
    FinalFrameTooLong {
        /// Declared content length.
        len: u32,
        /// Frame length from the header.
        frame_length: u32,
    },
    /// A non-framed body claims more content than the format allows (2^36 - 32 bytes).
    #[error("non-framed content length {0} exceeds the maximum of 2^36 - 32 bytes")]
    NonFramedContentTooLong(u64),
    /// The body would need more frames than sequence numbers exist.
    #[error("the plaintext needs more than 2^32 - 1 frames at this frame length")]
    TooManyFrames,
    /// A [`HeaderDecoder`](crate::HeaderDecoder) was fed more input after it returned the header.
    #[error("the header was already decoded: the rest of the input belongs to the message body")]
    HeaderAlreadyDecoded,
    /// A signature footer was found where none is allowed or a required one is malformed.
    #[error("malformed footer: {0}")]
    MalformedFooter(&'static str),
}
