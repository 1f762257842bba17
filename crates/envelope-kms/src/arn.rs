//! AWS KMS key identifiers: ARN parsing, multi-Region key (MRK) detection and matching.
//!
//! A KMS key can be named four ways: a key ARN (`arn:aws:kms:us-east-1:111122223333:key/1234...`),
//! an alias ARN (`arn:aws:kms:us-east-1:111122223333:alias/my-key`), a bare key id (`1234...` or
//! `mrk-...`) or an alias name (`alias/my-key`). Encrypted data keys written by a KMS keyring always
//! name their key by key ARN.

use std::fmt;

use envelope_keyring::Error;

/// The longest key identifier KMS accepts.
pub const MAX_KEY_ID_LEN: usize = 2048;

/// What an ARN names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResourceType {
    /// `key/<key id>`.
    Key,
    /// `alias/<alias name>`.
    Alias,
}

impl ResourceType {
    /// `"key"` or `"alias"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Alias => "alias",
        }
    }
}

/// A parsed AWS KMS ARN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KmsArn {
    partition: String,
    region: String,
    account: String,
    resource_type: ResourceType,
    resource_id: String,
}

impl KmsArn {
    /// Parse `arn:<partition>:kms:<region>:<account>:<key|alias>/<id>`.
    pub fn parse(arn: &str) -> Result<Self, ArnError> {
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() != 6 {
            return Err(ArnError::new(arn, "an ARN has six ':'-separated parts"));
        }
        if parts[0] != "arn" {
            return Err(ArnError::new(arn, "an ARN starts with \"arn:\""));
        }
        let (partition, service, region, account, resource) =
            (parts[1], parts[2], parts[3], parts[4], parts[5]);
        if partition.is_empty() {
            return Err(ArnError::new(arn, "the partition is empty"));
        }
        if service != "kms" {
            return Err(ArnError::new(arn, "the service is not \"kms\""));
        }
        if region.is_empty() {
            return Err(ArnError::new(arn, "the region is empty"));
        }
        if account.is_empty() {
            return Err(ArnError::new(arn, "the account is empty"));
        }
        let Some((kind, id)) = resource.split_once('/') else {
            return Err(ArnError::new(
                arn,
                "the resource is not \"key/<id>\" or \"alias/<name>\"",
            ));
        };
        let resource_type = match kind {
            "key" => ResourceType::Key,
            "alias" => ResourceType::Alias,
            _ => {
                return Err(ArnError::new(
                    arn,
                    "the resource type is neither \"key\" nor \"alias\"",
                ));
            }
        };
        if id.is_empty() {
            return Err(ArnError::new(arn, "the resource id is empty"));
        }
        Ok(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource_type,
            resource_id: id.to_owned(),
        })
    }

    /// Parse an ARN that must name a key (not an alias), as encrypted data keys and KMS responses do.
    pub fn parse_key_arn(arn: &str) -> Result<Self, ArnError> {
        let parsed = Self::parse(arn)?;
        if parsed.resource_type != ResourceType::Key {
            return Err(ArnError::new(
                arn,
                "an alias ARN where a key ARN is required",
            ));
        }
        Ok(parsed)
    }

    /// The partition, e.g. `aws` or `aws-cn`.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Key or alias.
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The key id or alias name (without the `key/` or `alias/` prefix).
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// Whether this ARN names a multi-Region key: a key (not an alias) whose id starts with `mrk-`.
    pub fn is_multi_region_key(&self) -> bool {
        self.resource_type == ResourceType::Key && self.resource_id.starts_with("mrk-")
    }

    /// The same key in another region (for multi-Region keys, its replica there).
    pub fn in_region(&self, region: &str) -> Self {
        Self {
            region: region.to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Display for KmsArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:kms:{}:{}:{}/{}",
            self.partition,
            self.region,
            self.account,
            self.resource_type.as_str(),
            self.resource_id
        )
    }
}

/// Any way of naming a KMS key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyIdentifier {
    /// A key or alias ARN.
    Arn(KmsArn),
    /// An alias name, `alias/<name>`.
    AliasName(String),
    /// A bare key id (`mrk-...` for multi-Region keys).
    KeyId(String),
}

impl KeyIdentifier {
    /// Classify an identifier: ARNs are parsed and must be valid; `alias/...` is an alias name;
    /// anything else non-empty is a key id.
    pub fn parse(identifier: &str) -> Result<Self, ArnError> {
        if identifier.is_empty() {
            return Err(ArnError::new(identifier, "the key identifier is empty"));
        }
        if identifier.len() > MAX_KEY_ID_LEN {
            return Err(ArnError::new(
                identifier,
                "the key identifier is longer than 2048 bytes",
            ));
        }
        if identifier.starts_with("arn:") {
            return KmsArn::parse(identifier).map(Self::Arn);
        }
        if identifier.starts_with("alias/") {
            return Ok(Self::AliasName(identifier.to_owned()));
        }
        Ok(Self::KeyId(identifier.to_owned()))
    }

