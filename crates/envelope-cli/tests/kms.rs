//! `--wrapping-keys` against moto's AWS KMS on 127.0.0.1: several keys (the first generates the
//! data key), aliases, `region=` and `profile=`.
//!
//! Needs `ENVELOPE_KMS_ENDPOINT` (moto) and `ENVELOPE_PYTHON` (a Python with boto3, to create the
//! keys), as scripts/test.sh sets them; without them the tests say so and pass, unless
//! `ENVELOPE_REQUIRE_KMS` is set.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

mod support;
use support::{Args, BIN, REGION, create_kms_keys, fails_saying, stderr, succeeded};

struct Kms {
    endpoint: String,
    first: String,
    second: String,
    alias: String,
}

/// Two keys on the emulator, the second also under an alias unique to this run.
fn kms() -> Option<Kms> {
    let endpoint = std::env::var("ENVELOPE_KMS_ENDPOINT").ok();
    let python = std::env::var_os("ENVELOPE_PYTHON");
    let (Some(endpoint), Some(python)) = (endpoint, python) else {
        assert!(
            std::env::var_os("ENVELOPE_REQUIRE_KMS").is_none(),
            "ENVELOPE_REQUIRE_KMS is set but ENVELOPE_KMS_ENDPOINT or ENVELOPE_PYTHON is not"
        );
        eprintln!("skipped: set ENVELOPE_KMS_ENDPOINT and ENVELOPE_PYTHON");
        return None;
    };
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let alias = format!("alias/envelope-cli-{}-{n}", std::process::id());
    let mut arns = create_kms_keys(&python, &endpoint, 2, Some(&alias)).into_iter();
    Some(Kms {
        endpoint,
        first: arns.next().unwrap(),
        second: arns.next().unwrap(),
        alias,
    })
}

impl Kms {
    /// The command with only the emulator's endpoint set: no credentials, Region or profile
    /// unless `env` gives them.
    fn run(&self, dir: &Path, args: &(impl Args + ?Sized), env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(BIN);
        command.current_dir(dir).args(args.to_args());
        for (name, _) in std::env::vars() {
            if name.starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .env("AWS_ENDPOINT_URL_KMS", &self.endpoint)
            .env("AWS_CONFIG_FILE", dir.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    }

    fn ok(&self, dir: &Path, args: &(impl Args + ?Sized), env: &[(&str, &str)]) -> Output {
        succeeded(self.run(dir, args, env), args)
    }
}

const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_REGION", REGION),
];

#[test]
fn several_keys_the_first_generating_and_each_decrypting_alone() {
    let Some(kms) = kms() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("plain"), b"two keys").unwrap();
    let first = format!("key={}", kms.first);
    let alias = format!("key={}", kms.alias);
    kms.ok(
        d,
        &format!("encrypt -w {first} {alias} -i plain -o ct"),
        &CREDENTIALS,
    );
    let info = kms.ok(d, "info --json -i ct", &[]);
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    let keys: Vec<&str> = info["data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_arn"].as_str().unwrap())
        .collect();
    // The first key generated the data key and comes first; the alias's key wrapped it too.
    assert_eq!(keys, [kms.first.as_str(), kms.second.as_str()]);
    for key in [&kms.first, &kms.second] {
        let out = kms.ok(
            d,
            &["decrypt", "-w", &format!("key={key}"), "-i", "ct"],
            &CREDENTIALS,
        );
        assert_eq!(out.stdout, b"two keys");
    }
    // An alias matches no data key on decrypt (the message records key ARNs): the error says so.
    let out = kms.run(d, &format!("decrypt -w {alias} -i ct"), &CREDENTIALS);
    fails_saying(
        &out,
        "hint: a message records the key ARN of each AWS KMS key, so decrypting needs \
         -w key=ARN (an alias or key id matches no data key), or -w discovery=true",
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn region_and_profile_come_from_the_wrapping_key_group() {
    let Some(kms) = kms() else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("plain"), b"configured").unwrap();
    let alias = format!("key={}", kms.alias);
    let keys_only = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    // An alias name carries no Region: without one configured the command says so.
    let out = kms.run(d, &format!("encrypt -w {alias} -i plain -o ct"), &keys_only);
    fails_saying(&out, "region");
    assert!(!d.join("ct").exists());
    kms.ok(
        d,
        &format!("encrypt -w {alias} region=us-west-2 -i plain -o ct"),
        &keys_only,
    );

    // profile=: credentials and Region from the named profile only.
    fs::write(d.join("config"), "[profile cli-test]\nregion = us-west-2\n").unwrap();
    fs::write(
        d.join("credentials"),
        "[cli-test]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let config = d.join("config").display().to_string();
    let credentials = d.join("credentials").display().to_string();
    let files = [
        ("AWS_CONFIG_FILE", config.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
    ];
    kms.ok(
        d,
        &format!("encrypt -w {alias} profile=cli-test -i plain -o ct2"),
        &files,
    );
    let second = format!("key={}", kms.second);
    for ct in ["ct", "ct2"] {
        let out = kms.ok(
            d,
            &format!("decrypt -w {second} profile=cli-test -i {ct}"),
            &files,
        );
        assert_eq!(out.stdout, b"configured");
    }
    // Without the profile there are no credentials: a clear failure, and no output.
    let out = kms.run(d, &format!("decrypt -w {second} -i ct -o out"), &files);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!d.join("out").exists());
    let out = kms.run(
        d,
        &format!("decrypt -w {second} profile=missing -i ct -o out"),
        &files,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!d.join("out").exists());
}
