//! The running hash a signature covers, optionally computed on a helper thread.
//!
//! For signed suites every byte of the message goes through SHA-256 or SHA-384. Where SHA-512 runs
//! in portable code (AWS-LC on AMD CPUs, ~0.5 GB/s) that hashing costs several times the AES-GCM
//! itself. When the client allows it (`ClientBuilder::background_signature_hashing`), once a
//! message has passed [`BACKGROUND_AFTER`] bytes the hashing moves to a helper thread fed with
//! copied batches, so encryption and hashing overlap on two cores. Small messages never start a
//! thread; if one cannot be started, hashing simply stays inline.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use envelope_crypto::digest::{Digest, Hasher};

use crate::Error;

/// Bytes hashed inline before a helper thread takes over.
pub(crate) const BACKGROUND_AFTER: u64 = 256 << 10;
/// Size of the batches handed to the helper.
const BATCH: usize = 256 << 10;
/// Batches in flight (bounds the memory to about `BATCHES * BATCH`).
const BATCHES: usize = 3;

pub(crate) struct SignatureHasher {
    state: State,
    background: bool,
}

enum State {
    Inline { hasher: Hasher, hashed: u64 },
    Helper(Helper),
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
            State::Finished => {}
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
            State::Finished => Err(Error::InvalidMaterials(
                "internal: signature hash finished twice",
            )),
        }
    }
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
