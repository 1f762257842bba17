//! The aws-lc-rs backend.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::encoding::{AsBigEndian, EcPublicKeyCompressedBin};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, ParsedPublicKey, UnparsedPublicKey};
use aws_lc_rs::{digest, rsa};
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::digest::{Digest as PubDigest, HashAlgorithm};
use crate::ecdsa::Curve;
use crate::rsa::RsaPadding;
use crate::secret::SecretBytes;

#[cfg(not(feature = "fips"))]
pub(crate) const NAME: &str = "aws-lc-rs";
#[cfg(feature = "fips")]
pub(crate) const NAME: &str = "aws-lc-rs (FIPS module)";

/// Whether the FIPS module is in approved mode: only a `fips` build has one.
pub(crate) fn fips_status() -> crate::FipsStatus {
    if cfg!(feature = "fips") {
        match aws_lc_rs::try_fips_mode() {
            Ok(()) => crate::FipsStatus::Approved,
            Err(_) => crate::FipsStatus::NotApproved,
        }
    } else {
        crate::FipsStatus::NotFipsBuild
    }
}

pub(crate) struct AeadKey(LessSafeKey);

impl AeadKey {
    pub(crate) fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let alg = match key.len() {
            16 => &aead::AES_128_GCM,
            24 => &aead::AES_192_GCM,
            _ => &aead::AES_256_GCM,
        };
        let unbound = UnboundKey::new(alg, key)
            .map_err(|_| CryptoError::InvalidKey("AES-GCM key setup failed"))?;
        Ok(Self(LessSafeKey::new(unbound)))
    }

    pub(crate) fn seal_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; 16], CryptoError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*iv), Aad::from(aad), in_out)
            .map_err(|_| CryptoError::InputTooLong("AES-GCM"))?;
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    pub(crate) fn seal_to(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        // Out of place in one pass: ciphertext then tag, straight into `out`.
        let (ciphertext, tag) = out.split_at_mut(plaintext.len());
        self.0
            .seal_out_of_place_scatter(
                Nonce::assume_unique_for_key(*iv),
                Aad::from(aad),
                plaintext,
                ciphertext,
                &[],
                tag,
            )
            .map_err(|_| CryptoError::InputTooLong("AES-GCM"))
    }

    pub(crate) fn open_in_place(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), CryptoError> {
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*iv),
                Aad::from(aad),
                tag,
                in_out,
            )
            .map(|_| ())
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
        self.0
            .open_separate_gather(
                Nonce::assume_unique_for_key(*iv),
                Aad::from(aad),
                ciphertext,
                tag,
                out,
            )
            .map_err(|_| CryptoError::AuthenticationFailed)
    }
}

fn digest_alg(alg: HashAlgorithm) -> &'static digest::Algorithm {
    match alg {
        HashAlgorithm::Sha256 => &digest::SHA256,
        HashAlgorithm::Sha384 => &digest::SHA384,
        HashAlgorithm::Sha512 => &digest::SHA512,
    }
}

#[derive(Clone)]
pub(crate) struct Hasher {
    ctx: digest::Context,
    alg: HashAlgorithm,
}

