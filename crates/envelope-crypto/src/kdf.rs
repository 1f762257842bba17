//! HMAC (RFC 2104) and the NIST SP 800-108 counter-mode key derivation function over HMAC.
//!
//! With the `aws-lc` and `rustcrypto` backends both are built on the backend's SHA-2, so they
//! compute them the same way: an [`HmacKey`] absorbs the key's padded blocks once, and each MAC
//! afterwards costs only the message's compression-function calls plus two, which is what makes
//! deriving a fresh wrapping key for every message (the hierarchical keyring) cheap. With the
//! `fips` backend both are the FIPS module's own services.

use std::fmt;

#[cfg(not(feature = "fips"))]
use zeroize::Zeroizing;

use crate::CryptoError;
use crate::digest::HashAlgorithm;
#[cfg(not(feature = "fips"))]
use crate::digest::Hasher;

/// The largest block length of the SHA-2 functions (SHA-384 and SHA-512).
#[cfg(not(feature = "fips"))]
const MAX_BLOCK_LEN: usize = 128;

#[cfg(not(feature = "fips"))]
const fn block_len(hash: HashAlgorithm) -> usize {
    match hash {
        HashAlgorithm::Sha256 => 64,
        HashAlgorithm::Sha384 | HashAlgorithm::Sha512 => 128,
    }
}

/// An HMAC key, ready to compute MACs and the SP 800-108 KDF.
///
/// With the `aws-lc` and `rustcrypto` backends the key's inner and outer padded blocks are absorbed
/// once, so each MAC afterwards costs only the message's compression-function calls plus two. The
/// two absorbed hash states are as sensitive as the key (they compute every MAC under it) and live
/// as long as this value; the padded key blocks are zeroized after use, but the backends' hash
/// states are not zeroized on drop (neither AWS-LC's contexts nor RustCrypto's `sha2` offer it);
/// the HKDF pseudorandom keys of message encryption are held the same way.
///
/// With the `fips` backend HMAC and the KDF run inside the FIPS module (its HMAC and
/// `KBKDF_ctr_hmac` services); the key is kept, zeroized on drop, to key them.
#[derive(Clone)]
pub struct HmacKey(Inner);

#[cfg(not(feature = "fips"))]
type Inner = Precomputed;
#[cfg(feature = "fips")]
type Inner = crate::backend::ModuleHmacKey;

impl HmacKey {
    /// An HMAC key for `hash`. Keys longer than the hash's block are hashed first (RFC 2104).
    pub fn new(hash: HashAlgorithm, key: &[u8]) -> Self {
        Self(Inner::new(hash, key))
    }

    /// The hash function.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.0.algorithm()
    }

    /// The MAC of the concatenation of `parts`.
    pub fn sign(&self, parts: &[&[u8]]) -> Mac {
        self.0.sign(parts)
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// An HMAC tag: as long as the hash's output. Wiped on drop, since a tag of the SP 800-108 KDF is
/// key material.
#[derive(Clone)]
pub struct Mac {
    bytes: [u8; 64],
    len: usize,
}

impl Mac {
    /// `tag` is at most 64 bytes: the longest SHA-2 output.
    pub(crate) fn from_slice(tag: &[u8]) -> Self {
        let mut bytes = [0u8; 64];
        let len = tag.len().min(bytes.len());
        bytes[..len].copy_from_slice(&tag[..len]);
        Self { bytes, len }
    }

    /// The tag's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Drop for Mac {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({} bytes)", self.len)
    }
}

/// HMAC over the backend's streaming SHA-2 with the padded key blocks absorbed once.
#[cfg(not(feature = "fips"))]
#[derive(Clone)]
struct Precomputed {
    inner: Hasher,
    outer: Hasher,
}

