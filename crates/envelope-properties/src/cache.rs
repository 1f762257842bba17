//! The caching CMM against a reference model of the caching rules, fed an arbitrary sequence of
//! encryptions, decryptions and clock steps.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use envelope::blocking::Client;
use envelope::cache::{CachingCmm, InlineSpawner, LocalCache, ManualClock, RefreshAhead};
use envelope::{
    AlgorithmSuite, CompleteDecryptionMaterials, DecryptionMaterials, EncryptedDataKey,
    EncryptionContext, EncryptionMaterials, Keyring, RawAesKeyring, SecretBytes, async_trait,
};

use crate::{Violation, check};

const P: &str = "the caching CMM follows the model";

/// A raw AES keyring that counts its calls.
struct Counting {
    inner: RawAesKeyring,
    encrypts: AtomicUsize,
    decrypts: AtomicUsize,
}

#[async_trait]
impl Keyring for Counting {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, envelope::keyring::Error> {
        self.encrypts.fetch_add(1, Ordering::SeqCst);
        self.inner.on_encrypt(materials).await
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        encrypted_data_keys: &[EncryptedDataKey],
    ) -> Result<CompleteDecryptionMaterials, envelope::keyring::Error> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        self.inner.on_decrypt(materials, encrypted_data_keys).await
    }
}

/// One step of a run.
#[derive(Clone, Copy, Debug)]
enum Op {
    Encrypt {
        context: u8,
        size: u64,
        signed: bool,
    },
    Decrypt {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u8::arbitrary(u)? % 10 {
            0..=5 => Op::Encrypt {
                context: u8::arbitrary(u)? % 3,
                size: u64::from(u16::arbitrary(u)? % 3000),
                signed: u8::arbitrary(u)? % 8 == 0,
            },
            6 | 7 => Op::Decrypt {
                pick: usize::from(u16::arbitrary(u)?),
            },
            _ => Op::Advance {
                ms: u64::from(u16::arbitrary(u)?) % 30_000,
            },
        })
    }
}

struct Limits {
    age_ms: u64,
    messages: u64,
    bytes: u64,
    /// Refresh-ahead at a fixed share, or none.
    refresh: Option<f64>,
}

impl Limits {
    /// Whether `share = left / whole` is at most the refresh fraction, computed the way the caching
    /// CMM states its rule (durations in seconds, counts as floats).
    fn refresh_due(&self, entry: &Entry, now_ms: u64, count_limits: bool) -> bool {
        let Some(fraction) = self.refresh else {
            return false;
        };
        let share = |left: f64, whole: f64| whole > 0.0 && left / whole <= fraction;
        let lifetime = Duration::from_millis(entry.expires.saturating_sub(entry.created));
        let age_left = Duration::from_millis(entry.expires.saturating_sub(now_ms));
        share(age_left.as_secs_f64(), lifetime.as_secs_f64())
            || (count_limits
                && (share(
                    self.messages.saturating_sub(entry.messages) as f64,
                    self.messages as f64,
                ) || share(
                    self.bytes.saturating_sub(entry.bytes) as f64,
                    self.bytes as f64,
                )))
    }
}

#[derive(Clone, Copy)]
struct Entry {
    /// When it went into service (made, or took over from its predecessor).
    created: u64,
    /// `max_age` after its data key was made.
    expires: u64,
    messages: u64,
    bytes: u64,
    data_key: usize,
}

/// The caching rules, written independently of the implementation: an entry serves a message only
/// while it is younger than max_age and the message keeps it within both limits; an entry that
/// reaches a limit, expires or would be passed is dropped; a miss makes a new data key. With
/// refresh-ahead (run inline here, so deterministically), a request served from an entry whose
/// remaining share of a limit is at most the fraction also makes a new data key, unless one waits
/// already: the successor, with no usage. It takes over (charged with the request that finds the
/// entry gone, in service from then, its age counted from when it was made) when the entry is
/// dropped, unless it expired too; the old key is never served again.
#[derive(Default)]
struct Model {
    now_ms: u64,
    entries: HashMap<(u8, bool), Entry>,
    successors: HashMap<(u8, bool), Entry>,
    decrypt_entries: HashMap<usize, Entry>,
    data_keys: usize,
    calls: usize,
    decrypt_calls: usize,
}

