//! The branch-key store of the hierarchical keyring over Amazon DynamoDB and AWS KMS (feature
//! `hierarchy`), with the table layout of the AWS Material Providers Library, so that tables are
//! shared with the Java, Python, .NET and Rust ESDKs.
//!
//! Each branch key is three kinds of item in one table (partition key `branch-key-id`, sort key
//! `type`): one per version (`branch:version:<uuid>`), the active one (`branch:ACTIVE`, whose
//! `version` attribute names the active version) and a beacon key (`beacon:ACTIVE`, for searchable
//! encryption; created, never read here). Every item's `enc` is a 32-byte key encrypted by KMS under
//! an encryption context made of the item's other attributes plus `tablename` (the logical key
//! store name), so an item whose attributes were changed does not decrypt.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{DisplayErrorContext, SdkError};
use aws_sdk_kms::primitives::Blob;
use envelope_hierarchy::{BranchKey, BranchKeyStore, BranchKeyVersion, KeyStoreError};
use envelope_keyring::SecretBytes;

pub use aws_sdk_dynamodb;

use envelope_aws::{OperationError, classify};

use crate::client::call;

const BRANCH_KEY_ID: &str = "branch-key-id";
const TYPE: &str = "type";
const CREATE_TIME: &str = "create-time";
const HIERARCHY_VERSION: &str = "hierarchy-version";
const TABLE_NAME: &str = "tablename";
const KMS_ARN: &str = "kms-arn";
const ENC: &str = "enc";
const ACTIVE_VERSION: &str = "version";
const ACTIVE_TYPE: &str = "branch:ACTIVE";
const VERSION_PREFIX: &str = "branch:version:";
const BEACON_TYPE: &str = "beacon:ACTIVE";
const CUSTOM_PREFIX: &str = "aws-crypto-ec:";
const KEY_ID_NAME: &str = "#BranchKeyIdentifierField";
const VERSION_NAME: &str = "#ActiveVersion";

/// An item's encryption context: every attribute but `enc`, plus `tablename`.
type Context = BTreeMap<String, String>;

/// The DynamoDB + KMS branch-key store.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use envelope_kms::aws_config::{self, BehaviorVersion};
/// use envelope_kms::hierarchy::KeyStore;
///
/// let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
/// let store = KeyStore::new(
///     &config,
///     "branch-keys",
///     "arn:aws:kms:us-west-2:111122223333:key/1a2b3c4d-5e6f-1a2b-3c4d-5e6f1a2b3c4d",
/// );
/// store.create_key_store().await?;
/// let branch_key_id = store.create_key(None, Default::default()).await?;
/// store.version_key(&branch_key_id).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct KeyStore {
    dynamodb: aws_sdk_dynamodb::Client,
    kms: aws_sdk_kms::Client,
    table: String,
    logical_name: String,
    kms_key_arn: String,
    grant_tokens: Vec<String>,
}

impl KeyStore {
    /// A store in DynamoDB table `table`, its keys under KMS key `kms_key_arn`, with clients built
    /// from `config` (region, credentials, endpoints such as `AWS_ENDPOINT_URL_DYNAMODB`). The
    /// logical key store name is the table name; change it with
    /// [`with_logical_name`](Self::with_logical_name).
    pub fn new(
        config: &aws_config::SdkConfig,
        table: impl Into<String>,
        kms_key_arn: impl Into<String>,
    ) -> Self {
        Self::from_clients(
            aws_sdk_dynamodb::Client::new(config),
            aws_sdk_kms::Client::new(config),
            table,
            kms_key_arn,
        )
    }

    /// A store over clients you configured.
    pub fn from_clients(
        dynamodb: aws_sdk_dynamodb::Client,
        kms: aws_sdk_kms::Client,
        table: impl Into<String>,
        kms_key_arn: impl Into<String>,
    ) -> Self {
        let table = table.into();
        Self {
            dynamodb,
            kms,
            logical_name: table.clone(),
            table,
            kms_key_arn: kms_key_arn.into(),
            grant_tokens: Vec::new(),
        }
    }

    /// The logical key store name, bound into every item's KMS encryption context: a table copied
    /// or restored under another name keeps working when its logical name stays the same. Every
    /// reader and writer of one table must use the same one.
    pub fn with_logical_name(mut self, name: impl Into<String>) -> Self {
        self.logical_name = name.into();
        self
    }

