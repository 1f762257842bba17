//! Loading decrypt tests from every supported file kind, and running them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use envelope::CommitmentPolicy;
use serde_json::Value;

use crate::describe::KeyDescription;
use crate::error::{Result, tool_error};
use crate::json::{
    encryption_context, opt_str, read_file, read_json, resolve_uri, str_field, tests_of,
};
use crate::keys::Keys;
pub use crate::test_case::{Bytes, DecryptTest, Expected};

/// Load the tests of a decrypt manifest or known-answer file.
pub fn load(path: &Path) -> Result<Vec<DecryptTest>> {
    let doc = read_json(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    if doc.pointer("/manifest/type").and_then(Value::as_str) == Some("awses-decrypt") {
        return load_manifest(&doc, base);
    }
    if doc.get("deterministic").is_some() && doc.get("official_python_esdk").is_some() {
        return crate::kat::load_kat_vectors(&doc);
    }
    if doc
        .get("tests")
        .and_then(Value::as_array)
        .is_some_and(|t| t.first().is_some_and(|t| t.get("decrypted-dek").is_some()))
    {
        return crate::kat::load_commitment_kat(&doc);
    }
    if doc
        .as_array()
        .is_some_and(|a| a.first().is_some_and(|t| t.get("key-type").is_some()))
    {
        return crate::kat::load_decrypt_oracle(&doc);
    }
    Err(tool_error!(
        "{}: not an awses-decrypt manifest or a known-answer file",
        path.display()
    ))
}

fn load_manifest(doc: &Value, base: &Path) -> Result<Vec<DecryptTest>> {
    let version = doc
        .pointer("/manifest/version")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if !(1..=5).contains(&version) {
        return Err(tool_error!(
            "unsupported awses-decrypt manifest version {version}"
        ));
    }
    let keys = Keys::load(&resolve_uri(base, str_field(doc, "keys")?)?)?;
    let tests = tests_of(doc)?;
    let mut out = Vec::with_capacity(tests.len());
    for (id, test) in tests {
        let test = if version == 5 {
            parse_v5(id, test, &keys, base)
        } else {
            parse_v1_to_v4(id, test, &keys, base, version)
        }
        .map_err(|e| tool_error!("test {id}: {e}"))?;
        out.push(test);
    }
    Ok(out)
}

fn parse_v1_to_v4(
    id: &str,
    t: &Value,
    keys: &Keys,
    base: &Path,
    version: u64,
) -> Result<DecryptTest> {
    let ciphertext = Bytes::File(resolve_uri(base, str_field(t, "ciphertext")?)?);
    let master_keys = t
        .get("master-keys")
        .and_then(Value::as_array)
        .ok_or_else(|| tool_error!("no master-keys"))?;
    let mut description = KeyDescription::parse_master_keys(master_keys, keys)?;
    let expected = if version == 1 {
        Expected::Plaintext(Bytes::File(resolve_uri(base, str_field(t, "plaintext")?)?))
    } else if let Some(uri) = t
        .pointer("/result/output/plaintext")
        .and_then(Value::as_str)
    {
        Expected::Plaintext(Bytes::File(resolve_uri(base, uri)?))
    } else if let Some(err) = t.pointer("/result/error") {
        Expected::Error(opt_str(err, "error-description").unwrap_or("").to_string())
    } else {
        return Err(tool_error!("no result"));
    };
    let ec = encryption_context(t.get("encryption-context"))?;
    if opt_str(t, "cmm") == Some("RequiredEncryptionContext") {
        // .NET vectors: every pair of the manifest's context was required and left out of the header.
        let required = ec
            .as_ref()
            .map(|ec| ec.keys().map(str::to_string).collect())
            .unwrap_or_default();
        description = KeyDescription::RequiredEncryptionContext {
            underlying: Box::new(description),
            keys: required,
        };
    }
    Ok(DecryptTest {
        id: id.to_string(),
        ciphertext,
        keys: description,
        expected,
        encryption_context: ec,
        unsigned_only: opt_str(t, "decryption-method") == Some("streaming-unsigned-only"),
        policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
    })
}

fn parse_v5(id: &str, t: &Value, keys: &Keys, base: &Path) -> Result<DecryptTest> {
    let s = t
        .get("decryption-scenario")
        .ok_or_else(|| tool_error!("no decryption-scenario"))?;
    let kind = str_field(s, "type")?;
    let expected = match (kind, s.get("result")) {
        ("positive-esdk", Some(Value::String(uri))) => {
            Expected::Plaintext(Bytes::File(resolve_uri(base, uri)?))
        }
        (_, Some(r)) if r.get("error").is_some() => Expected::Error(r.to_string()),
        (other, _) => return Err(tool_error!("unsupported scenario type {other}")),
    };
    let description = s
        .get("decryptKeyDescription")
        .ok_or_else(|| tool_error!("no decryptKeyDescription"))?;
    Ok(DecryptTest {
        id: id.to_string(),
        ciphertext: Bytes::File(resolve_uri(base, str_field(s, "ciphertext")?)?),
        keys: KeyDescription::parse(description, keys)?,
        expected,
        encryption_context: encryption_context(s.get("reproduced-encryption-context"))?,
        unsigned_only: opt_str(s, "decryption-method") == Some("streaming-unsigned-only"),
        policy: CommitmentPolicy::RequireEncryptAllowDecrypt,
    })
}

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// As expected.
    Pass,
    /// Not as expected: why.
    Fail(String),
    /// Not run: why.
    Skip(String),
}