    /// Whether the identifier names a multi-Region key (an `mrk-` key ARN or key id).
    pub fn is_multi_region_key(&self) -> bool {
        match self {
            Self::Arn(arn) => arn.is_multi_region_key(),
            Self::AliasName(_) => false,
            Self::KeyId(id) => id.starts_with("mrk-"),
        }
    }

    /// The region named by an ARN; bare ids and alias names have none.
    pub fn region(&self) -> Option<&str> {
        match self {
            Self::Arn(arn) => Some(arn.region()),
            _ => None,
        }
    }

    /// The key id or alias name without ARN parts.
    pub fn resource_id(&self) -> &str {
        match self {
            Self::Arn(arn) => arn.resource_id(),
            Self::AliasName(name) => name.strip_prefix("alias/").unwrap_or(name),
            Self::KeyId(id) => id,
        }
    }
}

impl fmt::Display for KeyIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Arn(arn) => arn.fmt(f),
            Self::AliasName(name) | Self::KeyId(name) => f.write_str(name),
        }
    }
}

/// Whether a keyring configured with `configured` may decrypt a data key that KMS wrapped under
/// `message` (the provider info of an encrypted data key).
///
/// Identical identifiers match. Otherwise both must be multi-Region key ARNs that differ at most in
/// their region: the same key replicated to another region.
pub fn mrk_match(configured: &KeyIdentifier, message: &KeyIdentifier) -> bool {
    if configured == message {
        return true;
    }
    match (configured, message) {
        (KeyIdentifier::Arn(a), KeyIdentifier::Arn(b)) => {
            a.is_multi_region_key()
                && b.is_multi_region_key()
                && a.partition == b.partition
                && a.account == b.account
                && a.resource_type == b.resource_type
                && a.resource_id == b.resource_id
        }
        _ => false,
    }
}

/// Refuse a set of key identifiers that names one multi-Region key more than once (for instance its
/// replicas in two regions): a multi-keyring would wrap the same key twice. Aliases are not checked.
pub fn ensure_mrks_unique<'a>(identifiers: impl IntoIterator<Item = &'a str>) -> Result<(), Error> {
    let mut seen: Vec<(&str, String)> = Vec::new();
    let mut duplicates: Vec<&str> = Vec::new();
    for identifier in identifiers {
        let parsed = KeyIdentifier::parse(identifier).map_err(Error::from)?;
        if !parsed.is_multi_region_key() {
            continue;
        }
        let resource = parsed.resource_id().to_owned();
        if let Some((first, _)) = seen.iter().find(|(_, r)| *r == resource) {
            if !duplicates.contains(first) {
                duplicates.push(first);
            }
            duplicates.push(identifier);
        } else {
            seen.push((identifier, resource));
        }
    }
    if duplicates.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidConfiguration(format!(
            "these key identifiers name the same multi-Region key: {}",
            duplicates.join(", ")
        )))
    }
}

