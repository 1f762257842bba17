//! Wrapping keys from the command line: the flags, the key files, and the keyring they make.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use clap::{Args, ValueEnum};
use envelope::format::{EncryptedDataKey, Header};
use envelope::{Keyring, MultiKeyring, RawAesKeyring, RawRsaKeyring, RsaPadding, SecretBytes};

use crate::failure::Failure;
use crate::kms::{self, Side};

/// A demo wrapping key, compiled in so that the tool can be tried without any setup. It is public:
/// never protect real data with it.
const DEMO_KEY: [u8; 32] = *b"envelope-cli-demo-key-NOT-SECRET";

/// The key name the demo key is written under.
const DEMO_KEY_NAME: &str = "demo-key";

/// The provider id of AWS KMS data keys.
const KMS_PROVIDER_ID: &str = "aws-kms";

#[derive(Args)]
pub(crate) struct Keys {
    /// Use the embedded demo key (public; for trying the tool only).
    #[arg(long)]
    pub(crate) demo_key: bool,
    /// A raw AES wrapping key: a file of 16, 24 or 32 bytes, or of their Base64 or hex text
    /// (see --aes-key-format).
    #[arg(long, value_name = "FILE")]
    pub(crate) aes_key: Vec<PathBuf>,
    /// How --aes-key files are written. `auto` takes a file that is the hex or Base64 text of a
    /// 16, 24 or 32-byte key as that text, any other file of 16, 24 or 32 bytes as raw bytes, and
    /// refuses a file that could be either (such as 32 hex digits without a newline).
    #[arg(long, value_enum, default_value_t = KeyFormat::Auto)]
    pub(crate) aes_key_format: KeyFormat,
    /// An RSA public key (PEM) to wrap data keys for.
    #[arg(long, value_name = "FILE")]
    pub(crate) rsa_public_key: Vec<PathBuf>,
    /// An RSA private key (PEM, PKCS#8) to unwrap data keys with.
    #[arg(long, value_name = "FILE")]
    pub(crate) rsa_private_key: Vec<PathBuf>,
    /// RSA padding.
    #[arg(long, value_enum, default_value_t = Padding::OaepSha256)]
    pub(crate) rsa_padding: Padding,
    /// The key namespace written into messages (the provider id).
    #[arg(long, default_value = "envelope-cli")]
    pub(crate) key_namespace: String,
    /// The key name written into messages; defaults to the key file's name.
    #[arg(long)]
    pub(crate) key_name: Option<String>,
    /// AWS KMS keys, as aws-encryption-sdk-cli takes them: `key=ARN|ID|alias/NAME` (repeatable),
    /// `region=`, `profile=`, and on decrypt `discovery=true` with `discovery-account=` and
    /// `discovery-partition=`. Repeat -w for keys with another profile or region. The first key
    /// of the first group generates the data key.
    #[arg(short = 'w', long, value_name = "NAME=VALUE", num_args = 1.., action = clap::ArgAction::Append)]
    pub(crate) wrapping_keys: Vec<String>,
    /// The values of each `-w`, in order (filled from the argument matches by [`Keys::group`]).
    #[arg(skip)]
    pub(crate) wrapping_groups: Vec<Vec<String>>,
}

impl Keys {
    /// Split `--wrapping-keys` values into one group per `-w`, as `matches` (of the subcommand)
    /// received them.
    pub(crate) fn group(&mut self, matches: &clap::ArgMatches) {
        self.wrapping_groups = matches
            .get_occurrences::<String>("wrapping_keys")
            .map(|occurrences| occurrences.map(|o| o.cloned().collect()).collect())
            .unwrap_or_default();
    }

    /// The `--wrapping-keys` groups, checked for `side`.
    pub(crate) fn kms_groups(&self, side: Side) -> Result<Vec<kms::Group>, Failure> {
        self.wrapping_groups
            .iter()
            .map(|values| kms::parse_group(values, side))
            .collect()
    }

