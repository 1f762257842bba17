//! The incremental header decoder: linear in the header length whatever the piece sizes, exact
//! about which bytes are the header's, and bounded by the limits before it buffers anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

mod common;

use envelope_format::{EncryptedDataKey, FormatError, Header, HeaderDecoder, HeaderLimits, Parsed};

/// A v2 header with `keys` encrypted data keys of `key_len` ciphertext bytes each.
fn header_with_keys(keys: usize, key_len: usize) -> Header {
    let edks = (0..keys)
        .map(|_| EncryptedDataKey::new("", Vec::new(), vec![0xab; key_len]).unwrap())
        .collect();
    common::v2_header(edks)
}

fn unlimited() -> HeaderLimits {
    HeaderLimits {
        max_encrypted_data_keys: None,
        max_header_len: None,
    }
}

/// Defect: `Header::parse` restarted from the first byte after every read, so a 65,535-key header
/// fed one byte at a time took minutes (16,384 keys: 14 s; 65,535: 310 s). Resumed, it is linear:
/// a few milliseconds here even unoptimised, so the bound below cannot be met by a quadratic
/// parser on any machine (four orders of magnitude apart).
#[test]
fn header_parsing_is_linear_under_short_reads() {
    let header = header_with_keys(usize::from(u16::MAX), 0);
    let bytes = header.as_bytes();
    assert!(bytes.len() > 393_000, "{}", bytes.len());
    let started = Instant::now();
    let mut decoder = HeaderDecoder::new(HeaderLimits::default());
    let mut parsed = None;
    for (i, byte) in bytes.iter().enumerate() {
        match decoder.feed(std::slice::from_ref(byte)).unwrap() {
            Parsed::Incomplete(needed) => {
                assert!(needed > i + 1, "asked for {needed} with {} buffered", i + 1);
            }
            Parsed::Complete(h, used) => {
                assert_eq!((i + 1, used), (bytes.len(), 1));
                parsed = Some(h);
            }
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(parsed.as_ref(), Some(&header));
    assert!(
        elapsed < Duration::from_secs(1),
        "fed one byte at a time, a {}-byte header took {elapsed:?}",
        bytes.len()
    );
}

#[test]
fn the_piece_that_completes_the_header_says_where_the_body_starts() {
    let header = header_with_keys(3, 40);
    let mut message = header.as_bytes().to_vec();
    message.extend_from_slice(b"body bytes");
    for split in [1, 7, 100, header.len() - 1, header.len()] {
        let mut decoder = HeaderDecoder::new(HeaderLimits::default());
        assert!(
            matches!(
                decoder.feed(&message[..split]).unwrap(),
                Parsed::Incomplete(_)
            ) || split == header.len()
        );
        if split == header.len() {
            continue;
        }
        let Parsed::Complete(parsed, used) = decoder.feed(&message[split..]).unwrap() else {
            panic!("incomplete after the whole message");
        };
        assert_eq!(parsed, header);
        assert_eq!(&message[split + used..], b"body bytes");
        assert_eq!(
            decoder.feed(b"more").unwrap_err(),
            FormatError::HeaderAlreadyDecoded
        );
    }
}

#[test]
fn an_error_is_sticky_and_nothing_past_the_limit_is_buffered() {
    let header = header_with_keys(40, 1000);
    let limits = HeaderLimits {
        max_encrypted_data_keys: None,
        max_header_len: Some(10_000),
    };
    let mut decoder = HeaderDecoder::new(limits);
    let mut error = None;
    for piece in header.as_bytes().chunks(333) {
        match decoder.feed(piece) {
            Ok(Parsed::Incomplete(needed)) => {
                assert!(needed <= 10_000);
                assert!(decoder.received() <= 10_000);
            }
            Ok(Parsed::Complete(..)) => panic!("a 40 KB header passed a 10 KB limit"),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert_eq!(error, Some(FormatError::HeaderTooLarge { max: 10_000 }));
    assert_eq!(
        decoder.feed(b"x").unwrap_err(),
        FormatError::HeaderTooLarge { max: 10_000 }
    );
}

#[test]
fn too_many_keys_fail_when_the_count_is_read() {
    let header = header_with_keys(11, 0);
    let limits = HeaderLimits {
        max_encrypted_data_keys: Some(10),
        max_header_len: None,
    };
    // version, suite, message id, context length + context, key count
    let count_end = 1 + 2 + 32 + 2 + 2 + 4 + 6 + 4 + 2;
    let mut decoder = HeaderDecoder::new(limits);
    assert!(matches!(
        decoder.feed(&header.as_bytes()[..count_end - 1]),
        Ok(Parsed::Incomplete(_))
    ));
    assert_eq!(
        decoder
            .feed(&header.as_bytes()[count_end - 1..count_end])
            .unwrap_err(),
        FormatError::TooManyEncryptedDataKeys { count: 11, max: 10 }
    );
}

#[test]
fn one_shot_parse_and_decoder_agree_on_every_prefix() {
    let header = header_with_keys(2, 5);
    let bytes = header.as_bytes();
    for end in 0..bytes.len() {
        let one_shot = Header::parse(&bytes[..end], &unlimited()).unwrap();
        let Parsed::Incomplete(needed) = one_shot else {
            panic!("complete at {end}");
        };
        assert!(needed > end && needed <= bytes.len());
        let mut decoder = HeaderDecoder::new(unlimited());
        assert_eq!(
            decoder.feed(&bytes[..end]).unwrap(),
            Parsed::Incomplete(needed)
        );
    }
    assert_eq!(
        Header::parse(bytes, &unlimited()).unwrap(),
        Parsed::Complete(header.clone(), bytes.len())
    );
}
