//! What the KMS keyrings share: wrapping under one key, matching and unwrapping encrypted data keys.

use std::collections::HashMap;

use aws_sdk_kms::primitives::Blob;
use envelope_format::{EncryptedDataKey, EncryptionContext};
use envelope_keyring::{
    CompleteDecryptionMaterials, DecryptionMaterials, EncryptionMaterials, Error, SecretBytes,
};

use crate::arn::{KeyIdentifier, KmsArn};
use crate::client::{PROVIDER_ID, bad_response, send};

/// Settings shared by the keyrings that name one KMS key.
#[derive(Clone)]
pub(crate) struct KeyConfig {
    pub(crate) key_id: String,
    pub(crate) parsed: KeyIdentifier,
    pub(crate) client: aws_sdk_kms::Client,
    pub(crate) grant_tokens: Vec<String>,
}

impl KeyConfig {
    pub(crate) fn new(
        key_id: impl Into<String>,
        client: aws_sdk_kms::Client,
    ) -> Result<Self, Error> {
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
    pub(crate) async fn wrap(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
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
                let response = send("GenerateDataKey", &self.key_id, request).await?;
                let arn = response_key_arn("GenerateDataKey", &self.key_id, response.key_id)?;
                let plaintext = SecretBytes::new(required(
                    "GenerateDataKey",
                    &self.key_id,
                    response.plaintext,
                    "Plaintext",
                )?);
                if plaintext.len() != key_len {
                    return Err(bad_response(
                        "GenerateDataKey",
                        &self.key_id,
                        format_args!("a {}-byte data key, not {key_len}", plaintext.len()),
                    ));
                }
                let ciphertext = required(
                    "GenerateDataKey",
                    &self.key_id,
                    response.ciphertext_blob,
                    "CiphertextBlob",
                )?;
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
                let response = send("Encrypt", &self.key_id, request).await?;
                let arn = response_key_arn("Encrypt", &self.key_id, response.key_id)?;
                let ciphertext = required(
                    "Encrypt",
                    &self.key_id,
                    response.ciphertext_blob,
                    "CiphertextBlob",
                )?;
                Ok(materials.with_encrypted_data_key(EncryptedDataKey::new(
                    PROVIDER_ID,
                    arn,
                    ciphertext,
                )?))
            }
        }
    }
}

/// The bytes of response field `name` that KMS must return from `operation` on `key_id`.
fn required(
    operation: &str,
    key_id: &str,
    field: Option<Blob>,
    name: &str,
) -> Result<Vec<u8>, Error> {
    field
        .map(Blob::into_inner)
        .ok_or_else(|| bad_response(operation, key_id, format_args!("no {name}")))
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

pub(crate) fn tokens_param(tokens: &[String]) -> Option<Vec<String>> {
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

/// The encrypted data keys to try, each with the `KeyId` to call `Decrypt` with: every `aws-kms`
/// one that `key_for` maps to a key (from its provider info and parsed ARN), in message order.
fn candidates<'e>(
    keyring: &str,
    encrypted_data_keys: &'e [EncryptedDataKey],
    mut key_for: impl FnMut(String, &KmsArn) -> Option<String>,
) -> Result<Vec<(&'e EncryptedDataKey, String)>, Error> {
    let mut out = Vec::new();
    for edk in encrypted_data_keys {
        if let Some((info, arn)) = edk_arn(keyring, edk)?
            && let Some(key_id) = key_for(info, &arn)
        {
            out.push((edk, key_id));
        }
    }
    Ok(out)
}

/// Call `Decrypt` for each `aws-kms` encrypted data key that `key_for` maps to a `KeyId` (from
/// its provider info and parsed ARN), in message order, until one works; the errors of all
/// attempts otherwise. A malformed `aws-kms` provider info fails before any call.
pub(crate) async fn decrypt_first(
    keyring: String,
    client: &aws_sdk_kms::Client,
    grant_tokens: &[String],
    materials: DecryptionMaterials,
    encrypted_data_keys: &[EncryptedDataKey],
    key_for: impl FnMut(String, &KmsArn) -> Option<String>,
) -> Result<CompleteDecryptionMaterials, Error> {
    let candidates = candidates(&keyring, encrypted_data_keys, key_for)?;
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
        let response = match send("Decrypt", &key_id, request).await {
            Ok(response) => response,
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
        let plaintext = match required("Decrypt", &key_id, response.plaintext, "Plaintext") {
            Ok(plaintext) => SecretBytes::new(plaintext),
            Err(e) => {
                errors.push(e);
                continue;
            }
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

/// What the keyrings' unit tests share: an offline client and empty materials.
#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::BTreeSet;

    use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    use envelope_format::{AlgorithmSuite, EncryptionContext};
    use envelope_keyring::DecryptionMaterials;

    pub(crate) const ARN: &str =
        "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// A client for an endpoint where nothing listens: these tests must not reach KMS.
    pub(crate) fn offline_client() -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(Credentials::new("a", "b", None, None, "test"))
            .build();
        aws_sdk_kms::Client::from_conf(config)
    }

    pub(crate) fn materials() -> DecryptionMaterials {
        DecryptionMaterials::new(
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            EncryptionContext::default(),
            BTreeSet::new(),
            None,
        )
        .unwrap()
    }

    pub(crate) fn run<F: Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }
}
