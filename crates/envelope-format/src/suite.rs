//! The ESDK algorithm suites and commitment policies.

use core::fmt;

/// Length of every AES-GCM IV in the ESDK message format.
pub const IV_LEN: usize = 12;
/// Length of every AES-GCM authentication tag in the ESDK message format.
pub const TAG_LEN: usize = 16;

/// The message format version a suite belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageFormatVersion {
    /// Version 1: 16-byte message ids, no key commitment.
    V1,
    /// Version 2: 32-byte message ids and a committed data key.
    V2,
}

impl MessageFormatVersion {
    /// The version byte on the wire.
    pub const fn as_byte(self) -> u8 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }

    /// The length of a message id in this version.
    pub const fn message_id_len(self) -> usize {
        match self {
            Self::V1 => 16,
            Self::V2 => 32,
        }
    }
}

/// How a suite turns the data key into the content encryption key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kdf {
    /// The data key is used directly (legacy suites 0x0014, 0x0046, 0x0078).
    Identity,
    /// HKDF with SHA-256, zero salt, info = suite id || message id.
    HkdfSha256,
    /// HKDF with SHA-384, zero salt, info = suite id || message id.
    HkdfSha384,
    /// HKDF with SHA-512, salt = message id, separate key and commitment expansions.
    HkdfSha512Commit,
}

/// The footer signature algorithm of a signed suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ECDSA over P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA over P-384 with SHA-384.
    EcdsaP384Sha384,
}

impl SignatureAlgorithm {
    /// Length of the SEC1 compressed public key.
    pub const fn compressed_public_key_len(self) -> usize {
        match self {
            Self::EcdsaP256Sha256 => 33,
            Self::EcdsaP384Sha384 => 49,
        }
    }

    /// The DER signature length Python and Java normalise to (the spec allows any length).
    pub const fn canonical_signature_len(self) -> usize {
        match self {
            Self::EcdsaP256Sha256 => 71,
            Self::EcdsaP384Sha384 => 103,
        }
    }
}

