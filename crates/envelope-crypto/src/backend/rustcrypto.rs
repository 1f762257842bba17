//! The pure-Rust RustCrypto backend.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::aes::Aes192;
use aes_gcm::{AeadInOut, Aes128Gcm, Aes256Gcm, AesGcm, KeyInit};
use hkdf::Hkdf;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use rand::TryRng;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use sha2::Digest as _;
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::digest::{Digest as PubDigest, HashAlgorithm};
use crate::ecdsa::Curve;
use crate::rsa::RsaPadding;
use crate::secret::SecretBytes;

pub(crate) const NAME: &str = "RustCrypto";

/// RustCrypto is not a FIPS module.
pub(crate) fn fips_status() -> crate::FipsStatus {
    crate::FipsStatus::NotFipsBuild
}

type Aes192Gcm = AesGcm<Aes192, U12>;

pub(crate) enum AeadKey {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

macro_rules! with_cipher {
    ($key:expr, $c:ident => $body:expr) => {
        match $key {
            AeadKey::Aes128($c) => $body,
            AeadKey::Aes192($c) => $body,
            AeadKey::Aes256($c) => $body,
        }
    };
}

impl AeadKey {
    pub(crate) fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let bad = |_| CryptoError::InvalidKey("AES-GCM key setup failed");
        Ok(match key.len() {
            16 => Self::Aes128(Box::new(Aes128Gcm::new_from_slice(key).map_err(bad)?)),
            24 => Self::Aes192(Box::new(Aes192Gcm::new_from_slice(key).map_err(bad)?)),
            _ => Self::Aes256(Box::new(Aes256Gcm::new_from_slice(key).map_err(bad)?)),
        })
    }

    pub(crate) fn seal_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let nonce = (*iv).into();
        let tag =
            with_cipher!(self, c => c.encrypt_inout_detached(&nonce, aad, InOutBuf::from(in_out)))
                .map_err(|_| CryptoError::InputTooLong("AES-GCM"))?;
        Ok(tag.into())
    }

    pub(crate) fn seal_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let nonce = (*iv).into();
        let (ciphertext, tag_out) = out.split_at_mut(plaintext.len());
        let buf =
            InOutBuf::new(plaintext, ciphertext).map_err(|_| CryptoError::Backend("length"))?;
        let tag = with_cipher!(self, c => c.encrypt_inout_detached(&nonce, aad, buf))
            .map_err(|_| CryptoError::InputTooLong("AES-GCM"))?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    pub(crate) fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoError> {
        let nonce = (*iv).into();
        let tag = (*tag).into();
        with_cipher!(self, c => c.decrypt_inout_detached(&nonce, aad, InOutBuf::from(in_out), &tag))
            .map_err(|_| CryptoError::AuthenticationFailed)
    }

    pub(crate) fn open_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8; 16],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        let nonce = (*iv).into();
        let tag = (*tag).into();
        let buf = InOutBuf::new(ciphertext, out).map_err(|_| CryptoError::Backend("length"))?;
        // aes-gcm checks the tag before it writes any plaintext.
        with_cipher!(self, c => c.decrypt_inout_detached(&nonce, aad, buf, &tag))
            .map_err(|_| CryptoError::AuthenticationFailed)
    }
}

#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn new(alg: HashAlgorithm) -> Self {
        match alg {
            HashAlgorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha384 => Self::Sha384(sha2::Sha384::new()),
            HashAlgorithm::Sha512 => Self::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn algorithm(&self) -> HashAlgorithm {
        match self {
            Self::Sha256(_) => HashAlgorithm::Sha256,
            Self::Sha384(_) => HashAlgorithm::Sha384,
            Self::Sha512(_) => HashAlgorithm::Sha512,
        }
    }

    pub(crate) fn finish(self) -> Digest {
        let alg = self.algorithm();
        let mut bytes = [0u8; 64];
        match self {
            Self::Sha256(h) => bytes[..32].copy_from_slice(&h.finalize()),
            Self::Sha384(h) => bytes[..48].copy_from_slice(&h.finalize()),
            Self::Sha512(h) => bytes.copy_from_slice(&h.finalize()),
        }
        Digest { bytes, alg }
    }
}

