//! Small helpers over `serde_json::Value`.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use envelope::EncryptionContext;
use serde_json::Value;

use crate::error::{Result, tool_error};

pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| tool_error!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| tool_error!("{} is not valid JSON: {e}", path.display()))
}

pub(crate) fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| tool_error!("missing string field {key:?}"))
}

/// A manifest's `tests` object: test id to test.
pub(crate) fn tests_of(doc: &Value) -> Result<&serde_json::Map<String, Value>> {
    doc.get("tests")
        .and_then(Value::as_object)
        .ok_or_else(|| tool_error!("no tests"))
}

pub(crate) fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Resolve a `file://relative` URI against the manifest's folder.
pub(crate) fn resolve_uri(base: &Path, uri: &str) -> Result<PathBuf> {
    let rel = uri
        .strip_prefix("file://")
        .ok_or_else(|| tool_error!("unsupported URI {uri:?}"))?;
    Ok(base.join(rel))
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| tool_error!("cannot read {}: {e}", path.display()))
}

pub(crate) fn encryption_context(v: Option<&Value>) -> Result<Option<EncryptionContext>> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let map = v
        .as_object()
        .ok_or_else(|| tool_error!("encryption context is not an object"))?;
    let mut ec = EncryptionContext::new();
    for (k, v) in map {
        let v = v
            .as_str()
            .ok_or_else(|| tool_error!("encryption context value for {k:?} is not a string"))?;
        ec.insert(k.clone(), v);
    }
    Ok(Some(ec))
}

pub(crate) fn b64(s: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(s)
        .map_err(|e| tool_error!("invalid base64: {e}"))
}
