//! `encrypt`: turn an `awses-encrypt` manifest into messages and an `awses-decrypt` manifest.
//!
//! Reads the test-vector framework's encrypt manifest (0003: named plaintext sizes; tests with
//! `algorithm`, `frame-size`, `encryption-context` and `master-keys`) and its keys manifest (0002),
//! writes random plaintexts, the ciphertexts, a copy of the keys manifest and a decrypt manifest that
//! any ESDK's runner can replay.
//!
//! Extension: a test may say `"cmm": "RequiredEncryptionContext"` (optionally with
//! `"required-encryption-context-keys"`, default every key of its context) to encrypt through the
//! required-encryption-context CMM. The decrypt manifest then uses the version 4 convention of the
//! .NET vectors: `cmm` names the CMM and `encryption-context` is what the caller must supply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use envelope::cache::{CachingStats, RefreshAhead};
use envelope::{
    AlgorithmSuite, CachingCmm, CommitmentPolicy, EncryptionContext, LocalCache, MaterialsManager,
};
use serde_json::{Map, Value, json};

use crate::describe::KeyDescription;
use crate::error::{Result, tool_error};
use crate::json::{encryption_context, opt_str, read_json, resolve_uri, str_field, tests_of};
use crate::keys::Keys;

/// One encryption scenario.
#[derive(Clone, Debug)]
struct EncryptTest {
    id: String,
    plaintext: String,
    suite: AlgorithmSuite,
    frame_size: u32,
    encryption_context: EncryptionContext,
    encrypt_keys: KeyDescription,
    decrypt_master_keys: Vec<Value>,
    required_keys: Option<Vec<String>>,
    description: Option<String>,
}

/// What an `encrypt` run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptSummary {
    /// Messages written.
    pub encrypted: usize,
    /// Scenarios that failed: `id: reason`.
    pub failures: Vec<String>,
    /// Scenarios not run, with the reason.
    pub skipped: Vec<String>,
    /// The caching CMMs' counters, when encrypting through them.
    pub caching: Option<CachingStats>,
}

impl std::fmt::Display for EncryptSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} encrypted, {} failed, {} skipped",
            self.encrypted,
            self.failures.len(),
            self.skipped.len()
        )?;
        if let Some(c) = &self.caching {
            write!(
                f,
                " (cache: {} hits, {} data keys made)",
                c.hits, c.underlying_calls
            )?;
        }
        Ok(())
    }
}

/// One materials manager per distinct key description (parsing RSA keys once), optionally behind
/// caching CMMs.
struct Cmms {
    by_keys: HashMap<String, Result<Arc<dyn MaterialsManager>, String>>,
    caching: Vec<Arc<CachingCmm>>,
}

/// The counters of all caching CMMs, added up.
fn total_caching_stats(cmms: &[Arc<CachingCmm>]) -> Option<CachingStats> {
    cmms.iter().map(|c| c.stats()).reduce(|mut total, s| {
        total.hits += s.hits;
        total.misses += s.misses;
        total.bypasses += s.bypasses;
        total.underlying_calls += s.underlying_calls;
        total
    })
}

fn keys_label(test: &EncryptTest) -> String {
    format!("{:?}", test.encrypt_keys)
}

fn build_cmms(tests: &[EncryptTest], options: EncryptOptions) -> Result<Cmms> {
    let mut cmms = Cmms {
        by_keys: HashMap::new(),
        caching: Vec::new(),
    };
    for test in tests {
        let label = keys_label(test);
        if cmms.by_keys.contains_key(&label) {
            continue;
        }
        let built = test.encrypt_keys.build_keyring().and_then(|keyring| {
            match options.cache_max_messages {
                None => Ok(Arc::new(keyring) as Arc<dyn MaterialsManager>),
                Some(max_messages) => {
                    let cache =
                        LocalCache::new(NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN));
                    // No refresh-ahead: like the other ESDKs' caches, a data key is made only
                    // when an entry runs out, so the count printed is the data keys the
                    // messages use (a successor fetched ahead of traffic that never came would
                    // add calls that vary from run to run).
                    let caching = CachingCmm::builder(keyring, cache)
                        .max_age(Duration::from_secs(3600))
                        .max_messages(max_messages)
                        .refresh_ahead(RefreshAhead::Off)
                        .build()
                        .map_err(|e| e.to_string())?;
                    let caching = Arc::new(caching);
                    cmms.caching.push(Arc::clone(&caching));
                    Ok(caching as Arc<dyn MaterialsManager>)
                }
            }
        });
        cmms.by_keys.insert(label, built);
    }
    Ok(cmms)
}

