//! Encryption and decryption materials, and the requests that ask a CMM for them.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use envelope_crypto::SecretBytes;
use envelope_crypto::ecdsa::{Curve, SigningKey, VerifyingKey};
use envelope_format::{
    AlgorithmSuite, CommitmentPolicy, EncryptedDataKey, EncryptionContext, SignatureAlgorithm,
};

use crate::Error;

/// The curve a signature algorithm uses.
pub fn signature_curve(signature: SignatureAlgorithm) -> Curve {
    match signature {
        SignatureAlgorithm::EcdsaP256Sha256 => Curve::P256,
        SignatureAlgorithm::EcdsaP384Sha384 => Curve::P384,
    }
}

fn check_data_key(suite: AlgorithmSuite, key: &SecretBytes) -> Result<(), Error> {
    if key.len() == suite.key_len() {
        Ok(())
    } else {
        Err(Error::InvalidDataKeyLength {
            expected: suite.key_len(),
            found: key.len(),
        })
    }
}

fn check_required_keys(ec: &EncryptionContext, required: &BTreeSet<String>) -> Result<(), Error> {
    match required.iter().find(|k| !ec.contains_key(k)) {
        Some(missing) => Err(Error::MissingRequiredEncryptionContextKey(missing.clone())),
        None => Ok(()),
    }
}

mod sealed {
    pub trait Sealed {}
}

/// Whether materials are still being filled in by keyrings ([`Pending`]) or proved complete
/// ([`Complete`]). Sealed: these two are the only states.
pub trait MaterialsState: sealed::Sealed + fmt::Debug + Clone + Send + Sync + 'static {
    /// How encryption materials hold the plaintext data key in this state.
    type DataKey: Clone + fmt::Debug + Send + Sync;
    /// How decryption materials hold it: not at all while pending, since a keyring's
    /// [`with_data_key`](DecryptionMaterials::with_data_key) completes them.
    type UnwrappedKey: Clone + fmt::Debug + Send + Sync;
}

/// Materials that keyrings are filling in: on encrypt the data key may not be set yet; on decrypt
/// it is not, since the keyring that unwraps one completes the materials.
#[derive(Clone, Copy, Debug)]
pub enum Pending {}

/// Materials proved complete: a data key of the suite's length, at least one encrypted data key
/// (on encrypt), and a signing or verification key exactly when the suite signs.
#[derive(Clone, Copy, Debug)]
pub enum Complete {}

impl sealed::Sealed for Pending {}
impl sealed::Sealed for Complete {}

impl MaterialsState for Pending {
    type DataKey = Option<SecretBytes>;
    type UnwrappedKey = ();
}

impl MaterialsState for Complete {
    type DataKey = SecretBytes;
    type UnwrappedKey = SecretBytes;
}

/// Complete encryption materials, as every [`MaterialsManager`](crate::MaterialsManager) returns.
pub type CompleteEncryptionMaterials = EncryptionMaterials<Complete>;

/// Complete decryption materials, as every [`MaterialsManager`](crate::MaterialsManager) returns.
pub type CompleteDecryptionMaterials = DecryptionMaterials<Complete>;

/// Everything needed to encrypt one message: the suite, the data key in plaintext and wrapped under
/// each master key, the encryption context and, for signed suites, the signing key.
///
/// A CMM creates them ([`EncryptionMaterials::new`], state [`Pending`]), keyrings set the data key
/// and append encrypted data keys, and [`EncryptionMaterials::complete`] proves them complete once:
/// only [`CompleteEncryptionMaterials`] leave a CMM, and only they can encrypt.
#[derive(Clone, Debug)]
pub struct EncryptionMaterials<S: MaterialsState = Pending> {
    suite: AlgorithmSuite,
    encryption_context: EncryptionContext,
    required_encryption_context_keys: BTreeSet<String>,
    data_key: S::DataKey,
    encrypted_data_keys: Vec<EncryptedDataKey>,
    signing_key: Option<Arc<SigningKey>>,
}

impl EncryptionMaterials {
    /// Materials with no data key yet.
    ///
    /// Every required key must be in the encryption context, and a signing key must be given exactly
    /// when the suite signs, on the suite's curve.
    pub fn new(
        suite: AlgorithmSuite,
        encryption_context: EncryptionContext,
        required_encryption_context_keys: BTreeSet<String>,
        signing_key: Option<Arc<SigningKey>>,
    ) -> Result<Self, Error> {
        check_required_keys(&encryption_context, &required_encryption_context_keys)?;
        match (suite.signature(), &signing_key) {
            (None, None) => {}
            (Some(sig), Some(key)) if key.curve() == signature_curve(sig) => {}
            (None, Some(_)) => {
                return Err(Error::IncompleteMaterials(
                    "a signing key was given for an unsigned suite",
                ));
            }
            (Some(_), _) => {
                return Err(Error::IncompleteMaterials(
                    "a signed suite needs a signing key on its curve",
                ));
            }
        }
        Ok(Self {
            suite,
            encryption_context,
            required_encryption_context_keys,
            data_key: None,
            encrypted_data_keys: Vec::new(),
            signing_key,
        })
    }

