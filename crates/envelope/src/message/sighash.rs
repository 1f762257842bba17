//! The running hash a signature covers, optionally computed on a helper thread.
//!
//! For signed suites every byte of the message goes through SHA-256 or SHA-384. Where SHA-512 runs
//! in portable code (AWS-LC on AMD CPUs, ~0.5 GB/s) that hashing costs several times the AES-GCM
//! itself. When the client allows it (`SignatureHashing::Background`), once a
//! message has passed [`BACKGROUND_AFTER`] bytes the hashing moves to a helper thread fed with
//! copied batches, so encryption and hashing overlap on two cores. Small messages never start a
//! thread; if one cannot be started, hashing simply stays inline.
//!
//! One-shot operations hold the whole message in memory, so they need no copies: the hasher is
//! detached from the reader or writer and [`hash_alongside`] runs it on a scoped thread over
//! slices of the message itself.

use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use envelope_crypto::digest::{Digest, Hasher};

use crate::Error;

/// Bytes hashed inline before a helper thread takes over.
pub(crate) const BACKGROUND_AFTER: u64 = 256 << 10;
/// The smallest message body a one-shot operation hashes on a scoped thread (below this the
/// thread's start costs more than the overlap saves).
pub(crate) const SCOPED_AFTER: usize = 1 << 20;
/// Bytes of a one-shot message handed to the scoped hasher at a time.
pub(crate) const SCOPED_BATCH: usize = 256 << 10;
/// Size of the batches handed to the helper.
const BATCH: usize = 256 << 10;
/// Batches in flight (bounds the memory to about `BATCHES * BATCH`).
const BATCHES: usize = 3;

pub(crate) struct SignatureHasher {
    state: State,
    background: bool,
}

enum State {
    Inline {
        hasher: Hasher,
        hashed: u64,
    },
    Helper(Helper),
    /// The hasher was lent to [`hash_alongside`]; updates are its business until the digest
    /// comes back.
    Detached,
    Supplied(Digest),
    Finished,
}

struct Helper {
    batch: Vec<u8>,
    to_helper: SyncSender<Vec<u8>>,
    recycled: Receiver<Vec<u8>>,
    handle: JoinHandle<Digest>,
    spare: usize,
}

impl SignatureHasher {
    pub(crate) fn new(hasher: Hasher, background: bool) -> Self {
        Self {
            state: State::Inline { hasher, hashed: 0 },
            background,
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            State::Inline { hasher, hashed } => {
                hasher.update(data);
                *hashed += data.len() as u64;
                if self.background && *hashed >= BACKGROUND_AFTER {
                    self.start_helper();
                }
            }
            State::Helper(helper) => helper.update(data),
            State::Detached | State::Supplied(_) | State::Finished => {}
        }
    }

    /// Lend out the running hash (everything so far hashed, nothing buffered elsewhere). Later
    /// updates are ignored until [`SignatureHasher::supply`] returns the digest of the whole
    /// message. `None` when the hash already runs on a helper thread.
    pub(crate) fn detach(&mut self) -> Option<Hasher> {
        match std::mem::replace(&mut self.state, State::Detached) {
            State::Inline { hasher, .. } => Some(hasher),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// The digest of the whole message, computed by the detached hasher.
    pub(crate) fn supply(&mut self, digest: Digest) {
        if matches!(self.state, State::Detached) {
            self.state = State::Supplied(digest);
        }
    }

    fn start_helper(&mut self) {
        let State::Inline { hasher, hashed } = std::mem::replace(&mut self.state, State::Finished)
        else {
            return;
        };
        let (to_helper, from_main) = sync_channel::<Vec<u8>>(BATCHES);
        let (to_main, recycled) = sync_channel::<Vec<u8>>(BATCHES + 1);
        let mut helper_hasher = hasher.clone();
        let spawned = std::thread::Builder::new()
            .name("envelope-sighash".into())
            .spawn(move || {
                for batch in from_main {
                    helper_hasher.update(&batch);
                    // The main thread may already be gone (dropped mid-message): nothing to recycle to.
                    let _ = to_main.try_send(batch);
                }
                helper_hasher.finish()
            });
        self.state = match spawned {
            Ok(handle) => State::Helper(Helper {
                batch: Vec::with_capacity(BATCH),
                to_helper,
                recycled,
                handle,
                spare: BATCHES,
            }),
            // No thread: keep hashing here.
            Err(_) => State::Inline { hasher, hashed },
        };
        self.background = false;
    }

    pub(crate) fn finish(mut self) -> Result<Digest, Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Inline { hasher, .. } => Ok(hasher.finish()),
            State::Helper(helper) => helper.finish(),
            State::Supplied(digest) => Ok(digest),
            State::Detached => Err(Error::InvalidMaterials(
                "internal: the detached signature hash was not returned",
            )),
            State::Finished => Err(Error::InvalidMaterials(
                "internal: signature hash finished twice",
            )),
        }
    }
}

