//! The keyrings that name one KMS key: [`AwsKmsKeyring`] and [`AwsKmsMrkKeyring`].

use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use envelope_format::EncryptedDataKey;
use envelope_keyring::{
    CompleteDecryptionMaterials, DecryptionMaterials, EncryptionMaterials, Error, Keyring,
};

use crate::arn::{KeyIdentifier, KmsArn, mrk_match};
use crate::common::{KeyConfig, decrypt_first};

mod sealed {
    pub trait Sealed {}
}

/// Which encrypted data keys a [`KmsKeyring`] takes as its own on decrypt. Sealed: [`Exact`] and
/// [`MultiRegion`] are the two the specification defines.
pub trait KeyMatch: sealed::Sealed + Send + Sync + 'static {
    /// The keyring's type name, for `Debug`.
    const NAME: &'static str;
    /// How the keyring names itself in errors.
    const LABEL: &'static str;
    /// Whether a data key wrapped under `arn` (written as `info`) belongs to the configured key.
    fn matches(configured: &KeyIdentifier, configured_text: &str, info: &str, arn: &KmsArn)
    -> bool;
}

/// Exactly the configured key ARN.
#[derive(Debug)]
pub enum Exact {}

/// The configured key, or a replica of the configured multi-Region key in another region.
#[derive(Debug)]
pub enum MultiRegion {}

impl sealed::Sealed for Exact {}
impl sealed::Sealed for MultiRegion {}

impl KeyMatch for Exact {
    const NAME: &'static str = "AwsKmsKeyring";
    const LABEL: &'static str = "AWS KMS keyring";

    fn matches(_: &KeyIdentifier, configured_text: &str, info: &str, _: &KmsArn) -> bool {
        configured_text == info
    }
}

impl KeyMatch for MultiRegion {
    const NAME: &'static str = "AwsKmsMrkKeyring";
    const LABEL: &'static str = "AWS KMS MRK keyring";

    fn matches(configured: &KeyIdentifier, _: &str, _: &str, arn: &KmsArn) -> bool {
        mrk_match(configured, &KeyIdentifier::Arn(arn.clone()))
    }
}

/// A keyring that wraps data keys under one KMS key; [`AwsKmsKeyring`] and [`AwsKmsMrkKeyring`]
/// are its two kinds, which differ only in the data keys they take as their own on decrypt.
pub struct KmsKeyring<M: KeyMatch> {
    config: KeyConfig,
    matching: PhantomData<fn() -> M>,
}

/// The AWS KMS keyring: wraps data keys under one KMS key and unwraps only data keys wrapped under
/// exactly that key.
///
/// On encrypt it calls `GenerateDataKey` (or `Encrypt` when another keyring made the data key)
/// with the message's encryption context. On decrypt it calls `Decrypt` for each encrypted data
/// key whose key ARN equals the configured identifier, so a keyring configured with an alias or a
/// bare key id encrypts but never decrypts: configure key ARNs for decryption.
pub type AwsKmsKeyring = KmsKeyring<Exact>;

/// The multi-Region-key aware KMS keyring: like [`AwsKmsKeyring`], but on decrypt it also accepts
/// data keys wrapped under a replica of the configured multi-Region key in another region, and
/// unwraps them with the configured (local) replica.
pub type AwsKmsMrkKeyring = KmsKeyring<MultiRegion>;

impl<M: KeyMatch> KmsKeyring<M> {
    /// A keyring for `key_id` (key ARN, alias ARN, key id or `alias/name`) through `client`.
    /// Fails if the identifier is malformed.
    pub fn new(key_id: impl Into<String>, client: aws_sdk_kms::Client) -> Result<Self, Error> {
        Ok(Self {
            config: KeyConfig::new(key_id, client)?,
            matching: PhantomData,
        })
    }

    /// Grant tokens to pass with every KMS request.
    pub fn with_grant_tokens(
        mut self,
        tokens: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.config.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// The configured key identifier.
    pub fn key_id(&self) -> &str {
        &self.config.key_id
    }
}

impl<M: KeyMatch> Clone for KmsKeyring<M> {
    fn clone(&self) -> Self {
        Self {
            config: self.config.clone(),
            matching: PhantomData,
        }
    }
}

impl<M: KeyMatch> fmt::Debug for KmsKeyring<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(M::NAME)
            .field("key_id", &self.config.key_id)
            .field("grant_tokens", &self.config.grant_tokens.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<M: KeyMatch> Keyring for KmsKeyring<M> {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
        self.config.wrap(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        let config = &self.config;
        decrypt_first(
            format!("{} {}", M::LABEL, config.key_id),
            &config.client,
            &config.grant_tokens,
            materials,
            encrypted_data_keys,
            |info, arn| {
                M::matches(&config.parsed, &config.key_id, &info, arn)
                    .then(|| config.key_id.clone())
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::client::PROVIDER_ID;
    use crate::common::test_support::{ARN, materials, offline_client, run};

    #[test]
    fn only_matching_aws_kms_keys_are_attempted() {
        let keyring = AwsKmsKeyring::new(ARN, offline_client()).unwrap();
        let others = [
            EncryptedDataKey::new("raw-aes", b"k".to_vec(), vec![1; 40]).unwrap(),
            EncryptedDataKey::new(
                PROVIDER_ID,
                ARN.replace("1234abcd", "99999999").into_bytes(),
                vec![1; 40],
            )
            .unwrap(),
        ];
        match run(keyring.on_decrypt(materials(), &others)).unwrap_err() {
            Error::DecryptAttemptsFailed { keyring, errors } => {
                assert!(keyring.contains(ARN), "{keyring}");
                assert!(
                    errors.is_empty(),
                    "no KMS call for keys that do not match: {errors:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_malformed_aws_kms_provider_info_fails_decryption() {
        let keyring = AwsKmsKeyring::new(ARN, offline_client()).unwrap();
        for info in [
            &b"not an arn"[..],
            b"arn:aws:kms:us-west-2:1:alias/x",
            &[0xff, 0xfe],
        ] {
            let edks = [EncryptedDataKey::new(PROVIDER_ID, info.to_vec(), vec![1; 40]).unwrap()];
            let err = run(keyring.on_decrypt(materials(), &edks)).unwrap_err();
            assert!(matches!(err, Error::InvalidConfiguration(_)), "{err:?}");
        }
    }

    #[test]
    fn an_unreachable_endpoint_is_a_retryable_provider_error() {
        let keyring = AwsKmsKeyring::new(ARN, offline_client()).unwrap();
        let edks =
            [EncryptedDataKey::new(PROVIDER_ID, ARN.as_bytes().to_vec(), vec![1; 40]).unwrap()];
        // Outside any runtime: the call runs on the crate's own KMS runtime.
        match run(keyring.on_decrypt(materials(), &edks)).unwrap_err() {
            Error::DecryptAttemptsFailed { errors, .. } => {
                assert_eq!(errors.len(), 1);
                let Error::Provider(p) = &errors[0] else {
                    panic!("{errors:?}")
                };
                assert!(p.retryable, "{p:?}");
                assert_eq!(p.key_id.as_deref(), Some(ARN));
                assert!(p.message.starts_with("Decrypt failed"), "{p}");
            }
            other => panic!("{other:?}"),
        }
    }
}