    /// The key files given, in the order their keyrings are built.
    fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.aes_key
            .iter()
            .chain(&self.rsa_public_key)
            .chain(&self.rsa_private_key)
    }

    /// The key name a key file is written under: `--key-name`, else the file's name.
    fn name_of(&self, path: &Path) -> String {
        self.key_name.clone().unwrap_or_else(|| file_key_name(path))
    }
}

fn file_key_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| "key".to_string(), |n| n.to_string_lossy().into_owned())
}

/// How an `--aes-key` file is written, as `--aes-key-format` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyFormat {
    /// Decide by content; refuse a file that is both a raw key and the text of one.
    Auto,
    /// The file's bytes are the key.
    Raw,
    /// Hex text (surrounding white space ignored).
    Hex,
    /// Base64 text (surrounding white space ignored).
    Base64,
}

fn is_key_len(len: usize) -> bool {
    matches!(len, 16 | 24 | 32)
}

/// The key the text of `bytes` spells in `format` (hex or Base64), if it is a key's length.
fn decode_key(bytes: &[u8], format: KeyFormat) -> Option<SecretBytes> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let decoded = match format {
        KeyFormat::Hex => hex::decode(text).ok()?,
        KeyFormat::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        KeyFormat::Auto | KeyFormat::Raw => return None,
    };
    let decoded = SecretBytes::new(decoded);
    is_key_len(decoded.len()).then_some(decoded)
}

fn read_aes_key(path: &Path, format: KeyFormat) -> Result<SecretBytes, Failure> {
    let bytes =
        SecretBytes::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let bytes = bytes.expose_secret();
    let raw = || is_key_len(bytes.len()).then(|| SecretBytes::from_slice(bytes));
    let key = match format {
        KeyFormat::Raw => raw().ok_or_else(|| {
            format!(
                "{}: a raw key is 16, 24 or 32 bytes; this file has {}",
                path.display(),
                bytes.len()
            )
        })?,
        KeyFormat::Hex | KeyFormat::Base64 => decode_key(bytes, format).ok_or_else(|| {
            format!(
                "{}: not the {} text of a 16, 24 or 32-byte key",
                path.display(),
                if format == KeyFormat::Hex {
                    "hex"
                } else {
                    "Base64"
                }
            )
        })?,
        KeyFormat::Auto => {
            let text =
                decode_key(bytes, KeyFormat::Hex).or_else(|| decode_key(bytes, KeyFormat::Base64));
            match (raw(), text) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{}: {} bytes that are also the hex or Base64 text of a key; say which \
                         with --aes-key-format raw, hex or base64",
                        path.display(),
                        bytes.len()
                    )
                    .into());
                }
                (Some(key), None) | (None, Some(key)) => key,
                (None, None) => {
                    return Err(format!(
                        "{}: not a 16, 24 or 32-byte key, nor its hex or Base64",
                        path.display()
                    )
                    .into());
                }
            }
        }
    };
    Ok(key)
}

/// RSA paddings, as `--rsa-padding` names them.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Padding {
    Pkcs1,
    OaepSha1,
    OaepSha256,
    OaepSha384,
    OaepSha512,
}

impl From<Padding> for RsaPadding {
    fn from(padding: Padding) -> Self {
        match padding {
            Padding::Pkcs1 => Self::Pkcs1v15,
            Padding::OaepSha1 => Self::OaepSha1,
            Padding::OaepSha256 => Self::OaepSha256,
            Padding::OaepSha384 => Self::OaepSha384,
            Padding::OaepSha512 => Self::OaepSha512,
        }
    }
}

