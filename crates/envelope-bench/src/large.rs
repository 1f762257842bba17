//! `large`: large-message throughput against the raw primitives, interleaved.
//!
//! Shared machines drift: the same SHA-384 loop can run 20 % slower a minute later. Criterion
//! measures one function after another, so a ratio between two of its lines mixes two moments.
//! Here every round runs each case once (in an order that rotates from round to round), and each
//! case's ratio to its limit is taken within the round; the medians over the rounds are reported.
//!
//! The limits: AES-256-GCM sealing the same plaintext as 4 KiB frames in place (for unsigned
//! suites) and the signature's hash, SHA-384 or SHA-256, over it (for signed ones), on the same
//! backend.

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Instant;

use envelope::blocking::Client;
use envelope::crypto::aead::AeadKey;
use envelope::crypto::digest::{HashAlgorithm, Hasher};
use envelope::format::SignatureAlgorithm;
use envelope::{AlgorithmSuite, CommitmentPolicy, RawAesKeyring, SecretBytes, SignatureHashing};
use serde::Serialize;

/// Frame length of the raw AES-GCM limit (and the client default).
const FRAME: usize = 4096;
/// Size of the writes and reads of the streaming cases.
const IO_CHUNK: usize = 64 << 10;

/// One case's result.
#[derive(Clone, Debug, Serialize)]
pub struct LargeCase {
    /// What was measured.
    pub name: String,
    /// The limit this case is compared with (`None` for the limits themselves).
    pub limit: Option<&'static str>,
    /// Median milliseconds per operation.
    pub median_ms: f64,
    /// MiB (2^20 bytes) of plaintext per second at the median.
    pub mib_per_s: f64,
    /// Median over the rounds of (the limit's time ÷ this case's time) in the same round.
    pub of_limit: Option<f64>,
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct LargeSpec {
    /// Plaintext bytes.
    pub size: usize,
    /// Rounds (each runs every case once).
    pub rounds: usize,
    /// Suites to measure.
    pub suites: Vec<AlgorithmSuite>,
}

type Op<'a> = Box<dyn FnMut() -> Result<(), String> + 'a>;

struct Case<'a> {
    name: String,
    limit: Option<usize>,
    op: Op<'a>,
    times: Vec<f64>,
    ratios: Vec<f64>,
}

impl<'a> Case<'a> {
    fn new(name: String, limit: Option<usize>, op: Op<'a>) -> Self {
        Self {
            name,
            limit,
            op,
            times: Vec::new(),
            ratios: Vec::new(),
        }
    }
}

const AES: usize = 0;
const SHA384: usize = 1;
const SHA256: usize = 2;
const LIMITS: [&str; 3] = [
    "raw AES-256-GCM, 4 KiB frames",
    "raw SHA-384",
    "raw SHA-256",
];

/// The limit a suite is held to: AES-GCM unsigned, its signature's hash signed.
fn limit_of(suite: AlgorithmSuite) -> usize {
    match suite.signature() {
        None => AES,
        Some(SignatureAlgorithm::EcdsaP256Sha256) => SHA256,
        Some(_) => SHA384,
    }
}

fn client_for(suite: AlgorithmSuite, hashing: Option<SignatureHashing>) -> Client {
    let mut builder =
        envelope::Client::builder().commitment_policy(CommitmentPolicy::strictest_for(suite));
    if let Some(hashing) = hashing {
        builder = builder.signature_hashing(hashing);
    }
    Client::from(builder.build())
}

/// An operation that hands the buffer each run returns to the next run (as a caller reusing one
/// buffer across messages does).
fn reusing_buffer<'a>(mut op: impl FnMut(Vec<u8>) -> Result<Vec<u8>, String> + 'a) -> Op<'a> {
    let mut reused = Vec::new();
    Box::new(move || {
        reused = op(std::mem::take(&mut reused))?;
        Ok(())
    })
}

