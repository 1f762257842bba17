//! The message header: body fields and header authentication, format versions 1 and 2.

use std::num::NonZeroU32;

use crate::context::EncryptionContext;
use crate::edk::EncryptedDataKey;
use crate::error::FormatError;
use crate::parse::{Cursor, Stop};
use crate::suite::{AlgorithmSuite, IV_LEN, MessageFormatVersion, TAG_LEN};

/// The v1 message type byte ("customer authenticated encrypted data").
pub const MESSAGE_TYPE: u8 = 0x80;
/// The default frame length, 4096 bytes.
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;
/// The default upper bound on a header's length when decrypting: 1 MiB.
pub const DEFAULT_MAX_HEADER_LEN: usize = 1 << 20;
/// Length of the commit key (the algorithm suite data of committing suites).
pub const COMMIT_KEY_LEN: usize = 32;

const IV_LEN_BYTE: u8 = 12;
const CONTENT_TYPE_NON_FRAMED: u8 = 0x01;
const CONTENT_TYPE_FRAMED: u8 = 0x02;

/// A message id: 16 random bytes in format version 1, 32 in version 2.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId {
    bytes: [u8; 32],
    len: u8,
}

impl MessageId {
    /// A message id from its bytes, which must be 16 or 32 long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, FormatError> {
        if bytes.len() != 16 && bytes.len() != 32 {
            return Err(FormatError::InvalidMessageIdLength {
                expected: 32,
                found: bytes.len(),
            });
        }
        let mut out = [0u8; 32];
        out[..bytes.len()].copy_from_slice(bytes);
        let len = u8::try_from(bytes.len()).map_err(|_| FormatError::InvalidMessageIdLength {
            expected: 32,
            found: bytes.len(),
        })?;
        Ok(Self { bytes: out, len })
    }

    /// The id bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes (16 or 32).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }
}

impl std::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageId(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// How the body is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Framing {
    /// One single block (legacy; decrypt only).
    NonFramed,
    /// Frames of this many plaintext bytes, the last one possibly shorter.
    Framed(NonZeroU32),
}

impl Framing {
    /// Framed with the given frame length; `None` for 0.
    pub fn framed(frame_length: u32) -> Option<Self> {
        NonZeroU32::new(frame_length).map(Self::Framed)
    }

    /// The frame length field value (0 for non-framed bodies).
    pub fn frame_length(self) -> u32 {
        match self {
            Self::NonFramed => 0,
            Self::Framed(n) => n.get(),
        }
    }
}

/// Limits applied while parsing an untrusted header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderLimits {
    /// Fail as soon as the header declares more encrypted data keys than this.
    pub max_encrypted_data_keys: Option<u16>,
    /// Fail as soon as the header would be longer than this many bytes.
    pub max_header_len: Option<usize>,
}

impl Default for HeaderLimits {
    fn default() -> Self {
        Self {
            max_encrypted_data_keys: None,
            max_header_len: Some(DEFAULT_MAX_HEADER_LEN),
        }
    }
}

/// The header fields that precede header authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderBody {
    suite: AlgorithmSuite,
    message_id: MessageId,
    encryption_context: EncryptionContext,
    encrypted_data_keys: Vec<EncryptedDataKey>,
    framing: Framing,
    commit_key: Option<[u8; COMMIT_KEY_LEN]>,
    /// The encryption context section exactly as received, when parsed: some writers did not sort
    /// the pairs, and a header must re-serialize to the bytes it came from.
    context_bytes: Option<Vec<u8>>,
}

impl HeaderBody {
    /// Assemble a header body, checking that its parts fit together: the message id length and the
    /// presence of a commit key must match the suite's format version, and there must be between 1
    /// and 65535 encrypted data keys.
    pub fn new(
        suite: AlgorithmSuite,
        message_id: MessageId,
        encryption_context: EncryptionContext,
        encrypted_data_keys: Vec<EncryptedDataKey>,
        framing: Framing,
        commit_key: Option<[u8; COMMIT_KEY_LEN]>,
    ) -> Result<Self, FormatError> {
        if message_id.len() != suite.message_id_len() {
            return Err(FormatError::InvalidMessageIdLength {
                expected: suite.message_id_len(),
                found: message_id.len(),
            });
        }
        if commit_key.is_some() != suite.is_committing() {
            return Err(FormatError::SuiteVersionMismatch {
                suite,
                expected: suite.message_format_version().as_byte(),
                found: if commit_key.is_some() { 2 } else { 1 },
            });
        }
        if encrypted_data_keys.is_empty() {
            return Err(FormatError::NoEncryptedDataKeys);
        }
        if encrypted_data_keys.len() > usize::from(u16::MAX) {
            return Err(FormatError::FieldTooLong {
                field: "encrypted data key count",
                len: encrypted_data_keys.len(),
                max: usize::from(u16::MAX),
            });
        }
        Ok(Self {
            suite,
            message_id,
            encryption_context,
            encrypted_data_keys,
            framing,
            commit_key,
            context_bytes: None,
        })
    }

    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The message format version (implied by the suite).
    pub fn version(&self) -> MessageFormatVersion {
        self.suite.message_format_version()
    }

