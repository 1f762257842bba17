//! Known answers: with an injected data key, message id, wrapping IV and signing key, encryption
//! reproduces the exact bytes of every unsigned suite in kat/kat-vectors.json, and the header and
//! body of every signed one (whose footer signature is randomized).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::sync::Arc;

use base64::Engine;
use envelope::blocking::Client;
use envelope::crypto::ecdsa::SigningKey;
use envelope::format::{
    FrameHeader, FrameKind, Header, HeaderLimits, MessageId, PUBLIC_KEY_FIELD, Parsed,
};
use envelope::keyring::signature_curve;
use envelope::{
    AlgorithmSuite, CommitmentPolicy, CompleteDecryptionMaterials, CompleteEncryptionMaterials,
    DecryptRequest, EncryptionContext, EncryptionMaterials, EncryptionRequest, Keyring,
    MaterialsManager, RawAesKeyring, SecretBytes, async_trait,
};
use envelope_vectors::testing::vectors_or_skip;
use serde_json::Value;

/// A frame length (test values are never zero).
fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap()
}

/// A CMM that injects a fixed data key and signing key, then lets the raw AES keyring wrap it.
struct KatCmm {
    keyring: RawAesKeyring,
    data_key: Vec<u8>,
    signing_scalar: Option<Vec<u8>>,
}

#[async_trait]
impl MaterialsManager for KatCmm {
    async fn get_encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<CompleteEncryptionMaterials, envelope::keyring::Error> {
        let suite = request.suite.unwrap();
        let mut ec = request.encryption_context;
        let signing_key = match (suite.signature(), &self.signing_scalar) {
            (Some(sig), Some(scalar)) => {
                let key = SigningKey::from_private_scalar(signature_curve(sig), scalar)?;
                let public =
                    base64::engine::general_purpose::STANDARD.encode(key.public_key_compressed()?);
                ec.insert(PUBLIC_KEY_FIELD, public);
                Some(Arc::new(key))
            }
            _ => None,
        };
        let materials = EncryptionMaterials::new(
            suite,
            ec,
            request.required_encryption_context_keys,
            signing_key,
        )?
        .with_data_key(SecretBytes::from_slice(&self.data_key))?;
        self.keyring.on_encrypt(materials).await?.complete()
    }

    async fn decrypt_materials(
        &self,
        request: DecryptRequest,
    ) -> Result<CompleteDecryptionMaterials, envelope::keyring::Error> {
        self.keyring.decrypt_materials(request).await
    }
}

fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap()).unwrap()
}

/// Where the footer starts: walk the frames after the header.
fn body_end(message: &[u8]) -> usize {
    let Parsed::Complete(header, mut at) =
        Header::parse(message, &HeaderLimits::default()).unwrap()
    else {
        panic!("incomplete header")
    };
    let frame_length = header.body().framing().frame_length();
    let mut seq = 1;
    loop {
        let Parsed::Complete(frame, len) =
            FrameHeader::parse_framed(&message[at..], frame_length, seq).unwrap()
        else {
            panic!("incomplete frame")
        };
        at += len + frame.content_len() as usize + 16;
        if frame.kind() == FrameKind::Final {
            return at;
        }
        seq += 1;
    }
}

#[test]
fn deterministic_known_answers() {
    let Some(dir) = vectors_or_skip("deterministic_known_answers") else {
        return;
    };
    let kat: Value =
        serde_json::from_slice(&std::fs::read(dir.join("kat/kat-vectors.json")).unwrap()).unwrap();
    let keyring_info = &kat["raw_aes_keyring"];
    let mut exact = 0;
    let mut signed = 0;
    for t in kat["deterministic"].as_array().unwrap() {
        let suite = AlgorithmSuite::from_id(
            u16::from_str_radix(t["suite_id"].as_str().unwrap(), 16).unwrap(),
        )
        .unwrap();
        let iv: [u8; 12] = hex_field(t, "raw_aes_wrap_iv_hex").try_into().unwrap();
        let keyring = RawAesKeyring::new(
            keyring_info["key_namespace"].as_str().unwrap(),
            keyring_info["key_name"].as_str().unwrap(),
            SecretBytes::from_slice(&hex_field(keyring_info, "wrapping_key_hex")),
        )
        .unwrap()
        .__with_fixed_iv(iv);
        let cmm = KatCmm {
            keyring,
            data_key: hex_field(t, "data_key_hex"),
            signing_scalar: t["signing_key_private_scalar_hex"]
                .as_str()
                .map(|s| hex::decode(s).unwrap()),
        };
        let policy = CommitmentPolicy::strictest_for(suite);
        let client = Client::from(
            envelope::Client::builder()
                .commitment_policy(policy)
                .build(),
        );
        let ec: EncryptionContext = t["encryption_context"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let plaintext = hex_field(t, "plaintext_hex");
        let expected = hex_field(t, "message_hex");
        let encrypted = client
            .encrypt(&cmm, &plaintext)
            .suite(suite)
            .frame_length(nz(t["frame_length"].as_u64().unwrap() as u32))
            .encryption_context(ec)
            .__message_id(MessageId::from_slice(&hex_field(t, "message_id_hex")).unwrap())
            .run()
            .unwrap();
        let ours = encrypted.ciphertext();
        assert_eq!(
            encrypted.header().len() as u64,
            t["header_length"].as_u64().unwrap(),
            "{suite}"
        );
        if suite.is_signed() {
            let end = body_end(&expected);
            assert_eq!(
                hex::encode(&ours[..end]),
                hex::encode(&expected[..end]),
                "header and body of {suite}"
            );
            assert_eq!(body_end(ours), end);
            signed += 1;
        } else {
            assert_eq!(
                hex::encode(ours),
                hex::encode(&expected),
                "whole message of {suite}"
            );
            exact += 1;
        }
        // Both decrypt to the plaintext.
        for m in [ours, &expected[..]] {
            let decrypted = client.decrypt(&cmm, m).run().unwrap();
            assert_eq!(decrypted.plaintext(), plaintext);
        }
    }
    println!(
        "{exact} unsigned suites byte-exact, {signed} signed suites byte-exact up to the footer"
    );
    assert_eq!((exact, signed), (7, 4));
}
