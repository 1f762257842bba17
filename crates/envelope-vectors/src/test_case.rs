//! What a decrypt test is, whichever file it was loaded from (manifests and known-answer files).

use std::path::PathBuf;

use envelope::{CommitmentPolicy, DecryptOptions, EncryptionContext};

use crate::describe::KeyDescription;
use crate::error::Result;
use crate::json::b64;

/// Where a test's bytes come from.
#[derive(Clone, Debug)]
pub enum Bytes {
    /// A file (read when the test runs).
    File(PathBuf),
    /// Inline.
    Inline(Vec<u8>),
}

/// What a decrypt test expects.
#[derive(Clone, Debug)]
pub enum Expected {
    /// Decryption succeeds with this plaintext.
    Plaintext(Bytes),
    /// Decryption fails (the description is informational).
    Error(String),
}

/// One decryption test.
#[derive(Clone, Debug)]
pub struct DecryptTest {
    /// The test id within its file.
    pub id: String,
    /// The message.
    pub ciphertext: Bytes,
    /// The keyring or CMM to decrypt with.
    pub keys: KeyDescription,
    /// The expected outcome.
    pub expected: Expected,
    /// The encryption context to pass to decrypt, if any.
    pub encryption_context: Option<EncryptionContext>,
    /// Decrypt in "unsigned only" mode.
    pub unsigned_only: bool,
    /// The commitment policy to decrypt with.
    pub policy: CommitmentPolicy,
}

impl DecryptTest {
    /// The options to decrypt the test's message with.
    pub fn decrypt_options(&self) -> DecryptOptions {
        let mut options = DecryptOptions::default();
        options.encryption_context = self.encryption_context.clone();
        options.unsigned_only = self.unsigned_only;
        options
    }
}

/// Decode base64 test input.
pub(crate) fn inline_b64(s: &str) -> Result<Bytes> {
    Ok(Bytes::Inline(b64(s)?))
}
