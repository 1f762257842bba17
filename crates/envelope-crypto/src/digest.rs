//! SHA-2 hashing, one-shot and streaming.

use std::fmt;

use crate::backend;

/// A SHA-2 hash function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// Output length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// A running hash computation.
#[derive(Clone)]
pub struct Hasher {
    inner: backend::Hasher,
}

impl Hasher {
    /// Start hashing with `algorithm`.
    pub fn new(algorithm: HashAlgorithm) -> Self {
        Self {
            inner: backend::Hasher::new(algorithm),
        }
    }

    /// Feed more input.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    /// The algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.inner.algorithm()
    }

    /// Finish and return the digest.
    pub fn finish(self) -> Digest {
        Digest {
            inner: self.inner.finish(),
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

/// A hash output.
#[derive(Clone)]
pub struct Digest {
    pub(crate) inner: backend::Digest,
}

impl Digest {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.inner.as_bytes()
    }

    /// The algorithm that produced it.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.inner.algorithm()
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({:?}, ", self.algorithm())?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// Hash `data` in one call.
pub fn digest(algorithm: HashAlgorithm, data: &[u8]) -> Digest {
    let mut hasher = Hasher::new(algorithm);
    hasher.update(data);
    hasher.finish()
}