impl Model {
    fn encrypt(&mut self, key: (u8, bool), size: u64, l: &Limits) -> usize {
        if size > l.bytes {
            return self.new_key();
        }
        if let Some(e) = self.entries.remove(&key) {
            let fresh = self.now_ms < e.expires;
            if fresh && e.messages < l.messages && e.bytes + size <= l.bytes {
                let e = Entry {
                    messages: e.messages + 1,
                    bytes: e.bytes + size,
                    ..e
                };
                if e.messages < l.messages && e.bytes < l.bytes {
                    self.entries.insert(key, e);
                }
                if l.refresh_due(&e, self.now_ms, true) && !self.successors.contains_key(&key) {
                    let data_key = self.new_key();
                    let successor = self.fresh_entry(data_key, 0, 0, l);
                    self.successors.insert(key, successor);
                }
                return e.data_key;
            }
        }
        if let Some(s) = self.successors.remove(&key)
            && self.now_ms < s.expires
        {
            let e = Entry {
                created: self.now_ms,
                messages: 1,
                bytes: size,
                ..s
            };
            if e.messages < l.messages && e.bytes < l.bytes {
                self.entries.insert(key, e);
            }
            return e.data_key;
        }
        let data_key = self.new_key();
        if l.messages > 1 && size < l.bytes {
            let entry = self.fresh_entry(data_key, 1, size, l);
            self.entries.insert(key, entry);
        }
        data_key
    }

    fn fresh_entry(&self, data_key: usize, messages: u64, bytes: u64, l: &Limits) -> Entry {
        Entry {
            created: self.now_ms,
            expires: self.now_ms + l.age_ms,
            messages,
            bytes,
            data_key,
        }
    }

    fn new_key(&mut self) -> usize {
        self.calls += 1;
        self.data_keys += 1;
        self.data_keys - 1
    }

    fn decrypt(&mut self, data_key: usize, l: &Limits) {
        let fresh = self.fresh_entry(data_key, 0, 0, l);
        match self.decrypt_entries.get(&data_key) {
            Some(e) if self.now_ms < e.expires => {
                if l.refresh_due(e, self.now_ms, false) {
                    self.decrypt_calls += 1;
                    self.decrypt_entries.insert(data_key, fresh);
                }
            }
            _ => {
                self.decrypt_calls += 1;
                self.decrypt_entries.insert(data_key, fresh);
            }
        }
    }
}

/// The keyring's `direction` calls so far are the model's count.
fn calls_match(
    direction: &str,
    calls: &AtomicUsize,
    model: usize,
    op: Op,
) -> Result<(), Violation> {
    let calls = calls.load(Ordering::SeqCst);
    check(calls == model, P, || {
        format!("{calls} keyring {direction} calls, the model made {model} ({op:?})")
    })
}

fn violation(detail: impl std::fmt::Display) -> Violation {
    Violation {
        property: P,
        detail: detail.to_string(),
    }
}

