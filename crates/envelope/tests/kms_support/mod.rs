//! Shared set-up for the tests against moto's KMS emulator, and a test HTTP proxy that counts KMS
//! operations and can throttle or stop.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use envelope::kms::aws_config::{self, BehaviorVersion, Region, SdkConfig};
use envelope::kms::aws_sdk_kms;
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The emulator's address from `ENVELOPE_KMS_ENDPOINT`, or `None` after saying why the test skips.
/// With `ENVELOPE_REQUIRE_KMS` set (CI sets it) a missing endpoint fails the test.
pub fn endpoint() -> Option<String> {
    required_var(
        "ENVELOPE_KMS_ENDPOINT",
        "a KMS emulator (scripts/test.sh starts moto)",
    )
}

/// The Python interpreter with the Python ESDK (scripts/test.sh exports `ENVELOPE_PYTHON`, its
/// venv's), or `None` after saying why the test skips. With `ENVELOPE_REQUIRE_KMS` set, missing it
/// fails the test.
pub fn python() -> Option<std::path::PathBuf> {
    required_var(
        "ENVELOPE_PYTHON",
        "a Python with the ESDK (scripts/test.sh does)",
    )
    .map(Into::into)
}

/// The non-empty value of `var`; else `None` after saying why the running test skips, or a failed
/// test when `ENVELOPE_REQUIRE_KMS` is set.
#[allow(clippy::print_stderr)] // why the test skips
fn required_var(var: &str, what: &str) -> Option<String> {
    let test = std::thread::current().name().unwrap_or("test").to_owned();
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => {
            assert!(
                std::env::var_os("ENVELOPE_REQUIRE_KMS").is_none(),
                "{test}: {var} is not set but ENVELOPE_REQUIRE_KMS is"
            );
            eprintln!("{test}: skipped: set {var} to {what}");
            None
        }
    }
}

/// Configuration for the emulator: static credentials, one attempt per call (so faults show at
/// once), the given region.
pub async fn sdk_config(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "AKIDENVELOPETEST",
            "envelope-test-secret",
            None,
            None,
            "envelope-tests",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

pub async fn client(endpoint: &str, region: &str) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&sdk_config(endpoint, region).await)
}

/// A new symmetric key; its ARN.
pub async fn create_key(client: &aws_sdk_kms::Client) -> String {
    arn_of(client.create_key().send().await.unwrap().key_metadata)
}

fn arn_of(metadata: Option<aws_sdk_kms::types::KeyMetadata>) -> String {
    metadata.unwrap().arn.unwrap()
}

/// A new multi-Region key in `client`'s region, replicated to `replica_region`; both ARNs.
pub async fn create_mrk(client: &aws_sdk_kms::Client, replica_region: &str) -> (String, String) {
    let created = client.create_key().multi_region(true).send().await.unwrap();
    let primary = arn_of(created.key_metadata);
    let replica = client
        .replicate_key()
        // moto looks the key up by id only.
        .key_id(primary.rsplit('/').next().unwrap())
        .replica_region(replica_region)
        .send()
        .await
        .unwrap();
    (primary, arn_of(replica.replica_key_metadata))
}

const FORWARD: u8 = 0;
const THROTTLE: u8 = 1;
const DENY_DECRYPT: u8 = 2;

/// Changes a response body, decided when its request was seen.
pub type EditResponse = Box<dyn FnOnce(&mut Vec<u8>) + Send>;

/// Sees each request's operation and body (and may change the body) before it is forwarded; may
/// return an edit of the response.
pub type Rewrite = Arc<dyn Fn(&str, &mut Vec<u8>) -> Option<EditResponse> + Send + Sync>;

/// A loopback HTTP proxy in front of the emulator: it counts KMS operations by `X-Amz-Target`,
/// answers every request with a `ThrottlingException` while throttling, and refuses connections once
/// stopped, as a KMS endpoint that went away would.
pub struct Proxy {
    pub url: String,
    mode: Arc<AtomicU8>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    tasks: Arc<Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        Self::start_rewriting(upstream, Arc::new(|_: &str, _: &mut Vec<u8>| None)).await
    }

    /// A proxy that lets `rewrite` change requests and responses as they pass.
    pub async fn start_rewriting(upstream: &str, rewrite: Rewrite) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(AtomicU8::new(FORWARD));
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let accept = {
            let (mode, counts, tasks) = (mode.clone(), counts.clone(), tasks.clone());
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (mode, counts, upstream) = (mode.clone(), counts.clone(), upstream.clone());
                    let rewrite = rewrite.clone();
                    tasks.lock().spawn(async move {
                        let _ = serve(socket, &upstream, &mode, &counts, &rewrite).await;
                    });
                }
            })
        };
        Self {
            url,
            mode,
            counts,
            tasks,
            accept,
        }
    }

    /// How many requests of this KMS operation (e.g. `GenerateDataKey`) arrived.
    pub fn count(&self, operation: &str) -> usize {
        self.counts.lock().get(operation).copied().unwrap_or(0)
    }

    /// Answer every KMS `Decrypt` with an `AccessDeniedException`, as KMS does when the key policy
    /// refuses the caller (moto cannot: it ignores key policies and disabled keys).
    pub fn deny_decrypt(&self, on: bool) {
        self.mode
            .store(if on { DENY_DECRYPT } else { FORWARD }, Ordering::SeqCst);
    }

    pub fn throttle(&self, on: bool) {
        self.mode
            .store(if on { THROTTLE } else { FORWARD }, Ordering::SeqCst);
    }

    /// Close the listener and every open connection.
    pub async fn stop(&self) {
        self.accept.abort();
        self.tasks.lock().abort_all();
        tokio::task::yield_now().await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.tasks.lock().abort_all();
    }
}

