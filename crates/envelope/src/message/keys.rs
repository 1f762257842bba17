//! Key derivation (identity, HKDF, committing HKDF) and header authentication.

use std::collections::BTreeSet;

use envelope_crypto::aead::AeadKey;
use envelope_crypto::digest::HashAlgorithm;
use envelope_crypto::hkdf::{Prk, hkdf};
use envelope_crypto::{SecretBytes, ct};
use envelope_format::{
    AlgorithmSuite, COMMIT_KEY_LEN, EncryptionContext, HeaderAuth, IV_LEN, Kdf, MessageId,
};
use zeroize::Zeroizing;

use crate::Error;

const DERIVE_KEY_LABEL: &[u8] = b"DERIVEKEY";
const COMMIT_KEY_LABEL: &[u8] = b"COMMITKEY";

/// The content key of one message and, for committing suites, its commit key.
pub(crate) struct MessageKeys {
    pub(crate) content: AeadKey,
    pub(crate) commit_key: Option<[u8; COMMIT_KEY_LEN]>,
}

/// Derive the content key (and commit key) from the data key and the message id.
pub(crate) fn derive(
    suite: AlgorithmSuite,
    data_key: &SecretBytes,
    message_id: &MessageId,
) -> Result<MessageKeys, Error> {
    let ikm = data_key.expose_secret();
    if ikm.len() != suite.key_len() {
        return Err(Error::InvalidMaterials("the data key length does not match the suite"));
    }
    let suite_id = suite.id().to_be_bytes();
    let mut derived = Zeroizing::new([0u8; 32]);
    let derived = &mut derived[..suite.key_len()];
    let commit_key = match suite.kdf() {
        Kdf::Identity => {
            derived.copy_from_slice(ikm);
            None
        }
        Kdf::HkdfSha256 | Kdf::HkdfSha384 => {
            let hash = if suite.kdf() == Kdf::HkdfSha256 {
                HashAlgorithm::Sha256
            } else {
                HashAlgorithm::Sha384
            };
            let salt = [0u8; 48];
            hkdf(hash, &salt[..hash.output_len()], ikm, &[&suite_id, message_id.as_bytes()], derived)?;
            None
        }
        Kdf::HkdfSha512Commit => {
            let prk = Prk::extract(HashAlgorithm::Sha512, message_id.as_bytes(), ikm);
            prk.expand(&[&suite_id, DERIVE_KEY_LABEL], derived)?;
            let mut commit = [0u8; COMMIT_KEY_LEN];
            prk.expand(&[COMMIT_KEY_LABEL], &mut commit)?;
            Some(commit)
        }
    };
    Ok(MessageKeys { content: AeadKey::new(derived)?, commit_key })
}

/// Compare the header's commit key with the derived one, in constant time.
pub(crate) fn check_commitment(
    expected: Option<&[u8; COMMIT_KEY_LEN]>,
    derived: Option<&[u8; COMMIT_KEY_LEN]>,
) -> Result<(), Error> {
    match (expected, derived) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if ct::ct_eq(a, b) => Ok(()),
        _ => Err(Error::AuthenticationFailed),
    }
}

/// The header-authentication AAD suffix: the pairs of required keys, which are authenticated but
/// not stored in the header.
pub(crate) fn required_context_bytes(
    ec: &EncryptionContext,
    required: &BTreeSet<String>,
) -> Result<Vec<u8>, Error> {
    if required.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ec.restricted_to(required.iter().map(String::as_str)).serialize()?)
}

fn with_suffix<'a>(body: &'a [u8], suffix: &[u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
    if suffix.is_empty() {
        return body;
    }
    buf.extend_from_slice(body);
    buf.extend_from_slice(suffix);
    buf
}

/// Compute header authentication over the serialized header body.
pub(crate) fn authenticate_header(
    key: &AeadKey,
    body: &[u8],
    required_context: &[u8],
) -> Result<HeaderAuth, Error> {
    let mut buf = Vec::new();
    let aad = with_suffix(body, required_context, &mut buf);
    let tag = key.seal_in_place(&[0u8; IV_LEN], aad, &mut [])?;
    Ok(HeaderAuth::new(tag))
}

/// Verify header authentication over the header body exactly as received.
pub(crate) fn verify_header(
    key: &AeadKey,
    body: &[u8],
    required_context: &[u8],
    auth: &HeaderAuth,
) -> Result<(), Error> {
    let mut buf = Vec::new();
    let aad = with_suffix(body, required_context, &mut buf);
    key.open_in_place(&auth.iv, aad, &mut [], &auth.tag).map_err(|_| Error::AuthenticationFailed)
}
