//! AWS KMS keyrings for `aws-kms` master keys (feature `kms`).
//!
//! Manifests name KMS keys by ARN. Published vectors use real AWS keys, which the offline runs here
//! cannot reach, so KMS keyrings are only built when `ENVELOPE_VECTORS_KMS=1`; tests that need one
//! are skipped otherwise. Clients come from the usual AWS environment (`AWS_ENDPOINT_URL_KMS`
//! points them at an emulator), one per region.

use std::sync::Arc;

use envelope::Keyring;

/// Whether KMS keyrings are enabled for this run.
fn enabled() -> bool {
    std::env::var("ENVELOPE_VECTORS_KMS").is_ok_and(|v| v == "1")
}

#[cfg(feature = "kms")]
pub(crate) fn keyring(key_arn: &str) -> Result<Arc<dyn Keyring>, String> {
    use std::sync::OnceLock;

    use envelope::kms::arn::KmsArn;
    use envelope::kms::{AwsKmsKeyring, ClientSupplier, DefaultClientSupplier};

    static SUPPLIER: OnceLock<Result<DefaultClientSupplier, String>> = OnceLock::new();
    if !enabled() {
        return Err("aws-kms keyring: set ENVELOPE_VECTORS_KMS=1 to call AWS KMS".into());
    }
    let supplier = SUPPLIER
        .get_or_init(|| DefaultClientSupplier::from_env_blocking().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| format!("aws-kms keyring: no AWS configuration: {e}"))?;
    let arn = KmsArn::parse_key_arn(key_arn).map_err(|e| format!("aws-kms keyring: {e}"))?;
    let client = supplier
        .client(Some(arn.region()))
        .map_err(|e| format!("aws-kms keyring: {e}"))?;
    AwsKmsKeyring::new(key_arn, client)
        .map(|k| Arc::new(k) as Arc<dyn Keyring>)
        .map_err(|e| format!("aws-kms keyring: {e}"))
}

#[cfg(not(feature = "kms"))]
pub(crate) fn keyring(_key_arn: &str) -> Result<Arc<dyn Keyring>, String> {
    Err(if enabled() {
        "aws-kms keyring: this build has no KMS support (build with --features kms)".into()
    } else {
        "aws-kms keyring not supported (build with --features kms, set ENVELOPE_VECTORS_KMS=1)"
            .into()
    })
}
