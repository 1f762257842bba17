//! What the decoder tests and the header-parse bench share: a sealed v2 header around given keys.

use envelope_format::{
    AlgorithmSuite, EncryptedDataKey, EncryptionContext, FormatError, Framing, Header, HeaderAuth,
    HeaderBody, MessageId,
};

/// A sealed v2 header (committing suite, 4 KiB frames, one context pair) holding `edks`.
pub(crate) fn v2_header(edks: Vec<EncryptedDataKey>) -> Header {
    let body = HeaderBody::new(
        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
        MessageId::from_slice(&[7; 32]).unwrap(),
        EncryptionContext::from_iter([("tenant", "acme")]),
        edks,
        Framing::framed(4096).unwrap(),
        Some([9; 32]),
    )
    .unwrap();
    Header::seal(body, |_| Ok::<_, FormatError>(HeaderAuth::new([5; 16]))).unwrap()
}
