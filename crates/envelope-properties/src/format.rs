//! Format properties: what parses re-serializes to exactly the bytes consumed, whatever pieces the
//! bytes arrive in.

use envelope::format::{
    EncryptionContext, Footer, FrameHeader, FrameKind, Framing, Header, HeaderDecoder,
    HeaderLimits, Parsed, TAG_LEN,
};

use crate::{Violation, check};

/// Header parse -> serialize round trip.
///
/// Input: one byte choosing the piece size (1 to 256) for the incremental decoder, then the bytes
/// to parse. A header that parses must be exactly the bytes it consumed, re-serialize from its
/// fields to those bytes, parse again to itself, and come out of the [`HeaderDecoder`] the same
/// when fed in pieces; an incomplete or invalid input must be reported the same both ways.
pub fn header_round_trip(data: &[u8]) -> Result<(), Violation> {
    const P: &str = "header parse -> serialize round trip";
    let Some((&seed, bytes)) = data.split_first() else {
        return Ok(());
    };
    let limits = HeaderLimits::default();
    let one_shot = Header::parse(bytes, &limits);

    let piece = usize::from(seed) + 1;
    let mut decoder = HeaderDecoder::new(limits);
    let mut at = 0;
    let pieces = loop {
        let end = (at + piece).min(bytes.len());
        match decoder.feed(&bytes[at..end]) {
            Ok(Parsed::Complete(header, used)) => break Ok(Parsed::Complete(header, at + used)),
            Ok(Parsed::Incomplete(needed)) if end == bytes.len() => {
                break Ok(Parsed::Incomplete(needed));
            }
            Ok(Parsed::Incomplete(needed)) => {
                check(needed > end, P, || {
                    format!("asked for {needed} bytes with {end} fed")
                })?;
                at = end;
            }
            Err(e) => break Err(e),
        }
    };
    check(pieces == one_shot, P, || {
        format!("{piece}-byte pieces gave {pieces:?}, one call gave {one_shot:?}")
    })?;

    let Ok(Parsed::Complete(header, used)) = one_shot else {
        return Ok(());
    };
    check(
        used == header.len() && header.as_bytes() == &bytes[..used],
        P,
        || format!("the header holds other bytes than the {used} it consumed"),
    )?;
    let body_len = header.body().serialized_len();
    check(header.body_bytes().len() == body_len, P, || {
        format!(
            "body length {} but serialized_len {body_len}",
            header.body_bytes().len()
        )
    })?;
    let serialized = header.serialize().map_err(|e| Violation {
        property: P,
        detail: format!("a parsed header does not serialize: {e}"),
    })?;
    check(serialized == header.as_bytes(), P, || {
        "re-serialized from its fields, the header differs from the bytes it came from".into()
    })?;
    let resealed = Header::seal(header.body().clone(), |_| {
        Ok::<_, envelope::format::FormatError>(*header.auth())
    })
    .map_err(|e| Violation {
        property: P,
        detail: format!("a parsed header body does not seal: {e}"),
    })?;
    check(resealed == header, P, || {
        "sealed again from its parts, the header differs".into()
    })?;
    let again = Header::parse(header.as_bytes(), &limits);
    check(
        again == Ok(Parsed::Complete(header.clone(), used)),
        P,
        || format!("parsing the header's own bytes gave {again:?}"),
    )
}