/// The totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests that behaved as expected.
    pub passed: usize,
    /// Tests that did not.
    pub failed: usize,
    /// Tests not run, never counted as passed.
    pub skipped: usize,
    /// `id: reason` for every failure.
    pub failures: Vec<String>,
    /// How many tests were skipped for each reason.
    pub skip_reasons: BTreeMap<String, usize>,
}

impl Summary {
    /// Add another summary's counts.
    pub fn merge(&mut self, other: Summary) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.failures.extend(other.failures);
        for (reason, n) in other.skip_reasons {
            *self.skip_reasons.entry(reason).or_default() += n;
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// How a test's message is decrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    /// The one-shot API over the whole message.
    #[default]
    OneShot,
    /// The `std::io` streaming API, the message arriving this many bytes at a time.
    Stream(usize),
    /// The tokio streaming API, the message arriving this many bytes at a time.
    AsyncStream(usize),
}

/// Run tests on all cores with the one-shot API.
pub fn run(tests: &[DecryptTest]) -> Summary {
    run_with(tests, Method::OneShot)
}

/// Run tests on all cores.
pub fn run_with(tests: &[DecryptTest], method: Method) -> Summary {
    let plaintexts: Mutex<HashMap<PathBuf, Arc<Vec<u8>>>> = Mutex::new(HashMap::new());
    let outcomes = crate::encrypt::run_parallel(tests, |test| run_one(test, &plaintexts, method));
    let mut summary = Summary::default();
    for (test, outcome) in tests.iter().zip(outcomes) {
        match outcome.unwrap_or_else(|| Outcome::Fail("the decrypting thread panicked".into())) {
            Outcome::Pass => summary.passed += 1,
            Outcome::Fail(reason) => {
                summary.failed += 1;
                summary.failures.push(format!("{}: {reason}", test.id));
            }
            Outcome::Skip(reason) => {
                summary.skipped += 1;
                *summary.skip_reasons.entry(reason).or_default() += 1;
            }
        }
    }
    summary
}

fn load_bytes(b: &Bytes, cache: &Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>) -> Result<Arc<Vec<u8>>> {
    match b {
        Bytes::Inline(v) => Ok(Arc::new(v.clone())),
        Bytes::File(path) => {
            if let Some(hit) = cache.lock().ok().and_then(|c| c.get(path).cloned()) {
                return Ok(hit);
            }
            let bytes = Arc::new(read_file(path)?);
            if let Ok(mut c) = cache.lock() {
                c.insert(path.clone(), Arc::clone(&bytes));
            }
            Ok(bytes)
        }
    }
}

/// Run one test.
pub fn run_one(
    test: &DecryptTest,
    plaintexts: &Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>,
    method: Method,
) -> Outcome {
    let cmm = match test.keys.build() {
        Ok(cmm) => cmm,
        Err(reason) => return Outcome::Skip(reason),
    };
    let ciphertext = match &test.ciphertext {
        Bytes::Inline(v) => std::borrow::Cow::Borrowed(v.as_slice()),
        Bytes::File(p) => match read_file(p) {
            Ok(v) => std::borrow::Cow::Owned(v),
            Err(e) => return Outcome::Fail(e.to_string()),
        },
    };
    let client = envelope::Client::builder()
        .commitment_policy(test.policy)
        .build();
    let streamed = |chunk| Streamed {
        client: &client,
        cmm: &*cmm,
        ciphertext: &ciphertext,
        chunk,
        options: test.decrypt_options(),
    };
    let result = match method {
        Method::OneShot => {
            let client = envelope::blocking::Client::from(client);
            let request = client
                .decrypt(&*cmm, &ciphertext)
                .options(test.decrypt_options());
            request.run().map(envelope::Decrypted::into_plaintext)
        }
        Method::Stream(chunk) => streamed(chunk).blocking(),
        Method::AsyncStream(chunk) => streamed(chunk).tokio(),
    };
    match (&test.expected, result) {
        (Expected::Plaintext(expected), Ok(plaintext)) => match load_bytes(expected, plaintexts) {
            Ok(expected) if plaintext == expected.as_slice() => Outcome::Pass,
            Ok(_) => Outcome::Fail("decrypted to the wrong plaintext".into()),
            Err(e) => Outcome::Fail(e.to_string()),
        },
        (Expected::Plaintext(_), Err(e)) => Outcome::Fail(format!("expected success, got: {e}")),
        (Expected::Error(_), Err(_)) => Outcome::Pass,
        (Expected::Error(description), Ok(_)) => Outcome::Fail(format!(
            "expected an error ({description}), but decryption succeeded"
        )),
    }
}

/// Hands out at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl std::io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.chunk.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl tokio::io::AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.chunk.min(buf.remaining()).min(self.data.len());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        std::task::Poll::Ready(Ok(()))
    }
}