macro_rules! suites {
    ($( $(#[$doc:meta])* $variant:ident = $id:literal, $name:literal, $version:ident, $key:literal, $kdf:ident, $sig:expr; )*) => {
        /// One of the 11 algorithm suites of the AWS Encryption SDK message format.
        ///
        /// Every suite encrypts with AES-GCM (12-byte IV, 16-byte tag); they differ in key length, key
        /// derivation, key commitment and whether messages carry an ECDSA signature.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum AlgorithmSuite {
            $( $(#[$doc])* $variant, )*
        }

        impl AlgorithmSuite {
            /// Every suite, in id order.
            pub const ALL: [AlgorithmSuite; 11] = [$(AlgorithmSuite::$variant,)*];

            /// The two-byte suite id written in the header.
            pub const fn id(self) -> u16 {
                match self { $(Self::$variant => $id,)* }
            }

            /// The suite with this id, if it is an ESDK suite.
            pub const fn from_id(id: u16) -> Option<Self> {
                match id { $($id => Some(Self::$variant),)* _ => None }
            }

            /// The ESDK enum name, e.g. `ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384`.
            pub const fn name(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// The message format version messages with this suite use.
            pub const fn message_format_version(self) -> MessageFormatVersion {
                match self { $(Self::$variant => MessageFormatVersion::$version,)* }
            }

            /// Length in bytes of the data key and of the derived AES key.
            pub const fn key_len(self) -> usize {
                match self { $(Self::$variant => $key / 8,)* }
            }

            /// The key derivation function.
            pub const fn kdf(self) -> Kdf {
                match self { $(Self::$variant => Kdf::$kdf,)* }
            }

            /// The footer signature algorithm, for signed suites.
            pub const fn signature(self) -> Option<SignatureAlgorithm> {
                match self { $(Self::$variant => $sig,)* }
            }
        }
    };
}

suites! {
    /// `0x0014`: AES-128-GCM, no key derivation (legacy).
    Aes128GcmIv12Tag16NoKdf = 0x0014, "ALG_AES_128_GCM_IV12_TAG16_NO_KDF", V1, 128, Identity, None;
    /// `0x0046`: AES-192-GCM, no key derivation (legacy).
    Aes192GcmIv12Tag16NoKdf = 0x0046, "ALG_AES_192_GCM_IV12_TAG16_NO_KDF", V1, 192, Identity, None;
    /// `0x0078`: AES-256-GCM, no key derivation (legacy).
    Aes256GcmIv12Tag16NoKdf = 0x0078, "ALG_AES_256_GCM_IV12_TAG16_NO_KDF", V1, 256, Identity, None;
    /// `0x0114`: AES-128-GCM, HKDF-SHA256.
    Aes128GcmIv12Tag16HkdfSha256 = 0x0114, "ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256", V1, 128, HkdfSha256, None;
    /// `0x0146`: AES-192-GCM, HKDF-SHA256.
    Aes192GcmIv12Tag16HkdfSha256 = 0x0146, "ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA256", V1, 192, HkdfSha256, None;
    /// `0x0178`: AES-256-GCM, HKDF-SHA256.
    Aes256GcmIv12Tag16HkdfSha256 = 0x0178, "ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA256", V1, 256, HkdfSha256, None;
    /// `0x0214`: AES-128-GCM, HKDF-SHA256, ECDSA P-256 signature.
    Aes128GcmIv12Tag16HkdfSha256EcdsaP256 = 0x0214, "ALG_AES_128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256", V1, 128, HkdfSha256, Some(SignatureAlgorithm::EcdsaP256Sha256);
    /// `0x0346`: AES-192-GCM, HKDF-SHA384, ECDSA P-384 signature.
    Aes192GcmIv12Tag16HkdfSha384EcdsaP384 = 0x0346, "ALG_AES_192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", V1, 192, HkdfSha384, Some(SignatureAlgorithm::EcdsaP384Sha384);
    /// `0x0378`: AES-256-GCM, HKDF-SHA384, ECDSA P-384 signature.
    Aes256GcmIv12Tag16HkdfSha384EcdsaP384 = 0x0378, "ALG_AES_256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384", V1, 256, HkdfSha384, Some(SignatureAlgorithm::EcdsaP384Sha384);
    /// `0x0478`: AES-256-GCM, HKDF-SHA512 with key commitment.
    Aes256GcmHkdfSha512CommitKey = 0x0478, "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY", V2, 256, HkdfSha512Commit, None;
    /// `0x0578`: AES-256-GCM, HKDF-SHA512 with key commitment, ECDSA P-384 signature (the default).
    Aes256GcmHkdfSha512CommitKeyEcdsaP384 = 0x0578, "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384", V2, 256, HkdfSha512Commit, Some(SignatureAlgorithm::EcdsaP384Sha384);
}

impl AlgorithmSuite {
    /// Whether the data key is committed in the header (format version 2).
    pub const fn is_committing(self) -> bool {
        matches!(self.kdf(), Kdf::HkdfSha512Commit)
    }

    /// Whether messages end with an ECDSA signature footer.
    pub const fn is_signed(self) -> bool {
        self.signature().is_some()
    }

    /// Whether the suite derives its content key (false only for the three identity-KDF suites).
    ///
    /// Only suites with key derivation may share a data key across messages, so only these are cached.
    pub const fn has_kdf(self) -> bool {
        !matches!(self.kdf(), Kdf::Identity)
    }

    /// Length of the message id.
    pub const fn message_id_len(self) -> usize {
        self.message_format_version().message_id_len()
    }

    /// Length of the algorithm suite data in the header (the commit key): 32 or 0.
    pub const fn suite_data_len(self) -> usize {
        if self.is_committing() { 32 } else { 0 }
    }
}

impl fmt::Display for AlgorithmSuite {
    /// `0x0578 (ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384)`; [`str::parse`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:04x} ({})", self.id(), self.name())
    }
}

/// A name that is not one of the values of a type parsed from text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not {what}: expected {expected}")]
pub struct ParseError {
    /// What was being parsed.
    pub what: &'static str,
    /// The text given.
    pub input: String,
    /// What is accepted.
    pub expected: &'static str,
}

impl std::str::FromStr for AlgorithmSuite {
    type Err = ParseError;

    /// A suite from its id in hex (`0578` or `0x0578`), its ESDK name
    /// (`ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384`, any case) or its [`Display`](fmt::Display)
    /// form (both, agreeing).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParseError {
            what: "an algorithm suite",
            input: text.to_owned(),
            expected: "a suite id in hex such as 0578, or an ESDK name such as ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
        };
        let trimmed = text.trim();
        if let Some((id, rest)) = trimmed.split_once(' ') {
            let name = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(error)?;
            let by_id: Self = id.parse().map_err(|_| error())?;
            let by_name: Self = name.parse().map_err(|_| error())?;
            return if by_id == by_name {
                Ok(by_id)
            } else {
                Err(error())
            };
        }
        let digits = trimmed
            .strip_prefix("0x")
            .or_else(|| trimmed.strip_prefix("0X"))
            .unwrap_or(trimmed);
        if digits.len() == 4
            && let Some(suite) = u16::from_str_radix(digits, 16).ok().and_then(Self::from_id)
        {
            return Ok(suite);
        }
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(trimmed))
            .ok_or_else(error)
    }
}