/// Run the caching CMM and the model side by side over the operations the input encodes.
///
/// Input: limits (max age 1-20 s, max messages, max bytes, refresh-ahead off or at a share of
/// 0.1, 0.25 or 0.5), then up to 64 operations. After every step the underlying keyring must have
/// been called exactly as often as the model says, every message must use the data key the model
/// says (so no replaced entry is ever served), and no data key may have served more messages or
/// bytes than the limits allow.
pub fn caching_cmm_matches_the_model(data: &[u8]) -> Result<(), Violation> {
    let mut u = Unstructured::new(data);
    let (Ok(age), Ok(messages), Ok(bytes), Ok(refresh)) = (
        u8::arbitrary(&mut u),
        u8::arbitrary(&mut u),
        u16::arbitrary(&mut u),
        u8::arbitrary(&mut u),
    ) else {
        return Ok(());
    };
    let refresh = match refresh % 4 {
        0 => None,
        1 => Some(0.1),
        2 => Some(0.25),
        _ => Some(0.5),
    };
    let age_s = 1 + u64::from(age % 20);
    let max_messages = match messages % 3 {
        0 => 1,
        1 => 2 + u64::from(messages % 4),
        _ => 6 + u64::from(messages % 94),
    };
    let max_bytes = if bytes % 2 == 0 {
        u64::MAX >> 1
    } else {
        100 + u64::from(bytes % 4900)
    };
    let limits = Limits {
        age_ms: age_s * 1000,
        messages: max_messages,
        bytes: max_bytes,
        refresh,
    };

    let keyring = Arc::new(Counting {
        inner: RawAesKeyring::new("test", "counting", SecretBytes::from_slice(&[5; 32]))
            .map_err(violation)?,
        encrypts: AtomicUsize::new(0),
        decrypts: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new());
    let capacity = NonZeroUsize::new(1000).ok_or_else(|| violation("capacity"))?;
    let cmm = CachingCmm::builder(Arc::clone(&keyring), LocalCache::new(capacity))
        .max_age(Duration::from_secs(age_s))
        .max_messages(max_messages)
        .max_bytes(max_bytes)
        .clock(Arc::clone(&clock))
        .refresh_ahead(refresh.map_or(RefreshAhead::Off, RefreshAhead::Fraction))
        .spawner(InlineSpawner)
        .build()
        .map_err(violation)?;
    let client = Client::new();
    let mut model = Model::default();
    let mut sent: Vec<(Vec<u8>, usize)> = Vec::new();
    let mut uses: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();
    let mut key_of_index: HashMap<usize, Vec<u8>> = HashMap::new();

    for _ in 0..64 {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        match op {
            Op::Encrypt {
                context,
                size,
                signed,
            } => {
                let suite = if signed {
                    AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
                } else {
                    AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
                };
                let ec = EncryptionContext::from_iter([("ctx", format!("{context}"))]);
                let plaintext = vec![1u8; usize::try_from(size).map_err(violation)?];
                let message = client
                    .encrypt(&cmm, &plaintext)
                    .suite(suite)
                    .encryption_context(ec)
                    .run()
                    .map_err(violation)?;
                let index = model.encrypt((context, signed), size, &limits);
                calls_match("encrypt", &keyring.encrypts, model.calls, op)?;
                let edk = message
                    .header()
                    .body()
                    .encrypted_data_keys()
                    .first()
                    .map(|e| e.ciphertext().to_vec())
                    .unwrap_or_default();
                // Each model key is one real data key, and no real key stands for two model keys:
                // a message served from a replaced entry would break one or the other.
                let expected = key_of_index
                    .entry(index)
                    .or_insert_with(|| edk.clone())
                    .clone();
                check(expected == edk, P, || {
                    format!("a message used another data key than the model's key {index} ({op:?})")
                })?;
                check(
                    !key_of_index.iter().any(|(i, k)| *i != index && *k == edk),
                    P,
                    || {
                        format!(
                            "the data key of model key {index} also served another key ({op:?})"
                        )
                    },
                )?;
                let used = uses.entry(edk).or_default();
                *used = (used.0 + 1, used.1 + size);
                let used = *used;
                check(
                    used.0 <= max_messages && (used.0 == 1 || used.1 <= max_bytes),
                    P,
                    || format!("a data key served {} messages, {} bytes", used.0, used.1),
                )?;
                sent.push((message.into_ciphertext(), index));
            }
            Op::Decrypt { pick } => {
                let Some((ciphertext, index)) = sent.get(pick % sent.len().max(1)) else {
                    continue;
                };
                client.decrypt(&cmm, ciphertext).run().map_err(violation)?;
                model.decrypt(*index, &limits);
                calls_match("decrypt", &keyring.decrypts, model.decrypt_calls, op)?;
            }
            Op::Advance { ms } => {
                clock.advance(Duration::from_millis(ms));
                model.now_ms += ms;
            }
        }
    }
    Ok(())
}