/// One streaming decrypt of a vector: the ciphertext arrives `chunk` bytes at a time and the
/// plaintext is read in pieces of that size.
struct Streamed<'a> {
    client: &'a envelope::Client,
    cmm: &'a dyn envelope::MaterialsManager,
    ciphertext: &'a [u8],
    chunk: usize,
    options: envelope::DecryptOptions,
}

impl<'a> Streamed<'a> {
    fn input(&self) -> Chunked<'a> {
        Chunked {
            data: self.ciphertext,
            chunk: self.chunk,
        }
    }

    fn blocking(self) -> Result<Vec<u8>, envelope::Error> {
        use std::io::Read;
        let client = envelope::blocking::Client::from(self.client.clone());
        let request = client
            .decrypt_stream(self.cmm, self.input())
            .options(self.options);
        let mut reader = request.run()?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; self.chunk.max(1)];
        loop {
            match reader.read(&mut buf)? {
                0 => return Ok(out),
                n => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn tokio(self) -> Result<Vec<u8>, envelope::Error> {
        use tokio::io::AsyncReadExt;
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        runtime.block_on(async {
            let request = self
                .client
                .decrypt_async_stream(self.cmm, self.input())
                .options(self.options);
            let mut reader = request.await?;
            let mut out = Vec::new();
            let mut buf = vec![0u8; self.chunk.max(1)];
            loop {
                match reader.read(&mut buf).await? {
                    0 => return Ok(out),
                    n => out.extend_from_slice(&buf[..n]),
                }
            }
        })
    }
}
