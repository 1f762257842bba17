//! The raw RSA keyring: wraps data keys with a local RSA key pair.

use async_trait::async_trait;
use envelope_crypto::rsa::{RsaPadding, RsaPrivateKey, RsaPublicKey};
use envelope_format::EncryptedDataKey;

use crate::materials::{CompleteDecryptionMaterials, DecryptionMaterials, EncryptionMaterials};
use crate::{Error, Keyring};

/// A keyring that wraps data keys with RSA under a key pair you hold.
///
/// Encryption needs the public key (PEM `PUBLIC KEY`, X.509 SubjectPublicKeyInfo) and decryption the
/// private key (PEM `PRIVATE KEY`, unencrypted PKCS#8); a keyring may hold either or both. As the
/// ESDK specification requires, the public key is never derived from the private key, so a
/// decrypt-only keyring cannot encrypt.
///
/// The encrypted data key's provider id is the namespace and its provider info is the key name.
/// Unlike the raw AES keyring, RSA wrapping does not bind the encryption context (the message header
/// still authenticates it). Compatible with the raw RSA keyrings and `RawMasterKey` / `JceMasterKey`
/// of the other ESDKs.
///
/// # Side channels
///
/// With the default `aws-lc` crypto backend RSA decryption is constant time. The pure-Rust
/// `rustcrypto` backend uses the `rsa` crate, which is affected by
/// [RUSTSEC-2023-0071](https://rustsec.org/advisories/RUSTSEC-2023-0071) (a timing side channel in
/// RSA decryption that may let an attacker who can time many decryptions recover the key); Envelope
/// decrypts with blinding there, which mitigates but does not remove it. Do not use that backend to
/// decrypt attacker-supplied messages with RSA keys where precise timing can be observed.
///
/// ```
/// use envelope_keyring::{RawRsaKeyring, RsaPadding};
///
/// # let public_pem = include_str!("../tests/data/rsa-2048-public.pem");
/// let keyring = RawRsaKeyring::encrypt_only("my-app", "rsa-key-1", RsaPadding::OaepSha256, public_pem)?;
/// # Ok::<(), envelope_keyring::Error>(())
/// ```
#[derive(Debug)] // the private key prints as its size and [REDACTED]
pub struct RawRsaKeyring {
    namespace: String,
    name: String,
    padding: RsaPadding,
    public_key: Option<RsaPublicKey>,
    private_key: Option<RsaPrivateKey>,
    allow_non_approved: bool,
}