/// Which suites a client may encrypt with and decrypt.
///
/// Key commitment binds a message to exactly one data key, so that no ciphertext decrypts to two
/// different plaintexts under two keys. The default, [`CommitmentPolicy::RequireEncryptRequireDecrypt`],
/// writes and reads committing suites only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommitmentPolicy {
    /// Encrypt with non-committing suites only; decrypt everything. For migrating from ESDK 1.x.
    ForbidEncryptAllowDecrypt,
    /// Encrypt with committing suites only; decrypt everything. For rolling out commitment.
    RequireEncryptAllowDecrypt,
    /// Encrypt and decrypt committing suites only.
    #[default]
    RequireEncryptRequireDecrypt,
}

impl CommitmentPolicy {
    /// Whether this policy lets a client encrypt with `suite`.
    pub const fn allows_encrypt(self, suite: AlgorithmSuite) -> bool {
        match self {
            Self::ForbidEncryptAllowDecrypt => !suite.is_committing(),
            Self::RequireEncryptAllowDecrypt | Self::RequireEncryptRequireDecrypt => {
                suite.is_committing()
            }
        }
    }

    /// Whether this policy lets a client decrypt messages written with `suite`.
    pub const fn allows_decrypt(self, suite: AlgorithmSuite) -> bool {
        match self {
            Self::ForbidEncryptAllowDecrypt | Self::RequireEncryptAllowDecrypt => true,
            Self::RequireEncryptRequireDecrypt => suite.is_committing(),
        }
    }

    /// The strictest policy that lets a client encrypt with `suite`: require-require for a
    /// committing suite, forbid-allow for a legacy one (say, to write messages for a reader that
    /// predates commitment).
    pub const fn strictest_for(suite: AlgorithmSuite) -> Self {
        if suite.is_committing() {
            Self::RequireEncryptRequireDecrypt
        } else {
            Self::ForbidEncryptAllowDecrypt
        }
    }

    /// The suite used when the caller names none.
    ///
    /// `0x0378` for the forbid policy (what the Python ESDK and the Dafny MPL do), `0x0578` otherwise.
    pub const fn default_suite(self) -> AlgorithmSuite {
        match self {
            Self::ForbidEncryptAllowDecrypt => {
                AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha384EcdsaP384
            }
            Self::RequireEncryptAllowDecrypt | Self::RequireEncryptRequireDecrypt => {
                AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
            }
        }
    }

