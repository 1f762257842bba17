//! What the keyring tests share.

use envelope_format::CommitmentPolicy;
use envelope_keyring::{CompleteEncryptionMaterials, DecryptRequest};

/// The request to decrypt the message `enc` would write (its suite, data keys and whole
/// encryption context), under `policy`.
pub(crate) fn decrypt_request(
    enc: &CompleteEncryptionMaterials,
    policy: CommitmentPolicy,
) -> DecryptRequest {
    DecryptRequest::new(
        enc.suite(),
        policy,
        enc.encrypted_data_keys().to_vec(),
        enc.encryption_context().clone(),
    )
}