    /// Grant tokens for every KMS call.
    pub fn with_grant_tokens(mut self, tokens: impl IntoIterator<Item = String>) -> Self {
        self.grant_tokens = tokens.into_iter().collect();
        self
    }

    /// The DynamoDB table name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The KMS key ARN branch keys are encrypted under.
    pub fn kms_key_arn(&self) -> &str {
        &self.kms_key_arn
    }

    /// Create the table (on-demand capacity) and wait until it is active; an existing table with
    /// the right key schema is accepted. Returns the table's ARN.
    pub async fn create_key_store(&self) -> Result<String, KeyStoreError> {
        let definition = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let schema = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let request = self
            .dynamodb
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(definition(BRANCH_KEY_ID).map_err(build_error)?)
            .attribute_definitions(definition(TYPE).map_err(build_error)?)
            .key_schema(schema(BRANCH_KEY_ID, KeyType::Hash).map_err(build_error)?)
            .key_schema(schema(TYPE, KeyType::Range).map_err(build_error)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send();
        match run("dynamodb", "CreateTable", request).await {
            Ok(_) => {}
            Err(KeyStoreError::Service {
                code: Some(code), ..
            }) if code == "ResourceInUseException" => {}
            Err(e) => return Err(e),
        }
        let waited = call(
            self.dynamodb
                .wait_until_table_exists()
                .table_name(&self.table)
                .wait(std::time::Duration::from_secs(120)),
        )
        .await
        .map_err(|e| self.invalid_table(&format!("waiting for it failed: {e}")))?;
        waited.map_err(|e| {
            self.invalid_table(&format!(
                "it did not become ACTIVE: {}",
                DisplayErrorContext(&e)
            ))
        })?;
        let request = self
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send();
        let output = run("dynamodb", "DescribeTable", request).await?;
        let table = output
            .table
            .ok_or_else(|| self.invalid_table("DescribeTable returned no table description"))?;
        let keys: Vec<(String, KeyType)> = table
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
            .collect();
        let expected = [
            (BRANCH_KEY_ID.to_owned(), KeyType::Hash),
            (TYPE.to_owned(), KeyType::Range),
        ];
        if !expected.iter().all(|k| keys.contains(k)) {
            return Err(
                self.invalid_table("its key schema is not (branch-key-id HASH, type RANGE)")
            );
        }
        table
            .table_arn()
            .map(str::to_owned)
            .ok_or_else(|| self.invalid_table("DescribeTable returned no table ARN"))
    }

    /// Create a branch key (its first version, the active item and the beacon key) and return its
    /// id. With `branch_key_id` `None` a random UUID is used; a chosen id needs a non-empty
    /// `encryption_context` (the custom context stored with the key, as in the Material Providers
    /// Library). Fails with [`KeyStoreError::AlreadyExists`] if the id is taken.
    pub async fn create_key(
        &self,
        branch_key_id: Option<&str>,
        encryption_context: BTreeMap<String, String>,
    ) -> Result<String, KeyStoreError> {
        let id = match branch_key_id {
            Some("") => {
                return Err(KeyStoreError::InvalidConfiguration(
                    "a branch key id must not be empty".into(),
                ));
            }
            Some(_) if encryption_context.is_empty() => {
                return Err(KeyStoreError::InvalidConfiguration(
                    "a chosen branch key id needs a non-empty encryption context".into(),
                ));
            }
            Some(id) => id.to_owned(),
            None => BranchKeyVersion::random()?.to_string(),
        };
        let version = BranchKeyVersion::random()?;
        let mut decrypt_only = Context::new();
        decrypt_only.insert(BRANCH_KEY_ID.into(), id.clone());
        decrypt_only.insert(TYPE.into(), format!("{VERSION_PREFIX}{version}"));
        decrypt_only.insert(CREATE_TIME.into(), timestamp());
        decrypt_only.insert(TABLE_NAME.into(), self.logical_name.clone());
        decrypt_only.insert(KMS_ARN.into(), self.kms_key_arn.clone());
        decrypt_only.insert(HIERARCHY_VERSION.into(), "1".into());
        for (k, v) in encryption_context {
            decrypt_only.insert(format!("{CUSTOM_PREFIX}{k}"), v);
        }
        let mut beacon = decrypt_only.clone();
        beacon.insert(TYPE.into(), BEACON_TYPE.into());
        let (version_item, active_item) =
            self.new_version(decrypt_only, Condition::NotExists).await?;
        let beacon_enc = self.generate(&beacon).await?;
        let beacon_item = self.put(&beacon, beacon_enc, Condition::NotExists)?;
        self.write(
            vec![version_item, active_item, beacon_item],
            KeyStoreError::AlreadyExists(id.clone()),
        )
        .await?;
        Ok(id)
    }

    /// Rotate branch key `branch_key_id`: a new version becomes active; every older version stays
    /// in the store and keeps decrypting. Fails with [`KeyStoreError::Conflict`] (and writes
    /// nothing) if another writer rotated it in between.
    pub async fn version_key(
        &self,
        branch_key_id: &str,
    ) -> Result<BranchKeyVersion, KeyStoreError> {
        // A strongly consistent read: a rotation right after another must see it.
        let item = self.get_item(branch_key_id, ACTIVE_TYPE, true).await?;
        let old_active = self.validate(branch_key_id, &item, Kind::Active)?;
        let old_enc = blob(&item, branch_key_id)?;
        // Prove the active item is intact before building on it.
        self.re_encrypt(&old_enc, &old_active, &old_active).await?;
        let old_version = old_active.get(ACTIVE_VERSION).cloned().unwrap_or_default();

        let version = BranchKeyVersion::random()?;
        let mut decrypt_only = old_active.clone();
        decrypt_only.remove(ACTIVE_VERSION);
        decrypt_only.insert(TYPE.into(), format!("{VERSION_PREFIX}{version}"));
        decrypt_only.insert(CREATE_TIME.into(), timestamp());
        let (version_item, active_item) = self
            .new_version(decrypt_only, Condition::ActiveIs(old_version))
            .await?;
        self.write(
            vec![version_item, active_item],
            KeyStoreError::Conflict(branch_key_id.to_owned()),
        )
        .await?;
        Ok(version)
    }

    /// The writes of a new version with context `decrypt_only`: its own item (a fresh key from
    /// KMS) and the active item (the same key re-encrypted under the active context), the latter
    /// written on `active_condition`.
    async fn new_version(
        &self,
        decrypt_only: Context,
        active_condition: Condition,
    ) -> Result<(TransactWriteItem, TransactWriteItem), KeyStoreError> {
        let active = active_context(&decrypt_only);
        let version_enc = self.generate(&decrypt_only).await?;
        let active_enc = self
            .re_encrypt(&version_enc, &decrypt_only, &active)
            .await?;
        Ok((
            self.put(&decrypt_only, version_enc, Condition::NotExists)?,
            self.put(&active, active_enc, active_condition)?,
        ))
    }

    /// Write `items` in one transaction; a failed condition is `on_conflict`, and nothing is
    /// written.
    async fn write(
        &self,
        items: Vec<TransactWriteItem>,
        on_conflict: KeyStoreError,
    ) -> Result<(), KeyStoreError> {
        let request = self
            .dynamodb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send();
        run("dynamodb", "TransactWriteItems", request)
            .await
            .map(drop)
            .map_err(|e| condition_failed(e, on_conflict))
    }

    /// The active version of a branch key, decrypted.
    pub async fn get_active_branch_key(
        &self,
        branch_key_id: &str,
    ) -> Result<BranchKey, KeyStoreError> {
        self.read(branch_key_id, ACTIVE_TYPE.to_owned(), Kind::Active)
            .await
    }

    /// A given version of a branch key, decrypted.
    pub async fn get_branch_key_version(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, KeyStoreError> {
        self.read(
            branch_key_id,
            format!("{VERSION_PREFIX}{version}"),
            Kind::Version(version),
        )
        .await
    }

    async fn read(
        &self,
        branch_key_id: &str,
        sort_key: String,
        kind: Kind,
    ) -> Result<BranchKey, KeyStoreError> {
        let item = self.get_item(branch_key_id, &sort_key, false).await?;
        let context = self.validate(branch_key_id, &item, kind)?;
        let enc = blob(&item, branch_key_id)?;
        let request = self
            .kms
            .decrypt()
            .ciphertext_blob(Blob::new(enc))
            .set_encryption_context(Some(context.clone().into_iter().collect::<HashMap<_, _>>()))
            .set_grant_tokens(self.tokens())
            .key_id(&self.kms_key_arn)
            .send();
        let output = run("kms", "Decrypt", request)
            .await
            .map_err(|e| tampered_if_invalid_ciphertext(e, branch_key_id))?;
        if output.key_id.as_deref() != Some(self.kms_key_arn.as_str()) {
            return Err(bad_kms("Decrypt answered for another key"));
        }
        let plaintext = SecretBytes::new(
            output
                .plaintext
                .map(Blob::into_inner)
                .ok_or_else(|| bad_kms("Decrypt returned no plaintext"))?,
        );
        let version_text = context
            .get(ACTIVE_VERSION)
            .or_else(|| context.get(TYPE))
            .and_then(|v| v.strip_prefix(VERSION_PREFIX))
            .unwrap_or_default();
        let version: BranchKeyVersion = version_text
            .parse()
            .map_err(|e| invalid(branch_key_id, format!("{e}")))?;
        let custom = context
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(CUSTOM_PREFIX)?.to_owned(), v.clone())))
            .collect();
        Ok(BranchKey::new(branch_key_id, version, plaintext)?.with_encryption_context(custom))
    }

    async fn get_item(
        &self,
        branch_key_id: &str,
        sort_key: &str,
        consistent: bool,
    ) -> Result<HashMap<String, AttributeValue>, KeyStoreError> {
        let request = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .consistent_read(consistent)
            .key(BRANCH_KEY_ID, AttributeValue::S(branch_key_id.to_owned()))
            .key(TYPE, AttributeValue::S(sort_key.to_owned()))
            .send();
        let output = run("dynamodb", "GetItem", request).await?;
        output.item.ok_or_else(|| KeyStoreError::NotFound {
            branch_key_id: branch_key_id.to_owned(),
            version: sort_key.strip_prefix(VERSION_PREFIX).map(str::to_owned),
        })
    }

    /// Check an item's shape and that it is the one asked for; return its KMS encryption context.
    fn validate(
        &self,
        branch_key_id: &str,
        item: &HashMap<String, AttributeValue>,
        kind: Kind,
    ) -> Result<Context, KeyStoreError> {
        let bad = |reason: &str| invalid(branch_key_id, reason.to_owned());
        let mut context = Context::new();
        for (name, value) in item {
            match (name.as_str(), value) {
                (ENC, AttributeValue::B(_)) => {}
                (ENC, _) => return Err(bad("\"enc\" is not binary")),
                (TABLE_NAME, _) => return Err(bad("it has a \"tablename\" attribute")),
                (HIERARCHY_VERSION, AttributeValue::N(n)) => {
                    context.insert(name.clone(), n.clone());
                }
                (HIERARCHY_VERSION, _) => return Err(bad("\"hierarchy-version\" is not a number")),
                (_, AttributeValue::S(s)) => {
                    context.insert(name.clone(), s.clone());
                }
                _ => return Err(invalid(branch_key_id, format!("{name:?} is not a string"))),
            }
        }
        for required in [BRANCH_KEY_ID, TYPE, CREATE_TIME, HIERARCHY_VERSION, KMS_ARN] {
            if !context.contains_key(required) {
                return Err(invalid(branch_key_id, format!("it has no {required:?}")));
            }
        }
        if !item.contains_key(ENC) {
            return Err(bad("it has no \"enc\""));
        }
        if context.get(BRANCH_KEY_ID).map(String::as_str) != Some(branch_key_id) {
            return Err(bad("it belongs to another branch key"));
        }
        if context.get(HIERARCHY_VERSION).map(String::as_str) != Some("1") {
            return Err(bad("its hierarchy-version is not 1"));
        }
        let kind_ok = match kind {
            Kind::Active => {
                context.get(TYPE).map(String::as_str) == Some(ACTIVE_TYPE)
                    && context.get(ACTIVE_VERSION).is_some_and(|v| {
                        v.len() > VERSION_PREFIX.len() && v.starts_with(VERSION_PREFIX)
                    })
            }
            Kind::Version(version) => {
                context.get(TYPE) == Some(&format!("{VERSION_PREFIX}{version}"))
                    && !context.contains_key(ACTIVE_VERSION)
            }
        };
        if !kind_ok {
            return Err(bad(
                "its type or version attribute is not the one asked for",
            ));
        }
        if context.get(KMS_ARN) != Some(&self.kms_key_arn) {
            return Err(invalid(
                branch_key_id,
                format!(
                    "it is encrypted under KMS key {:?}, not this store's {:?}",
                    context.get(KMS_ARN).map(String::as_str).unwrap_or_default(),
                    self.kms_key_arn
                ),
            ));
        }
        context.insert(TABLE_NAME.into(), self.logical_name.clone());
        Ok(context)
    }

    fn put(
        &self,
        context: &Context,
        enc: Vec<u8>,
        condition: Condition,
    ) -> Result<TransactWriteItem, KeyStoreError> {
        let mut item: HashMap<String, AttributeValue> = context
            .iter()
            .filter(|(k, _)| k.as_str() != TABLE_NAME)
            .map(|(k, v)| {
                let value = if k == HIERARCHY_VERSION {
                    AttributeValue::N(v.clone())
                } else {
                    AttributeValue::S(v.clone())
                };
                (k.clone(), value)
            })
            .collect();
        item.insert(
            ENC.into(),
            AttributeValue::B(Blob::new(enc).into_inner().into()),
        );
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_names(KEY_ID_NAME, BRANCH_KEY_ID);
        let put = match condition {
            Condition::NotExists => {
                put.condition_expression(format!("attribute_not_exists({KEY_ID_NAME})"))
            }
            Condition::ActiveIs(version) => put
                .condition_expression(format!(
                    "attribute_exists({KEY_ID_NAME}) AND {VERSION_NAME} = :old_version"
                ))
                .expression_attribute_names(VERSION_NAME, ACTIVE_VERSION)
                .expression_attribute_values(":old_version", AttributeValue::S(version)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    async fn generate(&self, context: &Context) -> Result<Vec<u8>, KeyStoreError> {
        let request = self
            .kms
            .generate_data_key_without_plaintext()
            .key_id(&self.kms_key_arn)
            .number_of_bytes(32)
            .set_encryption_context(Some(kms_context(context)))
            .set_grant_tokens(self.tokens())
            .send();
        let output = run("kms", "GenerateDataKeyWithoutPlaintext", request).await?;
        if output.key_id.is_none() {
            return Err(bad_kms("GenerateDataKeyWithoutPlaintext returned no KeyId"));
        }
        output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| bad_kms("GenerateDataKeyWithoutPlaintext returned no ciphertext"))
    }

    async fn re_encrypt(
        &self,
        ciphertext: &[u8],
        from: &Context,
        to: &Context,
    ) -> Result<Vec<u8>, KeyStoreError> {
        let request = self
            .kms
            .re_encrypt()
            .ciphertext_blob(Blob::new(ciphertext))
            .set_source_encryption_context(Some(kms_context(from)))
            .source_key_id(&self.kms_key_arn)
            .destination_key_id(&self.kms_key_arn)
            .set_destination_encryption_context(Some(kms_context(to)))
            .set_grant_tokens(self.tokens())
            .send();
        let output = run("kms", "ReEncrypt", request).await?;
        let arn = Some(self.kms_key_arn.as_str());
        if output.source_key_id.as_deref() != arn || output.key_id.as_deref() != arn {
            return Err(bad_kms("ReEncrypt answered for another key"));
        }
        output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| bad_kms("ReEncrypt returned no ciphertext"))
    }

    fn tokens(&self) -> Option<Vec<String>> {
        (!self.grant_tokens.is_empty()).then(|| self.grant_tokens.clone())
    }

    fn invalid_table(&self, reason: &str) -> KeyStoreError {
        KeyStoreError::InvalidConfiguration(format!("table {:?}: {reason}", self.table))
    }
}

