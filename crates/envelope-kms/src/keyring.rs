//! The AWS KMS keyrings: strict, multi-Region-key aware, discovery and MRK discovery.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use envelope_format::{EncryptedDataKey, EncryptionContext};
use envelope_keyring::{DecryptionMaterials, EncryptionMaterials, Error, Keyring, SecretBytes};

use crate::arn::{KeyIdentifier, KmsArn, mrk_match};
use crate::client::{PROVIDER_ID, bad_response, call, kms_error};

/// Settings shared by the keyrings that name one KMS key.
#[derive(Clone)]
struct KeyConfig {
    key_id: String,
    parsed: KeyIdentifier,
    client: aws_sdk_kms::Client,
    grant_tokens: Vec<String>,
}

impl KeyConfig {
    fn new(key_id: impl Into<String>, client: aws_sdk_kms::Client) -> Result<Self, Error> {
        let key_id = key_id.into();
        let parsed = KeyIdentifier::parse(&key_id)?;
        Ok(Self {
            key_id,
            parsed,
            client,
            grant_tokens: Vec::new(),
        })
    }

    /// GenerateDataKey or Encrypt, as the materials need.
    async fn wrap(&self, materials: EncryptionMaterials) -> Result<EncryptionMaterials, Error> {
        let context = kms_context(materials.encryption_context());
        let key_len = materials.suite().key_len();
        let grant_tokens = tokens_param(&self.grant_tokens);
        match materials.data_key() {
            None => {
                let request = self
                    .client
                    .generate_data_key()
                    .key_id(&self.key_id)
                    .number_of_bytes(i32::try_from(key_len).unwrap_or(i32::MAX))
                    .set_encryption_context(context)
                    .set_grant_tokens(grant_tokens)
                    .send();
                let response = call(request)
                    .await?
                    .map_err(|e| kms_error("GenerateDataKey", &self.key_id, e))?;
                let arn = response_key_arn("GenerateDataKey", &self.key_id, response.key_id)?;
                let plaintext =
                    SecretBytes::new(response.plaintext.map(Blob::into_inner).ok_or_else(
                        || bad_response("GenerateDataKey", &self.key_id, "no Plaintext"),
                    )?);
                if plaintext.len() != key_len {
                    return Err(bad_response(
                        "GenerateDataKey",
                        &self.key_id,
                        format_args!("a {}-byte data key, not {key_len}", plaintext.len()),
                    ));
                }
                let ciphertext =
                    response
                        .ciphertext_blob
                        .map(Blob::into_inner)
                        .ok_or_else(|| {
                            bad_response("GenerateDataKey", &self.key_id, "no CiphertextBlob")
                        })?;
                Ok(materials
                    .with_data_key(plaintext)?
                    .with_encrypted_data_key(EncryptedDataKey::new(PROVIDER_ID, arn, ciphertext)?))
            }
            Some(data_key) => {
                // The AWS SDK's request types hold the plaintext in an ordinary Vec: it is not
                // zeroized after the request is sent.
                let request = self
                    .client
                    .encrypt()
                    .key_id(&self.key_id)
                    .plaintext(Blob::new(data_key.expose_secret()))
                    .set_encryption_context(context)
                    .set_grant_tokens(grant_tokens)
                    .send();
                let response = call(request)
                    .await?
                    .map_err(|e| kms_error("Encrypt", &self.key_id, e))?;
                let arn = response_key_arn("Encrypt", &self.key_id, response.key_id)?;
                let ciphertext = response
                    .ciphertext_blob
                    .map(Blob::into_inner)
                    .ok_or_else(|| bad_response("Encrypt", &self.key_id, "no CiphertextBlob"))?;
                Ok(materials.with_encrypted_data_key(EncryptedDataKey::new(
                    PROVIDER_ID,
                    arn,
                    ciphertext,
                )?))
            }
        }
    }
}