    /// The plaintext data key, once a keyring has set it.
    pub fn data_key(&self) -> Option<&SecretBytes> {
        self.data_key.as_ref()
    }

    /// What a keyring that wraps data keys does on encrypt: generate the data key from the system
    /// CSPRNG if none is set yet (the one place a data key is made locally), give it to `wrap`
    /// with the encryption context, and add the encrypted data key `wrap` returns.
    ///
    /// On an error, from generation or from `wrap`, the materials are dropped: a keyring's
    /// encrypt fails as a whole.
    pub fn wrap_data_key(
        mut self,
        wrap: impl FnOnce(&EncryptionContext, &SecretBytes) -> Result<EncryptedDataKey, Error>,
    ) -> Result<Self, Error> {
        let data_key = match self.data_key.take() {
            Some(key) => key,
            None => SecretBytes::random(self.suite.key_len())?,
        };
        let data_key = self.data_key.insert(data_key);
        let edk = wrap(&self.encryption_context, data_key)?;
        self.encrypted_data_keys.push(edk);
        Ok(self)
    }

    /// Set the plaintext data key; fails if one is set or the length is wrong for the suite.
    pub fn with_data_key(mut self, data_key: SecretBytes) -> Result<Self, Error> {
        if self.data_key.is_some() {
            return Err(Error::DataKeyAlreadySet);
        }
        check_data_key(self.suite, &data_key)?;
        self.data_key = Some(data_key);
        Ok(self)
    }

    /// Append a wrapped copy of the data key.
    pub fn with_encrypted_data_key(mut self, edk: EncryptedDataKey) -> Self {
        self.encrypted_data_keys.push(edk);
        self
    }

    /// Append a wrapped copy of the data key.
    pub fn add_encrypted_data_key(&mut self, edk: EncryptedDataKey) {
        self.encrypted_data_keys.push(edk);
    }

    /// Prove the materials can encrypt: a data key and at least one encrypted data key.
    pub fn complete(self) -> Result<CompleteEncryptionMaterials, Error> {
        let Some(data_key) = self.data_key else {
            return Err(Error::IncompleteMaterials("no plaintext data key"));
        };
        if self.encrypted_data_keys.is_empty() {
            return Err(Error::IncompleteMaterials("no encrypted data key"));
        }
        Ok(EncryptionMaterials {
            suite: self.suite,
            encryption_context: self.encryption_context,
            required_encryption_context_keys: self.required_encryption_context_keys,
            data_key,
            encrypted_data_keys: self.encrypted_data_keys,
            signing_key: self.signing_key,
        })
    }
}

impl CompleteEncryptionMaterials {
    /// The plaintext data key.
    pub fn data_key(&self) -> &SecretBytes {
        &self.data_key
    }
}

impl<S: MaterialsState> EncryptionMaterials<S> {
    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The full encryption context (including `aws-crypto-public-key` and required keys).
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Keys that are authenticated but not stored in the message header.
    pub fn required_encryption_context_keys(&self) -> &BTreeSet<String> {
        &self.required_encryption_context_keys
    }

    /// The wrapped copies of the data key (at least one once complete).
    pub fn encrypted_data_keys(&self) -> &[EncryptedDataKey] {
        &self.encrypted_data_keys
    }

    /// The signing key: present exactly when the suite signs.
    pub fn signing_key(&self) -> Option<&Arc<SigningKey>> {
        self.signing_key.as_ref()
    }
}

/// Everything needed to decrypt one message: the suite, the plaintext data key, the encryption
/// context and, for signed suites, the verification key.
///
/// Created [`Pending`] by a CMM, with no data key, and completed by the keyring that unwraps one
/// ([`DecryptionMaterials::with_data_key`]): only [`CompleteDecryptionMaterials`] leave a keyring's
/// `on_decrypt` or a CMM. Pending materials cannot hold a data key, so a keyring can never be handed
/// one that another keyring already found.
///
/// ```compile_fail
/// # use envelope_keyring::{DecryptionMaterials, SecretBytes};
/// # fn f(materials: DecryptionMaterials, first: SecretBytes, second: SecretBytes) {
/// // Complete materials have no `with_data_key`: the key cannot be replaced.
/// let _ = materials.with_data_key(first).map(|done| done.with_data_key(second));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DecryptionMaterials<S: MaterialsState = Pending> {
    suite: AlgorithmSuite,
    encryption_context: EncryptionContext,
    required_encryption_context_keys: BTreeSet<String>,
    data_key: S::UnwrappedKey,
    verification_key: Option<VerifyingKey>,
}

