//! Multi-keyrings of KMS keyrings: one generator and child keys, or discovery over regions.

use std::sync::Arc;

use envelope_keyring::{Error, Keyring, MultiKeyring};

use crate::arn::{KeyIdentifier, ensure_mrks_unique};
use crate::client::ClientSupplier;
use crate::strict::{Exact, KeyMatch, KmsKeyring, MultiRegion};
use crate::{
    AwsKmsDiscoveryKeyring, AwsKmsMrkDiscoveryKeyring, DiscoveryFilter, DiscoveryScope,
    KmsDiscoveryKeyring,
};

/// A multi-keyring of [`AwsKmsKeyring`](crate::AwsKmsKeyring)s: the generator makes each data
/// key and every child key wraps it too, so any of them can decrypt. Each key gets the supplier's
/// client for the region in its ARN (the default region for bare ids and aliases). Identifiers
/// naming one multi-Region key twice are refused.
pub fn multi_keyring<'a>(
    supplier: &dyn ClientSupplier,
    generator: Option<&str>,
    children: impl IntoIterator<Item = &'a str>,
    grant_tokens: &[String],
) -> Result<MultiKeyring, Error> {
    strict::<Exact>(supplier, generator, children, grant_tokens)
}

/// [`multi_keyring`] of [`AwsKmsMrkKeyring`](crate::AwsKmsMrkKeyring)s, which also decrypt data
/// keys wrapped under replicas of their multi-Region keys.
pub fn mrk_multi_keyring<'a>(
    supplier: &dyn ClientSupplier,
    generator: Option<&str>,
    children: impl IntoIterator<Item = &'a str>,
    grant_tokens: &[String],
) -> Result<MultiKeyring, Error> {
    strict::<MultiRegion>(supplier, generator, children, grant_tokens)
}

fn strict<'a, M: KeyMatch>(
    supplier: &dyn ClientSupplier,
    generator: Option<&str>,
    children: impl IntoIterator<Item = &'a str>,
    grant_tokens: &[String],
) -> Result<MultiKeyring, Error> {
    let children: Vec<&str> = children.into_iter().collect();
    if generator.is_none() && children.is_empty() {
        return Err(Error::InvalidConfiguration(
            "a KMS multi-keyring needs a generator or at least one child key".into(),
        ));
    }
    ensure_mrks_unique(generator.into_iter().chain(children.iter().copied()))?;
    let keyring = |key_id: &str| -> Result<Arc<dyn Keyring>, Error> {
        let client = supplier.client(KeyIdentifier::parse(key_id)?.region())?;
        Ok(Arc::new(
            KmsKeyring::<M>::new(key_id, client)?.with_grant_tokens(grant_tokens.iter().cloned()),
        ))
    };
    let mut builder = MultiKeyring::builder();
    if let Some(generator) = generator {
        builder = builder.generator_arc(keyring(generator)?);
    }
    for child in children {
        builder = builder.child_arc(keyring(child)?);
    }
    builder.build()
}

/// A multi-keyring of [`AwsKmsDiscoveryKeyring`]s, one per region, each with the supplier's client
/// for its region. Decrypt only: it tries the regions in order.
pub fn discovery_multi_keyring<'a>(
    supplier: &dyn ClientSupplier,
    regions: impl IntoIterator<Item = &'a str>,
    filter: Option<DiscoveryFilter>,
    grant_tokens: &[String],
) -> Result<MultiKeyring, Error> {
    discovery(regions, filter, grant_tokens, |region| {
        Ok(AwsKmsDiscoveryKeyring::new(supplier.client(Some(region))?))
    })
}

/// A multi-keyring of [`AwsKmsMrkDiscoveryKeyring`]s, one per region. Decrypt only.
pub fn mrk_discovery_multi_keyring<'a>(
    supplier: &dyn ClientSupplier,
    regions: impl IntoIterator<Item = &'a str>,
    filter: Option<DiscoveryFilter>,
    grant_tokens: &[String],
) -> Result<MultiKeyring, Error> {
    discovery(regions, filter, grant_tokens, |region| {
        AwsKmsMrkDiscoveryKeyring::new(supplier.client(Some(region))?, region)
    })
}

fn discovery<'a, S: DiscoveryScope>(
    regions: impl IntoIterator<Item = &'a str>,
    filter: Option<DiscoveryFilter>,
    grant_tokens: &[String],
    make: impl Fn(&str) -> Result<KmsDiscoveryKeyring<S>, Error>,
) -> Result<MultiKeyring, Error> {
    let regions: Vec<&str> = regions.into_iter().collect();
    if regions.is_empty() || regions.iter().any(|r| r.is_empty()) {
        return Err(Error::InvalidConfiguration(
            "a KMS discovery multi-keyring needs one or more non-empty regions".into(),
        ));
    }
    let mut builder = MultiKeyring::builder();
    for region in regions {
        let mut keyring = make(region)?.with_grant_tokens(grant_tokens.iter().cloned());
        if let Some(filter) = &filter {
            keyring = keyring.with_filter(filter.clone());
        }
        builder = builder.child_arc(Arc::new(keyring));
    }
    builder.build()
}