fn error(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Run the cases; the first entries are the limits.
pub fn run(spec: &LargeSpec) -> Result<Vec<LargeCase>, String> {
    if spec.rounds == 0 {
        return Err("at least one round is needed".into());
    }
    let keyring =
        RawAesKeyring::new("bench", "key", SecretBytes::from_slice(&[7; 32])).map_err(error)?;
    // Per suite: the default client and one that hashes inline, with a commitment policy that
    // lets them encrypt it.
    let clients: Vec<(Client, Client)> = spec
        .suites
        .iter()
        .map(|&suite| {
            (
                client_for(suite, None),
                client_for(suite, Some(SignatureHashing::Inline)),
            )
        })
        .collect();
    let plaintext = vec![0x5au8; spec.size];
    let messages = spec
        .suites
        .iter()
        .zip(&clients)
        .map(|(&suite, (client, _))| {
            client
                .encrypt(&keyring, &plaintext)
                .suite(suite)
                .run()
                .map(envelope::Encrypted::into_ciphertext)
                .map_err(error)
        })
        .collect::<Result<Vec<_>, _>>()?;

    let key = AeadKey::new(&[9; 32]).map_err(error)?;
    let mut in_place = plaintext.clone();
    let mut cases: Vec<Case<'_>> = Vec::new();
    cases.push(Case::new(
        LIMITS[AES].into(),
        None,
        Box::new(|| {
            for (i, frame) in in_place.chunks_mut(FRAME).enumerate() {
                let mut iv = [0u8; 12];
                iv[8..].copy_from_slice(&u32::try_from(i).unwrap_or(u32::MAX).to_be_bytes());
                key.seal_in_place(&iv, b"aad of about the same size as a frame's", frame)
                    .map_err(error)?;
            }
            Ok(())
        }),
    ));
    for (hash, algorithm) in [
        (SHA384, HashAlgorithm::Sha384),
        (SHA256, HashAlgorithm::Sha256),
    ] {
        let plaintext = &plaintext;
        cases.push(Case::new(
            LIMITS[hash].into(),
            None,
            Box::new(move || {
                let mut hasher = Hasher::new(algorithm);
                hasher.update(plaintext);
                black_box(hasher.finish());
                Ok(())
            }),
        ));
    }
    let size = spec.size;
    cases.push(Case::new(
        "fresh buffer, first touch of each page".into(),
        None,
        Box::new(move || {
            let mut fresh = vec![0u8; size + FRAME];
            for page in fresh.chunks_mut(FRAME) {
                page[0] = 1;
            }
            black_box(fresh);
            Ok(())
        }),
    ));
    for ((&suite, message), (default, inline)) in spec.suites.iter().zip(&messages).zip(&clients) {
        let limit = Some(limit_of(suite));
        let variants: &[(&str, &Client)] = if suite.is_signed() {
            &[("", default), (", inline hashing", inline)]
        } else {
            &[("", default)]
        };
        let id = suite.id();
        for &(how, client) in variants {
            let (keyring, plaintext) = (&keyring, &plaintext);
            let mut add = |what: &str, op| {
                cases.push(Case::new(format!("{id:04x} {what}{how}"), limit, op));
            };
            add(
                "one-shot encrypt",
                Box::new(move || {
                    let m = client.encrypt(keyring, plaintext).suite(suite).run();
                    black_box(m.map_err(error)?);
                    Ok(())
                }),
            );
            add(
                "one-shot encrypt, reused buffer",
                reusing_buffer(move |out| {
                    let m = client.encrypt(keyring, plaintext).suite(suite);
                    Ok(m.reuse_buffer(out).run().map_err(error)?.into_ciphertext())
                }),
            );
            add(
                "one-shot decrypt",
                Box::new(move || {
                    black_box(client.decrypt(keyring, message).run().map_err(error)?);
                    Ok(())
                }),
            );
            add(
                "one-shot decrypt, reused buffer",
                reusing_buffer(move |out| {
                    let d = client.decrypt(keyring, message).reuse_buffer(out);
                    Ok(d.run().map_err(error)?.into_plaintext())
                }),
            );
            add(
                "stream encrypt",
                Box::new(move || {
                    let mut writer = client
                        .encrypt_stream(keyring, std::io::sink())
                        .suite(suite)
                        .run()
                        .map_err(error)?;
                    for chunk in plaintext.chunks(IO_CHUNK) {
                        writer.write_all(chunk).map_err(error)?;
                    }
                    writer.finish().map_err(error)?;
                    Ok(())
                }),
            );
            let mut out = vec![0u8; IO_CHUNK];
            add(
                "stream decrypt",
                Box::new(move || {
                    let mut reader = client
                        .decrypt_stream(keyring, &message[..])
                        .run()
                        .map_err(error)?;
                    while reader.read(&mut out).map_err(error)? > 0 {}
                    Ok(())
                }),
            );
        }
    }

    // One warm-up round, then the measured ones.
    for case in &mut cases {
        (case.op)()?;
    }
    let n = cases.len();
    let mut round_times = vec![0.0; n];
    for round in 0..spec.rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let started = Instant::now();
            (cases[i].op)()?;
            round_times[i] = started.elapsed().as_secs_f64();
        }
        for case_index in 0..n {
            let case = &mut cases[case_index];
            let t = round_times[case_index];
            case.times.push(t);
            if let Some(limit) = case.limit {
                case.ratios.push(round_times[limit] / t);
            }
        }
    }
    let mib = spec.size as f64 / f64::from(1u32 << 20);
    Ok(cases
        .into_iter()
        .map(|mut case| {
            let median_s = median(&mut case.times);
            LargeCase {
                name: case.name,
                limit: case.limit.map(|l| LIMITS[l]),
                median_ms: median_s * 1e3,
                mib_per_s: mib / median_s,
                of_limit: (!case.ratios.is_empty()).then(|| median(&mut case.ratios)),
            }
        })
        .collect())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
