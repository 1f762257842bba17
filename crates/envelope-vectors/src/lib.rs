//! Runs AWS Encryption SDK test-vector manifests against Envelope.
//!
//! `decrypt` reads `awses-decrypt` manifests (versions 1 to 5) and the JSON known-answer files in
//! `shared/vectors`, decrypts every test with the keyring it describes and compares the outcome.
//! A test whose keyring this build cannot construct is skipped, and a skip is never a pass.
//!
//! `encrypt` reads an `awses-encrypt` manifest and writes messages plus an `awses-decrypt` manifest
//! that any ESDK can replay.

pub mod decrypt;
pub mod describe;
pub mod encrypt;
mod error;
mod json;
mod kat;
pub mod keys;
mod kms;
pub mod static_keyring;
mod test_case;
pub mod testing;

pub use decrypt::{DecryptTest, Method, Outcome, Summary};
pub use encrypt::{EncryptOptions, EncryptSummary, encrypt_manifest, encrypt_manifest_with};
pub use error::{Result, ToolError};

use std::path::{Path, PathBuf};

/// Load and run every test of a decrypt manifest or known-answer file.
pub fn decrypt_file(path: &Path) -> Result<Summary> {
    decrypt_file_with(path, Method::OneShot)
}

/// Load and run every test of a decrypt manifest or known-answer file with a decryption method.
pub fn decrypt_file_with(path: &Path, method: Method) -> Result<Summary> {
    let tests = decrypt::load(path)?;
    Ok(decrypt::run_with(&tests, method))
}

/// The shared vectors directory: `$ENVELOPE_VECTORS`, else `../shared/vectors` beside the checkout.
pub fn vectors_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ENVELOPE_VECTORS") {
        return Some(PathBuf::from(dir)).filter(|p| p.is_dir());
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidate = workspace.join("../shared/vectors");
    candidate
        .is_dir()
        .then(|| candidate.canonicalize().unwrap_or(candidate))
}