/// One keyring per key given; several make a multi-keyring whose generator is the first AWS KMS
/// key, else the first key given. `quiet` silences the demo key's warning; `header` (on decrypt)
/// tells discovery which regions to ask.
pub(crate) fn keyring(
    keys: &Keys,
    side: Side,
    quiet: bool,
    header: Option<&Header>,
) -> Result<Arc<dyn Keyring>, Failure> {
    let groups = keys.kms_groups(side)?;
    let mut rings: Vec<Arc<dyn Keyring>> = kms::keyrings(&groups, header)?;
    if keys.demo_key {
        if !quiet {
            let _ = writeln!(
                io::stderr(),
                "envelope: using the public demo key: never protect real data with it"
            );
        }
        rings.push(Arc::new(RawAesKeyring::new(
            keys.key_namespace.clone(),
            DEMO_KEY_NAME,
            SecretBytes::from_slice(&DEMO_KEY),
        )?));
    }
    for path in &keys.aes_key {
        let key = read_aes_key(path, keys.aes_key_format)?;
        rings.push(Arc::new(RawAesKeyring::new(
            keys.key_namespace.clone(),
            keys.name_of(path),
            key,
        )?));
    }
    let padding = RsaPadding::from(keys.rsa_padding);
    type RsaConstructor =
        fn(String, String, RsaPadding, &str) -> Result<RawRsaKeyring, envelope::keyring::Error>;
    let rsa_keys: [(&[PathBuf], RsaConstructor); 2] = [
        (&keys.rsa_public_key, RawRsaKeyring::encrypt_only),
        (&keys.rsa_private_key, RawRsaKeyring::decrypt_only),
    ];
    for (paths, constructor) in rsa_keys {
        for path in paths {
            let in_file = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
            let pem = std::fs::read_to_string(path).map_err(|e| in_file(&e))?;
            let keyring = constructor(
                keys.key_namespace.clone(),
                keys.name_of(path),
                padding,
                &pem,
            )
            .map_err(|e| in_file(&e))?;
            rings.push(Arc::new(keyring));
        }
    }
    match rings.len() {
        0 => Err(
            "no key given: use --wrapping-keys, --aes-key, --rsa-public-key, \
                  --rsa-private-key or --demo-key"
                .into(),
        ),
        1 => Ok(rings.remove(0)),
        _ => {
            let generator = rings.remove(0);
            Ok(Arc::new(MultiKeyring::new(Some(generator), rings)?))
        }
    }
}

/// The raw AES key name and IV in a raw AES data key's provider info (name, tag length in bits
/// = 128, IV length = 12, IV), or `None` when the info is not laid out so.
fn raw_aes_info(info: &[u8]) -> Option<(&[u8], &[u8])> {
    let split = info.len().checked_sub(20)?;
    let (name, rest) = info.split_at(split);
    let (lengths, iv) = rest.split_at(8);
    (lengths == [0, 0, 0, 128, 0, 0, 0, 12]).then_some((name, iv))
}

/// A data key's owner as people name it: an AWS KMS key ARN, or a raw key's namespace and name
/// (with the IV of a raw AES key when `with_iv`).
pub(crate) fn describe_data_key(edk: &EncryptedDataKey, with_iv: bool) -> String {
    let provider = edk.provider_id();
    let info = edk.provider_info();
    if provider == KMS_PROVIDER_ID {
        return format!("AWS KMS key {}", String::from_utf8_lossy(info));
    }
    match raw_aes_info(info) {
        Some((name, iv)) if with_iv => format!(
            "raw AES key {provider:?} / {:?}, IV {}",
            String::from_utf8_lossy(name),
            hex::encode(iv)
        ),
        Some((name, _)) => format!(
            "raw AES key {provider:?} / {:?}",
            String::from_utf8_lossy(name)
        ),
        None => format!(
            "key {provider:?} / {:?} (raw RSA or other)",
            String::from_utf8_lossy(info)
        ),
    }
}

