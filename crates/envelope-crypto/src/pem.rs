//! Minimal PEM (RFC 7468) decoding for keys.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::CryptoError;

/// The DER bytes inside the first `-----BEGIN {label}-----` block of `text`.
pub(crate) fn decode(text: &str, label: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .ok_or(CryptoError::InvalidKey(match label {
            "PRIVATE KEY" => "expected a PEM \"PRIVATE KEY\" (PKCS#8) block",
            "PUBLIC KEY" => "expected a PEM \"PUBLIC KEY\" (SubjectPublicKeyInfo) block",
            _ => "PEM block not found",
        }))?
        + begin.len();
    let stop = text[start..]
        .find(&end)
        .ok_or(CryptoError::InvalidKey("PEM block has no END line"))?
        + start;
    let body: Zeroizing<String> = Zeroizing::new(
        text[start..stop]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    STANDARD
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::InvalidKey("PEM body is not valid Base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects() {
        let pem = "junk\n-----BEGIN PUBLIC KEY-----\nAAEC\nAwQ=\n-----END PUBLIC KEY-----\n";
        assert_eq!(&*decode(pem, "PUBLIC KEY").unwrap(), &[0, 1, 2, 3, 4]);
        assert!(decode(pem, "PRIVATE KEY").is_err());
        assert!(
            decode(
                "-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----",
                "PUBLIC KEY"
            )
            .is_err()
        );
        assert!(decode("-----BEGIN PUBLIC KEY-----\nAAEC", "PUBLIC KEY").is_err());
    }
}