/// How `encrypt` gets its materials.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncryptOptions {
    /// Route every keyring through a caching CMM whose entries serve this many messages (with no
    /// refresh-ahead), so that scenarios with the same keys, suite and context share data keys.
    pub cache_max_messages: Option<u64>,
    /// Encrypt through the streaming API, writing the plaintext this many bytes at a time (and
    /// declaring its length as the plaintext bound).
    pub stream_chunk: Option<usize>,
}

/// Process an encrypt manifest into `out`.
pub fn encrypt_manifest(manifest: &Path, out: &Path) -> Result<EncryptSummary> {
    encrypt_manifest_with(manifest, out, EncryptOptions::default())
}

/// Process an encrypt manifest into `out`, with options.
pub fn encrypt_manifest_with(
    manifest: &Path,
    out: &Path,
    options: EncryptOptions,
) -> Result<EncryptSummary> {
    let doc = read_json(manifest)?;
    if doc.pointer("/manifest/type").and_then(Value::as_str) != Some("awses-encrypt") {
        return Err(tool_error!(
            "{}: not an awses-encrypt manifest",
            manifest.display()
        ));
    }
    let base = manifest.parent().unwrap_or(Path::new("."));
    let keys_path = resolve_uri(base, str_field(&doc, "keys")?)?;
    let keys = Keys::load(&keys_path)?;
    let plaintext_sizes = doc
        .get("plaintexts")
        .and_then(Value::as_object)
        .ok_or_else(|| tool_error!("no plaintexts"))?;
    let tests = parse_tests(&doc, &keys)?;

    for dir in ["ciphertexts", "plaintexts"] {
        std::fs::create_dir_all(out.join(dir))
            .map_err(|e| tool_error!("cannot create {}: {e}", out.join(dir).display()))?;
    }
    std::fs::copy(&keys_path, out.join("keys.json"))
        .map_err(|e| tool_error!("cannot copy the keys manifest: {e}"))?;
    let mut plaintexts = BTreeMap::new();
    for (name, size) in plaintext_sizes {
        let size = size
            .as_u64()
            .ok_or_else(|| tool_error!("plaintext {name}: size is not a number"))?;
        let size = usize::try_from(size).map_err(|_| tool_error!("plaintext {name} too large"))?;
        let mut bytes = vec![0u8; size];
        envelope::crypto::rand::fill_random(&mut bytes).map_err(|e| tool_error!("{e}"))?;
        write(&out.join("plaintexts").join(name), &bytes)?;
        plaintexts.insert(name.clone(), bytes);
    }

    let cmms = build_cmms(&tests, options)?;
    let results = run_parallel(&tests, |test| {
        encrypt_one(test, &plaintexts, out, &cmms, options)
    });
    let mut summary = EncryptSummary {
        caching: total_caching_stats(&cmms.caching),
        ..Default::default()
    };
    let mut entries = Map::new();
    let any_required = tests.iter().any(|t| t.required_keys.is_some());
    for (test, result) in tests.iter().zip(results) {
        match result.unwrap_or_else(|| Err("the encrypting thread panicked".into())) {
            Ok(Some(())) => {
                summary.encrypted += 1;
                entries.insert(test.id.clone(), decrypt_entry(test, any_required));
            }
            Ok(None) => summary.skipped.push(format!(
                "{}: non-framed messages are never written (frame-size 0 is decrypt-only legacy)",
                test.id
            )),
            Err(reason) => summary.failures.push(format!("{}: {reason}", test.id)),
        }
    }
    let decrypt_manifest = json!({
        "manifest": {"type": "awses-decrypt", "version": if any_required { 4 } else { 2 }},
        "client": {"name": "envelope", "version": env!("CARGO_PKG_VERSION")},
        "keys": "file://keys.json",
        "tests": Value::Object(entries),
    });
    let text = serde_json::to_string_pretty(&decrypt_manifest).map_err(|e| tool_error!("{e}"))?;
    write(&out.join("manifest.json"), text.as_bytes())?;
    Ok(summary)
}

