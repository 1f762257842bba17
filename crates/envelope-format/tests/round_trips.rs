//! Property tests: every format type serializes to bytes that parse back to it, and bytes that
//! parse re-serialize to exactly the bytes consumed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::collections::BTreeMap;

use envelope_format::{
    AlgorithmSuite, EncryptedDataKey, EncryptionContext, Footer, FormatError, FrameHeader,
    FrameKind, Framing, Header, HeaderAuth, HeaderBody, HeaderDecoder, HeaderLimits, MessageId,
    Parsed,
};
use proptest::prelude::*;

fn suite() -> impl Strategy<Value = AlgorithmSuite> {
    proptest::sample::select(AlgorithmSuite::ALL.to_vec())
}

fn context() -> impl Strategy<Value = EncryptionContext> {
    proptest::collection::btree_map("\\PC{0,12}", "\\PC{0,24}", 0..6)
        .prop_map(EncryptionContext::from)
}

fn edk() -> impl Strategy<Value = EncryptedDataKey> {
    (
        "\\PC{0,16}",
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(id, info, ct)| EncryptedDataKey::new(id, info, ct).unwrap())
}

prop_compose! {
    fn header()(
        suite in suite(),
        id in any::<[u8; 32]>(),
        ec in context(),
        edks in proptest::collection::vec(edk(), 1..5),
        frame_length in prop_oneof![Just(0u32), 1u32..=u32::MAX],
        commit_key in any::<[u8; 32]>(),
        iv in any::<[u8; 12]>(),
        tag in any::<[u8; 16]>(),
    ) -> Header {
        let id = MessageId::from_slice(&id[..suite.message_id_len()]).unwrap();
        let framing = Framing::framed(frame_length).unwrap_or(Framing::NonFramed);
        let commit_key = suite.is_committing().then_some(commit_key);
        let body = HeaderBody::new(suite, id, ec, edks, framing, commit_key).unwrap();
        Header::seal(body, |_| {
            // Version 2 headers carry no IV: theirs is implicitly zero.
            let iv = if suite.is_committing() { [0; 12] } else { iv };
            Ok::<_, FormatError>(HeaderAuth { iv, tag })
        })
        .unwrap()
    }
}

