//! A client's configuration: commitment policy, limits on untrusted input, signature hashing.

use std::sync::OnceLock;

use envelope_format::{CommitmentPolicy, DEFAULT_MAX_HEADER_LEN, HeaderLimits};

use crate::error::Error;

/// Configuration shared by every operation of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientConfig {
    pub(crate) commitment_policy: CommitmentPolicy,
    pub(crate) max_encrypted_data_keys: Option<u16>,
    pub(crate) max_header_len: Option<usize>,
    pub(crate) max_frame_length: u32,
    pub(crate) signature_hashing: SignatureHashing,
    pub(crate) require_fips: bool,
}

/// The default [`ClientBuilder::max_frame_length`](crate::ClientBuilder::max_frame_length): 64 MiB.
pub const DEFAULT_MAX_FRAME_LENGTH: u32 = 64 << 20;

/// The default
/// [`ClientBuilder::max_encrypted_data_keys`](crate::ClientBuilder::max_encrypted_data_keys): 10.
pub const DEFAULT_MAX_ENCRYPTED_DATA_KEYS: u16 = 10;

/// Where the SHA-2 hash that a signed message's signature covers is computed.
///
/// Every byte of a message in a signed suite (ECDSA) goes through SHA-256 or SHA-384. Where SHA-2
/// is slow next to AES-GCM (AWS-LC runs SHA-512 in portable code on AMD CPUs), hashing on a second
/// core while this one encrypts or decrypts makes large signed messages faster (figures in
/// `docs/performance.md`). Messages are byte-for-byte the same whichever is chosen.
///
/// Helper threads of either kind run at most one per spare CPU in the whole process
/// ([`std::thread::available_parallelism`] minus one); a message that finds none free hashes
/// inline, so a machine that is busy already is not oversubscribed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureHashing {
    /// Always on the calling thread.
    Inline,
    /// One-shot encryption and decryption of a message whose body is 1 MiB or more hash on a
    /// scoped thread that reads the message where it lies (no copies) and ends with the call;
    /// streams hash inline.
    OneShot,
    /// As [`SignatureHashing::OneShot`], and a stream, once past 256 KiB, hands its hashing to a
    /// helper thread fed with copies of the data (on a machine with no idle core, a little slower
    /// than inline).
    ///
    /// The default where the process may use more than one CPU.
    Background,
}

impl SignatureHashing {
    /// [`SignatureHashing::Background`] where the process may use more than one CPU, else
    /// [`SignatureHashing::Inline`] (looked up once per process).
    pub fn for_this_machine() -> Self {
        static MULTI_CORE: OnceLock<bool> = OnceLock::new();
        let multi_core = *MULTI_CORE
            .get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1));
        if multi_core {
            Self::Background
        } else {
            Self::Inline
        }
    }

    /// One-shot operations may hash on a scoped thread.
    pub(crate) fn one_shot_parallel(self) -> bool {
        self != Self::Inline
    }

    /// Streams may hash on a helper thread.
    pub(crate) fn stream_background(self) -> bool {
        self == Self::Background
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            commitment_policy: CommitmentPolicy::default(),
            max_encrypted_data_keys: Some(DEFAULT_MAX_ENCRYPTED_DATA_KEYS),
            max_header_len: Some(DEFAULT_MAX_HEADER_LEN),
            max_frame_length: DEFAULT_MAX_FRAME_LENGTH,
            signature_hashing: SignatureHashing::for_this_machine(),
            require_fips: false,
        }
    }
}

impl ClientConfig {
    /// Fail unless the FIPS module is in approved mode, when the client requires it.
    pub(crate) fn check_fips(&self) -> Result<(), Error> {
        if !self.require_fips {
            return Ok(());
        }
        match envelope_crypto::fips_status() {
            envelope_crypto::FipsStatus::Approved => Ok(()),
            status => Err(Error::FipsRequired(status)),
        }
    }

    /// The limits a header is parsed with.
    pub(crate) fn header_limits(&self) -> HeaderLimits {
        HeaderLimits {
            max_encrypted_data_keys: self.max_encrypted_data_keys,
            max_header_len: self.max_header_len,
        }
    }
}