    /// The message id.
    pub fn message_id(&self) -> &MessageId {
        &self.message_id
    }

    /// The encryption context stored in the header (without required keys left out of it).
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// The encrypted data keys.
    pub fn encrypted_data_keys(&self) -> &[EncryptedDataKey] {
        &self.encrypted_data_keys
    }

    /// The body layout.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The commit key stored as algorithm suite data (format version 2 only).
    pub fn commit_key(&self) -> Option<&[u8; COMMIT_KEY_LEN]> {
        self.commit_key.as_ref()
    }

    /// Length of the serialized header body.
    pub fn serialized_len(&self) -> usize {
        let ec_len = self.context_len();
        let edks: usize = self
            .encrypted_data_keys
            .iter()
            .map(EncryptedDataKey::serialized_len)
            .sum();
        let common = 2 + self.message_id.len() + 2 + ec_len + 2 + edks + 1 + 4;
        match self.version() {
            MessageFormatVersion::V1 => 1 + 1 + common + 4 + 1,
            MessageFormatVersion::V2 => 1 + common + COMMIT_KEY_LEN,
        }
    }

    /// Append the serialized header body to `out`.
    pub fn serialize_into(&self, out: &mut Vec<u8>) -> Result<(), FormatError> {
        out.reserve(self.serialized_len());
        let version = self.version();
        out.push(version.as_byte());
        if version == MessageFormatVersion::V1 {
            out.push(MESSAGE_TYPE);
        }
        out.extend_from_slice(&self.suite.id().to_be_bytes());
        out.extend_from_slice(self.message_id.as_bytes());
        let ec_len = self.context_len();
        let ec_len16 = u16::try_from(ec_len).map_err(|_| FormatError::FieldTooLong {
            field: "serialized encryption context",
            len: ec_len,
            max: usize::from(u16::MAX),
        })?;
        out.extend_from_slice(&ec_len16.to_be_bytes());
        match &self.context_bytes {
            Some(bytes) => out.extend_from_slice(bytes),
            None => self.encryption_context.serialize_into(out)?,
        }
        let count = u16::try_from(self.encrypted_data_keys.len()).map_err(|_| {
            FormatError::FieldTooLong {
                field: "encrypted data key count",
                len: self.encrypted_data_keys.len(),
                max: usize::from(u16::MAX),
            }
        })?;
        out.extend_from_slice(&count.to_be_bytes());
        for edk in &self.encrypted_data_keys {
            edk.serialize_into(out)?;
        }
        match self.framing {
            Framing::NonFramed => out.push(CONTENT_TYPE_NON_FRAMED),
            Framing::Framed(_) => out.push(CONTENT_TYPE_FRAMED),
        }
        if version == MessageFormatVersion::V1 {
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.push(IV_LEN_BYTE);
        }
        out.extend_from_slice(&self.framing.frame_length().to_be_bytes());
        if let Some(commit_key) = &self.commit_key {
            out.extend_from_slice(commit_key);
        }
        Ok(())
    }

    fn context_len(&self) -> usize {
        match &self.context_bytes {
            Some(bytes) => bytes.len(),
            None => self.encryption_context.serialized_len(),
        }
    }

    /// The serialized header body.
    pub fn serialize(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = Vec::new();
        self.serialize_into(&mut out)?;
        Ok(out)
    }
}

/// The fixed fields at the start of a header: version, (v1) type, suite and message id.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prefix {
    pub(crate) suite: AlgorithmSuite,
    pub(crate) message_id: MessageId,
}