    /// Check that this policy lets a client encrypt with `suite`: the one place every layer
    /// (client, default and caching CMMs) asks.
    pub const fn check_encrypt(self, suite: AlgorithmSuite) -> Result<(), PolicyViolation> {
        self.verdict(Operation::Encrypt, suite, self.allows_encrypt(suite))
    }

    /// Check that this policy lets a client decrypt messages written with `suite`.
    pub const fn check_decrypt(self, suite: AlgorithmSuite) -> Result<(), PolicyViolation> {
        self.verdict(Operation::Decrypt, suite, self.allows_decrypt(suite))
    }

    const fn verdict(
        self,
        operation: Operation,
        suite: AlgorithmSuite,
        allowed: bool,
    ) -> Result<(), PolicyViolation> {
        if allowed {
            Ok(())
        } else {
            Err(PolicyViolation {
                suite,
                policy: self,
                operation,
            })
        }
    }

    /// The ESDK name of the policy, e.g. `REQUIRE_ENCRYPT_REQUIRE_DECRYPT`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ForbidEncryptAllowDecrypt => "FORBID_ENCRYPT_ALLOW_DECRYPT",
            Self::RequireEncryptAllowDecrypt => "REQUIRE_ENCRYPT_ALLOW_DECRYPT",
            Self::RequireEncryptRequireDecrypt => "REQUIRE_ENCRYPT_REQUIRE_DECRYPT",
        }
    }
}

/// Encrypting or decrypting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Writing a message.
    Encrypt,
    /// Reading a message.
    Decrypt,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
        })
    }
}

/// A commitment policy does not allow a suite for an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("commitment policy {policy} does not allow {operation} with suite {suite}")]
pub struct PolicyViolation {
    /// The suite.
    pub suite: AlgorithmSuite,
    /// The policy.
    pub policy: CommitmentPolicy,
    /// What was refused.
    pub operation: Operation,
}

impl fmt::Display for CommitmentPolicy {
    /// The ESDK name, e.g. `REQUIRE_ENCRYPT_REQUIRE_DECRYPT`; [`str::parse`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CommitmentPolicy {
    type Err = ParseError;