impl RawRsaKeyring {
    /// A keyring that can encrypt and decrypt.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        public_key_pem: &str,
        private_key_pem: &str,
    ) -> Result<Self, Error> {
        Self::build(
            namespace,
            name,
            padding,
            Some(public_key_pem),
            Some(private_key_pem),
        )
    }

    /// A keyring that can only encrypt (wrap) data keys.
    pub fn encrypt_only(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        public_key_pem: &str,
    ) -> Result<Self, Error> {
        Self::build(namespace, name, padding, Some(public_key_pem), None)
    }

    /// A keyring that can only decrypt (unwrap) data keys.
    pub fn decrypt_only(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        private_key_pem: &str,
    ) -> Result<Self, Error> {
        Self::build(namespace, name, padding, None, Some(private_key_pem))
    }

    /// A keyring from parsed keys; either may be absent (at least one must be given).
    ///
    /// The keyring uses the keys exactly as given: it encrypts only with `public_key`, which the
    /// caller chose (as everywhere else, the keyring derives nothing from the private key).
    pub fn from_keys(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        public_key: Option<RsaPublicKey>,
        private_key: Option<RsaPrivateKey>,
    ) -> Result<Self, Error> {
        let namespace = reserved_namespace_refused(namespace.into())?;
        if public_key.is_none() && private_key.is_none() {
            return Err(Error::InvalidConfiguration(
                "a raw RSA keyring needs a public key, a private key or both".into(),
            ));
        }
        Ok(Self {
            namespace,
            name: name.into(),
            padding,
            public_key,
            private_key,
            allow_non_approved: false,
        })
    }

    fn build(
        namespace: impl Into<String>,
        name: impl Into<String>,
        padding: RsaPadding,
        public_key_pem: Option<&str>,
        private_key_pem: Option<&str>,
    ) -> Result<Self, Error> {
        let namespace = reserved_namespace_refused(namespace.into())?;
        let public_key = public_key_pem
            .map(RsaPublicKey::from_pem)
            .transpose()
            .map_err(|e| Error::InvalidConfiguration(format!("RSA public key: {e}")))?;
        let private_key = private_key_pem
            .map(RsaPrivateKey::from_pem)
            .transpose()
            .map_err(|e| Error::InvalidConfiguration(format!("RSA private key: {e}")))?;
        Self::from_keys(namespace, name, padding, public_key, private_key)
    }

    /// In a `fips` build, let this keyring use [`RsaPadding::Pkcs1v15`], which a FIPS build
    /// otherwise refuses: PKCS#1 v1.5 is not an approved key-transport scheme (NIST SP 800-131A
    /// Rev. 2 disallows it after 2023). For example, to decrypt messages written before a move to
    /// OAEP. Other builds allow every padding, and this changes nothing there.
    pub fn allow_non_approved_padding(mut self) -> Self {
        self.allow_non_approved = true;
        self
    }

    /// The key `operation` needs, or why this keyring cannot do it: it has no such key
    /// (`missing`), or a `fips` build refuses PKCS#1 v1.5 unless allowed.
    fn key_for<'k, K>(
        &self,
        operation: &'static str,
        key: &'k Option<K>,
        missing: &'static str,
    ) -> Result<&'k K, Error> {
        let unsupported = |reason| Error::Unsupported {
            keyring: self.describe(),
            operation,
            reason,
        };
        if envelope_crypto::FIPS_BUILD
            && self.padding == RsaPadding::Pkcs1v15
            && !self.allow_non_approved
        {
            return Err(unsupported(
                "RSA PKCS#1 v1.5 is not a FIPS-approved key-transport padding (a FIPS build \
                 refuses it unless allow_non_approved_padding() is set)",
            ));
        }
        key.as_ref().ok_or_else(|| unsupported(missing))
    }

    /// The key namespace (the encrypted data key's provider id).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The padding.
    pub fn padding(&self) -> RsaPadding {
        self.padding
    }

    fn describe(&self) -> String {
        format!("raw RSA keyring {:?}/{:?}", self.namespace, self.name)
    }
}

/// The namespace, unless it starts with `aws-kms` (reserved for the KMS keyrings).
fn reserved_namespace_refused(namespace: String) -> Result<String, Error> {
    if namespace.starts_with("aws-kms") {
        return Err(Error::InvalidConfiguration(format!(
            "key namespace {namespace:?}: namespaces starting with \"aws-kms\" are reserved"
        )));
    }
    Ok(namespace)
}

#[async_trait]
impl Keyring for RawRsaKeyring {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, Error> {
        let public_key = self.key_for(
            "encrypt",
            &self.public_key,
            "it has no public key (a public key is never derived from the private key)",
        )?;
        materials.wrap_data_key(|_, data_key| {
            let ciphertext = public_key.encrypt(self.padding, data_key.expose_secret())?;
            let info = self.name.as_bytes().to_vec();
            Ok(EncryptedDataKey::new(
                self.namespace.clone(),
                info,
                ciphertext,
            )?)
        })
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, Error> {
        let private_key = self.key_for("decrypt", &self.private_key, "it has no private key")?;
        let key_len = materials.suite().key_len();
        let mut attempts = 0;
        for edk in encrypted_data_keys {
            if edk.provider_id() != self.namespace || edk.provider_info() != self.name.as_bytes() {
                continue;
            }
            attempts += 1;
            match private_key.decrypt(self.padding, edk.ciphertext()) {
                Ok(data_key) if data_key.len() == key_len => {
                    return materials.with_data_key(data_key);
                }
                _ => continue,
            }
        }
        Err(Error::nothing_unwrapped(self.describe(), attempts))
    }
}
