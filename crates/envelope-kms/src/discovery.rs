//! The discovery keyrings, which decrypt with whichever KMS key wrapped a data key:
//! [`AwsKmsDiscoveryKeyring`] and [`AwsKmsMrkDiscoveryKeyring`].

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use envelope_format::EncryptedDataKey;
use envelope_keyring::{
    CompleteDecryptionMaterials, DecryptionMaterials, EncryptionMaterials, Error, Keyring,
};

use crate::arn::KmsArn;
use crate::common::decrypt_first;

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

mod sealed {
    pub trait Sealed {}
}

/// Where a [`KmsDiscoveryKeyring`] decrypts: with the key named in the message
/// ([`AnyRegion`]), or with its replica in one region ([`InRegion`]). Sealed.
pub trait DiscoveryScope: sealed::Sealed + Clone + fmt::Debug + Send + Sync + 'static {
    /// The keyring's type name, for `Debug`.
    const NAME: &'static str;
    /// How the keyring names itself in errors.
    fn label(&self) -> String;
    /// The key to call `Decrypt` with for a data key wrapped under `arn` (written as `info`), or
    /// `None` when this keyring does not decrypt it.
    fn key_id(&self, info: String, arn: &KmsArn) -> Option<String>;
}

/// Decrypt with the key each encrypted data key names.
#[derive(Clone, Copy, Debug)]
pub struct AnyRegion;

/// Decrypt in one region: multi-Region keys with their replica there, single-region keys only if
/// they are there.
#[derive(Clone, Debug)]
pub struct InRegion(String);

impl sealed::Sealed for AnyRegion {}
impl sealed::Sealed for InRegion {}

impl DiscoveryScope for AnyRegion {
    const NAME: &'static str = "AwsKmsDiscoveryKeyring";

    fn label(&self) -> String {
        "AWS KMS discovery keyring".to_owned()
    }

    fn key_id(&self, info: String, _: &KmsArn) -> Option<String> {
        Some(info)
    }
}

impl DiscoveryScope for InRegion {
    const NAME: &'static str = "AwsKmsMrkDiscoveryKeyring";

    fn label(&self) -> String {
        format!("AWS KMS MRK discovery keyring ({})", self.0)
    }

    fn key_id(&self, info: String, arn: &KmsArn) -> Option<String> {
        if arn.is_multi_region_key() {
            Some(arn.in_region(&self.0).to_string())
        } else if arn.region() == self.0 {
            Some(info)
        } else {
            None
        }
    }
}

/// A keyring that decrypts with whichever KMS key wrapped a data key, as far as the caller's
/// credentials allow and the optional [`DiscoveryFilter`] admits. It cannot encrypt.
/// [`AwsKmsDiscoveryKeyring`] and [`AwsKmsMrkDiscoveryKeyring`] are its two kinds.
#[derive(Clone)]
pub struct KmsDiscoveryKeyring<S: DiscoveryScope> {
    client: aws_sdk_kms::Client,
    filter: Option<DiscoveryFilter>,
    grant_tokens: Vec<String>,
    scope: S,
}

/// The KMS discovery keyring: decrypts with whichever KMS key wrapped a data key, as far as the
/// caller's credentials allow and the optional [`DiscoveryFilter`] admits. It cannot encrypt.
///
/// Without a filter it will ask KMS to decrypt under any key named in a message, so prefer a filter
/// naming the accounts you trust.
pub type AwsKmsDiscoveryKeyring = KmsDiscoveryKeyring<AnyRegion>;

/// The multi-Region-key aware discovery keyring: like [`AwsKmsDiscoveryKeyring`], but bound to one
/// region. Data keys wrapped under a multi-Region key in any region are decrypted with that key's
/// replica in this region; single-region keys must be in this region.
pub type AwsKmsMrkDiscoveryKeyring = KmsDiscoveryKeyring<InRegion>;

impl AwsKmsDiscoveryKeyring {
    /// A discovery keyring using `client`.
    pub fn new(client: aws_sdk_kms::Client) -> Self {
        Self {
            client,
            filter: None,
            grant_tokens: Vec::new(),
            scope: AnyRegion,
        }
    }
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
            client,
            filter: None,
            grant_tokens: Vec::new(),
            scope: InRegion(region),
        })
    }

    /// The region this keyring decrypts in.
    pub fn region(&self) -> &str {
        &self.scope.0
    }
}

impl<S: DiscoveryScope> KmsDiscoveryKeyring<S> {
    /// Only use keys the filter admits.
    pub fn with_filter(mut self, filter: DiscoveryFilter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Grant tokens to pass with every KMS request.
    pub fn with_grant_tokens(
        mut self,
        tokens: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.grant_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }
}

impl<S: DiscoveryScope> fmt::Debug for KmsDiscoveryKeyring<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(S::NAME)
            .field("scope", &self.scope)
            .field("filter", &self.filter)
            .field("grant_tokens", &self.grant_tokens.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<S: DiscoveryScope> Keyring for KmsDiscoveryKeyring<S> {
    async fn on_encrypt(
        &self,
        _materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
        Err(Error::Unsupported {
            keyring: S::NAME.into(),
            operation: "encrypt",
            reason: "a discovery keyring names no key to wrap data keys with",
        })
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        decrypt_first(
            self.scope.label(),
            &self.client,
            &self.grant_tokens,
            materials,
            encrypted_data_keys,
            |info, arn| {
                if self.filter.as_ref().is_some_and(|f| !f.admits(arn)) {
                    return None;
                }
                self.scope.key_id(info, arn)
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use envelope_format::{AlgorithmSuite, EncryptionContext};

    use super::*;
    use crate::common::test_support::{offline_client, run};
    use crate::{AwsKmsKeyring, AwsKmsMrkKeyring};

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