    /// A policy from its ESDK name, in any case and with `-` or `_` between the words:
    /// `REQUIRE_ENCRYPT_REQUIRE_DECRYPT`, `require-encrypt-allow-decrypt`, ...
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let normalized = text.trim().replace('-', "_");
        [
            Self::ForbidEncryptAllowDecrypt,
            Self::RequireEncryptAllowDecrypt,
            Self::RequireEncryptRequireDecrypt,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(&normalized))
        .ok_or_else(|| ParseError {
            what: "a commitment policy",
            input: text.to_owned(),
            expected: "REQUIRE_ENCRYPT_REQUIRE_DECRYPT, REQUIRE_ENCRYPT_ALLOW_DECRYPT or FORBID_ENCRYPT_ALLOW_DECRYPT",
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_strictest_policy_for_a_suite_lets_it_encrypt_and_no_stricter_one_does() {
        for suite in AlgorithmSuite::ALL {
            let policy = CommitmentPolicy::strictest_for(suite);
            assert!(policy.allows_encrypt(suite), "{suite}");
            if suite.is_committing() {
                assert_eq!(policy, CommitmentPolicy::RequireEncryptRequireDecrypt);
            } else {
                assert_eq!(policy, CommitmentPolicy::ForbidEncryptAllowDecrypt);
                assert!(!CommitmentPolicy::RequireEncryptAllowDecrypt.allows_encrypt(suite));
            }
        }
    }

    use super::*;

    #[test]
    fn ids_round_trip_and_properties_match_the_spec_table() {
        let table: [(u16, u8, usize, bool, bool); 11] = [
            (0x0014, 1, 16, false, false),
            (0x0046, 1, 24, false, false),
            (0x0078, 1, 32, false, false),
            (0x0114, 1, 16, false, false),
            (0x0146, 1, 24, false, false),
            (0x0178, 1, 32, false, false),
            (0x0214, 1, 16, false, true),
            (0x0346, 1, 24, false, true),
            (0x0378, 1, 32, false, true),
            (0x0478, 2, 32, true, false),
            (0x0578, 2, 32, true, true),
        ];
        for (suite, (id, version, key, commit, signed)) in AlgorithmSuite::ALL.iter().zip(table) {
            assert_eq!(suite.id(), id);
            assert_eq!(AlgorithmSuite::from_id(id), Some(*suite));
            assert_eq!(suite.message_format_version().as_byte(), version);
            assert_eq!(suite.key_len(), key);
            assert_eq!(suite.is_committing(), commit);
            assert_eq!(suite.is_signed(), signed);
            assert_eq!(suite.suite_data_len(), if commit { 32 } else { 0 });
        }
        assert_eq!(AlgorithmSuite::from_id(0x0000), None);
        assert_eq!(
            AlgorithmSuite::from_id(0x0070),
            None,
            "S3EC suites are not ESDK suites"
        );
        assert_eq!(
            AlgorithmSuite::from_id(0x6700),
            None,
            "DBE suites are not ESDK suites"
        );
    }

    #[test]
    fn suites_and_policies_parse_their_display_and_their_names() {
        for suite in AlgorithmSuite::ALL {
            assert_eq!(suite.to_string().parse::<AlgorithmSuite>(), Ok(suite));
            assert_eq!(format!("{:04x}", suite.id()).parse(), Ok(suite));
            assert_eq!(format!("0x{:04X}", suite.id()).parse(), Ok(suite));
            assert_eq!(suite.name().parse(), Ok(suite));
            assert_eq!(suite.name().to_lowercase().parse(), Ok(suite));
        }
        for bad in [
            "",
            "578",
            "0x0579",
            "05780",
            "ALG_NOPE",
            "0x0578 (ALG_AES_128_GCM_IV12_TAG16_NO_KDF)",
            "0x0578 ALG",
        ] {
            assert!(bad.parse::<AlgorithmSuite>().is_err(), "{bad:?}");
        }
        for policy in [
            CommitmentPolicy::ForbidEncryptAllowDecrypt,
            CommitmentPolicy::RequireEncryptAllowDecrypt,
            CommitmentPolicy::RequireEncryptRequireDecrypt,
        ] {
            assert_eq!(policy.to_string().parse(), Ok(policy));
            assert_eq!(
                policy.name().to_lowercase().replace('_', "-").parse(),
                Ok(policy)
            );
        }
        let err = "sometimes".parse::<CommitmentPolicy>().unwrap_err();
        assert_eq!(err.input, "sometimes");
        assert!(
            err.to_string().contains("REQUIRE_ENCRYPT_REQUIRE_DECRYPT"),
            "{err}"
        );
    }

    #[test]
    fn policies() {
        use AlgorithmSuite as S;
        let forbid = CommitmentPolicy::ForbidEncryptAllowDecrypt;
        let allow = CommitmentPolicy::RequireEncryptAllowDecrypt;
        let require = CommitmentPolicy::default();
        assert_eq!(require, CommitmentPolicy::RequireEncryptRequireDecrypt);
        assert_eq!(
            forbid.default_suite(),
            S::Aes256GcmIv12Tag16HkdfSha384EcdsaP384
        );
        assert_eq!(
            require.default_suite(),
            S::Aes256GcmHkdfSha512CommitKeyEcdsaP384
        );
        for suite in S::ALL {
            assert_eq!(forbid.allows_encrypt(suite), !suite.is_committing());
            assert!(forbid.allows_decrypt(suite));
            assert_eq!(allow.allows_encrypt(suite), suite.is_committing());
            assert!(allow.allows_decrypt(suite));
            assert_eq!(require.allows_encrypt(suite), suite.is_committing());
            assert_eq!(require.allows_decrypt(suite), suite.is_committing());
        }
    }
}