/// A malformed KMS key identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid AWS KMS key identifier {identifier:?}: {reason}")]
#[non_exhaustive]
pub struct ArnError {
    /// The identifier as given.
    pub identifier: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl ArnError {
    fn new(identifier: &str, reason: &'static str) -> Self {
        Self {
            identifier: identifier.to_owned(),
            reason,
        }
    }
}

impl From<ArnError> for Error {
    fn from(e: ArnError) -> Self {
        Error::InvalidConfiguration(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const MRK_W: &str =
        "arn:aws:kms:us-west-2:111122223333:key/mrk-80bd8ecdcd4342aebd84b7dc9da498a7";
    const MRK_E: &str =
        "arn:aws:kms:us-east-1:111122223333:key/mrk-80bd8ecdcd4342aebd84b7dc9da498a7";

    fn id(s: &str) -> KeyIdentifier {
        KeyIdentifier::parse(s).unwrap()
    }

    #[test]
    fn parses_key_and_alias_arns() {
        let arn = KmsArn::parse(KEY).unwrap();
        assert_eq!(arn.partition(), "aws");
        assert_eq!(arn.region(), "us-west-2");
        assert_eq!(arn.account(), "111122223333");
        assert_eq!(arn.resource_type(), ResourceType::Key);
        assert_eq!(arn.resource_id(), "1234abcd-12ab-34cd-56ef-1234567890ab");
        assert_eq!(arn.to_string(), KEY);
        assert!(!arn.is_multi_region_key());

        let alias = KmsArn::parse("arn:aws-cn:kms:cn-north-1:111122223333:alias/team/app").unwrap();
        assert_eq!(alias.resource_type(), ResourceType::Alias);
        assert_eq!(alias.resource_id(), "team/app");
        assert!(KmsArn::parse_key_arn(&alias.to_string()).is_err());
        // An alias is never a multi-Region key, whatever its name.
        assert!(
            !KmsArn::parse("arn:aws:kms:us-east-1:1:alias/mrk-x")
                .unwrap()
                .is_multi_region_key()
        );
    }

    #[test]
    fn rejects_malformed_arns() {
        for (bad, reason) in [
            ("arn:aws:kms:us-west-2:111122223333", "six"),
            ("arn:aws:kms:us-west-2:111122223333:key/a:b", "six"),
            ("nra:aws:kms:us-west-2:111122223333:key/a", "starts with"),
            ("arn::kms:us-west-2:111122223333:key/a", "partition"),
            ("arn:aws:s3:us-west-2:111122223333:key/a", "service"),
            ("arn:aws:kms::111122223333:key/a", "region"),
            ("arn:aws:kms:us-west-2::key/a", "account"),
            ("arn:aws:kms:us-west-2:111122223333:key", "resource is not"),
            (
                "arn:aws:kms:us-west-2:111122223333:grant/a",
                "resource type",
            ),
            ("arn:aws:kms:us-west-2:111122223333:key/", "resource id"),
        ] {
            let err = KmsArn::parse(bad).unwrap_err();
            assert!(err.reason.contains(reason), "{bad}: {err}");
        }
    }

    #[test]
    fn classifies_identifiers() {
        assert!(matches!(id(KEY), KeyIdentifier::Arn(_)));
        assert_eq!(
            id("alias/app"),
            KeyIdentifier::AliasName("alias/app".into())
        );
        assert_eq!(id("alias/app").resource_id(), "app");
        assert_eq!(id("mrk-1"), KeyIdentifier::KeyId("mrk-1".into()));
        assert!(id("mrk-1").is_multi_region_key());
        assert!(id(MRK_W).is_multi_region_key());
        assert!(!id("1234").is_multi_region_key());
        assert_eq!(id(MRK_E).region(), Some("us-east-1"));
        assert_eq!(id("mrk-1").region(), None);
        assert!(KeyIdentifier::parse("").is_err());
        assert!(KeyIdentifier::parse(&"k".repeat(2049)).is_err());
        assert!(KeyIdentifier::parse("arn:aws:kms:bad").is_err());
    }

    #[test]
    fn mrk_match_follows_the_spec() {
        // Identical identifiers always match, MRK or not.
        assert!(mrk_match(&id(KEY), &id(KEY)));
        assert!(mrk_match(&id("alias/a"), &id("alias/a")));
        // Replicas of one MRK match across regions.
        assert!(mrk_match(&id(MRK_W), &id(MRK_E)));
        // ... but not across accounts or partitions, nor different keys; and single-region keys
        // must be identical.
        for (key, other) in [
            (MRK_W, MRK_E.replace("111122223333", "444455556666")),
            (MRK_W, MRK_E.replace("arn:aws:", "arn:aws-cn:")),
            (MRK_W, MRK_E.replace("mrk-8", "mrk-9")),
            (KEY, KEY.replace("us-west-2", "us-east-1")),
        ] {
            assert!(!mrk_match(&id(key), &id(&other)), "{key} ~ {other}");
        }
        // A bare MRK id does not match its ARN.
        assert!(!mrk_match(
            &id("mrk-80bd8ecdcd4342aebd84b7dc9da498a7"),
            &id(MRK_W)
        ));
    }

    #[test]
    fn replicas_of_one_mrk_are_refused_together() {
        assert!(ensure_mrks_unique([KEY, MRK_W, "alias/a", "alias/a"]).is_ok());
        let err = ensure_mrks_unique([MRK_W, KEY, MRK_E])
            .unwrap_err()
            .to_string();
        assert!(err.contains(MRK_W) && err.contains(MRK_E), "{err}");
        assert!(!err.contains(KEY), "{err}");
        let err = ensure_mrks_unique(["mrk-80bd8ecdcd4342aebd84b7dc9da498a7", MRK_E])
            .unwrap_err()
            .to_string();
        assert!(err.contains("mrk-80bd"), "{err}");
        assert!(ensure_mrks_unique(["arn:bad"]).is_err());
    }
}
