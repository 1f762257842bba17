#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod body;
mod context;
mod decoder;
mod edk;
mod error;
mod header;
mod parse;
mod suite;

pub use body::{
    BodyAad, FINAL_FRAME_HEADER_LEN, FINAL_FRAME_MARKER, FinalFrame, Footer, FrameHeader,
    FrameKind, MAX_FRAMES, MAX_NON_FRAMED_CONTENT_LEN, NON_FRAMED_HEADER_LEN,
    REGULAR_FRAME_HEADER_LEN, frame_iv, frame_split, framed_body_len,
};
pub use context::{EncryptionContext, MAX_SERIALIZED_LEN, PUBLIC_KEY_FIELD, RESERVED_PREFIX};
pub use decoder::HeaderDecoder;
pub use edk::EncryptedDataKey;
pub use error::FormatError;
pub use header::{
    COMMIT_KEY_LEN, DEFAULT_FRAME_LENGTH, DEFAULT_MAX_HEADER_LEN, Framing, Header, HeaderAuth,
    HeaderBody, HeaderLimits, MESSAGE_TYPE, MessageId,
};
pub use parse::Parsed;
pub use suite::{
    AlgorithmSuite, CommitmentPolicy, IV_LEN, Kdf, MessageFormatVersion, Operation, ParseError,
    PolicyViolation, SignatureAlgorithm, TAG_LEN,
};
