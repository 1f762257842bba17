//! Cache entry identifiers: the SHA-512 construction every shipping caching CMM uses.
//!
//! ```text
//! P  = SHA512(UTF8(partition))
//! E  = SHA512(serialize_ec(request EC))
//! encrypt, no suite : SHA512(P || 0x00 || E)
//! encrypt, suite    : SHA512(P || 0x01 || u16 suite || E)
//! decrypt           : SHA512(P || u16 suite || sorted(SHA512(serialize_edk(edk)))... || 64 zero bytes || E)
//! ```
//!
//! These equal the Python ESDK's ids byte for byte. Envelope extends them in two cases the older
//! caching CMMs do not know, so that materials never cross between requests that need different
//! ones: an encryption request with required encryption context keys, and a decryption request with
//! a reproduced encryption context. Without those inputs the ids are unchanged.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

use envelope_crypto::digest::{HashAlgorithm, Hasher as Sha, digest};
use envelope_format::{AlgorithmSuite, EncryptedDataKey, EncryptionContext, FormatError};

/// Length of a cache id: a SHA-512 digest.
pub const CACHE_ID_LEN: usize = 64;

/// Identifies one cache entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CacheId([u8; CACHE_ID_LEN]);

impl CacheId {
    /// An id from its bytes.
    pub const fn from_bytes(bytes: [u8; CACHE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The id bytes.
    pub fn as_bytes(&self) -> &[u8; CACHE_ID_LEN] {
        &self.0
    }
}

impl Hash for CacheId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Ids are uniformly distributed digests: eight of their bytes are as good a hash as any.
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(word));
    }
}

impl fmt::Debug for CacheId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CacheId(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// A hasher for maps keyed by [`CacheId`]: passes the id's leading word through.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

impl BuildHasher for IdHasher {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

fn sha512_bytes(data: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(digest(HashAlgorithm::Sha512, data).as_bytes());
    out
}

fn finish(hasher: Sha) -> CacheId {
    let mut out = [0u8; 64];
    out.copy_from_slice(hasher.finish().as_bytes());
    CacheId(out)
}

/// `SHA512(UTF8(partition))`.
pub fn partition_hash(partition: &str) -> [u8; 64] {
    sha512_bytes(partition.as_bytes())
}

fn context_hash(ec: &EncryptionContext) -> Result<[u8; 64], FormatError> {
    Ok(sha512_bytes(&ec.serialize()?))
}

/// The id of encryption materials for a request.
pub fn encryption_id(
    partition: &[u8; 64],
    suite: Option<AlgorithmSuite>,
    encryption_context: &EncryptionContext,
) -> Result<CacheId, FormatError> {
    let mut h = Sha::new(HashAlgorithm::Sha512);
    h.update(partition);
    match suite {
        None => h.update(&[0x00]),
        Some(suite) => {
            h.update(&[0x01]);
            h.update(&suite.id().to_be_bytes());
        }
    }
    h.update(&context_hash(encryption_context)?);
    Ok(finish(h))
}

/// The id of decryption materials for a message.
pub fn decryption_id(
    partition: &[u8; 64],
    suite: AlgorithmSuite,
    encrypted_data_keys: &[EncryptedDataKey],
    encryption_context: &EncryptionContext,
) -> Result<CacheId, FormatError> {
    let mut edk_hashes = Vec::with_capacity(encrypted_data_keys.len());
    let mut buf = Vec::new();
    for edk in encrypted_data_keys {
        buf.clear();
        edk.serialize_into(&mut buf)?;
        edk_hashes.push(sha512_bytes(&buf));
    }
    edk_hashes.sort_unstable();
    let mut h = Sha::new(HashAlgorithm::Sha512);
    h.update(partition);
    h.update(&suite.id().to_be_bytes());
    for e in &edk_hashes {
        h.update(e);
    }
    h.update(&[0u8; 64]);
    h.update(&context_hash(encryption_context)?);
    Ok(finish(h))
}

/// Envelope's extension: bind extra inputs (required keys, a reproduced context) to an id.
pub(crate) fn extend(id: CacheId, label: &[u8], serialized: &[u8]) -> CacheId {
    let mut h = Sha::new(HashAlgorithm::Sha512);
    h.update(id.as_bytes());
    h.update(label);
    h.update(&sha512_bytes(serialized));
    finish(h)
}