fn parse_tests(doc: &Value, keys: &Keys) -> Result<Vec<EncryptTest>> {
    let tests = tests_of(doc)?;
    let mut out = Vec::with_capacity(tests.len());
    for (id, t) in tests {
        let parse = || -> Result<EncryptTest> {
            let algorithm = str_field(t, "algorithm")?;
            let suite: AlgorithmSuite = algorithm.parse().map_err(|e| tool_error!("{e}"))?;
            let frame_size = t
                .get("frame-size")
                .and_then(Value::as_u64)
                .and_then(|f| u32::try_from(f).ok())
                .ok_or_else(|| tool_error!("bad frame-size"))?;
            let master_keys = t
                .get("master-keys")
                .and_then(Value::as_array)
                .ok_or_else(|| tool_error!("no master-keys"))?;
            let decryptable: Vec<Value> = master_keys
                .iter()
                .filter(|k| k.get("decryptable").and_then(Value::as_bool) != Some(false))
                .map(|k| {
                    let mut k = k.clone();
                    if let Some(obj) = k.as_object_mut() {
                        obj.remove("decryptable");
                    }
                    k
                })
                .collect();
            let encryption_context =
                encryption_context(t.get("encryption-context"))?.unwrap_or_default();
            let required_keys = match opt_str(t, "cmm") {
                None | Some("Default") => None,
                Some("RequiredEncryptionContext") => {
                    Some(match t.get("required-encryption-context-keys") {
                        Some(Value::Array(list)) => list
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                        _ => encryption_context.keys().map(str::to_string).collect(),
                    })
                }
                Some(other) => return Err(tool_error!("unknown cmm {other}")),
            };
            Ok(EncryptTest {
                id: id.clone(),
                plaintext: str_field(t, "plaintext")?.to_string(),
                suite,
                frame_size,
                encryption_context,
                encrypt_keys: KeyDescription::parse_master_keys(master_keys, keys)?,
                decrypt_master_keys: decryptable,
                required_keys,
                description: opt_str(t, "description").map(str::to_string),
            })
        };
        out.push(parse().map_err(|e| tool_error!("test {id}: {e}"))?);
    }
    Ok(out)
}

fn encrypt_one(
    test: &EncryptTest,
    plaintexts: &BTreeMap<String, Vec<u8>>,
    out: &Path,
    cmms: &Cmms,
    options: EncryptOptions,
) -> Result<Option<()>, String> {
    let Some(frame_length) = std::num::NonZeroU32::new(test.frame_size) else {
        return Ok(None);
    };
    let plaintext = plaintexts
        .get(&test.plaintext)
        .ok_or_else(|| format!("unknown plaintext {:?}", test.plaintext))?;
    let base = cmms
        .by_keys
        .get(&keys_label(test))
        .ok_or("internal: no materials manager")?
        .clone()?;
    let cmm: Arc<dyn MaterialsManager> = match &test.required_keys {
        None => base,
        Some(keys) => Arc::new(
            envelope::RequiredEncryptionContextCmm::from_arc(base, keys.clone())
                .map_err(|e| e.to_string())?,
        ),
    };
    let policy = CommitmentPolicy::strictest_for(test.suite);
    let client = envelope::blocking::Client::from(
        envelope::Client::builder()
            .commitment_policy(policy)
            .build(),
    );
    let path = out.join("ciphertexts").join(&test.id);
    match options.stream_chunk {
        None => {
            let message = client
                .encrypt(&*cmm, plaintext)
                .suite(test.suite)
                .frame_length(frame_length)
                .encryption_context(test.encryption_context.clone())
                .run()
                .map_err(|e| e.to_string())?;
            write(&path, message.ciphertext()).map_err(|e| e.to_string())?;
        }
        Some(chunk) => {
            let file =
                std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut writer = client
                .encrypt_stream(&*cmm, std::io::BufWriter::new(file))
                .suite(test.suite)
                .frame_length(frame_length)
                .encryption_context(test.encryption_context.clone())
                .plaintext_length_bound(plaintext.len() as u64)
                .run()
                .map_err(|e| e.to_string())?;
            for piece in plaintext.chunks(chunk.max(1)) {
                std::io::Write::write_all(&mut writer, piece).map_err(|e| e.to_string())?;
            }
            writer.finish().map_err(|e| e.to_string())?;
        }
    }
    Ok(Some(()))
}

fn decrypt_entry(test: &EncryptTest, v4: bool) -> Value {
    let ec: Map<String, Value> = test
        .encryption_context
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    let mut entry = json!({
        "ciphertext": format!("file://ciphertexts/{}", test.id),
        "master-keys": test.decrypt_master_keys,
        "result": {"output": {"plaintext": format!("file://plaintexts/{}", test.plaintext)}},
        "encryption-context": ec,
    });
    if let Some(obj) = entry.as_object_mut() {
        if v4 {
            let cmm = if test.required_keys.is_some() {
                "RequiredEncryptionContext"
            } else {
                "Default"
            };
            obj.insert("cmm".into(), Value::from(cmm));
        }
        if let Some(d) = &test.description {
            obj.insert("description".into(), Value::from(d.as_str()));
        }
    }
    entry
}

fn write(path: &PathBuf, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| tool_error!("cannot write {}: {e}", path.display()))
}

/// Map `f` over `items` on all cores, keeping the order. `None` marks an item whose worker
/// thread panicked (a bug this tool reports as a failure rather than losing).
pub(crate) fn run_parallel<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(items.len().max(1));
    let f = &f;
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(items.len()).collect();
    let done: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    items
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, item)| (i, f(item)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, r) in done.into_iter().flatten() {
        results[i] = Some(r);
    }
    results
}