pub(crate) fn parse_prefix(cursor: &mut Cursor<'_>) -> Result<Prefix, Stop> {
    let version = match cursor.u8()? {
        1 => MessageFormatVersion::V1,
        2 => MessageFormatVersion::V2,
        other => return Err(unknown_version(cursor, other)),
    };
    if version == MessageFormatVersion::V1 {
        let message_type = cursor.u8()?;
        if message_type != MESSAGE_TYPE {
            return Err(FormatError::UnsupportedType(message_type).into());
        }
    }
    let suite_id = cursor.u16()?;
    let suite = AlgorithmSuite::from_id(suite_id).ok_or(FormatError::UnknownSuite(suite_id))?;
    if suite.message_format_version() != version {
        return Err(FormatError::SuiteVersionMismatch {
            suite,
            expected: suite.message_format_version().as_byte(),
            found: version.as_byte(),
        }
        .into());
    }
    let message_id = MessageId::from_slice(cursor.take(version.message_id_len())?)?;
    Ok(Prefix { suite, message_id })
}

/// The encryption context section (its `u16` length, then the pairs), parsed, with the bytes it
/// was read from when they are not the canonical serialization.
pub(crate) fn parse_context(
    cursor: &mut Cursor<'_>,
) -> Result<(EncryptionContext, Option<Vec<u8>>), Stop> {
    let ec_bytes = cursor.short_bytes()?;
    let encryption_context = EncryptionContext::parse(ec_bytes)?;
    let canonical = encryption_context.serialize().ok();
    let context_bytes = (canonical.as_deref() != Some(ec_bytes)).then(|| ec_bytes.to_vec());
    Ok((encryption_context, context_bytes))
}

/// The encrypted data key count, checked against the limits before any key is read.
pub(crate) fn parse_key_count(cursor: &mut Cursor<'_>, limits: &HeaderLimits) -> Result<u16, Stop> {
    let count = cursor.u16()?;
    if count == 0 {
        return Err(FormatError::NoEncryptedDataKeys.into());
    }
    if let Some(max) = limits.max_encrypted_data_keys
        && count > max
    {
        return Err(FormatError::TooManyEncryptedDataKeys {
            count: usize::from(count),
            max: usize::from(max),
        }
        .into());
    }
    Ok(count)
}

/// The fields after the encrypted data keys: content type, (v1) reserved bytes and IV length, frame
/// length and (v2) the commit key.
pub(crate) fn parse_trailer(
    cursor: &mut Cursor<'_>,
    version: MessageFormatVersion,
) -> Result<(Framing, Option<[u8; COMMIT_KEY_LEN]>), Stop> {
    let content_type = cursor.u8()?;
    if content_type != CONTENT_TYPE_NON_FRAMED && content_type != CONTENT_TYPE_FRAMED {
        return Err(FormatError::UnknownContentType(content_type).into());
    }
    if version == MessageFormatVersion::V1 {
        if cursor.array::<4>()? != [0, 0, 0, 0] {
            return Err(FormatError::NonZeroReserved.into());
        }
        let iv_len = cursor.u8()?;
        if iv_len != IV_LEN_BYTE {
            return Err(FormatError::InvalidIvLength(iv_len).into());
        }
    }
    let frame_length = cursor.u32()?;
    let framing = match (content_type, NonZeroU32::new(frame_length)) {
        (CONTENT_TYPE_NON_FRAMED, None) => Framing::NonFramed,
        (CONTENT_TYPE_FRAMED, Some(n)) => Framing::Framed(n),
        (CONTENT_TYPE_NON_FRAMED, Some(_)) => {
            return Err(FormatError::InvalidFrameLength {
                content: "non-framed",
                frame_length,
            }
            .into());
        }
        _ => {
            return Err(FormatError::InvalidFrameLength {
                content: "framed",
                frame_length,
            }
            .into());
        }
    };
    let commit_key = match version {
        MessageFormatVersion::V1 => None,
        MessageFormatVersion::V2 => Some(cursor.array::<COMMIT_KEY_LEN>()?),
    };
    Ok((framing, commit_key))
}

impl HeaderBody {
    /// Assemble a parsed header body. The parts were checked as they were read.
    pub(crate) fn from_parsed(
        prefix: Prefix,
        (encryption_context, context_bytes): (EncryptionContext, Option<Vec<u8>>),
        encrypted_data_keys: Vec<EncryptedDataKey>,
        (framing, commit_key): (Framing, Option<[u8; COMMIT_KEY_LEN]>),
    ) -> Self {
        Self {
            suite: prefix.suite,
            message_id: prefix.message_id,
            encryption_context,
            encrypted_data_keys,
            framing,
            commit_key,
            context_bytes,
        }
    }
}