proptest! {
    #[test]
    fn encryption_context_round_trips(ec in context()) {
        let bytes = ec.serialize().unwrap();
        prop_assert_eq!(bytes.len(), ec.serialized_len());
        let parsed = EncryptionContext::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &ec);
        prop_assert_eq!(parsed.serialize().unwrap(), bytes);
    }

    #[test]
    fn encryption_context_parse_accepts_any_order_and_keeps_the_pairs(
        pairs in proptest::collection::btree_map("\\PC{1,8}", "\\PC{0,8}", 1..6),
        rotate in 0usize..6,
    ) {
        // Serialize in a rotated (not canonical) order: the same context comes back.
        let mut list: Vec<_> = pairs.iter().collect();
        let n = list.len();
        list.rotate_left(rotate % n);
        let mut bytes = (n as u16).to_be_bytes().to_vec();
        for (k, v) in &list {
            bytes.extend_from_slice(&(k.len() as u16).to_be_bytes());
            bytes.extend_from_slice(k.as_bytes());
            bytes.extend_from_slice(&(v.len() as u16).to_be_bytes());
            bytes.extend_from_slice(v.as_bytes());
        }
        let parsed = EncryptionContext::parse(&bytes).unwrap();
        prop_assert_eq!(parsed.as_map(), &pairs.clone().into_iter().collect::<BTreeMap<_, _>>());
    }

    #[test]
    fn header_round_trips(header in header()) {
        let bytes = header.as_bytes();
        prop_assert_eq!(header.len(), header.body().serialized_len()
            + HeaderAuth::serialized_len(header.body().version()));
        prop_assert_eq!(&header.serialize().unwrap(), bytes);
        let limits = HeaderLimits { max_encrypted_data_keys: None, max_header_len: None };
        let Parsed::Complete(parsed, used) = Header::parse(bytes, &limits).unwrap() else {
            panic!("a whole header is incomplete");
        };
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(parsed.as_bytes(), bytes);
        prop_assert_eq!(&parsed, &header);
    }

    #[test]
    fn header_decodes_the_same_in_any_pieces(
        header in header(),
        cuts in proptest::collection::vec(1usize..200, 0..64),
        body in proptest::collection::vec(any::<u8>(), 0..50),
    ) {
        let mut message = header.as_bytes().to_vec();
        message.extend_from_slice(&body);
        let mut decoder = HeaderDecoder::new(HeaderLimits::default());
        let mut at = 0;
        let mut cuts = cuts.into_iter();
        let (parsed, body_start) = loop {
            let end = (at + cuts.next().unwrap_or(usize::MAX / 2)).min(message.len());
            match decoder.feed(&message[at..end]).unwrap() {
                Parsed::Complete(parsed, used) => break (parsed, at + used),
                Parsed::Incomplete(needed) => {
                    prop_assert!(needed > end && needed <= header.len());
                    at = end;
                }
            }
        };
        prop_assert_eq!(&parsed, &header);
        prop_assert_eq!(&message[body_start..], &body[..]);
    }

    #[test]
    fn frame_headers_round_trip(
        seq in 1u32..u32::MAX,
        frame_length in 1u32..=u32::MAX,
        final_len in any::<u32>(),
        is_final in any::<bool>(),
        id in any::<[u8; 32]>(),
    ) {
        let frame = if is_final {
            FrameHeader::final_frame(seq, final_len % frame_length.saturating_add(1).max(1))
        } else {
            FrameHeader::regular(seq, frame_length)
        };
        let mut bytes = Vec::new();
        frame.append_to(&mut bytes);
        prop_assert_eq!(bytes.len(), frame.len());
        let Parsed::Complete(parsed, used) = FrameHeader::parse_framed(&bytes, frame_length, seq).unwrap() else {
            panic!("incomplete");
        };
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(parsed, frame);
        prop_assert_eq!(parsed.kind(), if is_final { FrameKind::Final } else { FrameKind::Regular });
        // Every strict prefix asks for more, never fails.
        for end in 0..bytes.len() {
            let parsed = FrameHeader::parse_framed(&bytes[..end], frame_length, seq).unwrap();
            prop_assert!(matches!(parsed, Parsed::Incomplete(n) if n > end && n <= bytes.len()));
        }
        let id = MessageId::from_slice(&id).unwrap();
        prop_assert_eq!(parsed.aad(&id).as_bytes().len(), 32 + parsed.kind().content_string().len() + 12);
    }

    #[test]
    fn frames_with_the_wrong_sequence_number_are_refused(seq in 1u32..u32::MAX, other in 1u32..u32::MAX) {
        prop_assume!(seq != other);
        let mut bytes = Vec::new();
        FrameHeader::regular(seq, 4096).append_to(&mut bytes);
        prop_assert_eq!(
            FrameHeader::parse_framed(&bytes, 4096, other),
            Err(FormatError::InvalidSequenceNumber { expected: other, found: seq })
        );
    }

    #[test]
    fn footers_round_trip(signature in proptest::collection::vec(any::<u8>(), 0..300)) {
        let footer = Footer::new(signature.clone()).unwrap();
        let mut bytes = Vec::new();
        footer.append_to(&mut bytes);
        prop_assert_eq!(bytes.len(), footer.serialized_len());
        prop_assert_eq!(Footer::parse(&bytes).unwrap(), Parsed::Complete(footer, bytes.len()));
        prop_assert!(matches!(Footer::parse(&bytes[..bytes.len() - 1]).unwrap(), Parsed::Incomplete(n) if n == bytes.len()));
    }
}

#[test]
fn suite_table_round_trips_for_every_id() {
    let mut found = 0;
    for id in 0..=u16::MAX {
        if let Some(suite) = AlgorithmSuite::from_id(id) {
            assert_eq!(suite.id(), id);
            assert!(AlgorithmSuite::ALL.contains(&suite));
            found += 1;
        }
    }
    assert_eq!(found, AlgorithmSuite::ALL.len());
    for suite in AlgorithmSuite::ALL {
        assert_eq!(AlgorithmSuite::from_id(suite.id()), Some(suite));
        assert_eq!(
            suite.message_id_len(),
            suite.message_format_version().message_id_len()
        );
    }
}

#[test]
fn non_framed_body_headers_round_trip() {
    for len in [0u64, 1, 4096, (1 << 36) - 32] {
        let mut bytes = vec![3u8; 12];
        bytes.extend_from_slice(&len.to_be_bytes());
        let Parsed::Complete(parsed, used) = FrameHeader::parse_non_framed(&bytes).unwrap() else {
            panic!("incomplete");
        };
        assert_eq!(
            (parsed.kind(), parsed.content_len(), used),
            (FrameKind::SingleBlock, len, 20)
        );
        let mut out = Vec::new();
        parsed.append_to(&mut out);
        assert_eq!(out, bytes);
    }
    let mut too_long = vec![3u8; 12];
    too_long.extend_from_slice(&((1u64 << 36) - 31).to_be_bytes());
    assert_eq!(
        FrameHeader::parse_non_framed(&too_long),
        Err(FormatError::NonFramedContentTooLong((1 << 36) - 31))
    );
}
