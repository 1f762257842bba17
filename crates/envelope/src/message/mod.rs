//! The message crypto shared by one-shot and streaming encryption and decryption.

mod keys;
mod reader;
mod sighash;
mod writer;

use envelope_crypto::rand::fill_random;
use envelope_format::{AlgorithmSuite, Framing, Header, MessageId, Parsed};
use envelope_keyring::{
    CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptRequest, EncryptionRequest,
    MaterialsManager,
};

pub(crate) use reader::{MessageReader, Step};
pub(crate) use writer::{MAX_FOOTER_LEN, MessageWriter};

use crate::config::ClientConfig;
use crate::error::Error;
use crate::options::{DecryptOptions, EncryptOptions};

/// Ask the CMM for materials and prepare a writer: the steps every encryption shares.
/// `max_plaintext_length` is the plaintext's length when known, else the caller's bound.
pub(crate) async fn start_encryption(
    config: &ClientConfig,
    cmm: &dyn MaterialsManager,
    options: EncryptOptions,
    max_plaintext_length: Option<u64>,
) -> Result<(MessageWriter, CompleteEncryptionMaterials), Error> {
    config.check_fips()?;
    let EncryptOptions {
        encryption_context,
        suite,
        frame_length,
        final_frame,
        message_id,
        ..
    } = options;
    encryption_context
        .validate_for_encrypt()
        .map_err(Error::InvalidEncryptionContext)?;
    if encryption_context.serialized_len() > envelope_format::MAX_SERIALIZED_LEN {
        return Err(Error::InvalidEncryptionContext(
            envelope_format::FormatError::FieldTooLong {
                field: "serialized encryption context",
                len: encryption_context.serialized_len(),
                max: envelope_format::MAX_SERIALIZED_LEN,
            },
        ));
    }
    if frame_length.get() > config.max_frame_length {
        return Err(Error::FrameTooLarge {
            length: u64::from(frame_length.get()),
            max: config.max_frame_length,
        });
    }
    let policy = config.commitment_policy;
    if let Some(suite) = suite {
        policy.check_encrypt(suite)?;
    }
    let mut request = EncryptionRequest::new(encryption_context, policy);
    request.suite = suite;
    request.max_plaintext_length = max_plaintext_length;
    let materials = cmm.get_encryption_materials(request).await?;
    if suite.is_some_and(|s| s != materials.suite()) {
        return Err(Error::InvalidMaterials(
            "the suite differs from the one requested",
        ));
    }
    let message_id = match message_id {
        Some(id) => id,
        None => random_message_id(materials.suite())?,
    };
    let writer = MessageWriter::new(config, &materials, frame_length, final_frame, message_id)?;
    Ok((writer, materials))
}

fn random_message_id(suite: AlgorithmSuite) -> Result<MessageId, Error> {
    let mut bytes = [0u8; 32];
    let bytes = &mut bytes[..suite.message_id_len()];
    fill_random(bytes)?;
    Ok(MessageId::from_slice(bytes)?)
}

/// Parse a header from a buffer that holds the whole message.
pub(crate) fn parse_complete_header(
    config: &ClientConfig,
    message: &[u8],
) -> Result<(Header, usize), Error> {
    match Header::parse(message, &config.header_limits())? {
        Parsed::Complete(header, len) => Ok((header, len)),
        Parsed::Incomplete(_) => Err(envelope_format::FormatError::Truncated("header").into()),
    }
}

/// Check the policy and the options against the header, ask the CMM for materials and prepare a
/// reader: the steps every decryption shares once the header is parsed. Streams pass their
/// buffer limit as `max_unit_length`: longer frames fail here, before any key is requested.
pub(crate) async fn start_decryption(
    config: &ClientConfig,
    cmm: &dyn MaterialsManager,
    header: &Header,
    options: DecryptOptions,
    max_unit_length: Option<u32>,
) -> Result<(MessageReader, CompleteDecryptionMaterials), Error> {
    config.check_fips()?;
    let body = header.body();
    let suite = body.suite();
    if options.unsigned_only && suite.is_signed() {
        return Err(Error::SignedMessageRejected(suite));
    }
    if let (Some(max), Framing::Framed(length)) = (max_unit_length, body.framing())
        && length.get() > max
    {
        return Err(Error::FrameTooLarge {
            length: u64::from(length.get()),
            max,
        });
    }
    config.commitment_policy.check_decrypt(suite)?;
    let mut request = DecryptRequest::new(
        suite,
        config.commitment_policy,
        body.encrypted_data_keys().to_vec(),
        body.encryption_context().clone(),
    );
    request.reproduced_encryption_context = options.encryption_context;
    let materials = cmm.decrypt_materials(request).await?;
    let mut reader = MessageReader::new(config, header, &materials)?;
    if let Some(max) = max_unit_length {
        reader.limit_unit_length(max);
    }
    Ok((reader, materials))
}