#[derive(Clone)]
pub(crate) struct Digest {
    bytes: [u8; 64],
    alg: HashAlgorithm,
}

impl Digest {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.alg.output_len()]
    }

    pub(crate) fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }
}

pub(crate) enum Prk {
    Sha256(Hkdf<sha2::Sha256>),
    Sha384(Hkdf<sha2::Sha384>),
    Sha512(Hkdf<sha2::Sha512>),
}

impl Prk {
    pub(crate) fn extract(hash: HashAlgorithm, salt: &[u8], ikm: &[u8]) -> Self {
        match hash {
            HashAlgorithm::Sha256 => Self::Sha256(Hkdf::new(Some(salt), ikm)),
            HashAlgorithm::Sha384 => Self::Sha384(Hkdf::new(Some(salt), ikm)),
            HashAlgorithm::Sha512 => Self::Sha512(Hkdf::new(Some(salt), ikm)),
        }
    }

    pub(crate) fn expand(&self, info: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            Self::Sha256(h) => h.expand_multi_info(info, out),
            Self::Sha384(h) => h.expand_multi_info(info, out),
            Self::Sha512(h) => h.expand_multi_info(info, out),
        }
        .map_err(|_| CryptoError::InputTooLong("HKDF-Expand output"))
    }
}

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .map_err(|_| CryptoError::Rng)
}

pub(crate) enum SigningKey {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl SigningKey {
    pub(crate) fn generate(curve: Curve) -> Result<Self, CryptoError> {
        // Rejection sampling: a uniformly random string is a valid scalar with overwhelming probability.
        let mut scalar = Zeroizing::new([0u8; 48]);
        let scalar = &mut scalar[..curve.scalar_len()];
        for _ in 0..64 {
            fill_random(scalar)?;
            if let Ok(key) = Self::from_private_scalar(curve, scalar) {
                return Ok(key);
            }
        }
        Err(CryptoError::Rng)
    }

    pub(crate) fn from_private_scalar(curve: Curve, scalar: &[u8]) -> Result<Self, CryptoError> {
        let bad = |_| CryptoError::InvalidKey("not a valid private scalar for the curve");
        Ok(match curve {
            Curve::P256 => Self::P256(p256::ecdsa::SigningKey::from_slice(scalar).map_err(bad)?),
            Curve::P384 => Self::P384(p384::ecdsa::SigningKey::from_slice(scalar).map_err(bad)?),
        })
    }

    pub(crate) fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(match self {
            Self::P256(k) => k.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
            Self::P384(k) => k.verifying_key().to_sec1_point(true).as_bytes().to_vec(),
        })
    }

    pub(crate) fn sign_digest(&self, digest: &PubDigest) -> Result<Vec<u8>, CryptoError> {
        let failed = |_| CryptoError::Backend("ECDSA signing failed");
        Ok(match self {
            Self::P256(k) => {
                let sig: p256::ecdsa::DerSignature =
                    k.sign_prehash(digest.as_bytes()).map_err(failed)?;
                sig.as_bytes().to_vec()
            }
            Self::P384(k) => {
                let sig: p384::ecdsa::DerSignature =
                    k.sign_prehash(digest.as_bytes()).map_err(failed)?;
                sig.as_bytes().to_vec()
            }
        })
    }
}

#[derive(Clone)]
pub(crate) enum VerifyingKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl VerifyingKey {
    pub(crate) fn from_sec1(curve: Curve, bytes: &[u8]) -> Result<Self, CryptoError> {
        let bad = |_| CryptoError::InvalidKey("not a point on the curve");
        Ok(match curve {
            Curve::P256 => {
                Self::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(bad)?)
            }
            Curve::P384 => {
                Self::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(bad)?)
            }
        })
    }

    pub(crate) fn verify_digest(
        &self,
        digest: &PubDigest,
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let invalid = |_| CryptoError::SignatureInvalid;
        match self {
            Self::P256(k) => {
                let sig = p256::ecdsa::DerSignature::from_bytes(signature).map_err(invalid)?;
                k.verify_prehash(digest.as_bytes(), &sig).map_err(invalid)
            }
            Self::P384(k) => {
                let sig = p384::ecdsa::DerSignature::from_bytes(signature).map_err(invalid)?;
                k.verify_prehash(digest.as_bytes(), &sig).map_err(invalid)
            }
        }
    }
}

