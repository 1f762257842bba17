//! Key derivation (identity, HKDF, committing HKDF) and header authentication.

use std::collections::BTreeSet;

use envelope_crypto::aead::AeadKey;
use envelope_crypto::digest::HashAlgorithm;
use envelope_crypto::hkdf::{Prk, hkdf};
use envelope_crypto::{SecretBytes, ct};
use envelope_format::{
    AlgorithmSuite, COMMIT_KEY_LEN, EncryptionContext, HeaderAuth, IV_LEN, Kdf, MessageId,
};
use zeroize::Zeroizing;

use crate::error::Error;

const DERIVE_KEY_LABEL: &[u8] = b"DERIVEKEY";
const COMMIT_KEY_LABEL: &[u8] = b"COMMITKEY";

/// The content key of one message and, for committing suites, its commit key.
pub(crate) struct MessageKeys {
    pub(crate) content: AeadKey,
    pub(crate) commit_key: Option<[u8; COMMIT_KEY_LEN]>,
}

/// Derive the content key (and commit key) from the data key and the message id.
pub(crate) fn derive(
    suite: AlgorithmSuite,
    data_key: &SecretBytes,
    message_id: &MessageId,
) -> Result<MessageKeys, Error> {
    let ikm = data_key.expose_secret();
    if ikm.len() != suite.key_len() {
        return Err(Error::Internal(
            "the data key length does not match the suite",
        ));
    }
    let suite_id = suite.id().to_be_bytes();
    let mut derived = Zeroizing::new([0u8; 32]);
    let derived = &mut derived[..suite.key_len()];
    let commit_key = match suite.kdf() {
        Kdf::Identity => {
            derived.copy_from_slice(ikm);
            None
        }
        Kdf::HkdfSha256 | Kdf::HkdfSha384 => {
            let hash = if suite.kdf() == Kdf::HkdfSha256 {
                HashAlgorithm::Sha256
            } else {
                HashAlgorithm::Sha384
            };
            let salt = [0u8; 48];
            hkdf(
                hash,
                &salt[..hash.output_len()],
                ikm,
                &[&suite_id, message_id.as_bytes()],
                derived,
            )?;
            None
        }
        Kdf::HkdfSha512Commit => {
            let prk = Prk::extract(HashAlgorithm::Sha512, message_id.as_bytes(), ikm);
            prk.expand(&[&suite_id, DERIVE_KEY_LABEL], derived)?;
            let mut commit = [0u8; COMMIT_KEY_LEN];
            prk.expand(&[COMMIT_KEY_LABEL], &mut commit)?;
            Some(commit)
        }
    };
    Ok(MessageKeys {
        content: AeadKey::new(derived)?,
        commit_key,
    })
}

/// Compare the header's commit key with the derived one, in constant time.
pub(crate) fn check_commitment(
    expected: Option<&[u8; COMMIT_KEY_LEN]>,
    derived: Option<&[u8; COMMIT_KEY_LEN]>,
) -> Result<(), Error> {
    match (expected, derived) {
        (None, None) => Ok(()),
        (Some(a), Some(b)) if ct::ct_eq(a, b) => Ok(()),
        _ => Err(Error::AuthenticationFailed),
    }
}

/// The header-authentication AAD suffix: the pairs of required keys, which are authenticated but
/// not stored in the header.
pub(crate) fn required_context_bytes(
    ec: &EncryptionContext,
    required: &BTreeSet<String>,
) -> Result<Vec<u8>, Error> {
    if required.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ec
        .restricted_to(required.iter().map(String::as_str))
        .serialize()?)
}

fn with_suffix<'a>(body: &'a [u8], suffix: &[u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
    if suffix.is_empty() {
        return body;
    }
    buf.extend_from_slice(body);
    buf.extend_from_slice(suffix);
    buf
}

/// Compute header authentication over the serialized header body.
pub(crate) fn authenticate_header(
    key: &AeadKey,
    body: &[u8],
    required_context: &[u8],
) -> Result<HeaderAuth, Error> {
    let mut buf = Vec::new();
    let aad = with_suffix(body, required_context, &mut buf);
    let tag = key.seal_in_place(&[0u8; IV_LEN], aad, &mut [])?;
    Ok(HeaderAuth::new(tag))
}

