//! Streaming encryption and decryption: chunking, release rules, truncation, bounds, async.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation
)]

use std::io::{Read, Write};
use std::sync::Mutex;

use envelope::blocking::Client;
use envelope::keyring::Error as KeyringError;
use envelope::{
    AlgorithmSuite, CommitmentPolicy, CompleteDecryptionMaterials, CompleteEncryptionMaterials,
    DecryptRequest, EncryptionRequest, Error, FormatError, MaterialsManager, RawAesKeyring,
    SecretBytes, async_trait,
};

/// A frame length (test values are never zero).
fn nz(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap()
}

const UNSIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKey;
const SIGNED: AlgorithmSuite = AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384;

fn keyring() -> RawAesKeyring {
    RawAesKeyring::new("test", "key", SecretBytes::from_slice(&[0x42; 32])).unwrap()
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A reader that hands out at most `chunk` bytes per call.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn encrypt_streaming(suite: AlgorithmSuite, frame: u32, pt: &[u8], write_chunk: usize) -> Vec<u8> {
    let client = Client::new();
    let kr = keyring();
    let mut writer = client
        .encrypt_stream(&kr, Vec::new())
        .suite(suite)
        .frame_length(nz(frame))
        .run()
        .unwrap();
    for chunk in pt.chunks(write_chunk.max(1)) {
        writer.write_all(chunk).unwrap();
    }
    writer.finish().unwrap()
}

fn decrypt_streaming(message: &[u8], chunk: usize, read_buf: usize) -> Result<Vec<u8>, Error> {
    let client = Client::new();
    let kr = keyring();
    let mut reader = client
        .decrypt_stream(
            &kr,
            Chunked {
                data: message,
                chunk,
            },
        )
        .run()?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_buf];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The message length without its footer (`u16` length, then a DER `SEQUENCE`).
fn len_before_footer(message: &[u8], signed: bool) -> usize {
    if !signed {
        return message.len();
    }
    let n = message.len();
    (8..=104usize)
        .find(|&sig| {
            n >= sig + 2
                && usize::from(u16::from_be_bytes([
                    message[n - sig - 2],
                    message[n - sig - 1],
                ])) == sig
                && message[n - sig] == 0x30
                && usize::from(message[n - sig + 1]) == sig - 2
        })
        .map(|sig| n - sig - 2)
        .unwrap_or_else(|| panic!("no ECDSA footer at the end of a {n}-byte message"))
}

#[test]
fn round_trips_with_any_chunking() {
    for suite in [UNSIGNED, SIGNED, AlgorithmSuite::Aes128GcmIv12Tag16NoKdf] {
        let client = Client::from(
            envelope::Client::builder()
                .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
                .build(),
        );
        for frame in [1u32, 7, 100, 4096] {
            let f = frame as usize;
            for len in [0, 1, f, 2 * f, 3 * f + 1, 10_000] {
                let pt = plaintext(len);
                for write_chunk in [1, 7, f, 65_536] {
                    if suite == AlgorithmSuite::Aes128GcmIv12Tag16NoKdf {
                        continue; // not allowed to encrypt under the default policy; read below
                    }
                    let message = encrypt_streaming(suite, frame, &pt, write_chunk);
                    // The same layout as one-shot encryption: exact multiples end in a full frame.
                    let one_shot = client.as_async().clone();
                    let one = Client::from(one_shot)
                        .encrypt(&keyring(), &pt)
                        .suite(suite)
                        .frame_length(nz(frame))
                        .run()
                        .unwrap();
                    // ECDSA DER signatures vary in length, so compare everything before the footer.
                    let stream_body = len_before_footer(&message, suite.is_signed());
                    let one_body = len_before_footer(one.ciphertext(), suite.is_signed());
                    assert_eq!(
                        stream_body,
                        one_body,
                        "{suite} frame {frame} len {len}: {} vs {}",
                        message.len(),
                        one.ciphertext().len()
                    );
                    assert_eq!(
                        client
                            .decrypt(&keyring(), &message)
                            .run()
                            .unwrap()
                            .plaintext(),
                        pt
                    );
                    for (chunk, read_buf) in [(1, 1), (7, 3), (4096, 4096), (65_536, 100_000)] {
                        assert_eq!(
                            decrypt_streaming(&message, chunk, read_buf).unwrap(),
                            pt,
                            "{suite} {frame} {len} {chunk}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn an_unfinished_writer_leaves_no_complete_message() {
    let client = Client::new();
    let kr = keyring();
    let mut out = Vec::new();
    {
        let mut writer = client
            .encrypt_stream(&kr, &mut out)
            .suite(UNSIGNED)
            .frame_length(nz(16))
            .run()
            .unwrap();
        writer.write_all(&plaintext(100)).unwrap();
        // dropped without finish()
    }
    assert!(!out.is_empty(), "header and complete frames were written");
    let err = client.decrypt(&kr, &out).run().unwrap_err();
    assert!(
        matches!(err, Error::Format(FormatError::Truncated(_))),
        "{err}"
    );
    let err = decrypt_streaming(&out, 4096, 4096).unwrap_err();
    assert!(
        matches!(err, Error::Io(ref e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{err}"
    );
}

/// Truncation at every byte (so at every frame boundary and inside every part): no read ever
/// reports the end of a complete message, and a signed message never releases its final frame.
#[test]
fn truncation_is_never_success() {
    for suite in [UNSIGNED, SIGNED] {
        let pt = plaintext(3 * 64 + 10);
        let message = encrypt_streaming(suite, 64, &pt, 64);
        for cut in 0..message.len() {
            for chunk in [1, 64, 4096] {
                assert!(
                    decrypt_streaming(&message[..cut], chunk, 64).is_err(),
                    "{suite}: a prefix of {cut} bytes decrypted as complete"
                );
            }
            // What a reader released before the error: never beyond the regular frames for a
            // signed message, never more than the plaintext.
            let client = Client::new();
            let kr = keyring();
            if let Ok(mut reader) = client.decrypt_stream(&kr, &message[..cut]).run() {
                let mut released = Vec::new();
                let mut buf = [0u8; 64];
                while let Ok(n) = reader.read(&mut buf) {
                    assert!(n > 0, "{suite}: end of input reported for a cut message");
                    released.extend_from_slice(&buf[..n]);
                }
                assert!(pt.starts_with(&released));
                if suite.is_signed() {
                    assert!(
                        released.len() <= 3 * 64,
                        "{suite}: the final frame was released before the signature"
                    );
                }
            }
        }
        assert_eq!(decrypt_streaming(&message, 1, 1).unwrap(), pt);
    }
}

#[test]
fn trailing_bytes_fail_after_the_message() {
    for suite in [UNSIGNED, SIGNED] {
        let mut message = encrypt_streaming(suite, 64, &plaintext(200), 64);
        message.extend_from_slice(b"extra");
        for chunk in [1, 4096] {
            let err = decrypt_streaming(&message, chunk, 64).unwrap_err();
            assert!(err.to_string().contains("unexpected bytes follow"), "{err}");
        }
    }
}

#[test]
fn unsigned_only_rejects_signed_messages_at_the_header() {
    let client = Client::new();
    let kr = keyring();
    let signed = encrypt_streaming(SIGNED, 64, &plaintext(10), 64);
    // Only the header is available: the rejection must not need more.
    let header_len = client.decrypt(&kr, &signed).run().unwrap().header().len();
    let err = client
        .decrypt_stream(&kr, &signed[..header_len])
        .unsigned_only()
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::SignedMessageRejected(SIGNED)), "{err}");
    let unsigned = encrypt_streaming(UNSIGNED, 64, &plaintext(10), 64);
    let mut out = Vec::new();
    client
        .decrypt_stream(&kr, &unsigned[..])
        .unsigned_only()
        .run()
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plaintext(10));
}

/// Records the max plaintext length the client passes.
struct Recording {
    inner: RawAesKeyring,
    seen: Mutex<Vec<Option<u64>>>,
}

#[async_trait]
impl MaterialsManager for Recording {
    async fn get_encryption_materials(
        &self,
        request: EncryptionRequest,
    ) -> Result<CompleteEncryptionMaterials, KeyringError> {
        self.seen.lock().unwrap().push(request.max_plaintext_length);
        self.inner.get_encryption_materials(request).await
    }
    async fn decrypt_materials(
        &self,
        request: DecryptRequest,
    ) -> Result<CompleteDecryptionMaterials, KeyringError> {
        self.inner.decrypt_materials(request).await
    }
}

#[test]
fn plaintext_bound_goes_to_the_cmm_and_is_enforced() {
    let client = Client::new();
    let cmm = Recording {
        inner: keyring(),
        seen: Mutex::new(Vec::new()),
    };
    let mut writer = client
        .encrypt_stream(&cmm, Vec::new())
        .plaintext_length_bound(100)
        .run()
        .unwrap();
    writer.write_all(&[0; 60]).unwrap();
    writer.write_all(&[0; 40]).unwrap();
    let err = writer.write_all(&[0; 1]).unwrap_err();
    assert!(
        err.to_string()
            .contains("exceeds the declared bound of 100"),
        "{err}"
    );
    // The writer is poisoned: it cannot finish into a message.
    assert!(writer.finish().is_err());
    // Unbounded streams tell the CMM nothing; one-shot tells it the exact length.
    client
        .encrypt_stream(&cmm, Vec::new())
        .run()
        .unwrap()
        .finish()
        .unwrap();
    client.encrypt(&cmm, &[0; 42]).run().unwrap();
    assert_eq!(*cmm.seen.lock().unwrap(), [Some(100), None, Some(42)]);
}

#[test]
fn a_caching_cmm_serves_bounded_streams() {
    let cache = envelope::LocalCache::new(std::num::NonZeroUsize::new(10).unwrap());
    let cmm = envelope::CachingCmm::builder(keyring(), cache)
        .max_age(std::time::Duration::from_secs(60))
        .max_bytes(1000)
        // Exact call counts: no background refresh racing the assertion once the third
        // stream brings the entry close to its byte limit.
        .refresh_ahead(envelope::cache::RefreshAhead::Off)
        .build()
        .unwrap();
    let client = Client::new();
    for _ in 0..3 {
        let mut w = client
            .encrypt_stream(&cmm, Vec::new())
            .suite(UNSIGNED)
            .plaintext_length_bound(300)
            .run()
            .unwrap();
        w.write_all(&[1; 300]).unwrap();
        w.finish().unwrap();
    }
    let stats = cmm.stats();
    assert_eq!(
        (stats.underlying_calls, stats.hits),
        (1, 2),
        "three 300-byte bounds fit in 1000 bytes"
    );
    client
        .encrypt_stream(&cmm, Vec::new())
        .suite(UNSIGNED)
        .run()
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(
        cmm.stats().bypasses,
        1,
        "an unbounded stream bypasses the cache"
    );
}

#[test]
fn frames_longer_than_the_client_maximum_are_refused_before_any_key_is_used() {
    let message = encrypt_streaming(UNSIGNED, 100_000, &plaintext(150_000), 65_536);
    let small = Client::from(envelope::Client::builder().max_frame_length(65_536).build());
    let kr = keyring();
    let err = small.decrypt_stream(&kr, &message[..]).run().unwrap_err();
    assert!(
        matches!(
            err,
            Error::FrameTooLarge {
                length: 100_000,
                max: 65_536
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("frame length 100000 exceeds this client's maximum of 65536 bytes"),
        "{err}"
    );
    // One-shot decryption holds the whole message already: any frame length is read.
    assert_eq!(
        small.decrypt(&kr, &message).run().unwrap().plaintext(),
        &plaintext(150_000)[..]
    );
    let mut out = Vec::new();
    Client::new()
        .decrypt_stream(&kr, &message[..])
        .run()
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plaintext(150_000));
}

#[test]
fn copy_helpers() {
    let client = Client::new();
    let kr = keyring();
    let pt = plaintext(50_000);
    let message = client
        .encrypt_stream(&kr, Vec::new())
        .frame_length(nz(1000))
        .run()
        .unwrap()
        .encrypt_from(&pt[..])
        .unwrap();
    let (_, written) = client
        .decrypt_stream(&kr, &message[..])
        .run()
        .unwrap()
        .decrypt_into(std::io::sink())
        .unwrap();
    assert_eq!(written, 50_000);
    let mut out = Vec::new();
    client
        .decrypt_stream(&kr, &message[..])
        .run()
        .unwrap()
        .decrypt_into(&mut out)
        .unwrap();
    assert_eq!(out, pt);
}

/// The regular frames and the final frame's content length of a framed message.
fn frames_of(message: &[u8], header_len: usize, frame: usize) -> (usize, usize) {
    let mut at = header_len;
    let mut regular = 0;
    loop {
        let seq = u32::from_be_bytes(message[at..at + 4].try_into().unwrap());
        if seq == u32::MAX {
            let len = &message[at + 20..at + 24];
            return (
                regular,
                u32::from_be_bytes(len.try_into().unwrap()) as usize,
            );
        }
        regular += 1;
        at += 4 + 12 + frame + 16;
    }
}

/// What [`FinalFrame`](envelope::format::FinalFrame) promises: with `Empty`, an exact multiple of
/// the frame length goes into regular frames and an empty final frame follows (the form the Python
/// ESDK before 4.0 requires); with `Full` (the default) the last chunk is the final frame. The
/// one-shot API (both signature hashing paths, past the parallel threshold) and the stream, fed in
/// pieces smaller than, equal to and larger than a frame, agree.
#[test]
fn the_final_frame_form_is_honoured_by_one_shot_and_streams() {
    use envelope::SignatureHashing;
    use envelope::format::FinalFrame;
    let kr = keyring();
    for hashing in [SignatureHashing::Inline, SignatureHashing::OneShot] {
        let client = Client::from(
            envelope::Client::builder()
                .signature_hashing(hashing)
                .build(),
        );
        for suite in [UNSIGNED, SIGNED] {
            for (frame, len) in [
                (128, 0),
                (128, 5),
                (128, 128),
                (128, 3 * 128),
                (128, 3 * 128 + 5),
                (4096, 2 << 20),
            ] {
                let pt = plaintext(len);
                for form in [FinalFrame::Full, FinalFrame::Empty] {
                    let exact = len > 0 && len % frame == 0;
                    let expected = match (form, exact) {
                        (FinalFrame::Empty, true) => (len / frame, 0),
                        (_, true) => (len / frame - 1, frame),
                        _ => (len / frame, len % frame),
                    };
                    let one_shot = client
                        .encrypt(&kr, &pt)
                        .suite(suite)
                        .frame_length(nz(frame as u32))
                        .final_frame(form)
                        .run()
                        .unwrap();
                    let header = one_shot.header().len();
                    let what = format!("{hashing:?} {suite} {len} bytes {form:?}");
                    assert_eq!(
                        frames_of(one_shot.ciphertext(), header, frame),
                        expected,
                        "{what}"
                    );
                    let back = client.decrypt(&kr, one_shot.ciphertext()).run().unwrap();
                    assert_eq!(back.plaintext(), pt, "{what}");
                    for piece in [1, 100, frame, frame + 1, 1 << 20] {
                        let mut writer = client
                            .encrypt_stream(&kr, Vec::new())
                            .suite(suite)
                            .frame_length(nz(frame as u32))
                            .final_frame(form)
                            .run()
                            .unwrap();
                        for chunk in pt.chunks(piece) {
                            writer.write_all(chunk).unwrap();
                        }
                        let streamed = writer.finish().unwrap();
                        assert_eq!(
                            frames_of(&streamed, header, frame),
                            expected,
                            "{what} in {piece}s"
                        );
                        assert_eq!(
                            streamed.len(),
                            one_shot.ciphertext().len() - footer_len(one_shot.ciphertext(), suite)
                                + footer_len(&streamed, suite),
                            "{what} in {piece}s"
                        );
                        let back = decrypt_streaming_with(&client, &streamed);
                        assert_eq!(back, pt, "{what} in {piece}s");
                    }
                }
            }
        }
    }
}

/// The signature footer's length (0 for an unsigned suite): its 2-byte length field sits right
/// after the final frame, which ends the message otherwise.
fn footer_len(message: &[u8], suite: AlgorithmSuite) -> usize {
    if !suite.is_signed() {
        return 0;
    }
    // A DER ECDSA P-384 signature is 102 to 104 bytes; find the length field that ends the message.
    (100..=104)
        .find(|&sig| {
            let at = message.len() - sig - 2;
            u16::from_be_bytes([message[at], message[at + 1]]) as usize == sig
        })
        .map_or(0, |sig| sig + 2)
}

fn decrypt_streaming_with(client: &Client, message: &[u8]) -> Vec<u8> {
    let kr = keyring();
    let mut reader = client.decrypt_stream(&kr, message).run().unwrap();
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    out
}

mod asynchronous {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

    use super::*;

    /// An async reader that hands out `chunk` bytes per poll and returns Pending every other poll.
    struct SlowReader {
        data: Vec<u8>,
        at: usize,
        chunk: usize,
        flip: bool,
    }

    impl AsyncRead for SlowReader {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            self.flip = !self.flip;
            if self.flip {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = self
                .chunk
                .min(buf.remaining())
                .min(self.data.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn async_round_trips_and_truncation() {
        let client = envelope::Client::new();
        let kr = keyring();
        for suite in [UNSIGNED, SIGNED] {
            for len in [0, 1, 4096, 3 * 4096, 20_000] {
                let pt = plaintext(len);
                let mut writer = client
                    .encrypt_async_stream(&kr, Vec::new())
                    .suite(suite)
                    .await
                    .unwrap();
                for chunk in pt.chunks(1000) {
                    writer.write_all(chunk).await.unwrap();
                }
                let message = writer.finish().await.unwrap();
                assert_eq!(client.decrypt(&kr, &message).await.unwrap().plaintext(), pt);
                for chunk in [1, 7, 4096, 65_536] {
                    let source = SlowReader {
                        data: message.clone(),
                        at: 0,
                        chunk,
                        flip: false,
                    };
                    let mut reader = client.decrypt_async_stream(&kr, source).await.unwrap();
                    let mut out = Vec::new();
                    reader.read_to_end(&mut out).await.unwrap();
                    assert_eq!(out, pt);
                    assert!(reader.is_complete());
                }
                // Cut inside the last frame: an error, never a clean end.
                let cut = message.len() - 5;
                let source = SlowReader {
                    data: message[..cut].to_vec(),
                    at: 0,
                    chunk: 4096,
                    flip: false,
                };
                let mut reader = client.decrypt_async_stream(&kr, source).await.unwrap();
                assert!(reader.read_to_end(&mut Vec::new()).await.is_err());
            }
        }
        // shutdown() finishes the message too.
        let mut writer = client.encrypt_async_stream(&kr, Vec::new()).await.unwrap();
        writer.write_all(b"via shutdown").await.unwrap();
        writer.shutdown().await.unwrap();
    }
}

#[test]
fn background_signature_hashing_while_streaming() {
    let background = Client::from(
        envelope::Client::builder()
            .signature_hashing(envelope::SignatureHashing::Background)
            .build(),
    );
    let kr = keyring();
    let pt = plaintext(2 << 20);
    let mut writer = background
        .encrypt_stream(&kr, Vec::new())
        .suite(SIGNED)
        .run()
        .unwrap();
    for chunk in pt.chunks(10_000) {
        writer.write_all(chunk).unwrap();
    }
    let message = writer.finish().unwrap();
    for client in [&background, &Client::new()] {
        let mut out = Vec::new();
        client
            .decrypt_stream(
                &kr,
                Chunked {
                    data: &message,
                    chunk: 7000,
                },
            )
            .run()
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, pt);
    }
    // Abandoning a stream mid-message with a helper thread running is clean.
    let mut writer = background
        .encrypt_stream(&kr, Vec::new())
        .suite(SIGNED)
        .run()
        .unwrap();
    writer.write_all(&pt).unwrap();
    drop(writer);
}