/// The encryption context as KMS takes it; none at all when empty (KMS treats the two alike).
fn kms_context(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| {
        context
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

fn tokens_param(tokens: &[String]) -> Option<Vec<String>> {
    (!tokens.is_empty()).then(|| tokens.to_vec())
}

/// The response's `KeyId`, which must be a key ARN.
fn response_key_arn(
    operation: &str,
    key_id: &str,
    response: Option<String>,
) -> Result<String, Error> {
    let arn = response.ok_or_else(|| bad_response(operation, key_id, "no KeyId"))?;
    KmsArn::parse_key_arn(&arn).map_err(|e| bad_response(operation, key_id, e))?;
    Ok(arn)
}

/// The key ARN in an `aws-kms` encrypted data key's provider info, or `None` for other providers.
/// A malformed ARN fails the whole decryption, as the specification requires.
fn edk_arn(keyring: &str, edk: &EncryptedDataKey) -> Result<Option<(String, KmsArn)>, Error> {
    if edk.provider_id() != PROVIDER_ID {
        return Ok(None);
    }
    let info = std::str::from_utf8(edk.provider_info()).map_err(|_| {
        Error::InvalidConfiguration(format!(
            "{keyring}: an aws-kms encrypted data key's provider info is not UTF-8"
        ))
    })?;
    let arn = KmsArn::parse_key_arn(info).map_err(|e| {
        Error::InvalidConfiguration(format!(
            "{keyring}: an aws-kms encrypted data key names no valid key ARN: {e}"
        ))
    })?;
    Ok(Some((info.to_owned(), arn)))
}

/// Decrypt each candidate `(encrypted data key, KeyId to call Decrypt with)` in order until one
/// works; the errors of all attempts otherwise.
async fn decrypt_first(
    keyring: String,
    client: &aws_sdk_kms::Client,
    grant_tokens: &[String],
    materials: DecryptionMaterials,
    candidates: Vec<(&EncryptedDataKey, String)>,
) -> Result<DecryptionMaterials, Error> {
    if materials.data_key().is_some() {
        return Err(Error::DataKeyAlreadySet);
    }
    let key_len = materials.suite().key_len();
    let context = kms_context(materials.encryption_context());
    let mut errors = Vec::new();
    for (edk, key_id) in candidates {
        let request = client
            .decrypt()
            .key_id(&key_id)
            .ciphertext_blob(Blob::new(edk.ciphertext()))
            .set_encryption_context(context.clone())
            .set_grant_tokens(tokens_param(grant_tokens))
            .send();
        let response = match call(request).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                errors.push(kms_error("Decrypt", &key_id, e));
                continue;
            }
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if response.key_id.as_deref() != Some(key_id.as_str()) {
            errors.push(bad_response(
                "Decrypt",
                &key_id,
                format_args!("KeyId {:?} is not the key asked for", response.key_id),
            ));
            continue;
        }
        let Some(plaintext) = response.plaintext.map(|b| SecretBytes::new(b.into_inner())) else {
            errors.push(bad_response("Decrypt", &key_id, "no Plaintext"));
            continue;
        };
        if plaintext.len() != key_len {
            errors.push(bad_response(
                "Decrypt",
                &key_id,
                format_args!("a {}-byte data key, not {key_len}", plaintext.len()),
            ));
            continue;
        }
        return materials.with_data_key(plaintext);
    }
    Err(Error::DecryptAttemptsFailed { keyring, errors })
}

macro_rules! key_keyring {
    ($(#[$doc:meta])* $name:ident, $label:literal, $matches:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            config: KeyConfig,
        }

        impl $name {
            /// A keyring for `key_id` (key ARN, alias ARN, key id or `alias/name`) through `client`.
            /// Fails if the identifier is malformed.
            pub fn new(key_id: impl Into<String>, client: aws_sdk_kms::Client) -> Result<Self, Error> {
                Ok(Self {
                    config: KeyConfig::new(key_id, client)?,
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

            fn describe(&self) -> String {
                format!(concat!($label, " {}"), self.config.key_id)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("key_id", &self.config.key_id)
                    .field("grant_tokens", &self.config.grant_tokens.len())
                    .finish_non_exhaustive()
            }
        }

        #[async_trait]
        impl Keyring for $name {
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
            ) -> Result<DecryptionMaterials, Error> {
                let keyring = self.describe();
                let matches: fn(&KeyConfig, &str, &KmsArn) -> bool = $matches;
                let mut candidates = Vec::new();
                for edk in encrypted_data_keys {
                    if let Some((info, arn)) = edk_arn(&keyring, edk)? {
                        if matches(&self.config, &info, &arn) {
                            candidates.push((edk, self.config.key_id.clone()));
                        }
                    }
                }
                decrypt_first(
                    keyring,
                    &self.config.client,
                    &self.config.grant_tokens,
                    materials,
                    candidates,
                )
                .await
            }
        }
    };
}

key_keyring!(
    /// The AWS KMS keyring: wraps data keys under one KMS key and unwraps only data keys wrapped under
    /// exactly that key.
    ///
    /// On encrypt it calls `GenerateDataKey` (or `Encrypt` when another keyring made the data key)
    /// with the message's encryption context. On decrypt it calls `Decrypt` for each encrypted data
    /// key whose key ARN equals the configured identifier, so a keyring configured with an alias or a
    /// bare key id encrypts but never decrypts: configure key ARNs for decryption.
    AwsKmsKeyring,
    "AWS KMS keyring",
    |configured, info, _| configured.key_id == info
);

key_keyring!(
    /// The multi-Region-key aware KMS keyring: like [`AwsKmsKeyring`], but on decrypt it also accepts
    /// data keys wrapped under a replica of the configured multi-Region key in another region, and
    /// unwraps them with the configured (local) replica.
    AwsKmsMrkKeyring,
    "AWS KMS MRK keyring",
    |configured, _, arn| mrk_match(&configured.parsed, &KeyIdentifier::Arn(arn.clone()))
);

/// Which accounts' keys a discovery keyring may use, in one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryFilter {
    partition: String,
    accounts: BTreeSet<String>,
}

impl DiscoveryFilter {
    /// Keys of `accounts` in `partition` (e.g. `"aws"`). Both must be non-empty.
    pub fn new(
        partition: impl Into<String>,
        accounts: impl IntoIterator<Item = impl Into<String>>,
    ) -> Result<Self, Error> {
        let partition = partition.into();
        let accounts: BTreeSet<String> = accounts.into_iter().map(Into::into).collect();
        if partition.is_empty() {
            return Err(Error::InvalidConfiguration(
                "a discovery filter needs a partition".into(),
            ));
        }
        if accounts.is_empty() || accounts.iter().any(String::is_empty) {
            return Err(Error::InvalidConfiguration(
                "a discovery filter needs one or more non-empty account ids".into(),
            ));
        }
        Ok(Self {
            partition,
            accounts,
        })
    }

    /// The partition.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The accounts.
    pub fn accounts(&self) -> &BTreeSet<String> {
        &self.accounts
    }

    fn admits(&self, arn: &KmsArn) -> bool {
        arn.partition() == self.partition && self.accounts.contains(arn.account())
    }
}

/// Settings shared by the discovery keyrings.
#[derive(Clone)]
struct DiscoveryConfig {
    client: aws_sdk_kms::Client,
    filter: Option<DiscoveryFilter>,
    grant_tokens: Vec<String>,
}

/// The KMS discovery keyring: decrypts with whichever KMS key wrapped a data key, as far as the
/// caller's credentials allow and the optional [`DiscoveryFilter`] admits. It cannot encrypt.
///
/// Without a filter it will ask KMS to decrypt under any key named in a message, so prefer a filter
/// naming the accounts you trust.
#[derive(Clone)]
pub struct AwsKmsDiscoveryKeyring {
    config: DiscoveryConfig,
}

impl AwsKmsDiscoveryKeyring {
    /// A discovery keyring using `client`.
    pub fn new(client: aws_sdk_kms::Client) -> Self {
        Self {
            config: DiscoveryConfig {
                client,
                filter: None,
                grant_tokens: Vec::new(),
            },
        }
    }

    /// Only use keys the filter admits.
    pub fn with_filter(mut self, filter: DiscoveryFilter) -> Self {
        self.config.filter = Some(filter);
        self
    }

    /// Grant tokens to pass with every KMS request.
    pub fn with_grant_tokens(
        mut self,
        tokens: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.config.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }
}

/// The multi-Region-key aware discovery keyring: like [`AwsKmsDiscoveryKeyring`], but bound to one
/// region. Data keys wrapped under a multi-Region key in any region are decrypted with that key's
/// replica in this region; single-region keys must be in this region.
#[derive(Clone)]
pub struct AwsKmsMrkDiscoveryKeyring {
    config: DiscoveryConfig,
    region: String,
}

impl AwsKmsMrkDiscoveryKeyring {
    /// A keyring for `region`, whose KMS `client` must be configured for that same region.
    pub fn new(client: aws_sdk_kms::Client, region: impl Into<String>) -> Result<Self, Error> {
        let region = region.into();
        if region.is_empty() {
            return Err(Error::InvalidConfiguration(
                "an MRK discovery keyring needs a region".into(),
            ));
        }
        Ok(Self {
            config: DiscoveryConfig {
                client,
                filter: None,
                grant_tokens: Vec::new(),
            },
            region,
        })
    }

    /// Only use keys the filter admits.
    pub fn with_filter(mut self, filter: DiscoveryFilter) -> Self {
        self.config.filter = Some(filter);
        self
    }

    /// Grant tokens to pass with every KMS request.
    pub fn with_grant_tokens(
        mut self,
        tokens: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.config.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// The region this keyring decrypts in.
    pub fn region(&self) -> &str {
        &self.region
    }
}

macro_rules! discovery_keyring {
    ($name:ident, $label:expr, |$this:ident, $arn:ident, $info:ident| $key_id:expr) => {
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("filter", &self.config.filter)
                    .field("grant_tokens", &self.config.grant_tokens.len())
                    .finish_non_exhaustive()
            }
        }

        #[async_trait]
        impl Keyring for $name {
            async fn on_encrypt(
                &self,
                _materials: EncryptionMaterials,
            ) -> Result<EncryptionMaterials, Error> {
                Err(Error::Unsupported {
                    keyring: stringify!($name).into(),
                    operation: "encrypt",
                    reason: "a discovery keyring names no key to wrap data keys with",
                })
            }

            async fn on_decrypt(
                &self,
                materials: DecryptionMaterials,
                encrypted_data_keys: &[EncryptedDataKey],
            ) -> Result<DecryptionMaterials, Error> {
                let $this = self;
                let keyring: String = $label;
                let mut candidates = Vec::new();
                for edk in encrypted_data_keys {
                    let Some(($info, $arn)) = edk_arn(&keyring, edk)? else {
                        continue;
                    };
                    if self
                        .config
                        .filter
                        .as_ref()
                        .is_some_and(|f| !f.admits(&$arn))
                    {
                        continue;
                    }
                    let key_id: Option<String> = $key_id;
                    if let Some(key_id) = key_id {
                        candidates.push((edk, key_id));
                    }
                }
                decrypt_first(
                    keyring,
                    &self.config.client,
                    &self.config.grant_tokens,
                    materials,
                    candidates,
                )
                .await
            }
        }
    };
}

discovery_keyring!(
    AwsKmsDiscoveryKeyring,
    "AWS KMS discovery keyring".to_owned(),
    |_this, arn, info| Some(info)
);

discovery_keyring!(
    AwsKmsMrkDiscoveryKeyring,
    format!("AWS KMS MRK discovery keyring ({})", this.region),
    |this, arn, info| {
        if arn.is_multi_region_key() {
            Some(arn.in_region(&this.region).to_string())
        } else if arn.region() == this.region {
            Some(info)
        } else {
            None
        }
    }
);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    use envelope_format::AlgorithmSuite;

    use super::*;

    const ARN: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// A client for an endpoint where nothing listens: these tests must not reach KMS.
    fn offline_client() -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    fn materials() -> DecryptionMaterials {
        DecryptionMaterials::new(
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            EncryptionContext::default(),
            BTreeSet::new(),
            None,
        )
        .unwrap()
    }

    fn run<F: Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

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
    fn materials_with_a_data_key_are_refused_on_decrypt() {
        let keyring = AwsKmsKeyring::new(ARN, offline_client()).unwrap();
        let edks =
            [EncryptedDataKey::new(PROVIDER_ID, ARN.as_bytes().to_vec(), vec![1; 40]).unwrap()];
        let with_key = materials()
            .with_data_key(SecretBytes::new(vec![0; 32]))
            .unwrap();
        let err = run(keyring.on_decrypt(with_key, &edks)).unwrap_err();
        assert!(matches!(err, Error::DataKeyAlreadySet), "{err:?}");
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

    #[test]
    fn discovery_keyrings_refuse_to_encrypt_and_check_their_settings() {
        let keyring = AwsKmsDiscoveryKeyring::new(offline_client());
        let materials = EncryptionMaterials::new(
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            EncryptionContext::default(),
            BTreeSet::new(),
            None,
        )
        .unwrap();
        let err = run(keyring.on_encrypt(materials)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Unsupported {
                    operation: "encrypt",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(AwsKmsMrkDiscoveryKeyring::new(offline_client(), "").is_err());
        assert!(AwsKmsKeyring::new("", offline_client()).is_err());
        assert!(AwsKmsMrkKeyring::new("arn:aws:kms:x", offline_client()).is_err());
    }
}