/// A data key's owner as `info --json` gives it: `kind` (`aws-kms`, `raw-aes` or `other`), the
/// provider id, and the KMS key ARN, or the raw key name (and AES IV in hex).
pub(crate) fn data_key_json(edk: &EncryptedDataKey) -> serde_json::Value {
    let provider = edk.provider_id();
    let info = edk.provider_info();
    let length = edk.ciphertext().len();
    if provider == KMS_PROVIDER_ID {
        return serde_json::json!({
            "kind": "aws-kms",
            "provider_id": provider,
            "key_arn": String::from_utf8_lossy(info),
            "ciphertext_length": length,
        });
    }
    match raw_aes_info(info) {
        Some((name, iv)) => serde_json::json!({
            "kind": "raw-aes",
            "provider_id": provider,
            "key_name": String::from_utf8_lossy(name),
            "iv": hex::encode(iv),
            "ciphertext_length": length,
        }),
        None => serde_json::json!({
            "kind": "other",
            "provider_id": provider,
            "key_name": String::from_utf8_lossy(info),
            "ciphertext_length": length,
        }),
    }
}

/// What to tell someone whose keys match none of the message's data keys: whose keys the message
/// holds, and, when key names were taken from file names, how to give the right one.
pub(crate) fn no_match_hint(keys: &Keys, header: &Header) -> String {
    let mut hint = String::from("the message's data keys are for:");
    for edk in header.body().encrypted_data_keys() {
        hint.push_str("\n  ");
        hint.push_str(&describe_data_key(edk, false));
    }
    let mut given: Vec<String> = keys.files().map(|path| keys.name_of(path)).collect();
    if keys.demo_key {
        given.insert(0, DEMO_KEY_NAME.to_string());
    }
    if !given.is_empty() {
        hint.push_str(&format!(
            "\nthe keys given are named {} in namespace {:?}",
            given
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            keys.key_namespace
        ));
    }
    if let Ok(groups) = keys.kms_groups(Side::Decrypt) {
        for name in kms::describe(&groups) {
            hint.push_str("\nthe keys given include ");
            hint.push_str(&name);
        }
        if groups
            .iter()
            .flat_map(|g| g.keys.iter())
            .any(|key| !key.starts_with("arn:") || key.contains(":alias/"))
        {
            hint.push_str(
                "\nhint: a message records the key ARN of each AWS KMS key, so decrypting needs \
                 -w key=ARN (an alias or key id matches no data key), or -w discovery=true",
            );
        }
    }
    if keys.key_name.is_none() && keys.files().next().is_some() {
        hint.push_str(
            "\nhint: a key file's key name defaults to its file name; give the name the message \
             was encrypted under with --key-name (and --key-namespace)",
        );
    }
    hint
}

/// Whether decryption failed only because no keyring owned any of the message's data keys.
pub(crate) fn no_key_matched(error: &envelope::Error) -> bool {
    fn leaf(error: &envelope::keyring::Error) -> bool {
        match error {
            envelope::keyring::Error::NoMatchingDataKey { .. } => true,
            // A discovery keyring whose filter admitted none of the message's keys.
            envelope::keyring::Error::DecryptAttemptsFailed { errors, .. } => errors.is_empty(),
            envelope::keyring::Error::MultiKeyring(errors) => {
                !errors.is_empty() && errors.iter().all(leaf)
            }
            _ => false,
        }
    }
    matches!(error, envelope::Error::Materials(e) if leaf(e))
}

#[cfg(test)]
mod tests {
    use super::raw_aes_info;

    #[test]
    fn raw_aes_info_splits_name_and_iv_only_when_the_lengths_are_the_raw_aes_ones() {
        let mut info = b"name".to_vec();
        info.extend_from_slice(&[0, 0, 0, 128, 0, 0, 0, 12]);
        info.extend_from_slice(&[7; 12]);
        assert_eq!(raw_aes_info(&info), Some((&b"name"[..], &[7u8; 12][..])));
        info[5] = 1;
        assert_eq!(raw_aes_info(&info), None);
        assert_eq!(raw_aes_info(b"short"), None);
    }
}