impl Hasher {
    pub(crate) fn new(alg: HashAlgorithm) -> Self {
        Self {
            ctx: digest::Context::new(digest_alg(alg)),
            alg,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    pub(crate) fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }

    pub(crate) fn finish(self) -> Digest {
        Digest {
            digest: self.ctx.finish(),
            alg: self.alg,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Digest {
    digest: digest::Digest,
    alg: HashAlgorithm,
}

impl Digest {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.digest.as_ref()
    }

    pub(crate) fn algorithm(&self) -> HashAlgorithm {
        self.alg
    }
}

/// HMAC over AWS-LC's streaming SHA-2, with the key's padded blocks absorbed once.
///
/// aws-lc-rs's `hkdf` and `hmac` APIs set up an HMAC context on every call and re-key for every
/// expansion; HKDF with a precomputed PRK state does the minimum number of compression-function
/// calls (on AMD CPUs AWS-LC runs SHA-512 in portable C, so each one counts).
#[cfg(not(feature = "fips"))]
#[derive(Clone)]
struct Hmac {
    inner: digest::Context,
    outer: digest::Context,
}

#[cfg(not(feature = "fips"))]
impl Hmac {
    fn new(hash: HashAlgorithm, key: &[u8]) -> Self {
        let alg = digest_alg(hash);
        let block = alg.block_len();
        let mut padded = Zeroizing::new([0u8; 128]);
        if key.len() > block {
            let d = digest::digest(alg, key);
            padded[..d.as_ref().len()].copy_from_slice(d.as_ref());
        } else {
            padded[..key.len()].copy_from_slice(key);
        }
        let mut pad = Zeroizing::new([0u8; 128]);
        let mut inner = digest::Context::new(alg);
        for (p, k) in pad.iter_mut().zip(padded.iter()).take(block) {
            *p = k ^ 0x36;
        }
        inner.update(&pad[..block]);
        let mut outer = digest::Context::new(alg);
        for (p, k) in pad.iter_mut().zip(padded.iter()).take(block) {
            *p = k ^ 0x5c;
        }
        outer.update(&pad[..block]);
        Self { inner, outer }
    }

    fn sign<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> digest::Digest {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part);
        }
        let inner = inner.finish();
        let mut outer = self.outer.clone();
        outer.update(inner.as_ref());
        outer.finish()
    }
}

#[cfg(not(feature = "fips"))]
pub(crate) struct Prk {
    hmac: Hmac,
    hash_len: usize,
}

#[cfg(not(feature = "fips"))]
impl Prk {
    pub(crate) fn extract(hash: HashAlgorithm, salt: &[u8], ikm: &[u8]) -> Self {
        let prk = Hmac::new(hash, salt).sign([ikm]);
        let prk = Zeroizing::new(prk.as_ref().to_vec());
        Self {
            hmac: Hmac::new(hash, &prk),
            hash_len: hash.output_len(),
        }
    }

    pub(crate) fn expand(&self, info: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        if out.len() > 255 * self.hash_len {
            return Err(CryptoError::InputTooLong("HKDF-Expand output"));
        }
        let mut previous: Option<digest::Digest> = None;
        let mut counter = 1u8;
        for chunk in out.chunks_mut(self.hash_len) {
            let c = [counter];
            let previous_block: &[u8] = previous.as_ref().map_or(&[], |t| t.as_ref());
            let parts = std::iter::once(previous_block)
                .chain(info.iter().copied())
                .chain([&c[..]]);
            let t = self.hmac.sign(parts);
            chunk.copy_from_slice(&t.as_ref()[..chunk.len()]);
            previous = Some(t);
            counter = counter.wrapping_add(1);
        }
        Ok(())
    }
}

/// HKDF by the FIPS module's own service (SP 800-56C): in a `fips` build keys are derived inside
/// the validated boundary, at the cost of the module keying an HMAC context per call.
#[cfg(feature = "fips")]
pub(crate) struct Prk {
    prk: aws_lc_rs::hkdf::Prk,
    hash_len: usize,
}

#[cfg(feature = "fips")]
fn hkdf_alg(hash: HashAlgorithm) -> aws_lc_rs::hkdf::Algorithm {
    match hash {
        HashAlgorithm::Sha256 => aws_lc_rs::hkdf::HKDF_SHA256,
        HashAlgorithm::Sha384 => aws_lc_rs::hkdf::HKDF_SHA384,
        HashAlgorithm::Sha512 => aws_lc_rs::hkdf::HKDF_SHA512,
    }
}

#[cfg(feature = "fips")]
struct OutputLen(usize);

#[cfg(feature = "fips")]
impl aws_lc_rs::hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

#[cfg(feature = "fips")]
impl Prk {
    pub(crate) fn extract(hash: HashAlgorithm, salt: &[u8], ikm: &[u8]) -> Self {
        Self {
            prk: aws_lc_rs::hkdf::Salt::new(hkdf_alg(hash), salt).extract(ikm),
            hash_len: hash.output_len(),
        }
    }

    pub(crate) fn expand(&self, info: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        if out.len() > 255 * self.hash_len {
            return Err(CryptoError::InputTooLong("HKDF-Expand output"));
        }
        let okm = self
            .prk
            .expand(info, OutputLen(out.len()))
            .map_err(|_| CryptoError::Backend("the FIPS module's HKDF-Expand failed"))?;
        okm.fill(out)
            .map_err(|_| CryptoError::Backend("the FIPS module's HKDF-Expand failed"))
    }
}

/// HMAC and the SP 800-108 counter-mode KDF by the FIPS module's services.
#[cfg(feature = "fips")]
#[derive(Clone)]
pub(crate) struct ModuleHmacKey {
    key: aws_lc_rs::hmac::Key,
    secret: Zeroizing<Vec<u8>>,
    hash: HashAlgorithm,
}

#[cfg(feature = "fips")]
impl ModuleHmacKey {
    pub(crate) fn new(hash: HashAlgorithm, key: &[u8]) -> Self {
        let alg = match hash {
            HashAlgorithm::Sha256 => aws_lc_rs::hmac::HMAC_SHA256,
            HashAlgorithm::Sha384 => aws_lc_rs::hmac::HMAC_SHA384,
            HashAlgorithm::Sha512 => aws_lc_rs::hmac::HMAC_SHA512,
        };
        Self {
            key: aws_lc_rs::hmac::Key::new(alg, key),
            secret: Zeroizing::new(key.to_vec()),
            hash,
        }
    }

