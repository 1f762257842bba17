//! The message crypto shared by one-shot and streaming encryption and decryption.

mod keys;
mod reader;
mod sighash;
mod writer;

use envelope_crypto::rand::fill_random;
use envelope_format::{AlgorithmSuite, EncryptionContext, Header, HeaderLimits, MessageId, Parsed};
use envelope_keyring::{
    DecryptRequest, DecryptionMaterials, EncryptionMaterials, EncryptionRequest, MaterialsManager,
};

pub(crate) use reader::{MessageReader, Step};
pub(crate) use writer::{MAX_FOOTER_LEN, MessageWriter};

use crate::Error;
use crate::client::ClientConfig;

/// What an encryption needs besides the plaintext.
pub(crate) struct EncryptParams {
    pub(crate) encryption_context: EncryptionContext,
    pub(crate) suite: Option<AlgorithmSuite>,
    pub(crate) frame_length: u32,
    pub(crate) max_plaintext_length: Option<u64>,
    pub(crate) message_id: Option<MessageId>,
}

/// Ask the CMM for materials and prepare a writer: the steps every encryption shares.
pub(crate) async fn start_encryption(
    config: &ClientConfig,
    cmm: &dyn MaterialsManager,
    params: EncryptParams,
) -> Result<(MessageWriter, EncryptionMaterials), Error> {
    let EncryptParams {
        encryption_context,
        suite,
        frame_length,
        max_plaintext_length,
        message_id,
    } = params;
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
    if frame_length == 0 {
        return Err(Error::InvalidFrameLength(0));
    }
    if frame_length > config.max_frame_length {
        return Err(Error::FrameTooLarge {
            length: u64::from(frame_length),
            max: config.max_frame_length,
        });
    }
    let policy = config.commitment_policy;
    if let Some(suite) = suite
        && !policy.allows_encrypt(suite)
    {
        return Err(Error::CommitmentPolicy {
            suite,
            policy,
            operation: "encrypt",
        });
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
    let writer = MessageWriter::new(config, &materials, frame_length, message_id)?;
    Ok((writer, materials))
}

fn random_message_id(suite: AlgorithmSuite) -> Result<MessageId, Error> {
    let mut bytes = [0u8; 32];
    let bytes = &mut bytes[..suite.message_id_len()];
    fill_random(bytes)?;
    Ok(MessageId::from_slice(bytes)?)
}

/// The header limits of a client.
pub(crate) fn header_limits(config: &ClientConfig) -> HeaderLimits {
    HeaderLimits {
        max_encrypted_data_keys: config.max_encrypted_data_keys,
        max_header_len: config.max_header_len,
    }
}

/// Parse a header from a buffer that holds the whole message.
pub(crate) fn parse_complete_header(
    config: &ClientConfig,
    message: &[u8],
) -> Result<(Header, usize), Error> {
    match Header::parse(message, &header_limits(config))? {
        Parsed::Complete(header, len) => Ok((header, len)),
        Parsed::Incomplete(_) => Err(envelope_format::FormatError::Truncated("header").into()),
    }
}

/// Check the policy, ask the CMM for materials and prepare a reader: the steps every decryption
/// shares once the header is parsed.
pub(crate) async fn start_decryption(
    config: &ClientConfig,
    cmm: &dyn MaterialsManager,
    header: &Header,
    reproduced_encryption_context: Option<EncryptionContext>,
) -> Result<(MessageReader, DecryptionMaterials), Error> {
    let body = header.body();
    let policy = config.commitment_policy;
    if !policy.allows_decrypt(body.suite()) {
        return Err(Error::CommitmentPolicy {
            suite: body.suite(),
            policy,
            operation: "decrypt",
        });
    }
    let mut request = DecryptRequest::new(
        body.suite(),
        policy,
        body.encrypted_data_keys().to_vec(),
        body.encryption_context().clone(),
    );
    request.reproduced_encryption_context = reproduced_encryption_context;
    let materials = cmm.decrypt_materials(request).await?;
    let reader = MessageReader::new(config, header, &materials)?;
    Ok((reader, materials))
}