/// Explain a version byte that is neither 1 nor 2; spot Base64 text ("AY" = base64 of 0x01 0x80,
/// "AgR4"/"AgV4" = base64 of 0x02 0x04 0x78 / 0x02 0x05 0x78).
fn unknown_version(cursor: &mut Cursor<'_>, first: u8) -> Stop {
    if first != b'A' {
        return FormatError::UnsupportedVersion(first).into();
    }
    let second = match cursor.u8() {
        Ok(b) => b,
        Err(stop) => return stop,
    };
    if second == b'Y' {
        return FormatError::Base64Encoded("AY").into();
    }
    if second == b'g' {
        return match cursor.take(2) {
            Ok(b"R4") => FormatError::Base64Encoded("AgR4").into(),
            Ok(b"V4") => FormatError::Base64Encoded("AgV4").into(),
            Ok(_) => FormatError::UnsupportedVersion(first).into(),
            Err(stop) => stop,
        };
    }
    FormatError::UnsupportedVersion(first).into()
}

/// Header authentication: the IV (stored in format version 1, implicitly zero in version 2) and the
/// AES-GCM tag over the header body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderAuth {
    /// The IV. Writers use 12 zero bytes; version 1 readers use the stored value.
    pub iv: [u8; IV_LEN],
    /// The authentication tag.
    pub tag: [u8; TAG_LEN],
}

impl HeaderAuth {
    /// Header authentication with the all-zero IV writers use.
    pub fn new(tag: [u8; TAG_LEN]) -> Self {
        Self {
            iv: [0; IV_LEN],
            tag,
        }
    }

    /// Serialized length for a format version.
    pub fn serialized_len(version: MessageFormatVersion) -> usize {
        match version {
            MessageFormatVersion::V1 => IV_LEN + TAG_LEN,
            MessageFormatVersion::V2 => TAG_LEN,
        }
    }

    fn serialize_into(&self, version: MessageFormatVersion, out: &mut Vec<u8>) {
        if version == MessageFormatVersion::V1 {
            out.extend_from_slice(&self.iv);
        }
        out.extend_from_slice(&self.tag);
    }

    pub(crate) fn parse_from(
        cursor: &mut Cursor<'_>,
        version: MessageFormatVersion,
    ) -> Result<Self, Stop> {
        let iv = match version {
            MessageFormatVersion::V1 => cursor.array::<IV_LEN>()?,
            MessageFormatVersion::V2 => [0; IV_LEN],
        };
        let tag = cursor.array::<TAG_LEN>()?;
        Ok(Self { iv, tag })
    }
}

/// A complete header: body, authentication, and its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    body: HeaderBody,
    auth: HeaderAuth,
    bytes: Vec<u8>,
    body_len: usize,
}

impl Header {
    pub(crate) fn from_parsed(
        body: HeaderBody,
        auth: HeaderAuth,
        bytes: Vec<u8>,
        body_len: usize,
    ) -> Self {
        Self {
            body,
            auth,
            bytes,
            body_len,
        }
    }

    /// Serialize `body`, let `authenticate` compute the header authentication over the serialized
    /// body bytes, and assemble the header.
    pub fn seal<E: From<FormatError>>(
        body: HeaderBody,
        authenticate: impl FnOnce(&[u8]) -> Result<HeaderAuth, E>,
    ) -> Result<Self, E> {
        let version = body.version();
        let mut bytes =
            Vec::with_capacity(body.serialized_len() + HeaderAuth::serialized_len(version));
        body.serialize_into(&mut bytes)?;
        let body_len = bytes.len();
        let auth = authenticate(&bytes)?;
        auth.serialize_into(version, &mut bytes);
        Ok(Self {
            body,
            auth,
            bytes,
            body_len,
        })
    }

    /// The header body fields.
    pub fn body(&self) -> &HeaderBody {
        &self.body
    }

    /// The header authentication fields.
    pub fn auth(&self) -> &HeaderAuth {
        &self.auth
    }

    /// The exact bytes of the header, as received or as written.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The exact bytes of the header body (the input to header authentication).
    pub fn body_bytes(&self) -> &[u8] {
        &self.bytes[..self.body_len]
    }

    /// The header length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Serialize body and authentication afresh (canonical form); equal to [`Header::as_bytes`]
    /// for every header whose encryption context was written in canonical order.
    pub fn serialize(&self) -> Result<Vec<u8>, FormatError> {
        let mut out = self.body.serialize()?;
        self.auth.serialize_into(self.body.version(), &mut out);
        Ok(out)
    }
}