    pub(crate) fn algorithm(&self) -> HashAlgorithm {
        self.hash
    }

    pub(crate) fn sign(&self, parts: &[&[u8]]) -> crate::kdf::Mac {
        let mut context = aws_lc_rs::hmac::Context::with_key(&self.key);
        for part in parts {
            context.update(part);
        }
        crate::kdf::Mac::from_slice(context.sign().as_ref())
    }

    /// SP 800-108 counter mode: block `i` is the MAC of `[i]_32 || fixed_info`.
    pub(crate) fn counter_mode(
        &self,
        fixed_info: &[&[u8]],
        out: &mut [u8],
    ) -> Result<(), CryptoError> {
        use aws_lc_rs::kdf::{KbkdfCtrHmacAlgorithmId as Id, get_kbkdf_ctr_hmac_algorithm};
        let id = match self.hash {
            HashAlgorithm::Sha256 => Id::Sha256,
            HashAlgorithm::Sha384 => Id::Sha384,
            HashAlgorithm::Sha512 => Id::Sha512,
        };
        let algorithm = get_kbkdf_ctr_hmac_algorithm(id)
            .ok_or(CryptoError::InvalidKey("no SP 800-108 KDF for this hash"))?;
        if self.secret.is_empty() {
            return Err(CryptoError::InvalidKey(
                "the FIPS module's SP 800-108 KDF needs a non-empty key",
            ));
        }
        let info = Zeroizing::new(fixed_info.concat());
        aws_lc_rs::kdf::kbkdf_ctr_hmac(algorithm, &self.secret, &info, out)
            .map_err(|_| CryptoError::Backend("the FIPS module's SP 800-108 KDF failed"))
    }
}

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    aws_lc_rs::rand::fill(buf).map_err(|_| CryptoError::Rng)
}

fn signing_alg(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
    }
}

fn verification_alg(curve: Curve) -> &'static signature::EcdsaVerificationAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1,
        Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1,
    }
}

pub(crate) struct SigningKey(EcdsaKeyPair);

impl SigningKey {
    pub(crate) fn generate(curve: Curve) -> Result<Self, CryptoError> {
        EcdsaKeyPair::generate(signing_alg(curve))
            .map(Self)
            .map_err(|_| CryptoError::Backend("ECDSA key generation failed"))
    }

    pub(crate) fn from_private_scalar(curve: Curve, scalar: &[u8]) -> Result<Self, CryptoError> {
        // RFC 5915 ECPrivateKey ::= SEQUENCE { version INTEGER 1, privateKey OCTET STRING }; the
        // curve is given separately and the public key is computed.
        // The caller pads the scalar to the curve size: 32 or 48 bytes, so short-form DER lengths.
        let len = u8::try_from(scalar.len())
            .ok()
            .filter(|&l| l <= 48)
            .ok_or(CryptoError::InvalidKey("scalar too long"))?;
        let mut der = Zeroizing::new(Vec::with_capacity(scalar.len() + 7));
        der.extend_from_slice(&[0x30, len + 5, 0x02, 0x01, 0x01, 0x04, len]);
        der.extend_from_slice(scalar);
        EcdsaKeyPair::from_private_key_der(signing_alg(curve), &der)
            .map(Self)
            .map_err(|_| CryptoError::InvalidKey("not a valid private scalar for the curve"))
    }

    pub(crate) fn public_key_compressed(&self) -> Result<Vec<u8>, CryptoError> {
        let bin: EcPublicKeyCompressedBin<'_> = self
            .0
            .public_key()
            .as_be_bytes()
            .map_err(|_| CryptoError::Backend("public key encoding failed"))?;
        Ok(bin.as_ref().to_vec())
    }

    pub(crate) fn sign_digest(&self, digest: &PubDigest) -> Result<Vec<u8>, CryptoError> {
        self.0
            .sign_digest(&digest.inner.digest)
            .map(|sig| sig.as_ref().to_vec())
            .map_err(|_| CryptoError::Backend("ECDSA signing failed"))
    }
}