/// Relay HTTP/1.1 requests with `Content-Length` bodies, one upstream connection per request.
async fn serve(
    socket: TcpStream,
    upstream: &str,
    mode: &AtomicU8,
    counts: &Mutex<HashMap<String, usize>>,
    rewrite: &Rewrite,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let Some((head, mut body, target)) = read_message(&mut reader).await? else {
            return Ok(());
        };
        let operation = target
            .as_deref()
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("")
            .to_owned();
        *counts.lock().entry(operation.clone()).or_default() += 1;
        let mode = mode.load(Ordering::SeqCst);
        if mode == THROTTLE || (mode == DENY_DECRYPT && operation == "Decrypt") {
            let body: &[u8] = if mode == THROTTLE {
                br#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#
            } else {
                br#"{"__type":"AccessDeniedException","message":"User is not authorized to perform: kms:Decrypt"}"#
            };
            let response = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            write.write_all(response.as_bytes()).await?;
            write.write_all(body).await?;
            continue;
        }
        let edit = rewrite(&operation, &mut body);
        let head = with_content_length(&head, body.len());
        let mut up = TcpStream::connect(upstream).await?;
        up.write_all(&head).await?;
        up.write_all(&body).await?;
        let mut up_reader = BufReader::new(up);
        let Some((mut head, mut body, _)) = read_message(&mut up_reader).await? else {
            return Ok(());
        };
        if let Some(edit) = edit {
            edit(&mut body);
            head = with_content_length(&head, body.len());
        }
        write.write_all(&head).await?;
        write.write_all(&body).await?;
    }
}

/// `head` with its `Content-Length` (if it has one) set to `len`.
fn with_content_length(head: &[u8], len: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("Content-Length: {len}\r\n"));
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

/// One HTTP message: its head (with the blank line), its body, and its `X-Amz-Target`.
async fn read_message<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<(Vec<u8>, Vec<u8>, Option<String>)>> {
    let mut head = Vec::new();
    let mut length = None;
    let mut target = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        head.extend_from_slice(line.as_bytes());
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse::<usize>().ok(),
                "x-amz-target" => target = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).await?;
        }
        // No length on a response: the body runs to the end of the connection.
        None if !head.starts_with(b"POST") && !head.starts_with(b"GET") => {
            reader.read_to_end(&mut body).await?;
        }
        None => {}
    }
    Ok(Some((head, body, target)))
}

/// Decrypt `ciphertext` with `cmm` (a keyring or CMM), check it is `plaintext` and return it.
pub async fn decrypts_to(
    client: &envelope::Client,
    cmm: &dyn envelope::MaterialsManager,
    ciphertext: &[u8],
    plaintext: impl AsRef<[u8]>,
) -> envelope::Decrypted {
    let decrypted = client.decrypt(cmm, ciphertext).await.unwrap();
    assert_eq!(decrypted.plaintext(), plaintext.as_ref());
    decrypted
}

/// Run `interop/{script}` with `python` and `args` against the emulator at `endpoint` (KMS and
/// every other service) with the tests' static credentials; its standard output, once it has
/// succeeded.
pub async fn run_peer(
    python: &std::path::Path,
    script: &str,
    endpoint: &str,
    args: Vec<String>,
) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../interop")
        .join(script);
    let mut command = std::process::Command::new(python);
    command
        .arg(path)
        .args(&args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ENDPOINT_URL_KMS", endpoint)
        .env("AWS_DEFAULT_REGION", "us-west-2")
        .env("AWS_ACCESS_KEY_ID", "AKIDENVELOPETEST")
        .env("AWS_SECRET_ACCESS_KEY", "envelope-test-secret");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{script} {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}