impl DecryptionMaterials {
    /// Materials with no data key yet. A verification key must be given exactly when the suite
    /// signs; every required key must be in the encryption context.
    pub fn new(
        suite: AlgorithmSuite,
        encryption_context: EncryptionContext,
        required_encryption_context_keys: BTreeSet<String>,
        verification_key: Option<VerifyingKey>,
    ) -> Result<Self, Error> {
        check_required_keys(&encryption_context, &required_encryption_context_keys)?;
        match (suite.signature(), &verification_key) {
            (None, None) => {}
            (Some(sig), Some(key)) if key.curve() == signature_curve(sig) => {}
            (None, Some(_)) => return Err(Error::UnexpectedVerificationKey),
            (Some(_), _) => return Err(Error::MissingVerificationKey),
        }
        Ok(Self {
            suite,
            encryption_context,
            required_encryption_context_keys,
            data_key: (),
            verification_key,
        })
    }

    /// Complete the materials with the data key a keyring unwrapped; fails if its length is wrong
    /// for the suite.
    pub fn with_data_key(
        self,
        data_key: SecretBytes,
    ) -> Result<CompleteDecryptionMaterials, Error> {
        check_data_key(self.suite, &data_key)?;
        Ok(DecryptionMaterials {
            suite: self.suite,
            encryption_context: self.encryption_context,
            required_encryption_context_keys: self.required_encryption_context_keys,
            data_key,
            verification_key: self.verification_key,
        })
    }
}

impl CompleteDecryptionMaterials {
    /// The plaintext data key.
    pub fn data_key(&self) -> &SecretBytes {
        &self.data_key
    }
}

impl<S: MaterialsState> DecryptionMaterials<S> {
    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The encryption context: the stored one merged with any reproduced pairs.
    pub fn encryption_context(&self) -> &EncryptionContext {
        &self.encryption_context
    }

    /// Keys that were authenticated but not stored in the header.
    pub fn required_encryption_context_keys(&self) -> &BTreeSet<String> {
        &self.required_encryption_context_keys
    }

    /// The verification key: present exactly when the suite signs.
    pub fn verification_key(&self) -> Option<&VerifyingKey> {
        self.verification_key.as_ref()
    }
}

/// A request for encryption materials.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EncryptionRequest {
    /// The caller's encryption context.
    pub encryption_context: EncryptionContext,
    /// The client's commitment policy.
    pub commitment_policy: CommitmentPolicy,
    /// The suite the caller asked for, if any.
    pub suite: Option<AlgorithmSuite>,
    /// Keys to authenticate without storing them in the header.
    pub required_encryption_context_keys: BTreeSet<String>,
    /// The plaintext length, or an upper bound on it, when known.
    pub max_plaintext_length: Option<u64>,
}

impl EncryptionRequest {
    /// A request with no suite, no required keys and an unknown length.
    pub fn new(encryption_context: EncryptionContext, commitment_policy: CommitmentPolicy) -> Self {
        Self {
            encryption_context,
            commitment_policy,
            suite: None,
            required_encryption_context_keys: BTreeSet::new(),
            max_plaintext_length: None,
        }
    }

    /// Ask for a suite.
    pub fn with_suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = Some(suite);
        self
    }

    /// Give the plaintext length or an upper bound.
    pub fn with_max_plaintext_length(mut self, len: u64) -> Self {
        self.max_plaintext_length = Some(len);
        self
    }

    /// Require encryption context keys.
    pub fn with_required_encryption_context_keys(
        mut self,
        keys: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.required_encryption_context_keys
            .extend(keys.into_iter().map(Into::into));
        self
    }
}

/// A request for decryption materials.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DecryptRequest {
    /// The message's suite.
    pub suite: AlgorithmSuite,
    /// The client's commitment policy.
    pub commitment_policy: CommitmentPolicy,
    /// The message's encrypted data keys.
    pub encrypted_data_keys: Vec<EncryptedDataKey>,
    /// The encryption context stored in the header.
    pub encryption_context: EncryptionContext,
    /// The encryption context the caller expects, if given.
    pub reproduced_encryption_context: Option<EncryptionContext>,
}

impl DecryptRequest {
    /// A request without a reproduced encryption context.
    pub fn new(
        suite: AlgorithmSuite,
        commitment_policy: CommitmentPolicy,
        encrypted_data_keys: Vec<EncryptedDataKey>,
        encryption_context: EncryptionContext,
    ) -> Self {
        Self {
            suite,
            commitment_policy,
            encrypted_data_keys,
            encryption_context,
            reproduced_encryption_context: None,
        }
    }

    /// Give the encryption context the caller expects.
    pub fn with_reproduced_encryption_context(mut self, ec: EncryptionContext) -> Self {
        self.reproduced_encryption_context = Some(ec);
        self
    }
}
