//! The running hash a signature covers, optionally computed on a helper thread.
//!
//! For signed suites every byte of the message goes through SHA-256 or SHA-384. Where SHA-512 runs
//! in portable code (AWS-LC on AMD CPUs, ~0.5 GB/s) that hashing costs several times the AES-GCM
//! itself. When the client allows it (`SignatureHashing::Background`), once a
//! message has passed [`BACKGROUND_AFTER`] bytes the hashing moves to a helper thread fed with
//! copied batches, so encryption and hashing overlap on two cores. Small messages never start a
//! thread; if one cannot be started, hashing simply stays inline.
//!
//! At most one helper per spare CPU runs at a time in the whole process ([`HELPERS`]); a message
//! that finds none free hashes inline, so busy machines are not oversubscribed.
//!
//! One-shot operations hold the whole message in memory, so they need no copies: the hasher is
//! detached from the reader or writer and [`hash_alongside`] runs it on a scoped thread over
//! slices of the message itself.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use envelope_crypto::digest::{Digest, Hasher};
use envelope_crypto::ecdsa::Curve;

use crate::error::Error;

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

/// The hashing helpers running in this process.
static HELPERS: HelperLimit = HelperLimit::new();

/// Counts running helper threads against a maximum.
pub(crate) struct HelperLimit {
    active: AtomicUsize,
}

/// A place for one helper thread; given back when dropped (when the thread ends).
pub(crate) struct HelperSlot<'a> {
    limit: &'a HelperLimit,
}

impl HelperLimit {
    pub(crate) const fn new() -> Self {
        Self {
            active: AtomicUsize::new(0),
        }
    }

    /// A slot, if fewer than `max` helpers run.
    pub(crate) fn try_acquire(&self, max: usize) -> Option<HelperSlot<'_>> {
        let mut active = self.active.load(Ordering::Relaxed);
        loop {
            if active >= max {
                return None;
            }
            match self.active.compare_exchange_weak(
                active,
                active + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(HelperSlot { limit: self }),
                Err(now) => active = now,
            }
        }
    }
}

impl Drop for HelperSlot<'_> {
    fn drop(&mut self) {
        self.limit.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// CPUs this process may use beyond the one it runs on (looked up once).
fn spare_cpus() -> usize {
    static SPARE: OnceLock<usize> = OnceLock::new();
    *SPARE.get_or_init(|| std::thread::available_parallelism().map_or(0, |n| n.get() - 1))
}

/// A slot for a helper thread, if a spare CPU has none.
fn helper_slot() -> Option<HelperSlot<'static>> {
    let slot = HELPERS.try_acquire(spare_cpus());
    #[cfg(test)]
    if slot.is_some() {
        tests::SLOTS_TAKEN.fetch_add(1, Ordering::Relaxed);
    }
    slot
}

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

    /// A hasher for a message signed on `curve`, started with its serialized `header`.
    pub(crate) fn over_header(curve: Curve, background: bool, header: &[u8]) -> Self {
        let mut hasher = Self::new(Hasher::new(curve.hash()), background);
        hasher.update(header);
        hasher
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
        // Every spare CPU already hashes for someone: stay inline for this message.
        self.background = false;
        let Some(slot) = helper_slot() else {
            self.state = State::Inline { hasher, hashed };
            return;
        };
        let (to_helper, from_main) = sync_channel::<Vec<u8>>(BATCHES);
        let (to_main, recycled) = sync_channel::<Vec<u8>>(BATCHES + 1);
        let mut helper_hasher = hasher.clone();
        let spawned = std::thread::Builder::new()
            .name("envelope-sighash".into())
            .spawn(move || {
                let _slot = slot;
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
    }

    pub(crate) fn finish(mut self) -> Result<Digest, Error> {
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Inline { hasher, .. } => Ok(hasher.finish()),
            State::Helper(helper) => helper.finish(),
            State::Supplied(digest) => Ok(digest),
            State::Detached => Err(Error::Internal(
                "the detached signature hash was not returned",
            )),
            State::Finished => Err(Error::Internal("signature hash finished twice")),
        }
    }
}

