//! KMS clients per region, running KMS calls without blocking an executor, and error mapping.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::SdkError;
use envelope_aws::{OperationError, classify};
use envelope_keyring::{Error, ProviderError};
use parking_lot::Mutex;

/// The key provider id of AWS KMS in encrypted data keys, also used in errors.
pub const PROVIDER_ID: &str = "aws-kms";

/// Supplies a KMS client for a region.
///
/// The multi-keyring helpers ask for one client per region their keys live in. Implement it to
/// configure clients your way (credentials, retries, timeouts, endpoints); [`DefaultClientSupplier`]
/// builds them from one [`SdkConfig`] and keeps one per region.
pub trait ClientSupplier: Send + Sync + fmt::Debug {
    /// A client for `region`; `None` means the default region (for bare key ids and alias names).
    fn client(&self, region: Option<&str>) -> Result<aws_sdk_kms::Client, Error>;
}

impl<S: ClientSupplier + ?Sized> ClientSupplier for Arc<S> {
    fn client(&self, region: Option<&str>) -> Result<aws_sdk_kms::Client, Error> {
        (**self).client(region)
    }
}

/// Builds KMS clients from one AWS configuration, one per region, created on first use and shared.
///
/// Cheap to clone: clones share the clients. Clients made by the AWS SDK are themselves shared
/// handles with a connection pool, so one supplier serves every thread of a process.
#[derive(Clone)]
pub struct DefaultClientSupplier {
    base: SdkConfig,
    clients: Arc<Mutex<HashMap<String, aws_sdk_kms::Client>>>,
}

impl fmt::Debug for DefaultClientSupplier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultClientSupplier")
            .field("default_region", &self.default_region())
            .field("regions", &self.clients.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl DefaultClientSupplier {
    /// Clients built from `config` (credentials, endpoint, retry and timeout settings), with the
    /// region replaced per client.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            base: config.clone(),
            clients: Arc::default(),
        }
    }

    /// Load the AWS configuration from the environment, profile files and instance metadata, as the
    /// AWS CLI does (`AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL_KMS`, ...).
    pub async fn from_env() -> Result<Self, Error> {
        let config = call(aws_config::defaults(BehaviorVersion::latest()).load()).await?;
        Ok(Self::new(&config))
    }

    /// [`from_env`](Self::from_env) for synchronous code. The loading runs on Envelope's KMS runtime
    /// while this thread waits; do not call it from an async task.
    pub fn from_env_blocking() -> Result<Self, Error> {
        Self::from_loader_blocking(aws_config::defaults(BehaviorVersion::latest()))
    }

    /// Load the configuration `loader` describes (a named profile, a region, ...) for synchronous
    /// code, as [`from_env_blocking`](Self::from_env_blocking) loads the default one.
    pub fn from_loader_blocking(loader: aws_config::ConfigLoader) -> Result<Self, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        owned_runtime()?.spawn(async move {
            let _ = tx.send(loader.load().await);
        });
        rx.recv()
            .map(|config| Self::new(&config))
            .map_err(|_| provider_error("loading the AWS configuration was interrupted"))
    }

    /// The region of the base configuration, used for bare key ids and alias names.
    pub fn default_region(&self) -> Option<&str> {
        self.base.region().map(Region::as_ref)
    }
}

impl ClientSupplier for DefaultClientSupplier {
    fn client(&self, region: Option<&str>) -> Result<aws_sdk_kms::Client, Error> {
        let region = match region.or_else(|| self.default_region()) {
            Some(region) if !region.is_empty() => region.to_owned(),
            _ => {
                return Err(Error::InvalidConfiguration(
                    "no AWS region: name the key by ARN or configure a default region".into(),
                ));
            }
        };
        let mut clients = self.clients.lock();
        let client = clients.entry(region.clone()).or_insert_with(|| {
            let config = aws_sdk_kms::config::Builder::from(&self.base)
                .region(Region::new(region))
                .build();
            aws_sdk_kms::Client::from_conf(config)
        });
        Ok(client.clone())
    }
}

/// Run a KMS call without blocking any executor.
///
/// On a tokio runtime (current-thread or multi-thread) the call runs in the caller's task. Anywhere
/// else (the blocking API, `futures::executor`, another executor) it runs on Envelope's own KMS
/// runtime: one worker thread, created the first time it is needed, and the caller waits for the
/// result as an ordinary future.
pub(crate) async fn call<F>(future: F) -> Result<F::Output, Error>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        return Ok(future.await);
    }
    owned_runtime()?
        .spawn(future)
        .await
        .map_err(|e| provider_error(format!("the KMS call's task ended abnormally: {e}")))
}

/// Send a KMS `operation` for `key_id` (through [`call`]): its response, or the failure as an error
/// naming the operation and key.
pub(crate) async fn send<T, E, F>(operation: &str, key_id: &str, request: F) -> Result<T, Error>
where
    F: Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'static,
    T: Send + 'static,
    E: OperationError + Send + 'static,
{
    call(request)
        .await?
        .map_err(|e| kms_error(operation, key_id, e))
}

/// Envelope's KMS runtime, for callers that are not on tokio.
fn owned_runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("envelope-kms")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| provider_error(format!("cannot start a runtime for KMS calls: {e}")))
}

fn provider_error(message: impl Into<String>) -> Error {
    Error::Provider(ProviderError::new(PROVIDER_ID, message))
}

/// KMS error codes after which a later retry may succeed, beyond
/// [`envelope_aws::COMMON_RETRYABLE_CODES`].
const KMS_RETRYABLE: &[&str] = &[
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
];

/// Map an AWS SDK error to a provider error that keeps the KMS code and message and says whether a
/// retry may help.
pub(crate) fn kms_error<E: OperationError>(
    operation: &str,
    key_id: &str,
    error: SdkError<E, HttpResponse>,
) -> Error {
    let seen = classify(&error, KMS_RETRYABLE);
    let mut provider =
        ProviderError::new(PROVIDER_ID, format!("{operation} failed: {}", seen.message))
            .with_key_id(key_id)
            .retryable(seen.retryable)
            .with_source(error);
    if let Some(code) = seen.code {
        provider = provider.with_code(code);
    }
    Error::Provider(provider)
}

/// A response that breaks the KMS keyring contract (wrong key, wrong length, missing field).
pub(crate) fn bad_response(operation: &str, key_id: &str, problem: impl fmt::Display) -> Error {
    Error::Provider(
        ProviderError::new(
            PROVIDER_ID,
            format!("{operation} returned an unacceptable response: {problem}"),
        )
        .with_key_id(key_id),
    )
}
