//! The system CSPRNG.

use crate::{CryptoError, backend};

/// Fill `buf` with bytes from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    backend::fill_random(buf)
}