#[derive(Clone)]
pub(crate) struct VerifyingKey(std::sync::Arc<ParsedPublicKey>);

impl VerifyingKey {
    pub(crate) fn from_sec1(curve: Curve, bytes: &[u8]) -> Result<Self, CryptoError> {
        UnparsedPublicKey::new(verification_alg(curve), bytes)
            .parse()
            .map(|key| Self(std::sync::Arc::new(key)))
            .map_err(|_| CryptoError::InvalidKey("not a point on the curve"))
    }

    pub(crate) fn verify_digest(
        &self,
        digest: &PubDigest,
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        self.0
            .verify_digest_sig(&digest.inner.digest, signature)
            .map_err(|_| CryptoError::SignatureInvalid)
    }
}

/// An RSA key aws-lc-rs refused: its size when that was why, else `otherwise`.
fn rsa_rejected(error: &aws_lc_rs::error::KeyRejected, otherwise: &'static str) -> CryptoError {
    CryptoError::InvalidKey(match error.description_() {
        "TooSmall" => crate::rsa::TOO_SMALL,
        "TooLarge" => crate::rsa::TOO_LARGE,
        _ => otherwise,
    })
}

#[derive(Clone)]
pub(crate) struct RsaPublicKey(std::sync::Arc<rsa::PublicEncryptingKey>);

impl RsaPublicKey {
    pub(crate) fn from_der(spki: &[u8]) -> Result<Self, CryptoError> {
        rsa::PublicEncryptingKey::from_der(spki)
            .map(|k| Self(std::sync::Arc::new(k)))
            .map_err(|e| rsa_rejected(&e, "not an RSA SubjectPublicKeyInfo"))
    }

    pub(crate) fn size_bytes(&self) -> usize {
        self.0.key_size_bytes()
    }

    pub(crate) fn encrypt(
        &self,
        padding: RsaPadding,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0u8; self.size_bytes()];
        let key = (*self.0).clone();
        let written = match oaep_alg(padding) {
            Some(alg) => rsa::OaepPublicEncryptingKey::new(key)
                .and_then(|k| k.encrypt(alg, plaintext, &mut out, None).map(|c| c.len())),
            None => rsa::Pkcs1PublicEncryptingKey::new(key)
                .and_then(|k| k.encrypt(plaintext, &mut out).map(|c| c.len())),
        }
        .map_err(|_| CryptoError::InputTooLong("RSA encryption with this key and padding"))?;
        out.truncate(written);
        Ok(out)
    }
}

fn oaep_alg(padding: RsaPadding) -> Option<&'static rsa::OaepAlgorithm> {
    match padding {
        RsaPadding::Pkcs1v15 => None,
        RsaPadding::OaepSha1 => Some(&rsa::OAEP_SHA1_MGF1SHA1),
        RsaPadding::OaepSha256 => Some(&rsa::OAEP_SHA256_MGF1SHA256),
        RsaPadding::OaepSha384 => Some(&rsa::OAEP_SHA384_MGF1SHA384),
        RsaPadding::OaepSha512 => Some(&rsa::OAEP_SHA512_MGF1SHA512),
    }
}

pub(crate) struct RsaPrivateKey(rsa::PrivateDecryptingKey);

impl RsaPrivateKey {
    pub(crate) fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        rsa::PrivateDecryptingKey::from_pkcs8(der)
            .map(Self)
            .map_err(|e| rsa_rejected(&e, "not an unencrypted RSA PKCS#8 private key"))
    }

    pub(crate) fn size_bytes(&self) -> usize {
        self.0.key_size_bytes()
    }

    pub(crate) fn public_key(&self) -> RsaPublicKey {
        RsaPublicKey(std::sync::Arc::new(self.0.public_key()))
    }

    pub(crate) fn decrypt(
        &self,
        padding: RsaPadding,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let mut out = Zeroizing::new(vec![0u8; self.size_bytes()]);
        let key = self.0.clone();
        let len = match oaep_alg(padding) {
            Some(alg) => rsa::OaepPrivateDecryptingKey::new(key)
                .and_then(|k| k.decrypt(alg, ciphertext, &mut out, None).map(|p| p.len())),
            None => rsa::Pkcs1PrivateDecryptingKey::new(key)
                .and_then(|k| k.decrypt(ciphertext, &mut out).map(|p| p.len())),
        }
        .map_err(|_| CryptoError::RsaDecryptFailed)?;
        Ok(SecretBytes::from_slice(&out[..len]))
    }
}