/// Frame and footer parsing round trip.
///
/// Input: a big-endian `u32` frame length (0: a non-framed body), then body bytes. Frames are
/// parsed in sequence from number 1; each frame header re-serializes to exactly the bytes it was
/// parsed from, and so does the footer after the final frame. No parse may ask for fewer bytes
/// than it was given, or accept what it then cannot reproduce.
pub fn frames_and_footer_round_trip(data: &[u8]) -> Result<(), Violation> {
    const P: &str = "frame and footer round trip";
    let Some((length, body)) = data.split_first_chunk::<4>() else {
        return Ok(());
    };
    let frame_length = u32::from_be_bytes(*length);
    let framing = Framing::framed(frame_length).unwrap_or(Framing::NonFramed);
    let mut at = 0;
    let mut seq = 1u32;
    loop {
        let input = &body[at..];
        let parsed = match framing {
            Framing::Framed(n) => FrameHeader::parse_framed(input, n.get(), seq),
            Framing::NonFramed => FrameHeader::parse_non_framed(input),
        };
        let (frame, len) = match parsed {
            Ok(Parsed::Complete(frame, len)) => (frame, len),
            Ok(Parsed::Incomplete(needed)) => {
                return check(needed > input.len(), P, || {
                    format!("asked for {needed} bytes with {} present", input.len())
                });
            }
            Err(_) => return Ok(()),
        };
        check(len == frame.len() && len <= input.len(), P, || {
            format!(
                "consumed {len} bytes for a {}-byte frame header",
                frame.len()
            )
        })?;
        let mut out = Vec::new();
        frame.append_to(&mut out);
        check(out == input[..len], P, || {
            format!("frame {seq} re-serializes to other bytes")
        })?;
        check(frame.sequence_number() == seq, P, || {
            format!(
                "frame {} accepted where {seq} was due",
                frame.sequence_number()
            )
        })?;
        if frame.kind() == FrameKind::Final {
            check(frame.content_len() <= u64::from(frame_length), P, || {
                "a final frame longer than the frame length was accepted".into()
            })?;
        }
        let unit = frame.unit_len();
        check(
            unit == (len + TAG_LEN) as u64 + frame.content_len(),
            P,
            || "unit length disagrees with its parts".into(),
        )?;
        let Some(next) = usize::try_from(unit)
            .ok()
            .and_then(|u| at.checked_add(u))
            .filter(|&n| n <= body.len())
        else {
            return Ok(());
        };
        at = next;
        if frame.kind() != FrameKind::Regular {
            break;
        }
        let Some(s) = seq.checked_add(1) else {
            return Ok(());
        };
        seq = s;
    }
    match Footer::parse(&body[at..]) {
        Ok(Parsed::Complete(footer, len)) => {
            let mut out = Vec::new();
            footer.append_to(&mut out);
            check(
                out == body[at..at + len] && len == footer.serialized_len(),
                P,
                || "the footer re-serializes to other bytes".into(),
            )
        }
        Ok(Parsed::Incomplete(needed)) => check(needed > body.len() - at, P, || {
            format!(
                "the footer asked for {needed} bytes with {} present",
                body.len() - at
            )
        }),
        Err(_) => Ok(()),
    }
}

/// Encryption-context parsing and canonical serialization.
///
/// Input: the bytes of an encryption-context section. A context that parses serializes
/// canonically (pairs sorted by their UTF-8 bytes) to the same length, holds the same pairs when
/// parsed again, and its canonical bytes equal the input exactly when the input was sorted.
pub fn encryption_context_round_trip(data: &[u8]) -> Result<(), Violation> {
    const P: &str = "encryption context round trip";
    let Ok(context) = EncryptionContext::parse(data) else {
        return Ok(());
    };
    let canonical = context.serialize().map_err(|e| Violation {
        property: P,
        detail: format!("a parsed context does not serialize: {e}"),
    })?;
    check(
        canonical.len() == data.len() && canonical.len() == context.serialized_len(),
        P,
        || {
            format!(
                "{} bytes parsed, {} serialized, serialized_len {}",
                data.len(),
                canonical.len(),
                context.serialized_len()
            )
        },
    )?;
    let again = EncryptionContext::parse(&canonical);
    check(again.as_ref() == Ok(&context), P, || {
        format!("the canonical bytes parse to {again:?}")
    })?;
    let keys: Vec<&str> = context.keys().collect();
    check(
        keys.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
        P,
        || "keys do not iterate in UTF-8 byte order".into(),
    )?;
    if input_is_sorted(data) {
        check(canonical == data, P, || {
            "sorted input serialized to other bytes".into()
        })?;
    }
    Ok(())
}

/// Whether the pairs of a well-formed context section appear in canonical order.
fn input_is_sorted(data: &[u8]) -> bool {
    let mut keys = Vec::new();
    let mut at = 2;
    while at < data.len() {
        let Some(len) = data.get(at..at + 2) else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let Some(key) = data.get(at + 2..at + 2 + len) else {
            return false;
        };
        keys.push(key);
        at += 2 + len;
        let Some(vlen) = data.get(at..at + 2) else {
            return false;
        };
        at += 2 + usize::from(u16::from_be_bytes([vlen[0], vlen[1]]));
    }
    keys.windows(2).all(|w| w[0] < w[1])
}
