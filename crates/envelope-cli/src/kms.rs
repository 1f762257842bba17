//! `--wrapping-keys`: AWS KMS keys named as aws-encryption-sdk-cli names them.
//!
//! Each `-w` starts a group of `NAME=VALUE` parameters: `key=` (a key ARN, key id, alias name or
//! alias ARN; repeatable), `region=`, `profile=`, `provider=aws-kms`, and on decrypt
//! `discovery=true` with optional `discovery-account=` (repeatable) and `discovery-partition=`.
//! A group's keys use the AWS configuration of its profile and region (else the environment's).

use std::collections::BTreeSet;
use std::sync::Arc;

use envelope::Keyring;
use envelope::format::Header;
use envelope::kms::arn::{KeyIdentifier, KmsArn, ensure_mrks_unique};
use envelope::kms::aws_config::{self, BehaviorVersion, Region};
use envelope::kms::{
    AwsKmsKeyring, ClientSupplier, DefaultClientSupplier, DiscoveryFilter, PROVIDER_ID,
    discovery_multi_keyring,
};

use crate::failure::Failure;

/// Which side of the message a keyring is for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Encrypt,
    Decrypt,
}

/// One `--wrapping-keys` group, checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) keys: Vec<String>,
    region: Option<String>,
    profile: Option<String>,
    discovery: bool,
    accounts: Vec<String>,
    partition: Option<String>,
}

const PARAMETERS: &str =
    "key, region, profile, provider, discovery, discovery-account, discovery-partition";

/// Read one group's `NAME=VALUE` parameters.
pub(crate) fn parse_group(values: &[String], side: Side) -> Result<Group, Failure> {
    let mut group = Group::default();
    let mut discovery: Option<bool> = None;
    for value in values {
        let Some((name, v)) = value.split_once('=') else {
            return Err(format!(
                "--wrapping-keys: {value:?} is not NAME=VALUE (names: {PARAMETERS})"
            )
            .into());
        };
        if v.is_empty() {
            return Err(format!("--wrapping-keys: {name} has an empty value").into());
        }
        let once = |slot: &mut Option<String>| -> Result<(), Failure> {
            if slot.replace(v.to_string()).is_some() {
                return Err(format!("--wrapping-keys: {name} is given more than once").into());
            }
            Ok(())
        };
        match name {
            "key" => group.keys.push(v.to_string()),
            "region" => once(&mut group.region)?,
            "profile" => once(&mut group.profile)?,
            "discovery-partition" => once(&mut group.partition)?,
            "discovery-account" => group.accounts.push(v.to_string()),
            "provider" => {
                if v != PROVIDER_ID && v != "aws-encryption-sdk-cli::aws-kms" {
                    return Err(format!(
                        "--wrapping-keys: provider {v:?} is not supported (only aws-kms)"
                    )
                    .into());
                }
            }
            "discovery" => {
                let flag = match v.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(format!(
                            "--wrapping-keys: discovery is true or false, not {v:?}"
                        )
                        .into());
                    }
                };
                if discovery.replace(flag).is_some() {
                    return Err("--wrapping-keys: discovery is given more than once".into());
                }
            }
            _ => {
                return Err(format!(
                    "--wrapping-keys: unknown parameter {name:?} (names: {PARAMETERS})"
                )
                .into());
            }
        }
    }
    group.discovery = discovery.unwrap_or(false);
    let filtered = !group.accounts.is_empty() || group.partition.is_some();
    match side {
        Side::Encrypt if discovery.is_some() || filtered => {
            return Err("--wrapping-keys: discovery is for decrypt only".into());
        }
        Side::Encrypt | Side::Decrypt if group.keys.is_empty() && !group.discovery => {
            return Err(match side {
                Side::Encrypt => "--wrapping-keys: give at least one key=",
                Side::Decrypt => "--wrapping-keys: give key= or discovery=true",
            }
            .into());
        }
        Side::Decrypt if group.discovery && !group.keys.is_empty() => {
            return Err("--wrapping-keys: key= and discovery=true exclude each other".into());
        }
        Side::Decrypt if filtered && !group.discovery => {
            return Err(
                "--wrapping-keys: discovery-account and discovery-partition need discovery=true"
                    .into(),
            );
        }
        Side::Decrypt if filtered && (group.accounts.is_empty() || group.partition.is_none()) => {
            return Err(
                "--wrapping-keys: a discovery filter needs both discovery-partition and at least \
                 one discovery-account"
                    .into(),
            );
        }
        _ => {}
    }
    Ok(group)
}

/// The AWS configuration of a group: its profile and region over the environment's.
fn supplier(group: &Group) -> Result<DefaultClientSupplier, Failure> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &group.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &group.region {
        loader = loader.region(Region::new(region.clone()));
    }
    Ok(DefaultClientSupplier::from_loader_blocking(loader)?)
}

/// The regions of the message's AWS KMS data keys, in order of first appearance.
fn message_regions(header: Option<&Header>) -> Vec<String> {
    let mut regions: Vec<String> = Vec::new();
    for edk in header
        .into_iter()
        .flat_map(|h| h.body().encrypted_data_keys())
    {
        if edk.provider_id() != PROVIDER_ID {
            continue;
        }
        if let Some(arn) = std::str::from_utf8(edk.provider_info())
            .ok()
            .and_then(|text| KmsArn::parse(text).ok())
            && !regions.iter().any(|r| r == arn.region())
        {
            regions.push(arn.region().to_string());
        }
    }
    regions
}

