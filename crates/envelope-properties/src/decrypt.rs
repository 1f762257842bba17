//! Decryption properties: no input makes decryption panic, hang or release what it should not,
//! and streaming decryption, however its input is cut, agrees with one-shot decryption.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use envelope::blocking::Client;
use envelope::{CommitmentPolicy, Error, Keyring, MultiKeyring, RawAesKeyring, SecretBytes};

use crate::{Violation, check};

/// The raw AES keys of the shared test vectors (`aes-128`, `aes-192`, `aes-256` under the provider
/// id `aws-raw-vectors-persistant`), so that the seed corpus, built from those vectors, decrypts
/// and mutations reach the body and footer. Their bytes are 00 01 .. 09 10 11 ..: the digits of
/// the index read as hex.
fn keyring() -> Result<&'static MultiKeyring, Violation> {
    static KEYRING: OnceLock<Result<MultiKeyring, String>> = OnceLock::new();
    let ring = |bits: usize| -> Result<Arc<dyn Keyring>, String> {
        let bytes: Vec<u8> = (0..bits / 8)
            .map(|i| u8::try_from(i / 10 * 16 + i % 10).unwrap_or(0))
            .collect();
        let keyring = RawAesKeyring::new(
            "aws-raw-vectors-persistant",
            format!("aes-{bits}"),
            SecretBytes::new(bytes),
        )
        .map_err(|e| e.to_string())?;
        Ok(Arc::new(keyring))
    };
    KEYRING
        .get_or_init(|| {
            MultiKeyring::new(Some(ring(256)?), vec![ring(128)?, ring(192)?])
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Violation {
            property: "the test keyring builds",
            detail: e.clone(),
        })
}

fn client() -> Client {
    Client::from(
        envelope::Client::builder()
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .build(),
    )
}

/// One-shot decryption with the vectors' raw AES keys.
///
/// Input: a message. Decryption must return (no panic, no hang) and, when it succeeds, decrypting
/// the same bytes again gives the same plaintext and context.
pub fn decrypt_one_shot(data: &[u8]) -> Result<(), Violation> {
    const P: &str = "one-shot decrypt";
    let client = client();
    let keyring = keyring()?;
    let first = client.decrypt(keyring, data).run();
    let Ok(first) = first else {
        return Ok(());
    };
    let second = client.decrypt(keyring, data).run();
    check(
        second.as_ref().is_ok_and(|s| {
            s.plaintext() == first.plaintext()
                && s.encryption_context() == first.encryption_context()
        }),
        P,
        || format!("a second decryption of the same message gave {second:?}"),
    )
}

/// How a stream's input is cut into reads.
///
/// Read from the front of the fuzz input: one byte `n`, then `n % 9` bytes giving read sizes
/// (each byte + 1, used in turn; none: every read is filled as far as the reader asks); then one
/// byte of flags (bit 0: use the tokio reader); the rest is the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkPlan {
    /// The sizes of successive reads, cycled.
    pub sizes: Vec<usize>,
    /// Decrypt through the async (tokio) reader instead of `std::io`.
    pub asynchronous: bool,
}

impl<'a> Arbitrary<'a> for ChunkPlan {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let count = u8::arbitrary(u)? % 9;
        let sizes = (0..count)
            .map(|_| u8::arbitrary(u).map(|b| usize::from(b) + 1))
            .collect::<arbitrary::Result<_>>()?;
        let flags = u8::arbitrary(u)?;
        Ok(Self {
            sizes,
            asynchronous: flags & 1 == 1,
        })
    }
}

/// A reader handing out its bytes in the plan's sizes.
struct Planned<'a> {
    data: &'a [u8],
    sizes: &'a [usize],
    next: usize,
}

impl Planned<'_> {
    fn take(&mut self, room: usize) -> &[u8] {
        let size = match self.sizes.get(self.next % self.sizes.len().max(1)) {
            Some(&s) => s,
            None => usize::MAX,
        };
        self.next += 1;
        let n = size.min(room).min(self.data.len());
        let (out, rest) = self.data.split_at(n);
        self.data = rest;
        out
    }
}

impl Read for Planned<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let piece = self.take(buf.len());
        buf[..piece.len()].copy_from_slice(piece);
        Ok(piece.len())
    }
}

impl tokio::io::AsyncRead for Planned<'_> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let piece = this.take(buf.remaining());
        buf.put_slice(piece);
        std::task::Poll::Ready(Ok(()))
    }
}

/// Streaming decryption of a message cut into reads by a [`ChunkPlan`] equals one-shot decryption.
///
/// One-shot success means the stream yields exactly the same plaintext and ends cleanly; one-shot
/// failure means the stream fails too (it may have released regular frames before, never a final
/// frame that did not verify). The one allowed difference: a stream refuses frames longer than the
/// client's maximum frame length, which one-shot decryption reads.
pub fn streaming_matches_one_shot(data: &[u8]) -> Result<(), Violation> {
    const P: &str = "streaming decrypt equals one-shot decrypt";
    let mut u = Unstructured::new(data);
    let Ok(plan) = ChunkPlan::arbitrary(&mut u) else {
        return Ok(());
    };
    let message = u.take_rest();
    let client = client();
    let keyring = keyring()?;
    let one_shot = client
        .decrypt(keyring, message)
        .run()
        .map(|d| d.into_plaintext());
    let reader = Planned {
        data: message,
        sizes: &plan.sizes,
        next: 0,
    };
    let streamed = if plan.asynchronous {
        stream_async(&client, keyring, reader)
    } else {
        stream_sync(&client, keyring, reader)
    };
    match (&one_shot, &streamed) {
        (Ok(a), Ok(b)) => check(a == b, P, || {
            format!(
                "{} bytes one-shot, {} streamed, differing",
                a.len(),
                b.len()
            )
        }),
        (Err(_), Err(_)) => Ok(()),
        (Ok(_), Err(Error::FrameTooLarge { .. })) => Ok(()),
        (Ok(a), Err(e)) => Err(Violation {
            property: P,
            detail: format!(
                "one-shot gave {} bytes, streaming ({plan:?}) failed: {e}",
                a.len()
            ),
        }),
        (Err(e), Ok(b)) => Err(Violation {
            property: P,
            detail: format!(
                "one-shot failed ({e}), streaming ({plan:?}) gave {} bytes",
                b.len()
            ),
        }),
    }
}

fn io_to_envelope(e: std::io::Error) -> Error {
    match e.into_inner().map(|inner| inner.downcast::<Error>()) {
        Some(Ok(e)) => *e,
        Some(Err(other)) => Error::Io(std::io::Error::other(other)),
        None => Error::Io(std::io::Error::other("I/O error")),
    }
}

fn stream_sync(
    client: &Client,
    keyring: &MultiKeyring,
    reader: Planned<'_>,
) -> Result<Vec<u8>, Error> {
    let mut stream = client.decrypt_stream(keyring, reader).run()?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).map_err(io_to_envelope)?;
    Ok(out)
}

fn stream_async(
    client: &Client,
    keyring: &MultiKeyring,
    reader: Planned<'_>,
) -> Result<Vec<u8>, Error> {
    use tokio::io::AsyncReadExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(Error::Io)?;
    runtime.block_on(async {
        let mut stream = client
            .as_async()
            .decrypt_async_stream(keyring, reader)
            .await?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.map_err(io_to_envelope)?;
        Ok(out)
    })
}