#[async_trait]
impl BranchKeyStore for KeyStore {
    fn logical_name(&self) -> &str {
        &self.logical_name
    }

    async fn active_branch_key(&self, branch_key_id: &str) -> Result<BranchKey, KeyStoreError> {
        self.get_active_branch_key(branch_key_id).await
    }

    async fn branch_key_version(
        &self,
        branch_key_id: &str,
        version: BranchKeyVersion,
    ) -> Result<BranchKey, KeyStoreError> {
        self.get_branch_key_version(branch_key_id, version).await
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Active,
    Version(BranchKeyVersion),
}

enum Condition {
    NotExists,
    /// The active item exists and still names this version.
    ActiveIs(String),
}

fn active_context(decrypt_only: &Context) -> Context {
    let mut active = decrypt_only.clone();
    if let Some(version) = decrypt_only.get(TYPE) {
        active.insert(ACTIVE_VERSION.into(), version.clone());
    }
    active.insert(TYPE.into(), ACTIVE_TYPE.into());
    active
}

fn kms_context(context: &Context) -> HashMap<String, String> {
    context.clone().into_iter().collect()
}

fn blob(
    item: &HashMap<String, AttributeValue>,
    branch_key_id: &str,
) -> Result<Vec<u8>, KeyStoreError> {
    match item.get(ENC) {
        Some(AttributeValue::B(b)) => Ok(b.clone().into_inner()),
        _ => Err(invalid(branch_key_id, "it has no binary \"enc\"".into())),
    }
}

fn invalid(branch_key_id: &str, reason: String) -> KeyStoreError {
    KeyStoreError::InvalidItem {
        branch_key_id: branch_key_id.to_owned(),
        reason,
    }
}

fn bad_kms(message: &str) -> KeyStoreError {
    KeyStoreError::Service {
        service: "kms",
        operation: "response",
        code: None,
        message: message.to_owned(),
        retryable: false,
        source: None,
    }
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> KeyStoreError {
    KeyStoreError::InvalidConfiguration(format!("could not build a DynamoDB request: {error}"))
}

/// A failed conditional write is `instead`; other failures stay as they are.
fn condition_failed(error: KeyStoreError, instead: KeyStoreError) -> KeyStoreError {
    match &error {
        KeyStoreError::Service {
            code: Some(code),
            message,
            ..
        } if code == "TransactionCanceledException"
            && (message.contains("ConditionalCheckFailed")
                || message.contains("TransactionConflict")) =>
        {
            instead
        }
        KeyStoreError::Service {
            code: Some(code), ..
        } if code == "ConditionalCheckFailedException" => instead,
        _ => error,
    }
}

/// KMS refusing the ciphertext under the item's own context means the item was altered.
fn tampered_if_invalid_ciphertext(error: KeyStoreError, branch_key_id: &str) -> KeyStoreError {
    match &error {
        KeyStoreError::Service {
            code: Some(code), ..
        } if code == "InvalidCiphertextException" => invalid(
            branch_key_id,
            "AWS KMS refused to decrypt it under its own attributes (InvalidCiphertextException): \
                 it was altered or written for another key store"
                .into(),
        ),
        _ => error,
    }
}

/// Run an AWS SDK call (on the KMS crate's runtime when not on tokio) and type its failure.
async fn run<F, T, E>(
    service: &'static str,
    operation: &'static str,
    request: F,
) -> Result<T, KeyStoreError>
where
    F: Future<Output = Result<T, SdkError<E, HttpResponse>>> + Send + 'static,
    T: Send + 'static,
    E: OperationError,
{
    let outcome = call(request).await.map_err(|e| KeyStoreError::Service {
        service,
        operation,
        code: None,
        message: e.to_string(),
        retryable: true,
        source: None,
    })?;
    outcome.map_err(|error| sdk_error(service, operation, error))
}

/// Capacity and internal-error codes of DynamoDB that a retry may get past, beyond
/// [`envelope_aws::COMMON_RETRYABLE_CODES`].
const DYNAMODB_RETRYABLE: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "InternalServerError",
];

fn sdk_error<E: OperationError>(
    service: &'static str,
    operation: &'static str,
    error: SdkError<E, HttpResponse>,
) -> KeyStoreError {
    let seen = classify(&error, DYNAMODB_RETRYABLE);
    KeyStoreError::Service {
        service,
        operation,
        code: seen.code,
        message: seen.message,
        retryable: seen.retryable,
        source: Some(std::sync::Arc::new(error)),
    }
}

/// The current UTC time as the Material Providers Library writes it: `2026-12-03T13:45:07.123456Z`.
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_micros()
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_map_to_civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_790), (2026, 12, 3));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn timestamps_have_the_libraries_shape() {
        let t = timestamp();
        assert_eq!(t.len(), "2026-12-03T13:45:07.123456Z".len(), "{t}");
        assert!(
            t.ends_with('Z') && &t[10..11] == "T" && &t[19..20] == ".",
            "{t}"
        );
    }
}
