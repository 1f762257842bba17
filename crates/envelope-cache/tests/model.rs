//! Property test: random sequences of encrypts (random sizes, contexts, suites), decrypts and clock
//! advances through a caching CMM, checked step by step against a reference model of the caching
//! rules. The keyring calls must match the model exactly, and no data key may ever serve more than
//! the limits allow.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::print_stderr
)]

mod common;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use common::CountingKeyring;
use envelope::blocking::Client;
use envelope::{AlgorithmSuite, EncryptionContext};
use envelope_cache::{CachingCmm, LocalCache, ManualClock};
use proptest::prelude::*;

#[derive(Clone, Debug)]
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

fn op(max_age_ms: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, prop_oneof![0u64..50, 50u64..3000], any::<bool>())
            .prop_map(|(context, size, signed)| Op::Encrypt { context, size, signed }),
        2 => any::<usize>().prop_map(|pick| Op::Decrypt { pick }),
        2 => (0..max_age_ms * 3 / 2).prop_map(|ms| Op::Advance { ms }),
    ]
}

struct Limits {
    age_ms: u64,
    messages: u64,
    bytes: u64,
}

/// A live encryption entry of the model.
#[derive(Clone, Copy)]
struct Entry {
    created: u64,
    messages: u64,
    bytes: u64,
    data_key: usize,
}

/// The caching rules, written independently of the implementation: an entry serves a message only
/// if it is younger than max_age and the message keeps it within both limits; an entry that reaches
/// a limit, expires or would be passed is dropped; a miss makes a new data key.
#[derive(Default)]
struct Model {
    now_ms: u64,
    entries: HashMap<(u8, bool), Entry>,
    decrypt_entries: HashMap<usize, u64>,
    data_keys: usize,
    calls: usize,
    decrypt_calls: usize,
}

impl Model {
    /// The index of the data key the message uses.
    fn encrypt(&mut self, key: (u8, bool), size: u64, l: &Limits) -> usize {
        if size > l.bytes {
            return self.new_key();
        }
        if let Some(e) = self.entries.remove(&key) {
            let fresh = self.now_ms < e.created + l.age_ms;
            if fresh && e.messages < l.messages && e.bytes + size <= l.bytes {
                let e = Entry {
                    messages: e.messages + 1,
                    bytes: e.bytes + size,
                    ..e
                };
                if e.messages < l.messages && e.bytes < l.bytes {
                    self.entries.insert(key, e);
                }
                return e.data_key;
            }
        }
        let data_key = self.new_key();
        if l.messages > 1 && size < l.bytes {
            self.entries.insert(
                key,
                Entry {
                    created: self.now_ms,
                    messages: 1,
                    bytes: size,
                    data_key,
                },
            );
        }
        data_key
    }

    fn new_key(&mut self) -> usize {
        self.calls += 1;
        self.data_keys += 1;
        self.data_keys - 1
    }

    fn decrypt(&mut self, data_key: usize, l: &Limits) {
        match self.decrypt_entries.get(&data_key) {
            Some(&created) if self.now_ms < created + l.age_ms => {}
            _ => {
                self.decrypt_calls += 1;
                self.decrypt_entries.insert(data_key, self.now_ms);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn caching_matches_the_model(
        age_s in 1u64..20,
        max_messages in prop_oneof![Just(1u64), 2u64..6, 6u64..100],
        max_bytes in prop_oneof![Just(u64::MAX >> 1), 100u64..5000],
        ops in prop::collection::vec(op(20_000), 1..40),
    ) {
        let limits = Limits { age_ms: age_s * 1000, messages: max_messages, bytes: max_bytes };
        let keyring = CountingKeyring::new();
        let clock = Arc::new(ManualClock::new());
        let cmm = CachingCmm::builder(keyring.clone(), LocalCache::new(NonZeroUsize::new(1000).unwrap()))
            .max_age(Duration::from_secs(age_s))
            .max_messages(max_messages)
            .max_bytes(max_bytes)
            .clock(Arc::clone(&clock))
            .build()
            .unwrap();
        let client = Client::new();
        let mut model = Model::default();
        let mut messages: Vec<(Vec<u8>, usize)> = Vec::new(); // (ciphertext, model data key index)
        let mut uses: HashMap<Vec<u8>, (u64, u64)> = HashMap::new();

        for op in ops {
            match op {
                Op::Encrypt { context, size, signed } => {
                    let suite = if signed {
                        AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384
                    } else {
                        AlgorithmSuite::Aes256GcmHkdfSha512CommitKey
                    };
                    let ec = EncryptionContext::from_iter([("ctx", format!("{context}"))]);
                    let m = client.encrypt(&cmm, &vec![1u8; size as usize]).suite(suite).encryption_context(ec).run().unwrap();
                    let index = model.encrypt((context, signed), size, &limits);
                    prop_assert_eq!(keyring.encrypts(), model.calls, "encrypt calls after {:?}", (context, size, signed));
                    let edk = m.header().body().encrypted_data_keys()[0].ciphertext().to_vec();
                    let u = uses.entry(edk).or_default();
                    *u = (u.0 + 1, u.1 + size);
                    prop_assert!(u.0 <= max_messages && (u.0 == 1 || u.1 <= max_bytes), "over-use {:?}", u);
                    messages.push((m.into_ciphertext(), index));
                }
                Op::Decrypt { pick } if !messages.is_empty() => {
                    let (ciphertext, index) = &messages[pick % messages.len()];
                    client.decrypt(&cmm, ciphertext).run().unwrap();
                    model.decrypt(*index, &limits);
                    prop_assert_eq!(keyring.decrypts(), model.decrypt_calls);
                }
                Op::Decrypt { .. } => {}
                Op::Advance { ms } => {
                    clock.advance(Duration::from_millis(ms));
                    model.now_ms += ms;
                }
            }
        }
    }
}