#[cfg(not(feature = "fips"))]
impl Precomputed {
    fn new(hash: HashAlgorithm, key: &[u8]) -> Self {
        let block = block_len(hash);
        let mut padded = Zeroizing::new([0u8; MAX_BLOCK_LEN]);
        if key.len() > block {
            let digest = crate::digest::digest(hash, key);
            padded[..hash.output_len()].copy_from_slice(digest.as_bytes());
        } else {
            padded[..key.len()].copy_from_slice(key);
        }
        let mut pad = Zeroizing::new([0u8; MAX_BLOCK_LEN]);
        let keyed = |xor: u8, pad: &mut [u8; MAX_BLOCK_LEN]| {
            for (p, k) in pad.iter_mut().zip(padded.iter()) {
                *p = k ^ xor;
            }
            let mut hasher = Hasher::new(hash);
            hasher.update(&pad[..block]);
            hasher
        };
        let inner = keyed(0x36, &mut pad);
        let outer = keyed(0x5c, &mut pad);
        Self { inner, outer }
    }

    fn algorithm(&self) -> HashAlgorithm {
        self.inner.algorithm()
    }

    fn sign(&self, parts: &[&[u8]]) -> Mac {
        self.sign_iter(parts.iter().copied())
    }

    fn sign_iter<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> Mac {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part);
        }
        let inner = inner.finish();
        let mut outer = self.outer.clone();
        outer.update(inner.as_bytes());
        Mac::from_slice(outer.finish().as_bytes())
    }

    /// SP 800-108 counter mode: block `i` is the MAC of `[i]_32 || fixed_info`.
    fn counter_mode(&self, fixed_info: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        let hash_len = self.algorithm().output_len();
        for (i, chunk) in out.chunks_mut(hash_len).enumerate() {
            let counter = u32::try_from(i + 1)
                .map_err(|_| CryptoError::InputTooLong("SP 800-108 KDF output"))?
                .to_be_bytes();
            let block =
                self.sign_iter(std::iter::once(&counter[..]).chain(fixed_info.iter().copied()));
            chunk.copy_from_slice(&block.as_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// NIST SP 800-108r1 KDF in counter mode with HMAC as the PRF, filling `out`.
///
/// Block `i` (from 1) is `HMAC(key, [i]_32 || label || 0x00 || context || [L]_32)`, where the counter
/// and `L` (the output length in **bits**) are 32-bit big-endian; the blocks are concatenated and cut
/// to `out.len()`. This is the layout the AWS Material Providers Library uses for the hierarchical
/// keyring's wrapping keys (HMAC-SHA-256, label `"aws-kms-hierarchy"`, context = the salt).
pub fn counter_mode(
    key: &HmacKey,
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    if out.is_empty() {
        return Ok(()); // no blocks to compute, on every backend
    }
    let bits = u32::try_from(out.len())
        .ok()
        .and_then(|len| len.checked_mul(8))
        .ok_or(CryptoError::InputTooLong("SP 800-108 KDF output"))?;
    key.0
        .counter_mode(&[label, &[0u8], context, &bits.to_be_bytes()], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let key = HmacKey::new(HashAlgorithm::Sha256, b"Jefe");
        let mac = key.sign(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(mac.as_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_hashes_long_keys_first_rfc_4231_case_6() {
        let key = HmacKey::new(HashAlgorithm::Sha512, &[0xaa; 131]);
        let mac = key.sign(&[b"Test Using Larger Than Block-Size Key - Hash Key First"]);
        assert_eq!(
            hex(mac.as_bytes()),
            "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352\
             6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"
        );
    }

    #[test]
    fn counter_mode_is_hmac_of_counter_label_separator_context_and_bit_length() {
        let key = HmacKey::new(HashAlgorithm::Sha256, &[7u8; 32]);
        let mut out = [0u8; 40];
        counter_mode(&key, b"label", b"ctx", &mut out).unwrap();
        let block = |i: u32| {
            key.sign(&[
                &i.to_be_bytes(),
                b"label",
                &[0],
                b"ctx",
                &320u32.to_be_bytes(),
            ])
        };
        assert_eq!(&out[..32], block(1).as_bytes());
        assert_eq!(&out[32..], &block(2).as_bytes()[..8]);
    }
}
