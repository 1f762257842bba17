//! The hierarchical keyring's encrypted data key, its key derivation and its AAD (sans I/O).
//!
//! An encrypted data key made by the hierarchical keyring has provider id `aws-kms-hierarchy`, the
//! branch key id (UTF-8) as provider info, and this ciphertext:
//!
//! ```text
//! salt (16) || IV (12) || branch key version (16, the UUID's bytes) || wrapped data key || tag (16)
//! ```
//!
//! The wrapping key is derived for each message from the branch key with the NIST SP 800-108
//! counter-mode KDF over HMAC-SHA-256: label `"aws-kms-hierarchy"`, context the salt, 32 bytes. The
//! data key is sealed with AES-256-GCM under it; the AAD binds the provider id, the branch key id,
//! the version (its 16 UUID bytes, as in the ciphertext) and the serialized encryption context.

use envelope_crypto::SecretBytes;
use envelope_crypto::aead::{AeadKey, IV_LEN, TAG_LEN};
use envelope_crypto::kdf;
use envelope_format::{EncryptedDataKey, EncryptionContext};

use envelope_keyring::Error;

use crate::branch_key::{BranchKey, BranchKeyVersion};

/// The provider id of the hierarchical keyring's encrypted data keys.
pub const PROVIDER_ID: &str = "aws-kms-hierarchy";

/// Salt length: the KDF context, fresh for every message.
pub const SALT_LEN: usize = 16;
/// The branch key version as the 16 bytes of its UUID.
pub const VERSION_LEN: usize = 16;
/// Bytes of the ciphertext besides the wrapped data key.
const OVERHEAD: usize = SALT_LEN + IV_LEN + VERSION_LEN + TAG_LEN;
/// The derived wrapping key: AES-256.
const WRAPPING_KEY_LEN: usize = 32;

/// The fixed parts of one encrypted data key's ciphertext, borrowed from it.
pub(crate) struct Parsed<'a> {
    pub(crate) salt: &'a [u8],
    pub(crate) iv: [u8; IV_LEN],
    pub(crate) version: BranchKeyVersion,
    pub(crate) wrapped: &'a [u8],
    pub(crate) tag: [u8; TAG_LEN],
}

/// Split a ciphertext of a data key of `key_len` bytes, or `None` when its length is wrong.
pub(crate) fn parse(ciphertext: &[u8], key_len: usize) -> Option<Parsed<'_>> {
    if ciphertext.len() != OVERHEAD + key_len {
        return None;
    }
    let (salt, rest) = ciphertext.split_at(SALT_LEN);
    let (iv, rest) = rest.split_at(IV_LEN);
    let (version, rest) = rest.split_at(VERSION_LEN);
    let (wrapped, tag) = rest.split_at(key_len);
    Some(Parsed {
        salt,
        iv: iv.try_into().ok()?,
        version: BranchKeyVersion::from_bytes(version.try_into().ok()?),
        wrapped,
        tag: tag.try_into().ok()?,
    })
}

/// The AES-GCM AAD: provider id, branch key id, version bytes and the serialized context.
fn aad(branch_key: &BranchKey, context: &EncryptionContext) -> Result<Vec<u8>, Error> {
    let serialized = context.serialize().map_err(Error::EncryptionContext)?;
    let id = branch_key.id().as_bytes();
    let version = *branch_key.version().as_bytes();
    let mut aad =
        Vec::with_capacity(PROVIDER_ID.len() + id.len() + version.len() + serialized.len());
    aad.extend_from_slice(PROVIDER_ID.as_bytes());
    aad.extend_from_slice(id);
    aad.extend_from_slice(&version);
    aad.extend_from_slice(&serialized);
    Ok(aad)
}

/// The AES-256-GCM key derived from `branch_key` for `salt`.
fn wrapping_key(branch_key: &BranchKey, salt: &[u8]) -> Result<AeadKey, Error> {
    let mut derived = SecretBytes::zeroed(WRAPPING_KEY_LEN);
    kdf::counter_mode(
        branch_key.hmac_key(),
        PROVIDER_ID.as_bytes(),
        salt,
        derived.expose_secret_mut(),
    )?;
    Ok(AeadKey::new(derived.expose_secret())?)
}

/// Wrap `data_key` under `branch_key` for a message with `context`, with fresh salt and IV.
pub(crate) fn wrap(
    branch_key: &BranchKey,
    context: &EncryptionContext,
    data_key: &SecretBytes,
) -> Result<EncryptedDataKey, Error> {
    let mut salt_iv = [0u8; SALT_LEN + IV_LEN];
    envelope_crypto::rand::fill_random(&mut salt_iv)?;
    wrap_with(branch_key, context, data_key, &salt_iv)
}

/// [`wrap`] with a given salt and IV (known-answer tests).
pub(crate) fn wrap_with(
    branch_key: &BranchKey,
    context: &EncryptionContext,
    data_key: &SecretBytes,
    salt_iv: &[u8; SALT_LEN + IV_LEN],
) -> Result<EncryptedDataKey, Error> {
    let (salt, iv_bytes) = salt_iv.split_at(SALT_LEN);
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(iv_bytes);
    let key = wrapping_key(branch_key, salt)?;
    let aad = aad(branch_key, context)?;

    let key_len = data_key.len();
    let mut ciphertext = vec![0u8; OVERHEAD + key_len];
    ciphertext[..SALT_LEN].copy_from_slice(salt);
    ciphertext[SALT_LEN..SALT_LEN + IV_LEN].copy_from_slice(&iv);
    let body = SALT_LEN + IV_LEN + VERSION_LEN;
    ciphertext[SALT_LEN + IV_LEN..body].copy_from_slice(branch_key.version().as_bytes());
    key.seal_to(&iv, &aad, data_key.expose_secret(), &mut ciphertext[body..])?;
    let edk = EncryptedDataKey::new(PROVIDER_ID, branch_key.id().as_bytes().to_vec(), ciphertext)?;
    Ok(edk)
}

/// Unwrap the data key of `parsed` with `branch_key` (whose id and version it names).
pub(crate) fn unwrap(
    branch_key: &BranchKey,
    context: &EncryptionContext,
    parsed: &Parsed<'_>,
) -> Result<SecretBytes, Error> {
    let key = wrapping_key(branch_key, parsed.salt)?;
    let aad = aad(branch_key, context)?;
    let mut data_key = SecretBytes::zeroed(parsed.wrapped.len());
    key.open_to(
        &parsed.iv,
        &aad,
        parsed.wrapped,
        &parsed.tag,
        data_key.expose_secret_mut(),
    )?;
    Ok(data_key)
}