/// Verify header authentication over the header body exactly as received.
pub(crate) fn verify_header(
    key: &AeadKey,
    body: &[u8],
    required_context: &[u8],
    auth: &HeaderAuth,
) -> Result<(), Error> {
    let mut buf = Vec::new();
    let aad = with_suffix(body, required_context, &mut buf);
    key.open_in_place(&auth.iv, aad, &mut [], &auth.tag)
        .map_err(|_| Error::AuthenticationFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `derivations` of shared/vectors/kat/kat-vectors.json: data key 0x11.., message id 0x22...
    const DERIVATIONS: [(u16, &str, Option<&str>); 11] = [
        (0x0014, "11111111111111111111111111111111", None),
        (
            0x0046,
            "111111111111111111111111111111111111111111111111",
            None,
        ),
        (
            0x0078,
            "1111111111111111111111111111111111111111111111111111111111111111",
            None,
        ),
        (0x0114, "2fbc24bb73534848d73373e3142c9032", None),
        (
            0x0146,
            "bf40966b516a83fcad86ea0de178e2acb43e5203c1271cf9",
            None,
        ),
        (
            0x0178,
            "6c512c6c446a43bd64bc90351fc69b6afb13b598a1c2f4d1deb8a9823fe0d794",
            None,
        ),
        (0x0214, "4c9d22acbc16c6f4a980fd755f816adc", None),
        (
            0x0346,
            "cbe5fa0da7d2f4632a8ce6b3ad6e1553727da470ad32601b",
            None,
        ),
        (
            0x0378,
            "8e3adfbdef125a6f59a694e30d2dfdc5f604d2f28d58eb2194a745da4263fe29",
            None,
        ),
        (
            0x0478,
            "2eadd4a70665ae17acc82d86ce572e836b798747345d6924e0811e19f88a4fc8",
            Some("a53c46bcc6eaaddad832e89ef968ee154013c0fbc76dfbe852ddf0ce2cf0a408"),
        ),
        (
            0x0578,
            "202c954ad3fe3745bf54309893228cfd285a2988066af1ebac4670ea65997661",
            Some("a53c46bcc6eaaddad832e89ef968ee154013c0fbc76dfbe852ddf0ce2cf0a408"),
        ),
    ];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Keys are opaque, so compare what they do: the same seal under the expected key.
    fn same_key(a: &AeadKey, b: &AeadKey) -> bool {
        let mut x = *b"probe probe probe";
        let mut y = x;
        let ta = a.seal_in_place(&[3; 12], b"aad", &mut x).unwrap();
        let tb = b.seal_in_place(&[3; 12], b"aad", &mut y).unwrap();
        ta == tb && x == y
    }

    #[test]
    fn derivations_match_the_known_answers() {
        for (id, derived, commit) in DERIVATIONS {
            let suite = AlgorithmSuite::from_id(id).unwrap();
            let data_key = SecretBytes::from_slice(&vec![0x11; suite.key_len()]);
            let message_id = MessageId::from_slice(&vec![0x22; suite.message_id_len()]).unwrap();
            let keys = derive(suite, &data_key, &message_id).unwrap();
            let expected = AeadKey::new(&unhex(derived)).unwrap();
            assert!(same_key(&keys.content, &expected), "derived key of {suite}");
            assert_eq!(
                keys.commit_key.map(|k| k.to_vec()),
                commit.map(unhex),
                "commit key of {suite}"
            );
        }
    }

    /// The annotated examples of the ESDK digest, section 16 (data key 01..20, message id 0x5a...).
    #[test]
    fn annotated_examples() {
        let data_key = SecretBytes::from_slice(&(1..=32).collect::<Vec<u8>>());
        for (suite, content, commit) in [
            (
                AlgorithmSuite::Aes256GcmIv12Tag16HkdfSha256,
                "2cabcd1ad3dca511cd7502431585137528c51127871230c96b997259178aefa7",
                None,
            ),
            (
                AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
                "09c08c0f87d3fc8079632533445379fbeedcacc95c306cbcc7b3399b4d059f57",
                Some("3cda59066487d4e67d62a2202257e148edb1c434cf250fc10c660f1a4ee878be"),
            ),
        ] {
            let id = vec![0x5a; suite.message_id_len()];
            let keys = derive(suite, &data_key, &MessageId::from_slice(&id).unwrap()).unwrap();
            assert!(same_key(
                &keys.content,
                &AeadKey::new(&unhex(content)).unwrap()
            ));
            assert_eq!(keys.commit_key.map(|k| k.to_vec()), commit.map(unhex));
        }
    }

    #[test]
    fn commitment_check() {
        let a = [1u8; 32];
        let mut b = a;
        assert!(check_commitment(Some(&a), Some(&b)).is_ok());
        b[31] ^= 1;
        assert!(matches!(
            check_commitment(Some(&a), Some(&b)),
            Err(Error::AuthenticationFailed)
        ));
        assert!(check_commitment(None, Some(&a)).is_err());
        assert!(check_commitment(Some(&a), None).is_err());
        assert!(check_commitment(None, None).is_ok());
    }

    #[test]
    fn wrong_data_key_length_is_refused() {
        let r = derive(
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            &SecretBytes::from_slice(&[0; 16]),
            &MessageId::from_slice(&[0; 32]).unwrap(),
        );
        assert!(matches!(r, Err(Error::Internal(_))));
    }
}
