//! `--metadata-output`: one JSON line per operation, in the fields aws-encryption-sdk-cli writes
//! (`mode`, `input`, `output`, `header`, and `header_auth` on decrypt), so that tools reading its
//! metadata read ours.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use envelope::format::{Framing, Header, MessageFormatVersion};
use serde_json::{Map, Value, json};

/// Where metadata lines go.
pub(crate) enum Metadata {
    Stdout,
    File { path: PathBuf, file: File },
}

impl Metadata {
    /// Open `path` (`-`: standard output) to append to, or to replace with `overwrite`.
    pub(crate) fn open(path: &Path, overwrite: bool) -> Result<Self, String> {
        if path == Path::new("-") {
            return Ok(Self::Stdout);
        }
        let mut options = OpenOptions::new();
        if overwrite {
            options.write(true).create(true).truncate(true);
        } else {
            options.append(true).create(true);
        }
        let file = options
            .open(path)
            .map_err(|e| format!("{} (--metadata-output): {e}", path.display()))?;
        Ok(Self::File {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Write one line.
    pub(crate) fn write(&mut self, line: &Value) -> Result<(), String> {
        let mut text = line.to_string();
        text.push('\n');
        match self {
            Self::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("writing metadata to standard output: {e}"))
            }
            Self::File { path, file } => file
                .write_all(text.as_bytes())
                .map_err(|e| format!("{} (--metadata-output): {e}", path.display())),
        }
    }
}

/// How the metadata names an input or output: its absolute path, or `<stdin>` / `<stdout>`.
pub(crate) fn file_name(path: Option<&Path>, standard: &str) -> String {
    match path.filter(|p| *p != Path::new("-")) {
        None => standard.to_string(),
        Some(p) => std::path::absolute(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string(),
    }
}

/// The Python ESDK's name of a suite: the ESDK name without `ALG_` and `_NO_KDF`.
pub(crate) fn python_suite_name(name: &str) -> &str {
    let name = name.strip_prefix("ALG_").unwrap_or(name);
    name.strip_suffix("_NO_KDF").unwrap_or(name)
}

/// The header as aws-encryption-sdk-cli writes it: binary fields in Base64, data keys sorted by
/// provider id then provider info.
pub(crate) fn header_json(header: &Header) -> Value {
    let body = header.body();
    let v1 = body.version() == MessageFormatVersion::V1;
    let mut keys: Vec<_> = body.encrypted_data_keys().iter().collect();
    keys.sort_by(|a, b| {
        (a.provider_id().as_bytes(), a.provider_info())
            .cmp(&(b.provider_id().as_bytes(), b.provider_info()))
    });
    let keys: Vec<Value> = keys
        .into_iter()
        .map(|edk| {
            json!({
                "encrypted_data_key": STANDARD.encode(edk.ciphertext()),
                "key_provider": {
                    "key_info": STANDARD.encode(edk.provider_info()),
                    "provider_id": STANDARD.encode(edk.provider_id()),
                },
            })
        })
        .collect();
    let context: Map<String, Value> = body
        .encryption_context()
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v)))
        .collect();
    json!({
        "algorithm": python_suite_name(body.suite().name()),
        "commitment_key": body.commit_key().map(|k| STANDARD.encode(k)),
        "content_type": match body.framing() {
            Framing::NonFramed => 1,
            Framing::Framed(_) => 2,
        },
        "encrypted_data_keys": keys,
        "encryption_context": context,
        "frame_length": body.framing().frame_length(),
        "header_iv_length": v1.then_some(envelope::format::IV_LEN),
        "message_id": STANDARD.encode(body.message_id().as_bytes()),
        "type": v1.then_some(128),
        "version": if v1 { "1.0" } else { "2.0" },
    })
}

/// Header authentication as aws-encryption-sdk-cli writes it.
pub(crate) fn header_auth_json(header: &Header) -> Value {
    let auth = header.auth();
    json!({
        "iv": STANDARD.encode(auth.iv),
        "tag": STANDARD.encode(auth.tag),
    })
}

/// The line for one operation (`header_auth` on decrypt only).
pub(crate) fn line(mode: &str, input: &str, output: &str, header: &Header) -> Map<String, Value> {
    let mut line = Map::new();
    line.insert("mode".into(), mode.into());
    line.insert("input".into(), input.into());
    line.insert("output".into(), output.into());
    line.insert("header".into(), header_json(header));
    if mode == "decrypt" {
        line.insert("header_auth".into(), header_auth_json(header));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::python_suite_name;

    #[test]
    fn python_names_drop_the_prefix_and_the_no_kdf_suffix() {
        assert_eq!(
            python_suite_name("ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"),
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384"
        );
        assert_eq!(
            python_suite_name("ALG_AES_128_GCM_IV12_TAG16_NO_KDF"),
            "AES_128_GCM_IV12_TAG16"
        );
    }
}