/// Run `work` on this thread while a scoped helper thread hashes, in order, the slices `work`
/// passes to its feed. The slices borrow a message held in memory in full, so nothing is copied.
/// Returns `work`'s value and the digest over the hasher's prior state and every slice fed. If no
/// thread can be started, the feed hashes inline.
pub(crate) fn hash_alongside<'m, T>(
    hasher: Hasher,
    work: impl FnOnce(&mut dyn FnMut(&'m [u8])) -> Result<T, Error>,
) -> Result<(T, Digest), Error> {
    std::thread::scope(|scope| {
        let (to_helper, parts) = channel::<&'m [u8]>();
        let fallback = hasher.clone();
        let spawned = std::thread::Builder::new()
            .name("envelope-sighash".into())
            .spawn_scoped(scope, move || {
                let mut hasher = hasher;
                for part in parts {
                    hasher.update(part);
                }
                hasher.finish()
            });
        match spawned {
            Ok(handle) => {
                // A send fails only if the helper died; joining it reports that below.
                let mut feed = |part: &'m [u8]| {
                    let _ = to_helper.send(part);
                };
                let value = work(&mut feed);
                drop(to_helper);
                let digest = handle
                    .join()
                    .map_err(|_| Error::InvalidMaterials("the signature hashing thread failed"))?;
                Ok((value?, digest))
            }
            Err(_) => {
                let mut hasher = fallback;
                let value = work(&mut |part: &'m [u8]| hasher.update(part))?;
                Ok((value, hasher.finish()))
            }
        }
    })
}

impl Helper {
    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (BATCH - self.batch.len()).min(data.len());
            self.batch.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.batch.len() == BATCH {
                self.send();
            }
        }
    }

    fn send(&mut self) {
        let next = match self.recycled.try_recv() {
            Ok(buffer) => buffer,
            Err(_) if self.spare > 0 => {
                self.spare -= 1;
                Vec::with_capacity(BATCH)
            }
            // All batches are with the helper: wait for one to come back.
            Err(_) => self
                .recycled
                .recv()
                .unwrap_or_else(|_| Vec::with_capacity(BATCH)),
        };
        let mut full = std::mem::replace(&mut self.batch, next);
        self.batch.clear();
        if let Err(returned) = self.to_helper.send(std::mem::take(&mut full)) {
            // The helper is gone; `finish` reports it. Keep the bytes so nothing is lost meanwhile.
            self.batch = returned.0;
        }
    }

    fn finish(mut self) -> Result<Digest, Error> {
        if !self.batch.is_empty() {
            let last = std::mem::take(&mut self.batch);
            self.to_helper
                .send(last)
                .map_err(|_| Error::InvalidMaterials("the signature hashing thread stopped"))?;
        }
        drop(self.to_helper);
        self.handle
            .join()
            .map_err(|_| Error::InvalidMaterials("the signature hashing thread failed"))
    }
}

impl Drop for SignatureHasher {
    fn drop(&mut self) {
        // A message abandoned half way: let the helper drain and exit on its own.
        if let State::Helper(helper) = std::mem::replace(&mut self.state, State::Finished) {
            drop(helper.to_helper);
        }
    }
}