/// The modulus sizes aws-lc-rs accepts, so that both backends take the same keys.
fn rsa_size_check(modulus_bits: usize) -> Result<(), CryptoError> {
    match modulus_bits {
        bits if bits < crate::rsa::MIN_RSA_BITS => {
            Err(CryptoError::InvalidKey(crate::rsa::TOO_SMALL))
        }
        bits if bits > crate::rsa::MAX_RSA_BITS => {
            Err(CryptoError::InvalidKey(crate::rsa::TOO_LARGE))
        }
        _ => Ok(()),
    }
}

/// The OAEP scheme of `padding` (MGF1 with the same hash), or `None` for PKCS #1 v1.5.
fn oaep(padding: RsaPadding) -> Option<rsa::Oaep> {
    use sha1_010::Sha1;
    use sha2_010::{Sha256, Sha384, Sha512};
    match padding {
        RsaPadding::Pkcs1v15 => None,
        RsaPadding::OaepSha1 => Some(rsa::Oaep::new::<Sha1>()),
        RsaPadding::OaepSha256 => Some(rsa::Oaep::new::<Sha256>()),
        RsaPadding::OaepSha384 => Some(rsa::Oaep::new::<Sha384>()),
        RsaPadding::OaepSha512 => Some(rsa::Oaep::new::<Sha512>()),
    }
}

#[derive(Clone)]
pub(crate) struct RsaPublicKey(rsa::RsaPublicKey);

impl RsaPublicKey {
    pub(crate) fn from_der(spki: &[u8]) -> Result<Self, CryptoError> {
        let key = rsa::RsaPublicKey::from_public_key_der(spki)
            .map_err(|_| CryptoError::InvalidKey("not an RSA SubjectPublicKeyInfo"))?;
        rsa_size_check(key.n().bits()).map(|()| Self(key))
    }

    pub(crate) fn size_bytes(&self) -> usize {
        self.0.size()
    }

    pub(crate) fn encrypt(
        &self,
        padding: RsaPadding,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        use rand_core_06::OsRng;
        let key = &self.0;
        match oaep(padding) {
            None => key.encrypt(&mut OsRng, rsa::Pkcs1v15Encrypt, plaintext),
            Some(oaep) => key.encrypt(&mut OsRng, oaep, plaintext),
        }
        .map_err(|_| CryptoError::InputTooLong("RSA encryption with this key and padding"))
    }
}

pub(crate) struct RsaPrivateKey(rsa::RsaPrivateKey);

impl RsaPrivateKey {
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        let key = rsa::RsaPrivateKey::from_pkcs8_der(der)
            .map_err(|_| CryptoError::InvalidKey("not an unencrypted RSA PKCS#8 private key"))?;
        rsa_size_check(key.n().bits()).map(|()| Self(key))
    }

    pub(crate) fn size_bytes(&self) -> usize {
        self.0.size()
    }

    pub(crate) fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey(self.0.to_public_key())
    }

    pub(crate) fn decrypt(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        use rand_core_06::OsRng;
        let key = &self.0;
        // Blinded decryption: see the module docs on RUSTSEC-2023-0071.
        let plaintext = match oaep(padding) {
            None => key.decrypt_blinded(&mut OsRng, rsa::Pkcs1v15Encrypt, ciphertext),
            Some(oaep) => key.decrypt_blinded(&mut OsRng, oaep, ciphertext),
        }
        .map_err(|_| CryptoError::RsaDecryptFailed)?;
        Ok(SecretBytes::new(plaintext))
    }
}