/// Run `work` on this thread while a scoped helper thread hashes, in order, the slices `work`
/// passes to its feed. The slices borrow a message held in memory in full, so nothing is copied.
/// Returns `work`'s value and the digest over the hasher's prior state and every slice fed. If no
/// spare CPU is free or no thread can be started, the feed hashes inline.
pub(crate) fn hash_alongside<'m, T>(
    hasher: Hasher,
    work: impl FnOnce(&mut dyn FnMut(&'m [u8])) -> Result<T, Error>,
) -> Result<(T, Digest), Error> {
    std::thread::scope(|scope| {
        let (to_helper, parts) = channel::<&'m [u8]>();
        let fallback = hasher.clone();
        let spawned = match helper_slot() {
            Some(slot) => std::thread::Builder::new()
                .name("envelope-sighash".into())
                .spawn_scoped(scope, move || {
                    let _slot = slot;
                    let mut hasher = hasher;
                    for part in parts {
                        hasher.update(part);
                    }
                    hasher.finish()
                }),
            None => Err(std::io::Error::other("no spare CPU")),
        };
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
                    .map_err(|_| Error::Internal("the signature hashing thread failed"))?;
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
                .map_err(|_| Error::Internal("the signature hashing thread stopped"))?;
        }
        drop(self.to_helper);
        self.handle
            .join()
            .map_err(|_| Error::Internal("the signature hashing thread failed"))
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use envelope_crypto::digest::{HashAlgorithm, Hasher};

    use super::{HelperLimit, SignatureHasher, hash_alongside, spare_cpus};

    /// Helper slots handed out in this test process.
    pub(super) static SLOTS_TAKEN: AtomicUsize = AtomicUsize::new(0);

    fn started_hasher() -> Hasher {
        let mut hasher = Hasher::new(HashAlgorithm::Sha384);
        hasher.update(b"the header");
        hasher
    }

    /// Both ways of hashing on a helper give the inline digest, and use a helper where the
    /// machine has a spare CPU. (One test, so no other test holds the process's slots.)
    #[test]
    fn helpers_hash_exactly_what_inline_hashing_does() {
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
        let mut inline = started_hasher();
        inline.update(&data);
        let expected = inline.finish();
        let before = SLOTS_TAKEN.load(Ordering::Relaxed);

        let data_ref = &data;
        let ((), scoped) = hash_alongside(started_hasher(), |feed| {
            for part in data_ref.chunks(100_003) {
                feed(part);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(scoped.as_bytes(), expected.as_bytes());

        let mut streaming = SignatureHasher::new(started_hasher(), true);
        for part in data.chunks(4_099) {
            streaming.update(part);
        }
        assert_eq!(streaming.finish().unwrap().as_bytes(), expected.as_bytes());

        let mut detached = SignatureHasher::new(started_hasher(), false);
        let mut lent = detached.detach().unwrap();
        detached.update(b"ignored while lent out");
        lent.update(&data);
        detached.supply(lent.finish());
        assert_eq!(detached.finish().unwrap().as_bytes(), expected.as_bytes());

        let taken = SLOTS_TAKEN.load(Ordering::Relaxed) - before;
        if spare_cpus() > 0 {
            assert_eq!(taken, 2, "a helper for the scoped and the streaming hash");
        } else {
            assert_eq!(taken, 0);
        }
    }

    #[test]
    fn a_detached_hash_must_come_back() {
        let mut hasher = SignatureHasher::new(started_hasher(), false);
        assert!(hasher.detach().is_some());
        assert!(hasher.finish().is_err());
    }

    #[test]
    fn helpers_are_limited_and_slots_come_back() {
        let limit = HelperLimit::new();
        assert!(limit.try_acquire(0).is_none());
        let a = limit.try_acquire(2);
        let b = limit.try_acquire(2);
        assert!(a.is_some() && b.is_some());
        assert!(limit.try_acquire(2).is_none());
        drop(a);
        let c = limit.try_acquire(2);
        assert!(c.is_some());
        assert!(limit.try_acquire(2).is_none());
        drop((b, c));
        assert!(limit.try_acquire(1).is_some());
    }
}
