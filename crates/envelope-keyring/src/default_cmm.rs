//! The default CMM: suite choice by commitment policy, signing keys, and the keyring.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use envelope_crypto::ecdsa::{SigningKey, VerifyingKey};
use envelope_format::PUBLIC_KEY_FIELD;

use crate::materials::{
    CompleteDecryptionMaterials, CompleteEncryptionMaterials, DecryptRequest, DecryptionMaterials,
    EncryptionMaterials, EncryptionRequest, signature_curve,
};
use crate::{Error, Keyring, MaterialsManager};

/// The default cryptographic materials manager around a keyring.
///
/// On encrypt it picks the suite (the requested one, or the commitment policy's default), checks it
/// against the policy, for signed suites generates an ECDSA key pair and stores the compressed public
/// key in the encryption context under `aws-crypto-public-key`, then asks the keyring for the data
/// key. On decrypt it checks the policy, merges a reproduced encryption context, recovers the
/// verification key, and asks the keyring to unwrap a data key.
///
/// Every [`Keyring`] already behaves as this CMM when used where a CMM is expected; this type exists
/// to hold a keyring behind an `Arc` with a name.
#[derive(Clone)]
pub struct DefaultCmm {
    keyring: Arc<dyn Keyring>,
}

impl DefaultCmm {
    /// A default CMM around `keyring`.
    pub fn new(keyring: impl Keyring + 'static) -> Self {
        Self {
            keyring: Arc::new(keyring),
        }
    }

    /// A default CMM around a shared keyring.
    pub fn from_arc(keyring: Arc<dyn Keyring>) -> Self {
        Self { keyring }
    }
}

impl std::fmt::Debug for DefaultCmm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultCmm").finish_non_exhaustive()
    }
}

#[async_trait]
impl MaterialsManager for DefaultCmm {
    async fn get_encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<CompleteEncryptionMaterials, Error> {
        get_encryption_materials(&*self.keyring, request).await
    }

    async fn decrypt_materials(
        &self,
        request: DecryptRequest,
    ) -> Result<CompleteDecryptionMaterials, Error> {
        decrypt_materials(&*self.keyring, request).await
    }
}

pub(crate) async fn get_encryption_materials<K: Keyring + ?Sized>(
    keyring: &K,
    request: EncryptionRequest,
) -> Result<CompleteEncryptionMaterials, Error> {
    let policy = request.commitment_policy;
    let suite = request.suite.unwrap_or(policy.default_suite());
    policy.check_encrypt(suite)?;
    let mut encryption_context = request.encryption_context;
    let signing_key = match suite.signature() {
        None => None,
        Some(signature) => {
            if encryption_context.contains_key(PUBLIC_KEY_FIELD) {
                return Err(Error::PublicKeyAlreadyInContext);
            }
            let key = SigningKey::generate(signature_curve(signature))?;
            encryption_context.insert(
                PUBLIC_KEY_FIELD,
                STANDARD.encode(key.public_key_compressed()?),
            );
            Some(Arc::new(key))
        }
    };
    let materials = EncryptionMaterials::new(
        suite,
        encryption_context,
        request.required_encryption_context_keys,
        signing_key,
    )?;
    let materials = keyring.on_encrypt(materials).await?.complete()?;
    if materials.suite() != suite {
        return Err(Error::IncompleteMaterials(
            "the keyring changed the algorithm suite",
        ));
    }
    Ok(materials)
}

pub(crate) async fn decrypt_materials<K: Keyring + ?Sized>(
    keyring: &K,
    request: DecryptRequest,
) -> Result<CompleteDecryptionMaterials, Error> {
    let DecryptRequest {
        suite,
        commitment_policy: policy,
        encrypted_data_keys,
        mut encryption_context,
        reproduced_encryption_context,
    } = request;
    policy.check_decrypt(suite)?;
    let mut required = BTreeSet::new();
    if let Some(reproduced) = reproduced_encryption_context {
        for (key, value) in &reproduced {
            match encryption_context.get(key) {
                Some(stored) if stored == value => {}
                Some(_) => return Err(Error::ReproducedContextMismatch(key.clone())),
                None => {
                    encryption_context.insert(key.clone(), value.clone());
                    required.insert(key.clone());
                }
            }
        }
    }
    let verification_key = verification_key(suite, &encryption_context)?;
    let materials =
        DecryptionMaterials::new(suite, encryption_context, required, verification_key)?;
    keyring.on_decrypt(materials, &encrypted_data_keys).await
}

fn verification_key(
    suite: envelope_format::AlgorithmSuite,
    ec: &envelope_format::EncryptionContext,
) -> Result<Option<VerifyingKey>, Error> {
    match (suite.signature(), ec.get(PUBLIC_KEY_FIELD)) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Error::UnexpectedVerificationKey),
        (Some(_), None) => Err(Error::MissingVerificationKey),
        (Some(signature), Some(encoded)) => {
            let point = STANDARD
                .decode(encoded)
                .map_err(|_| Error::InvalidVerificationKey)?;
            let curve = signature_curve(signature);
            if point.len() != curve.compressed_len() {
                return Err(Error::InvalidVerificationKey);
            }
            VerifyingKey::from_sec1(curve, &point)
                .map(Some)
                .map_err(|_| Error::InvalidVerificationKey)
        }
    }
}