/// The keyrings of the groups, in order: one per key, and one discovery multi-keyring per
/// discovery group. Discovery uses the group's region, else the regions of the message's KMS
/// data keys (`header`), else the configured default region.
pub(crate) fn keyrings(
    groups: &[Group],
    header: Option<&Header>,
) -> Result<Vec<Arc<dyn Keyring>>, Failure> {
    ensure_mrks_unique(
        groups
            .iter()
            .flat_map(|g| g.keys.iter().map(String::as_str)),
    )?;
    let mut rings: Vec<Arc<dyn Keyring>> = Vec::new();
    for group in groups {
        let supplier = supplier(group)?;
        for key in &group.keys {
            let identifier =
                KeyIdentifier::parse(key).map_err(|e| format!("--wrapping-keys key={key}: {e}"))?;
            let client = supplier
                .client(identifier.region())
                .map_err(|e| format!("--wrapping-keys key={key}: {e}"))?;
            rings.push(Arc::new(
                AwsKmsKeyring::new(key, client)
                    .map_err(|e| format!("--wrapping-keys key={key}: {e}"))?,
            ));
        }
        if group.discovery {
            let mut regions: Vec<String> = group.region.iter().cloned().collect();
            if regions.is_empty() {
                regions = message_regions(header);
            }
            if regions.is_empty() {
                regions.extend(supplier.default_region().map(str::to_string));
            }
            if regions.is_empty() {
                return Err(
                    "--wrapping-keys discovery=true: the message has no AWS KMS data key \
                            and no region is configured (region= or AWS_REGION)"
                        .into(),
                );
            }
            let filter = match &group.partition {
                Some(partition) => Some(DiscoveryFilter::new(
                    partition.clone(),
                    group.accounts.iter().collect::<BTreeSet<_>>(),
                )?),
                None => None,
            };
            rings.push(Arc::new(discovery_multi_keyring(
                &supplier,
                regions.iter().map(String::as_str),
                filter,
                &[],
            )?));
        }
    }
    Ok(rings)
}

/// The Regions of the message's AWS KMS data keys when a discovery group without `region=` will
/// look there, else none: keyrings built for equal answers are interchangeable.
pub(crate) fn header_regions(groups: &[Group], header: Option<&Header>) -> Vec<String> {
    if groups.iter().any(|g| g.discovery && g.region.is_none()) {
        message_regions(header)
    } else {
        Vec::new()
    }
}

/// How the given KMS keys are named in error hints.
pub(crate) fn describe(groups: &[Group]) -> Vec<String> {
    let mut names = Vec::new();
    for group in groups {
        names.extend(group.keys.iter().map(|k| format!("AWS KMS key {k}")));
        if group.discovery {
            names.push(match &group.partition {
                Some(p) => format!(
                    "AWS KMS discovery in partition {p} for account(s) {}",
                    group.accounts.join(", ")
                ),
                None => "AWS KMS discovery (any account)".to_string(),
            });
        }
    }
    names
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Side, parse_group};

    fn group(values: &[&str], side: Side) -> Result<super::Group, String> {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        parse_group(&values, side).map_err(|e| e.to_string())
    }

    #[test]
    fn groups_take_the_python_clis_parameters() {
        let g = group(
            &[
                "key=alias/a",
                "key=k2",
                "region=eu-west-1",
                "profile=p",
                "provider=aws-kms",
            ],
            Side::Encrypt,
        )
        .unwrap();
        assert_eq!(g.keys, ["alias/a", "k2"]);
        assert_eq!(g.region.as_deref(), Some("eu-west-1"));
        let g = group(
            &[
                "discovery=true",
                "discovery-partition=aws",
                "discovery-account=111122223333",
            ],
            Side::Decrypt,
        )
        .unwrap();
        assert!(g.discovery);
        assert_eq!(g.accounts, ["111122223333"]);
    }

    #[test]
    fn contradictions_and_unknown_names_are_refused() {
        for (values, side, error) in [
            (
                &["key"][..],
                Side::Encrypt,
                "--wrapping-keys: \"key\" is not NAME=VALUE",
            ),
            (
                &["colour=red"],
                Side::Encrypt,
                "--wrapping-keys: unknown parameter \"colour\"",
            ),
            (
                &["region=a"],
                Side::Encrypt,
                "--wrapping-keys: give at least one key=",
            ),
            (
                &["discovery=true"],
                Side::Encrypt,
                "--wrapping-keys: discovery is for decrypt only",
            ),
            (
                &["region=a"],
                Side::Decrypt,
                "--wrapping-keys: give key= or discovery=true",
            ),
            (
                &["key=k", "discovery=true"],
                Side::Decrypt,
                "--wrapping-keys: key= and discovery=true exclude each other",
            ),
            (
                &["discovery=true", "discovery-account=1"],
                Side::Decrypt,
                "--wrapping-keys: a discovery filter needs both",
            ),
            (
                &["key=k", "discovery-partition=aws"],
                Side::Decrypt,
                "--wrapping-keys: discovery-account and discovery-partition need discovery=true",
            ),
            (
                &["key=k", "region=a", "region=b"],
                Side::Encrypt,
                "region is given more than once",
            ),
            (
                &["key=k", "provider=other"],
                Side::Encrypt,
                "provider \"other\" is not supported",
            ),
            (
                &["discovery=yes"],
                Side::Decrypt,
                "discovery is true or false, not \"yes\"",
            ),
            (&["key="], Side::Encrypt, "key has an empty value"),
        ] {
            let got = group(values, side).unwrap_err();
            assert!(got.contains(error), "{values:?}: {got}");
        }
    }
}
